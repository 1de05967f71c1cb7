"""Inpaint your own image with a trained generator.

    python infer_inpaint.py --checkpoint runs/inpaint_default/last.pt --image photo.png --mask mask.png --out filled.png
    python infer_inpaint.py --checkpoint runs/inpaint_default/generator.safetensors --image photo.jpg \\
        --generate-mask 7 --out filled.png          # a random free-form mask (saved as filled_mask.png)

The mask is a single-channel image of the photo's size: white (255) = hole to fill, black (0) =
keep; 0/1 masks work too (1 = hole), and grey values of an anti-aliased brush count as hole from
128 up. Images whose long side exceeds ``--max-size`` are filled at that size and the fill is
scaled back up; sizes are padded (mirrored) to what the network's downsampling needs. The output
has the input's size, and every known pixel keeps its original value.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from datasets.masks import free_form_mask
from engine.distributed import resolve_device
from inpaint.visualize import to_uint8_image
from train_inpaint import generator_fill, load_generator

SINGLE_CHANNEL_MODES = ("1", "L", "P", "I", "I;16", "F")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {os.fspath(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as error:
        raise ValueError(f"image file {os.fspath(path)!r} cannot be read as an image: {error}") from error


def read_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A mask file as an (H, W) bool hole map; it must be single-channel, ``size`` = (H, W), with a hole.

    Values: 0/1 (1 = hole) or 0..255 (>= 128 = hole, so 0/255 masks and anti-aliased strokes work).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {os.fspath(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            mode = im.mode
            values = np.asarray(im.convert("L") if mode == "P" else im)
    except OSError as error:
        raise ValueError(f"mask file {os.fspath(path)!r} cannot be read as an image: {error}") from error
    if mode not in SINGLE_CHANNEL_MODES or values.ndim != 2:
        raise ValueError(
            f"mask {os.fspath(path)!r} must be a single-channel (greyscale) image, 255 or 1 = hole; "
            f"got mode {mode} with shape {values.shape}"
        )
    if values.shape != tuple(size):
        raise ValueError(
            f"mask {os.fspath(path)!r} is {values.shape[1]}x{values.shape[0]} (WxH) but the image is "
            f"{size[1]}x{size[0]}; they must be the same size"
        )
    hole = values.astype(bool) if values.max() <= 1 else values >= 128
    if not hole.any():
        raise ValueError(f"mask {os.fspath(path)!r} is empty: no hole pixels (white / 255, or 1 = hole)")
    return hole


def size_multiple(cfg: dict) -> int:
    """What the generator's input size should divide by: 4 for Global&Local, 2**depth for the U-Net."""
    if cfg["model"]["generator"] == "global_local":
        return 4
    return 2 ** (cfg["model"]["depth"] or 7)


def _pad(t: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = t.shape[-2:]
    pad = (0, -w % multiple, 0, -h % multiple)
    mode = "reflect" if pad[1] < w and pad[3] < h else "replicate"
    return F.pad(t, pad, mode=mode)


@torch.no_grad()
def inpaint_image(generator: torch.nn.Module, image: np.ndarray, hole: np.ndarray, multiple: int,
                  max_size: int, device: torch.device | str = "cpu") -> np.ndarray:
    """Fill ``hole`` ((H, W) bool) of ``image`` ((H, W, 3) uint8); returns (H, W, 3) uint8 of the same size."""
    h, w = hole.shape
    scale = min(1.0, max_size / max(h, w))
    small_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    net_image, net_hole = image, hole.astype(np.float32)
    if scale < 1:
        net_image = cv2.resize(image, small_hw[::-1], interpolation=cv2.INTER_AREA)
        net_hole = (cv2.resize(net_hole, small_hw[::-1], interpolation=cv2.INTER_AREA) > 0).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(net_image.transpose(2, 0, 1))).float().div(127.5).sub(1)[None]
    m = torch.from_numpy(net_hole)[None, None]
    filled = generator_fill(generator)(_pad(x, multiple).to(device), _pad(m, multiple).to(device))
    fill = to_uint8_image(filled[0, :, : small_hw[0], : small_hw[1]])
    if scale < 1:
        fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.where(hole[..., None], fill, image)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="last.pt or generator.safetensors of a run")
    parser.add_argument("--image", required=True, type=Path, help="the image to fill")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--mask", type=Path, help="single-channel mask of the image's size, white/255 (or 1) = hole")
    source.add_argument("--generate-mask", type=int, metavar="SEED", help="use a random free-form mask from SEED")
    parser.add_argument("--out", required=True, type=Path, help="output PNG (the composited result)")
    parser.add_argument("--max-size", type=int, default=512, help="long side the network sees (default 512)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.max_size < 16:
            raise ValueError(f"--max-size must be at least 16, got {args.max_size}")
        device = resolve_device(args.device)
        image = read_image(args.image)
        if args.mask is not None:
            hole = read_mask(args.mask, image.shape[:2])
        else:
            hole = free_form_mask(*image.shape[:2], np.random.default_rng(args.generate_mask)).astype(bool)
        generator, cfg = load_generator(args.checkpoint, device)
        result = inpaint_image(generator, image, hole, size_multiple(cfg), args.max_size, device)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result).save(args.out)
    print(f"wrote {args.out} ({result.shape[1]}x{result.shape[0]}, {hole.mean():.1%} filled)")
    if args.mask is None:
        mask_path = args.out.with_name(f"{args.out.stem}_mask.png")
        Image.fromarray(hole.astype(np.uint8) * 255).save(mask_path)
        print(f"wrote {mask_path} (the generated mask, white = hole)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
