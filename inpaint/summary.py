"""Parameter and FLOP table of the four generators and the discriminator.

    python -m inpaint.summary --size 256 [--width 1.0]

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one forward pass of a
single image (a multiply-add counts 2), CARAFE reassembly included (``carafe_op`` registers
its formula). The models run on the ``meta`` device, so nothing is computed and any size is
quick; the counts cover convolutions, matmuls and the reassembly, not element-wise ops.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from carafe_op import CARAFEDownsample, CARAFEUpsample

from .model import GENERATORS, build_discriminator, build_generator


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass of ``model`` on ``inputs``."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return counter.get_total_flops()


def count_carafe(model: nn.Module) -> tuple[int, int]:
    """Numbers of CARAFE++ downsampling and upsampling layers in ``model``."""
    modules = list(model.modules())
    return (
        sum(isinstance(m, CARAFEDownsample) for m in modules),
        sum(isinstance(m, CARAFEUpsample) for m in modules),
    )


def summary_rows(size: int, width: float = 1.0) -> list[tuple[str, int, int, int, int]]:
    """``(model, parameters, FLOPs, CARAFE++ down, CARAFE++ up)`` for each model at ``size`` x ``size``."""
    image = torch.zeros(1, 3, size, size, device="meta")
    mask = torch.zeros(1, 1, size, size, device="meta")
    models: list[tuple[str, nn.Module]] = []
    for name in GENERATORS:
        for carafe in (False, True):
            label = name + (" + CARAFE++" if carafe else "")
            models.append((label, build_generator(name, carafe=carafe, width=width)))
    models.append(("PatchGAN discriminator", build_discriminator(width)))
    rows = []
    for label, model in models:
        model = model.to("meta").eval()
        params = sum(p.numel() for p in model.parameters())
        rows.append((label, params, count_flops(model, image, mask), *count_carafe(model)))
    return rows


def markdown_table(rows: list[tuple[str, int, int, int, int]], size: int) -> str:
    lines = [
        f"| model | params (M) | GFLOPs @ {size}x{size} | CARAFE++ down / up |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {p / 1e6:.2f} | {f / 1e9:.2f} | {down} / {up} |" for name, p, f, down, up in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="square input size in pixels")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error(f"--size must be >= 32 (the discriminator downsamples by 8), got {args.size}")
    print(markdown_table(summary_rows(args.size, args.width), args.size))


if __name__ == "__main__":
    main()
