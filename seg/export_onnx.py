"""Export a segmentor to ONNX (opset >= 17, dynamic batch, height and width).

During export carafe_op traces its pure-tensor reference, so the graph holds only standard
ONNX operators and runs in ONNX Runtime. Usage::

    python -m seg.export_onnx --out model.onnx [--checkpoint model.pt] [--backbone resnet50 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from .backbone.resnet import BACKBONE_RESAMPLERS, BACKBONES
from .model import build_segmentor
from .upernet import FPN_MODES, FUSE_MODES, PPM_MODES
from .weights import load_state, read_state_dict

MIN_OPSET = 17


def export_onnx(
    model: nn.Module, out: str | Path, sample_size: tuple[int, int] = (97, 75), opset: int = 18, channels: int = 3
) -> Path:
    """Write ``model`` (in eval mode) to ``out`` with dynamic N, H, W; returns the path.

    The input is named ``images``, the output ``logits``; ``sample_size`` is only the traced example
    (a batch of 2, so that the batch dimension stays dynamic too).
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    sample = torch.randn(2, channels, *sample_size)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    # The TorchScript-based exporter: the dynamo exporter needs more than 10 CPU minutes for the
    # symbolic shapes of a full CARAFE++ UperNet; this one exports it in about 20 s.
    torch.onnx.export(
        model, (sample,), str(out), input_names=["images"], output_names=["logits"], opset_version=opset,
        dynamo=False, dynamic_axes={"images": dynamic, "logits": dynamic},
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--checkpoint", help="model state dict (.pt/.pth/.safetensors); fresh weights if omitted")
    parser.add_argument("--backbone", default="resnet50", choices=BACKBONES)
    parser.add_argument("--num-classes", type=int, default=150)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--backbone-resampler", default="carafe", choices=BACKBONE_RESAMPLERS)
    parser.add_argument("--ppm", default="carafe", choices=PPM_MODES)
    parser.add_argument("--fpn", default="carafe", choices=FPN_MODES)
    parser.add_argument("--fuse", default="carafe", choices=FUSE_MODES)
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"),
                        help="sample input size used for tracing (the exported H, W stay dynamic)")
    args = parser.parse_args(argv)
    model = build_segmentor(
        args.backbone, args.num_classes, args.channels, ppm=args.ppm, fpn=args.fpn, fuse=args.fuse,
        backbone_resampler=args.backbone_resampler,
    )
    if args.checkpoint:
        state = read_state_dict(args.checkpoint)
        load_state(model, {k: v for k, v in state.items() if not k.startswith("aux_head.")}, strict=True)
    print(f"wrote {export_onnx(model, args.out, tuple(args.size), args.opset)}")


if __name__ == "__main__":
    main()
