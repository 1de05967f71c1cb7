"""Evaluate a trained segmentor: aAcc, mIoU, mAcc and the per-class table (mmsegmentation's IoUMetric).

    python eval_seg.py --checkpoint runs/default/last.pt [data.root=/path/to/ADEChallengeData2016]
    python eval_seg.py --checkpoint model.safetensors --scales 0.5 0.75 1.0 1.25 1.5 1.75 --flip
    torchrun --nproc_per_node=N eval_seg.py --checkpoint ...      (same numbers, split over N processes)

The model, class list and data settings come from the checkpoint (a training checkpoint
``last.pt`` or the final ``model.safetensors``); ``key=value`` overrides change the stored
config (e.g. another ``data.root``). Results are printed and written as JSON. This module
also holds what training, evaluation and inference share: building the model and the
validation pipeline from a config, loading a checkpoint, and multi-scale / flip prediction.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from datasets.ade20k import ADE20KDataset, build_transform
from datasets.embedded import ensure_texture_scenes
from engine.checkpoint import CheckpointError, read_weights
from engine.config import apply_overrides
from engine.data import shard_indices
from engine.distributed import DistContext, all_reduce_sum, barrier, cleanup, init_distributed
from engine.threads import set_cpu_threads
from seg.metrics import BoundaryAccuracy, IoUMetric, boundary_accuracy, chance_miou, compute_metrics, format_table
from seg.model import Segmentor, build_segmentor

TASK = "segmentation"


# --------------------------------------------------------------------------- model and data from a config


def build_model(model_cfg: dict[str, Any], num_classes: int, pretrained: bool = True) -> Segmentor:
    """The segmentor a config's ``model`` section describes (``pretrained=False``: no backbone weights)."""
    return build_segmentor(
        backbone=model_cfg["backbone"], num_classes=num_classes, channels=model_cfg["channels"],
        ppm=model_cfg["ppm"], fpn=model_cfg["fpn"], fuse=model_cfg["fuse"],
        backbone_resampler=model_cfg["backbone_resampler"], aux_head=model_cfg["aux_head"],
        pretrained=model_cfg["pretrained"] if pretrained else None,
    )


def data_root(data_cfg: dict[str, Any], ctx: DistContext | None = None) -> Path:
    """``data.root``; with ``data.embedded`` the texture scenes are generated there first (by rank 0)."""
    root = Path(data_cfg["root"])
    if data_cfg["embedded"]:
        if ctx is None or ctx.is_main:
            ensure_texture_scenes(root)
        if ctx is not None:
            barrier(ctx)
    return root


def val_transform(data_cfg: dict[str, Any]) -> A.Compose:
    """The validation resize + normalisation of a config's ``data`` section."""
    return build_transform(data_cfg["val_transform"], short_edges=data_cfg["val_short_edge"],
                           long_edge=data_cfg["long_edge"], scale=tuple(data_cfg["scale"]))


def val_dataset(data_cfg: dict[str, Any], root: Path, split: str = "validation") -> ADE20KDataset:
    return ADE20KDataset(root, split, transform=val_transform(data_cfg),
                         reduce_zero_label=data_cfg["reduce_zero_label"], file_list=data_cfg["val_file_list"],
                         return_orig_label=True)


def load_segmentor(path: str | os.PathLike, device: torch.device | str = "cpu",
                   num_classes: int | None = None) -> tuple[Segmentor, dict[str, Any], dict[str, Any]]:
    """``(model in eval mode, meta, config)`` from a checkpoint or safetensors file of this task.

    A checkpoint of another task, or (when ``num_classes`` is given) of another class count,
    raises ``CheckpointError`` naming both."""
    state, meta, config = read_weights(path, task=TASK, num_classes=num_classes)
    model = build_model(config["model"], int(meta["num_classes"]), pretrained=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights in {os.fspath(path)!r} do not fit the model its config describes: {exc}"
        ) from exc
    return model.to(device).eval(), meta, config


# --------------------------------------------------------------------------- prediction


