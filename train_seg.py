"""Train UperNet (+/- CARAFE++) for semantic segmentation; with no arguments, the CPU demo on embedded data.

    python train_seg.py                                  # configs/seg/default.yaml: texture scenes, CPU, < 10 min
    python train_seg.py --config configs/seg/ade20k_upernet_r50_carafe.yaml data.root=/data/ADEChallengeData2016
    torchrun --nproc_per_node=8 train_seg.py --config ... # DDP (NCCL on GPUs, gloo on CPU)

Overrides are ``key=value`` (see configs/seg/base.yaml for every key). A run lives in
``<output_dir>/<name>/``: ``config.yaml`` (resolved), ``last.pt`` (full state, every
``checkpoint.interval`` iterations and at the end), ``model.safetensors`` (final weights),
``metrics.json``, ``predictions/`` (input | ground truth | prediction images) and ``tb/``
(TensorBoard). Re-running with the same name resumes from ``last.pt``; ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from datasets.ade20k import ADE20KDataset, build_transform
from datasets.collate import pad_collate
from engine.amp import MixedPrecision
from engine.checkpoint import Checkpointer, save_weights
from engine.config import load_config, save_config
from engine.data import ResumableSampler, SeededItems, SeededTransform, infinite_batches
from engine.distributed import DistContext, barrier, broadcast_buffers, cleanup, init_distributed, unwrap, wrap_model
from engine.kernel_views import capture_kernels, pick_layers, render_kernel_view
from engine.logger import RunLogger
from engine.loop import LoopSchedule, train_loop
from engine.optim import build_sgd, poly_scheduler
from engine.rng import seed_everything
from engine.threads import set_cpu_threads
from eval_seg import TASK, build_model, data_root, evaluate, predict, results_json, val_dataset
from seg.metrics import format_table
from seg.model import count_carafe_modules
from seg.visualize import comparison_strip, denormalize

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "seg" / "default.yaml"


def train_dataset(data_cfg: dict[str, Any], root: Path, seed: int) -> tuple[ADE20KDataset, SeededTransform]:
    """The training set with its augmentation, whose randomness is set per item (exact resume)."""
    transform = SeededTransform(build_transform(
        data_cfg["train_transform"], short_edges=data_cfg["train_short_edges"], long_edge=data_cfg["long_edge"],
        scale=tuple(data_cfg["scale"]), ratio_range=tuple(data_cfg["ratio_range"]), crop_size=data_cfg["crop_size"],
        cat_max_ratio=data_cfg["cat_max_ratio"], flip_p=data_cfg["flip_p"], photometric=data_cfg["photometric"],
        seed=seed,
    ))
    dataset = ADE20KDataset(root, "training", transform=transform, reduce_zero_label=data_cfg["reduce_zero_label"],
                            file_list=data_cfg["train_file_list"], return_orig_label=False)
    return dataset, transform


def segmentation_loss(output: torch.Tensor | dict[str, torch.Tensor], labels: torch.Tensor,
                      aux_weight: float) -> dict[str, torch.Tensor]:
    """Cross-entropy (ignore 255) on the logits, plus ``aux_weight`` x the auxiliary head's when present."""
    if isinstance(output, dict):
        main = F.cross_entropy(output["out"].float(), labels, ignore_index=255)
        aux = F.cross_entropy(output["aux"].float(), labels, ignore_index=255)
        return {"loss": main + aux_weight * aux, "loss_main": main, "loss_aux": aux}
    main = F.cross_entropy(output.float(), labels, ignore_index=255)
    return {"loss": main}


