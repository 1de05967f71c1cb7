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
Runtime measured on the 2-core CPU (Xeon @ 2.5 GHz) with the defaults: 43 min (18 runs, 2 at a
time, 4.6 min each).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ablation import (  # noqa: E402
    REPO,
    Run,
    aggregate,
    markdown_table,
    parse_arguments,
    report_header,
    run_all,
    write_report,
)
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
    args = parse_arguments(__doc__, "ablate_seg", 160, "train_seg.py")

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
            runs.append(Run(variant, seed, command, runs_dir / name))

    start = time.perf_counter()
    records = run_all(runs, args.jobs, read_metrics)
    elapsed = time.perf_counter() - start
    summary = aggregate(records, list(ABLATED.values()), [key for key, _, _ in COLUMNS])
    report = report_header(args, "ablate_seg.py", elapsed) | {
        "runs": records, "summary": summary,
        "paper_mIoU": {variant: f"{paper_miou(variant):.2f}" for variant in ABLATED.values()},
        "paper_source": "CARAFE++ TPAMI 2021, Tables VIII-IX (UperNet R-50, ADE20K val)"}
    write_report(report, results_table(report), COLUMNS, f"UperNet R-18 on texture scenes, {args.iters} iterations, "
                 f"{len(args.seeds)} seeds (mean ± std)", Path(args.out))


if __name__ == "__main__":
    main()
