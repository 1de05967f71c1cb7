"""Model cost: UperNet R-50 baseline vs its CARAFE++ variants (and smp.UPerNet), and the four
inpainting generators — parameters, FLOPs, forward and training-step time, peak memory.

    python benchmarks/bench_models.py                  # CPU, 2 threads: 512x512 batch 2, generators 256x256 batch 2
    python benchmarks/bench_models.py --device cuda    # GPU: batch 8

Each model is measured in a fresh subprocess (so allocator caches of one do not count for the
next): one warm-up, then the median of ``--repeats`` timed calls of
- forward: eval mode, no autograd;
- training step: train mode, forward, loss (cross-entropy on random labels for segmentation,
  L1 to a random target for the generators; the discriminator, the same for all four, is
  left out), backward and an optimizer step (SGD momentum / Adam).
Peak memory is the rise above what is resident after the warm-up (CPU: peak resident set;
CUDA: peak allocation). FLOPs: one forward of one image (torch.utils.flop_counter, a
multiply-add = 2, CARAFE through its registered formula). Ratios are against the baseline
of the same group in the same run — the paper's FPS columns. smp.UPerNet is
segmentation_models_pytorch's UPerNet with the same ResNet-50 and 512 decoder channels, no
pretrained weights: what a user would pick instead. Writes benchmarks/results/models_<device>.json
and prints the markdown table. Runtime measured on the 2-core CPU (Xeon @ 2.5 GHz): 21 min.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe, device_tag, peak_memory, reset_peak_memory, synchronize  # noqa: E402
from inpaint.model import build_generator  # noqa: E402
from inpaint.summary import count_flops  # noqa: E402
from seg.model import build_segmentor  # noqa: E402
from seg.summary import variant_switches  # noqa: E402

NUM_CLASSES = 150
SEG_VARIANTS = ("UperNet (baseline)", "Backbone", "PPM", "FPN", "FUSE", "All four")
# name -> (group, baseline of the group)
MODELS = {
    **{f"UperNet R-50: {v}": ("segmentation", "UperNet R-50: UperNet (baseline)") for v in SEG_VARIANTS},
    "smp.UPerNet R-50": ("segmentation", "UperNet R-50: UperNet (baseline)"),
    "Global&Local": ("inpainting", "Global&Local"),
    "Global&Local + CARAFE++": ("inpainting", "Global&Local"),
    "PConv U-Net": ("inpainting", "PConv U-Net"),
    "PConv U-Net + CARAFE++": ("inpainting", "PConv U-Net"),
}


def build(name: str) -> nn.Module:
    if name.startswith("UperNet R-50: "):
        return build_segmentor("resnet50", NUM_CLASSES, 512, pretrained=None,
                               **variant_switches(name.removeprefix("UperNet R-50: ")))
    if name == "smp.UPerNet R-50":
        import segmentation_models_pytorch as smp

        return smp.UPerNet(encoder_name="resnet50", encoder_weights=None, classes=NUM_CLASSES, decoder_channels=512)
    generator = "global_local" if name.startswith("Global&Local") else "pconv_unet"
    return build_generator(generator, carafe=name.endswith("CARAFE++"))


def make_inputs(name: str, batch: int, size: int, device: str) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """(model inputs, training target) for ``batch`` images."""
    image = torch.randn(batch, 3, size, size, device=device)
    if MODELS[name][0] == "segmentation":
        return (image,), torch.randint(0, NUM_CLASSES, (batch, size, size), device=device)
    mask = (torch.rand(batch, 1, size, size, device=device) < 0.3).float()
    return (image * (1 - mask), mask), image


def measure(name: str, device: str, batch: int, size: int, repeats: int) -> dict:
    """Parameters, GFLOPs per image, and median ms + peak extra MiB of forward and training step."""
    torch.manual_seed(0)
    model = build(name).to(device)
    segmentation = MODELS[name][0] == "segmentation"
    params = sum(p.numel() for p in model.parameters())
    model.eval()
    flops = count_flops(model, *make_inputs(name, 1, size, device)[0])
    inputs, target = make_inputs(name, batch, size, device)
    optimizer = (torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if segmentation
                 else torch.optim.Adam(model.parameters(), lr=1e-4))

    @torch.no_grad()
    def forward() -> None:
        model(*inputs)

    def train_step() -> None:
        output = model(*inputs)
        loss = F.cross_entropy(output, target) if segmentation else F.l1_loss(output, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    result = {"params_m": params / 1e6, "gflops_per_image": flops / 1e9}
    for mode, call, train in (("fwd", forward, False), ("train", train_step, True)):
        model.train(train)
        call()  # warm-up (kernel compilation, allocator, optimizer state)
        synchronize(device)
        base = reset_peak_memory(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            synchronize(device)
            times.append((time.perf_counter() - start) * 1e3)
        result[f"{mode}_ms"] = statistics.median(times)
        result[f"{mode}_peak_mib"] = max(peak_memory(device) - base, 0) / 2**20
    return result


def markdown_table(report: dict) -> str:
    m = report["machine"]
    lines = [f"Device: {m.get('gpu', m['cpu'])}, {m['torch_threads']} threads, batch {report['batch']}; "
             f"segmentation {report['seg_size']}², inpainting {report['inpaint_size']}². "
             "x base = time or memory / the group's baseline in this run.", "",
             "| model | params (M) | GFLOPs / image | fwd ms | fwd x base | train step ms | train x base "
             "| fwd peak MiB | train peak MiB | train mem x base |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['model']} | {r['params_m']:.2f} | {r['gflops_per_image']:.1f} | {r['fwd_ms']:.0f} "
                     f"| {r['fwd_x_base']:.2f} | {r['train_ms']:.0f} | {r['train_x_base']:.2f} "
                     f"| {r['fwd_peak_mib']:.0f} | {r['train_peak_mib']:.0f} | {r['train_mem_x_base']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch and numba)")
    ap.add_argument("--batch", type=int, default=None, help="images per call (default: 2 on CPU, 8 on CUDA)")
    ap.add_argument("--seg-size", type=int, default=512)
    ap.add_argument("--inpaint-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=None, help="comma list of model names (default: all)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/models_<device>.json)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    for option in ("threads", "batch", "seg_size", "inpaint_size", "repeats"):
        value = getattr(args, option)
        if value is not None and value < 1:
            ap.error(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    torch.set_num_threads(args.threads)
    batch = args.batch or (8 if args.device.startswith("cuda") else 2)
    if args.worker:
        size = args.seg_size if MODELS[args.worker][0] == "segmentation" else args.inpaint_size
        print(json.dumps(measure(args.worker, args.device, batch, size, args.repeats)))
        return

    names = args.only.split(",") if args.only else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"--only: unknown model(s) {unknown}; choose from {list(MODELS)}")
    rows = []
    for name in names:
        command = [sys.executable, __file__, "--worker", name, "--device", args.device, "--threads", str(args.threads),
                   "--batch", str(batch), "--seg-size", str(args.seg_size), "--inpaint-size", str(args.inpaint_size),
                   "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"measuring {name!r} failed:\n{done.stderr[-4000:]}")
        row = {"model": name, "group": MODELS[name][0], **json.loads(done.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(f"  {name:40s} fwd {row['fwd_ms']:9.1f} ms  train {row['train_ms']:9.1f} ms  "
              f"peak {row['fwd_peak_mib']:7.0f} / {row['train_peak_mib']:7.0f} MiB", flush=True)
    for row in rows:
        base = next((r for r in rows if r["model"] == MODELS[row["model"]][1]), None)
        for key, value in (("fwd_x_base", "fwd_ms"), ("train_x_base", "train_ms"),
                           ("train_mem_x_base", "train_peak_mib")):
            row[key] = row[value] / base[value] if base and base[value] else float("nan")
    report = {"machine": describe(args.device), "device": args.device, "batch": batch, "seg_size": args.seg_size,
              "inpaint_size": args.inpaint_size, "repeats": args.repeats,
              "command": " ".join(["python benchmarks/bench_models.py", *sys.argv[1:]]), "rows": rows}
    out = Path(args.out or Path(__file__).parent / "results" / f"models_{device_tag(args.device)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown_table(report))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