@torch.no_grad()
def predict(model: nn.Module, image: torch.Tensor, out_size: Sequence[int], scales: Sequence[float] = (1.0,),
            flip: bool = False, size_divisor: int = 32) -> torch.Tensor:
    """Class scores (K, H0, W0) for one normalised image (3, H, W), resized to ``out_size`` = (H0, W0).

    Each test scale resizes the image by that factor; it is padded (bottom / right, with 0) to a
    multiple of ``size_divisor``, and the logits are cropped back and resized bilinearly to
    ``out_size``. With one scale and no flip the scores are those logits; otherwise the
    softmax probabilities of all passes are averaged."""
    device = next(model.parameters()).device
    image = image.to(device)[None]
    passes = [(s, f) for s in scales for f in ((False, True) if flip else (False,))]
    total = None
    for scale, flipped in passes:
        h, w = max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale))
        x = image if (h, w) == tuple(image.shape[-2:]) else F.interpolate(image, (h, w), mode="bilinear",
                                                                          align_corners=False)
        if flipped:
            x = x.flip(-1)
        ph, pw = (math.ceil(v / size_divisor) * size_divisor for v in (h, w)) if size_divisor > 1 else (h, w)
        x = F.pad(x, (0, pw - w, 0, ph - h))
        logits = model(x)[..., :h, :w].float()
        if flipped:
            logits = logits.flip(-1)
        logits = F.interpolate(logits, tuple(int(v) for v in out_size), mode="bilinear", align_corners=False)
        scores = logits if len(passes) == 1 else logits.softmax(1)
        total = scores if total is None else total + scores
    return total[0] / len(passes)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: ADE20KDataset, ctx: DistContext, scales: Sequence[float] = (1.0,),
             flip: bool = False, size_divisor: int = 32, num_workers: int = 0,
             boundary_width: int = 3) -> tuple[dict[str, Any], torch.Tensor]:
    """Score ``dataset`` (items with ``label_orig``) split over the processes of ``ctx``.

    Returns ``(results, totals)``: the metrics (``seg.metrics.compute_metrics``, plus ``bAcc``,
    the accuracy within ``boundary_width`` px of label edges) and the summed (4, K) counts.
    Every process gets the same ``results``: the counts are summed over processes first, so N
    processes give exactly the numbers of one.
    """
    was_training = model.training
    model.eval()
    metric = IoUMetric(dataset.num_classes, dataset.ignore_index)
    boundary = BoundaryAccuracy(boundary_width, dataset.ignore_index)
    mine = shard_indices(len(dataset), ctx.rank, ctx.world_size)
    loader = DataLoader(Subset(dataset, mine), batch_size=None, num_workers=num_workers,
                        generator=torch.Generator())  # leaves the global RNG (training's stream) untouched
    for item in loader:
        label = item["label_orig"]
        pred = predict(model, item["image"], label.shape[-2:], scales, flip, size_divisor).argmax(0)
        metric.update(pred, label)
        boundary.update(pred, label)
    model.train(was_training)
    totals = all_reduce_sum(metric.totals, ctx)
    results = compute_metrics(totals)
    results["bAcc"] = boundary_accuracy(all_reduce_sum(boundary.counts, ctx))
    return results, totals


def results_json(results: dict[str, Any], totals: torch.Tensor, class_names: Sequence[str], **extra: Any) -> dict:
    """A JSON-ready summary: the three metrics, chance level, per-class IoU / Acc (null where undefined)."""
    def clean(v: float) -> float | None:
        return None if v is None or not math.isfinite(v) else v

    return {
        **extra,
        "aAcc": clean(results["aAcc"]), "mIoU": clean(results["mIoU"]), "mAcc": clean(results["mAcc"]),
        "bAcc": clean(results.get("bAcc")),
        "chance_mIoU": chance_miou(totals[3]),
        "per_class": {n: {"IoU": clean(i), "Acc": clean(a)}
                      for n, i, a in zip(class_names, results["IoU"], results["Acc"], strict=True)},
        "definitions": "mmsegmentation IoUMetric: aAcc = sum(I) / sum(L); IoU = I / (P + L - I); Acc = I / L; "
                       "mIoU, mAcc = NaN-ignoring class means; x100, two decimals; ignore index 255 excluded; "
                       "bAcc (ours) = pixel accuracy within eval.boundary_width px of a label edge",
    }


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="last.pt or model.safetensors written by train_seg.py")
    ap.add_argument("--split", default="validation", choices=("validation", "training"))
    ap.add_argument("--scales", type=float, nargs="+", default=None,
                    help="test scales relative to the val size, e.g. 0.5 0.75 1.0 1.25 1.5 1.75 (default: config)")
    ap.add_argument("--flip", action="store_true", default=None, help="average with the flipped prediction")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--out", default=None, help="JSON output (default: eval_<split>.json beside the checkpoint)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=/data/ADE")
    return ap.parse_intermixed_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = init_distributed(args.device)
    try:
        model, meta, config = load_segmentor(args.checkpoint, ctx.device)
        config = apply_overrides(config, args.overrides)
        set_cpu_threads(config["threads"])
        data_cfg = config["data"]
        dataset = val_dataset(data_cfg, data_root(data_cfg, ctx), args.split)
        if dataset.num_classes != meta["num_classes"]:
            raise CheckpointError(
                f"checkpoint {args.checkpoint!r} has {meta['num_classes']} classes, but the data set at "
                f"{os.fspath(dataset.root)!r} has {dataset.num_classes}; they must match"
            )
        scales = args.scales or config["eval"]["scales"]
        width = config["eval"].get("boundary_width", 3)  # runs trained before the key existed: 3
        flip = config["eval"]["flip"] if args.flip is None else args.flip
        results, totals = evaluate(model, dataset, ctx, scales, flip, data_cfg["size_divisor"],
                                   config["eval"]["num_workers"], width)
        if ctx.is_main:
            summary = results_json(results, totals, meta["class_names"], checkpoint=os.fspath(args.checkpoint),
                                   split=args.split, num_images=len(dataset), scales=list(scales), flip=bool(flip))
            out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval_{args.split}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(summary, indent=1) + "\n")
            print(format_table(results, meta["class_names"]))
            print(f"boundary accuracy (within {width} px of a label edge): "
                  f"bAcc {results['bAcc']:.2f}")
            print(f"chance level (uniform random prediction): mIoU {summary['chance_mIoU']:.2f}")
            print(f"results written to {out}")
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
