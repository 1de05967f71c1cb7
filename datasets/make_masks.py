"""Write a fixed evaluation mask set.

    python -m datasets.make_masks --out data/masks/places_256 --count 1200 --size 256 --seed 0

Masks are PNGs (0 = known, 255 = hole) plus ``manifest.json`` (file, hole ratio, bucket),
spread evenly over the hole-ratio buckets 0-10%, 10-20%, ..., 50-60%.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from .masks import DEFAULT_BUCKETS, load_mask_set, write_mask_set


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("x", ",").split(",")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f"size must be N or HxW, not {text!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m datasets.make_masks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--count", type=int, required=True, help="number of masks, spread evenly over the buckets")
    ap.add_argument("--size", type=_size, default=(256, 256), help="N or HxW (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.count <= 0:
        ap.error("--count must be positive")
    out = write_mask_set(args.out, args.count, args.size, args.seed, DEFAULT_BUCKETS)
    ms = load_mask_set(out)
    counts = Counter(ms.buckets)
    print(f"wrote {len(ms)} masks of {ms.height}x{ms.width} to {out} (seed {args.seed})")
    for b in ms.meta["buckets"]:
        print(f"  hole ratio {b:>6}%: {counts.get(b, 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