class Visuals:
    """Fixed validation samples rendered as input | GT | prediction strips and CARAFE kernel views."""

    def __init__(self, dataset: ADE20KDataset, count: int, kernel_layers: int, size_divisor: int) -> None:
        n = len(dataset)
        self.indices = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)}) if count > 0 else []
        self.dataset, self.kernel_layers, self.size_divisor = dataset, kernel_layers, size_divisor

    @torch.no_grad()
    def render(self, model: nn.Module) -> dict[str, np.ndarray]:
        """Tag → (H, W, 3) uint8 image."""
        was_training = model.training
        model.eval()
        out = {}
        for index in self.indices:
            item = self.dataset[index]
            image, _ = self.dataset.load_raw(index)
            pred = predict(model, item["image"], item["label_orig"].shape, size_divisor=self.size_divisor).argmax(0)
            stem = Path(item["path"]).stem
            out[f"predictions/{stem}"] = comparison_strip(image, item["label_orig"], pred.cpu(), self.dataset.palette)
        if self.indices and self.kernel_layers > 0:
            item = self.dataset[self.indices[0]]
            x = item["image"][None].to(next(model.parameters()).device)
            with capture_kernels(model) as captures:
                model(x)
            shown = denormalize(item["image"])
            for i, cap in enumerate(pick_layers(captures, self.kernel_layers)):
                out[f"kernels/{i}_{cap.name}"] = render_kernel_view(shown, cap)
        model.train(was_training)
        return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--config", default=os.fspath(DEFAULT_CONFIG),
                    help="YAML config (default: configs/seg/default.yaml)")
    ap.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                    help="resume from CHECKPOINT (default: the run's last.pt; a run resumes automatically anyway)")
    ap.add_argument("--fresh", action="store_true", help="ignore and remove this run's checkpoint and logs, start over")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.max_iters=1000")
    return ap.parse_intermixed_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fresh and args.resume:
        raise SystemExit("--fresh and --resume contradict each other; pass one of them")
    cfg = load_config(args.config, args.overrides)
    run_dir = Path(cfg["output_dir"]) / (cfg["name"] or Path(args.config).stem)
    ctx = init_distributed(cfg["device"])
    try:
        run(cfg, run_dir, ctx, resume=args.resume, fresh=args.fresh)
    finally:
        cleanup()
    return 0


