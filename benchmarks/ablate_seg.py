"""Table IX at toy scale: UperNet (+/- CARAFE++ per component) on the embedded texture scenes.

    python benchmarks/ablate_seg.py                   # 6 variants x 3 seeds, 2 runs at a time
    python benchmarks/ablate_seg.py --seeds 0 1 2 3 4 --iters 240 --jobs 1

Each run is ``train_seg.py`` with the CPU demo config (configs/seg/default.yaml: UperNet R-18,
64 channels, from scratch, 128 px crops, batch 8, one torch thread) and the variant's switches,
seed and schedule as overrides. Variants: the baseline (max pool + strided convs, bilinear
PPM / FPN / FUSE), CARAFE++ in exactly one of backbone / PPM / FPN / FUSE, and in all four.
Metrics on the 50 validation scenes: mIoU and bAcc (pixel accuracy within 3 px of a label edge,
where content-aware resampling should matter). Runs live in ``runs/ablate_seg/`` (a finished
run is read back, not retrained); the report goes to benchmarks/results/ablate_seg.{json,md,png}.
Runtime on the 2-core CPU: see the README's Results section (measured with this command).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ablation import REPO, Run, aggregate, bar_plot, markdown_table, run_all, write_json  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from datasets.embedded import ensure_texture_scenes  # noqa: E402
from seg.summary import paper_miou, variant_switches  # noqa: E402

# run-name slug -> Table IX variant (seg.summary.VARIANTS: switches and the paper's R-50 ADE20K mIoU)
ABLATED = {"baseline": "UperNet (baseline)", "backbone": "Backbone", "ppm": "PPM", "fpn": "FPN", "fuse": "FUSE",
           "all_four": "All four"}
COLUMNS = [("mIoU", "mIoU", 2), ("bAcc", "boundary acc.", 2), ("aAcc", "pixel acc.", 2)]
DATA = REPO / "data" / "texture_scenes"


def read_metrics(path: Path) -> dict:
    metrics = json.loads(path.read_text())
    return {key: metrics[key] for key, _, _ in COLUMNS}


def results_table(report: dict) -> str:
    """The markdown table of a report: mean ± std per variant, Δ to the baseline, the paper's mIoU."""
    baseline_of = dict.fromkeys(report["summary"], ABLATED["baseline"])
    return markdown_table(report["summary"], COLUMNS, report["paper_mIoU"], "paper: R-50 ADE20K mIoU", baseline_of)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iters", type=int, default=160, help="training iterations per run (the demo uses 240)")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at the same time (one torch thread each)")
    ap.add_argument("--runs-dir", default="runs/ablate_seg")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ablate_seg"),
                    help="report path without suffix (.json, .md and .png are written)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="extra train_seg.py overrides for every run")
    args = ap.parse_args()
    if len(args.seeds) < 2:
        ap.error("--seeds: give at least two seeds (the report shows a spread)")

    ensure_texture_scenes(DATA)  # once, before parallel runs would race to generate it
    runs_dir = REPO / args.runs_dir
    runs = []
    for slug, variant in ABLATED.items():
        switches = {f"model.{key}": value for key, value in variant_switches(variant).items()}
        for seed in args.seeds:
            name = f"{slug}_i{args.iters}_s{seed}"
            overrides = switches | {"seed": seed, "train.max_iters": args.iters, "output_dir": str(runs_dir),
                                    "name": name, "data.root": str(DATA), "log.num_images": 0,
                                    "log.kernel_layers": 0}
            command = [sys.executable, str(REPO / "train_seg.py"), *(f"{k}={v}" for k, v in overrides.items()),
                       *args.overrides]
            runs.append(Run(variant, seed, command, runs_dir / name, runs_dir / name / "metrics.json"))

    start = time.perf_counter()
    records = run_all(runs, args.jobs, read_metrics)
    elapsed = time.perf_counter() - start
    summary = aggregate(records, list(ABLATED.values()), [key for key, _, _ in COLUMNS])
    report = {"machine": describe("cpu"), "command": " ".join(["python benchmarks/ablate_seg.py", *sys.argv[1:]]),
              "iters": args.iters, "seeds": args.seeds, "jobs": args.jobs, "extra_overrides": args.overrides,
              "elapsed_s_this_invocation": elapsed, "runs": records, "summary": summary,
              "paper_mIoU": {variant: f"{paper_miou(variant):.2f}" for variant in ABLATED.values()},
              "paper_source": "CARAFE++ TPAMI 2021, Tables VIII-IX (UperNet R-50, ADE20K val)"}
    out = Path(args.out)
    write_json(report, out.with_suffix(".json"))
    table = results_table(report)
    out.with_suffix(".md").write_text(table + "\n")
    bar_plot(summary, COLUMNS, f"UperNet R-18 on texture scenes, {args.iters} iterations, "
             f"{len(args.seeds)} seeds (mean ± std)", out.with_suffix(".png"))
    print(table)
    print(f"\n{len(records)} runs, {elapsed / 60:.1f} min in this invocation; wrote {out}.json/.md/.png")


if __name__ == "__main__":
    main()
