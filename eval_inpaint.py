"""Evaluate an inpainting checkpoint on a fixed mask set: L1 (%), PSNR and SSIM, overall and per
hole-ratio bucket, next to the mean-colour fill and OpenCV's cv2.inpaint (Telea, Navier-Stokes).

    python eval_inpaint.py --checkpoint runs/inpaint_default/last.pt
    python eval_inpaint.py --checkpoint run/last.pt --masks data/masks/places_256 data.root=/data/places365

The images are the validation split of the run's ``data`` config (``key=value`` overrides change
it, e.g. ``data.root=...`` or ``data.val_images=1000``). Without ``--masks`` a mask set is generated
once from ``masks.eval_seed`` (under ``data/masks/``) and reused. Results go to a JSON file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.config import apply_overrides
from engine.distributed import cleanup, init_distributed
from inpaint.baselines import BASELINES
from inpaint.metrics import DEFINITIONS, format_table
from train_inpaint import (
    eval_items,
    evaluate_fills,
    fixed_mask_set,
    generator_fill,
    load_generator,
    places_root,
    write_results,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path, help="last.pt or generator.safetensors of a run")
    parser.add_argument("--masks", type=Path, help="fixed mask set folder (python -m datasets.make_masks)")
    parser.add_argument("--out", type=Path, help="JSON file (default: eval_<mask set>.json beside the checkpoint)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the mean fill and cv2.inpaint rows")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=...")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ctx = init_distributed(args.device)
        generator, cfg = load_generator(args.checkpoint, ctx.device)
        cfg = apply_overrides(cfg, args.overrides)
        if args.masks is not None:
            cfg = apply_overrides(cfg, {"masks.eval_dir": str(args.masks)})
        masks = fixed_mask_set(cfg, ctx)
        items = eval_items(cfg, places_root(cfg, ctx), masks)
        fills = {"model": generator_fill(generator)} | ({} if args.no_baselines else dict(BASELINES))
        results = evaluate_fills(fills, items, cfg["eval"]["batch_size"], ctx)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        cleanup()
    if ctx.is_main:
        out = args.out or args.checkpoint.parent / f"eval_{masks.root.name}.json"
        write_results(results, out, {"checkpoint": str(args.checkpoint), "images": len(items),
                                     "masks": str(masks.root)})
        print(f"{len(items)} images of {cfg['data']['root']}, masks {masks.root}:\n")
        print(format_table(results))
        print("\n" + "\n".join(f"- {text}" for text in DEFINITIONS.values()))
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