def run(cfg: dict[str, Any], run_dir: Path, ctx: DistContext, resume: str | None = None, fresh: bool = False) -> dict:
    """Train (or resume) the run in ``run_dir``, evaluate, and write its outputs; returns the final metrics."""
    t_start = time.perf_counter()
    say = print if ctx.is_main else (lambda *a, **k: None)
    tcfg, dcfg = cfg["train"], cfg["data"]
    if tcfg["batch_size"] % ctx.world_size:
        raise ValueError(f"train.batch_size={tcfg['batch_size']} must be divisible by the {ctx.world_size} processes")
    set_cpu_threads(cfg["threads"])
    seed_everything(cfg["seed"] + ctx.rank)
    torch.backends.cudnn.benchmark = bool(tcfg["cudnn_benchmark"])

    root = data_root(dcfg, ctx)
    train_set, transform = train_dataset(dcfg, root, cfg["seed"])
    val_set = val_dataset(dcfg, root)
    num_classes = train_set.num_classes
    if val_set.num_classes != num_classes:
        raise ValueError(f"training set has {num_classes} classes but validation set {val_set.num_classes}")

    model = build_model(cfg["model"], num_classes)
    model = wrap_model(model, ctx, sync_bn=tcfg["sync_bn"])
    optimizer = build_sgd(model, tcfg["lr"], tcfg["momentum"], tcfg["weight_decay"], tcfg["no_decay_norm_bias"])
    scheduler = poly_scheduler(optimizer, tcfg["max_iters"], tcfg["power"], tcfg["min_lr"], tcfg["warmup_iters"],
                               tcfg["warmup_ratio"])
    amp = MixedPrecision(tcfg["amp"], ctx.device)
    meta = {"task": TASK, "num_classes": num_classes, "class_names": train_set.class_names,
            "palette": [list(c) for c in train_set.palette]}
    checkpointer = Checkpointer(run_dir, {"model": model, "optimizer": optimizer, "scheduler": scheduler,
                                          "scaler": amp.scaler}, meta, cfg, ctx)

    if fresh and ctx.is_main:
        checkpointer.last.unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
    barrier(ctx)
    resume_from = Path(resume) if resume not in (None, "auto") else checkpointer.last
    if resume not in (None, "auto") and not resume_from.is_file():
        raise FileNotFoundError(f"--resume checkpoint {os.fspath(resume_from)!r} does not exist")
    start_iter = checkpointer.load(resume_from) if resume_from.is_file() else 0
    if ctx.is_main:
        save_config(cfg, run_dir / "config.yaml")

    per_rank = tcfg["batch_size"] // ctx.world_size
    sampler = ResumableSampler(len(train_set), per_rank, cfg["seed"], ctx.rank, ctx.world_size)
    workers = dcfg["num_workers"]
    loader = DataLoader(SeededItems(train_set, transform.reseed), batch_size=per_rank, sampler=sampler,
                        drop_last=True, num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=ctx.device.type == "cuda",
                        collate_fn=partial(pad_collate, size_divisor=dcfg["size_divisor"]),
                        generator=torch.Generator().manual_seed(cfg["seed"]))  # keeps the global RNG untouched

    params = [p for p in model.parameters() if p.requires_grad]

    def step(batch: dict[str, Any], iteration: int) -> dict[str, torch.Tensor]:
        images = batch["image"].to(ctx.device, non_blocking=True)
        labels = batch["label"].to(ctx.device, non_blocking=True)
        with amp.autocast():
            output = model(images)
        losses = segmentation_loss(output, labels, tcfg["aux_weight"])
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(losses["loss"], optimizer, params, tcfg["grad_clip"])
        scheduler.step()
        return {k: v.detach() for k, v in losses.items()}

    logger = RunLogger(run_dir / "tb", enabled=ctx.is_main, purge_step=start_iter + 1 if start_iter else None)
    visuals = Visuals(val_set, cfg["log"]["num_images"], cfg["log"]["kernel_layers"], dcfg["size_divisor"])
    ecfg = cfg["eval"]

    def evaluate_and_log(iteration: int) -> tuple[dict, torch.Tensor]:
        net = unwrap(model)
        broadcast_buffers(net, ctx)
        results, totals = evaluate(net, val_set, ctx, ecfg["scales"], ecfg["flip"], dcfg["size_divisor"],
                                   ecfg["num_workers"], ecfg["boundary_width"])
        logger.scalars({f"val/{k}": results[k] for k in ("aAcc", "mIoU", "mAcc", "bAcc")}, iteration)
        logger.scalars({f"val_IoU/{n}": v for n, v in zip(val_set.class_names, results["IoU"], strict=True)
                        if np.isfinite(v)}, iteration)
        if ctx.is_main:
            for tag, image in visuals.render(net).items():
                logger.image(tag, image, iteration)
        logger.flush()
        return results, totals

    counts = count_carafe_modules(unwrap(model))
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    say(f"run directory: {run_dir}")
    say(f"data: {root} ({len(train_set)} training, {len(val_set)} validation images, {num_classes} classes)")
    say(f"model: UperNet {cfg['model']['backbone']}, {n_params:.2f} M parameters, CARAFE layers {counts}; "
        f"device {ctx.device} x {ctx.world_size} process(es), precision {amp.name}")
    if start_iter:
        say(f"resuming from {resume_from} at iteration {start_iter} of {tcfg['max_iters']}")

    schedule = LoopSchedule(tcfg["max_iters"], cfg["log"]["interval"], cfg["checkpoint"]["interval"],
                            ecfg["interval"])
    if start_iter < tcfg["max_iters"]:
        model.train()
        train_loop(step, infinite_batches(loader, sampler, start_iter), start_iter, schedule, ctx, checkpointer,
                   logger, lambda: optimizer.param_groups[0]["lr"], tcfg["batch_size"],
                   evaluate=lambda it: evaluate_and_log(it))
    else:
        say(f"the run is already complete ({start_iter} iterations); evaluating (--fresh starts over)")
    t_train = time.perf_counter()

    results, totals = evaluate_and_log(tcfg["max_iters"])
    summary = results_json(results, totals, val_set.class_names, iteration=tcfg["max_iters"],
                           num_images=len(val_set), scales=list(ecfg["scales"]), flip=bool(ecfg["flip"]))
    if ctx.is_main:
        weights = save_weights(model, run_dir / "model.safetensors", meta, cfg)
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
        pred_dir = run_dir / "predictions"
        pred_dir.mkdir(exist_ok=True)
        for tag, image in visuals.render(unwrap(model)).items():
            Image.fromarray(image).save(pred_dir / f"{tag.replace('/', '_')}.png")
        logger.text("summary", "```\n" + format_table(results, val_set.class_names) + "\n```", tcfg["max_iters"])
        t_end = time.perf_counter()
        print(format_table(results, val_set.class_names))
        print(f"\nmIoU {results['mIoU']:.2f} (chance level, uniform random prediction: {summary['chance_mIoU']:.2f}); "
              f"aAcc {results['aAcc']:.2f}; mAcc {results['mAcc']:.2f}; "
              f"bAcc {results['bAcc']:.2f} (within {ecfg['boundary_width']} px of a label edge)")
        print(f"time: {t_end - t_start:.0f} s in all ({t_train - t_start:.0f} s setup and training)")
        print(f"TensorBoard logs:  {run_dir / 'tb'}   (view: tensorboard --logdir {cfg['output_dir']})")
        print(f"checkpoint:        {checkpointer.last}   weights: {weights}")
        print(f"prediction images: {pred_dir}")
        print(f"metrics:           {run_dir / 'metrics.json'}")
    logger.close()
    return summary


if __name__ == "__main__":
    sys.exit(main())
