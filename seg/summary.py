"""Parameters and FLOPs per component for the baseline UperNet and its CARAFE++ variants.

One row per variant of the paper's Table IX; FLOPs from ``torch.utils.flop_counter`` (a
multiply-add counts 2), including carafe_op's registered formula for the reassembly.
By default the model runs on the ``meta`` device: FLOPs depend only on shapes, so no
arithmetic is done and R-50 at 512x512 takes seconds. Usage::

    python -m seg.summary --backbone resnet50 --size 512 512
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .backbone.resnet import BACKBONES
from .model import Segmentor, build_segmentor

# (name, switches, paper's ADE20K val mIoU for R-50 from Tables VIII and IX)
VARIANTS: tuple[tuple[str, dict[str, str], float], ...] = (
    ("UperNet (baseline)", {}, 40.44),
    ("PPM", {"ppm": "carafe"}, 40.85),
    ("FPN", {"fpn": "carafe"}, 40.79),
    ("FUSE", {"fuse": "carafe"}, 41.06),
    ("PPM+FPN", {"ppm": "carafe", "fpn": "carafe"}, 41.55),
    ("FPN+FUSE", {"fpn": "carafe", "fuse": "carafe"}, 42.01),
    ("PPM+FUSE", {"ppm": "carafe", "fuse": "carafe"}, 41.93),
    ("PPM+FPN+FUSE", {"ppm": "carafe", "fpn": "carafe", "fuse": "carafe"}, 42.23),
    ("Backbone", {"backbone_resampler": "carafe"}, 41.93),
    ("All four", {"ppm": "carafe", "fpn": "carafe", "fuse": "carafe", "backbone_resampler": "carafe"}, 43.05),
)
BASELINE = {"ppm": "bilinear", "fpn": "bilinear", "fuse": "bilinear", "backbone_resampler": "baseline"}


def variant_switches(label: str) -> dict[str, str]:
    """``build_segmentor`` switches of the Table IX variant called ``label`` (all four set)."""
    for name, switches, _ in VARIANTS:
        if name == label:
            return BASELINE | switches
    raise ValueError(f"unknown variant {label!r}; choose from {[name for name, _, _ in VARIANTS]}")


def paper_miou(label: str) -> float:
    """The paper's ADE20K val mIoU (UperNet R-50, Tables VIII-IX) for the variant ``label``."""
    return next(miou for name, _, miou in VARIANTS if name == label)


def components(model: Segmentor) -> dict[str, nn.Module]:
    return {"backbone": model.backbone, "PPM": model.decoder.ppm, "FPN": model.decoder.fpn,
            "FUSE": model.decoder.fuse, "classifier": model.classifier}


@dataclass(frozen=True)
class ComponentCost:
    params: int
    flops: int


def measure(model: Segmentor, size: tuple[int, int], device: str = "meta") -> dict[str, ComponentCost]:
    """Parameters and forward FLOPs (batch 1, eval mode) of each component and of the whole model."""
    model = model.to(device).eval()
    images = torch.zeros(1, 3, *size, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(images)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    costs = {}
    for name, module in components(model).items():
        prefix = next(n for n, m in model.named_modules() if m is module)
        flops = sum(counts.get(f"{root}.{prefix}", {}).values())
        costs[name] = ComponentCost(sum(p.numel() for p in module.parameters()), int(flops))
    costs["total"] = ComponentCost(sum(p.numel() for p in model.parameters()), int(sum(counts["Global"].values())))
    return costs


def summary_table(backbone: str, size: tuple[int, int], num_classes: int = 150, channels: int = 512,
                  device: str = "meta") -> str:
    """A markdown table: one row per variant, "params / FLOPs" per component."""
    names = ["backbone", "PPM", "FPN", "FUSE", "classifier", "total"]
    lines = [
        f"{backbone}, {size[0]}x{size[1]} input, batch 1, {num_classes} classes, {channels} decoder channels. "
        "Cells: parameters (M) / GFLOPs (multiply-add = 2 FLOPs).",
        "",
        "| CARAFE++ in | " + " | ".join(names) + " | paper mIoU (R-50) |",
        "|---" * (len(names) + 2) + "|",
    ]
    for label, _, miou in VARIANTS:
        with torch.device(device):
            model = build_segmentor(backbone, num_classes, channels, **variant_switches(label))
        costs = measure(model, size, device)
        cells = [f"{costs[n].params / 1e6:.2f} / {costs[n].flops / 1e9:.2f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {miou:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet50", choices=BACKBONES)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    parser.add_argument("--num-classes", type=int, default=150)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--device", default="meta", help="where to run the counting pass (meta: shapes only)")
    args = parser.parse_args(argv)
    print(summary_table(args.backbone, tuple(args.size), args.num_classes, args.channels, args.device))


if __name__ == "__main__":
    main()
