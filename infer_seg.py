"""Segment image files or folders with a trained checkpoint: colour overlays and index PNGs.

    python infer_seg.py --checkpoint runs/default/model.safetensors photo.jpg more_photos/ --out seg_out

For every input image ``<name>`` it writes ``<out>/<name>_overlay.png`` (class colours blended
onto the image) and ``<out>/<name>_index.png`` (8-bit, pixel value = class index 0..K-1 in the
checkpoint's class list, the order of the evaluation table). Images are resized as in the
checkpoint's validation pipeline and the prediction is brought back to the input's size;
``--scales`` / ``--flip`` enable test-time augmentation. Runs on the CPU or a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets._io import IMAGE_SUFFIXES, read_rgb
from engine.distributed import resolve_device
from engine.threads import set_cpu_threads
from eval_seg import load_segmentor, predict, val_transform
from seg.visualize import overlay


def collect_inputs(inputs: Sequence[str]) -> list[tuple[Path, Path]]:
    """``(image file, output stem relative to --out)`` for files and (recursively) folders."""
    found = []
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"input folder {entry!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found += [(p, Path(path.name) / p.relative_to(path).with_suffix("")) for p in files]
        elif path.is_file():
            found.append((path, Path(path.stem)))
        else:
            raise FileNotFoundError(f"input {entry!r} is neither an image file nor a folder")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--checkpoint", required=True, help="last.pt or model.safetensors written by train_seg.py")
    ap.add_argument("inputs", nargs="+", help="image files and/or folders")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--scales", type=float, nargs="+", default=(1.0,), help="test scales (default: 1.0)")
    ap.add_argument("--flip", action="store_true", help="average with the flipped prediction")
    ap.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the class colours (default 0.5)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = ap.parse_intermixed_args(argv)

    items = collect_inputs(args.inputs)
    device = resolve_device(args.device)
    model, meta, config = load_segmentor(args.checkpoint, device)
    set_cpu_threads(config["threads"])
    transform = val_transform(config["data"])
    size_divisor = config["data"]["size_divisor"]
    out_dir = Path(args.out)
    for path, stem in items:
        image = read_rgb(path)
        x = torch.from_numpy(np.ascontiguousarray(transform(image=image)["image"].transpose(2, 0, 1)))
        pred = predict(model, x, image.shape[:2], args.scales, args.flip, size_divisor).argmax(0).cpu().numpy()
        target = out_dir / stem
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pred.astype(np.uint8)).save(f"{target}_index.png")
        Image.fromarray(overlay(image, pred, meta["palette"], args.alpha)).save(f"{target}_overlay.png")
        print(f"{path} -> {target}_overlay.png, {target}_index.png")
    print(f"{len(items)} image(s) segmented into {os.fspath(out_dir)}; index PNG values are class indices: "
          + ", ".join(f"{i}={n}" for i, n in enumerate(meta["class_names"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
