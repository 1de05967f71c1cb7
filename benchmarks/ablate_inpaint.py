"""Table X at toy scale: Global&Local and Partial-Conv U-Net, each with and without CARAFE++,
on the embedded photos.

    python benchmarks/ablate_inpaint.py                 # 4 variants x 3 seeds, 2 runs at a time
    python benchmarks/ablate_inpaint.py --seeds 0 1 2 3 4 --iters 600

Each run is ``train_inpaint.py`` with the CPU demo config (configs/inpaint/default.yaml: width
1/8, 64x64 crops of the embedded Places-layout photos, batch 8, lr 1e-3 poly, adversarial
weight 0.01, one PatchGAN discriminator; the PConv U-Net has 4 levels, Global&Local its 4
dilated layers) with the generator, CARAFE++ switch, seed and schedule as overrides, one
torch thread per run. Every run is scored on the same 42 validation crops with the same 42
fixed masks (7 per hole-ratio bucket): L1 (%) over holes, PSNR and SSIM of the composited
image (definitions in inpaint/metrics.py). OpenCV's Telea inpainting on the same images and
masks is shown for scale. Runs live in ``runs/ablate_inpaint/`` (a finished run is read back,
not retrained); the report goes to benchmarks/results/ablate_inpaint.{json,md,png}.
Runtime measured on the 2-core CPU (Xeon @ 2.5 GHz): 10 min for the default 3 seeds (12 runs, 2 at
a time, 1.6 min each), 17 min for 5 seeds.
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
from engine.config import load_config  # noqa: E402
from train_inpaint import DEFAULT_CONFIG, fixed_mask_set, places_root  # noqa: E402

# run-name slug -> (label, generator, CARAFE++)
VARIANTS = {
    "gl": ("Global&Local", "global_local", False),
    "gl_carafe": ("Global&Local + CARAFE++", "global_local", True),
    "pconv": ("Partial Conv", "pconv_unet", False),
    "pconv_carafe": ("Partial Conv + CARAFE++", "pconv_unet", True),
}
# Paper Table X: Places val at 256x256, L1 (%) / PSNR (dB).
PAPER = {"Global&Local": "6.69 / 19.58", "Global&Local + CARAFE++": "5.82 / 20.93", "Partial Conv": "5.96 / 20.78",
         "Partial Conv + CARAFE++": "5.60 / 21.05"}
COLUMNS = [("l1", "L1 (%) ↓", 2), ("psnr", "PSNR (dB) ↑", 2), ("ssim", "SSIM ↑", 4)]
REFERENCE = "cv2.inpaint Telea"


def read_metrics(path: Path) -> dict:
    results = json.loads(path.read_text())["results"]
    overall = results["model"]["overall"]
    telea = results.get("cv2 Telea", {}).get("overall")
    return {**{key: overall[key] for key, _, _ in COLUMNS}, "telea": telea}


def results_table(report: dict) -> str:
    """The markdown table of a report: mean ± std per variant (Δ to its own baseline), paper, Telea."""
    labels = list(report["summary"])
    baseline_of = {label: label.removesuffix(" + CARAFE++") for label in labels}
    table = markdown_table(report["summary"], COLUMNS, report["paper"], "paper: Places 256² L1 / PSNR", baseline_of)
    if report["reference"]:
        cells = " | ".join(f"{report['reference'][key]:.{digits}f}" for key, _, digits in COLUMNS)
        table += f"\n| {REFERENCE} (no learning, same images and masks) | {cells} | — |"
    return table


def main() -> None:
    args = parse_arguments(__doc__, "ablate_inpaint", 300, "train_inpaint.py")

    cfg = load_config(DEFAULT_CONFIG, args.overrides)
    places_root(cfg)  # generate the photos and the fixed masks once, before parallel runs
    fixed_mask_set(cfg)
    runs_dir = REPO / args.runs_dir
    runs = []
    for slug, (label, generator, carafe) in VARIANTS.items():
        for seed in args.seeds:
            run_dir = runs_dir / f"{slug}_i{args.iters}_s{seed}"
            overrides = {"seed": seed, "model.generator": generator, "model.carafe": str(carafe).lower(),
                         "train.max_iters": args.iters, "eval.grid_samples": 0, "eval.kernel_views": 0}
            command = [sys.executable, str(REPO / "train_inpaint.py"), "--run-dir", str(run_dir),
                       *(f"{k}={v}" for k, v in overrides.items()), *args.overrides]
            runs.append(Run(label, seed, command, run_dir, env={"OMP_NUM_THREADS": "1"}))

    start = time.perf_counter()
    records = run_all(runs, args.jobs, read_metrics)
    elapsed = time.perf_counter() - start
    labels = [label for label, _, _ in VARIANTS.values()]
    summary = aggregate(records, labels, [key for key, _, _ in COLUMNS])
    report = report_header(args, "ablate_inpaint.py", elapsed) | {
        "runs": records, "summary": summary, "reference": next((r["telea"] for r in records if r["telea"]), None),
        "paper": PAPER, "paper_source": "CARAFE++ TPAMI 2021, Table X (Places val, 256x256)"}
    write_report(report, results_table(report), COLUMNS, "Inpainting on embedded photos (64 px, width 1/8), "
                 f"{args.iters} iterations, {len(args.seeds)} seeds (mean ± std)", Path(args.out))


if __name__ == "__main__":
    main()
