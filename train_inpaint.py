"""Train an inpainting network — Global&Local or Partial Conv U-Net, with or without CARAFE++.

    python train_inpaint.py                      # embedded photos, CPU, minutes (configs/inpaint/default.yaml)
    python train_inpaint.py --config configs/inpaint/places256_global_local_carafe.yaml data.root=/data/places365
    torchrun --nproc_per_node=8 train_inpaint.py --config configs/inpaint/places256_pconv_carafe.yaml data.root=...

Generator and PatchGAN discriminator are updated alternately every iteration (discriminator first,
on real images and the detached composite; then the generator). Runs go to ``runs/inpaint_<config>/``:
``last.pt`` (full state; an existing one is resumed), ``generator.safetensors``, ``config.yaml``,
TensorBoard events, ``images/`` (masked input | output | composite | ground truth) and ``metrics.json``.
The training plumbing (config, checkpoints, DDP, AMP, logging, NaN stop) is the shared ``engine``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from datasets.masks import MaskGenerator, MaskSet, load_mask_set, write_mask_set
from datasets.places import PlacesDataset, random_crop_resize
from engine.amp import MixedPrecision
from engine.checkpoint import Checkpointer, read_weights, save_weights
from engine.config import load_config, save_config
from engine.data import ResumableSampler, infinite_batches, shard_indices
from engine.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    broadcast_buffers,
    cleanup,
    init_distributed,
    unwrap,
    wrap_model,
)
from engine.kernel_views import capture_kernels, pick_layers, render_kernel_view
from engine.logger import RunLogger
from engine.loop import LoopSchedule, NonFiniteLossError, train_loop
from engine.optim import poly_scheduler
from engine.rng import seed_everything
from inpaint import InpaintingLoss, LossWeights, build_discriminator, build_generator, composite
from inpaint.baselines import BASELINES
from inpaint.metrics import DEFINITIONS, MetricAccumulator, evaluate, format_table
from inpaint.visualize import inpainting_grid, masked_input_view, save_image, to_uint8_image

TASK = "inpainting"
ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG = ROOT / "configs" / "inpaint" / "default.yaml"
MASK_CACHE = Path("data") / "masks"
LOSS_TERMS = ("hole", "valid", "adversarial", "tv", "perceptual", "style")
Fill = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- models


def generator_from_config(cfg: Mapping[str, Any]) -> nn.Module:
    m = cfg["model"]
    return build_generator(m["generator"], carafe=m["carafe"], width=m["width"], depth=m["depth"])


def discriminator_from_config(cfg: Mapping[str, Any]) -> nn.Module:
    d = cfg["discriminator"]
    return build_discriminator(d["width"], d["num_downsamples"], d["with_mask"])


def model_meta(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint records about its model (the ``task`` entry is checked on every load)."""
    return {"task": TASK, **{k: cfg["model"][k] for k in ("generator", "carafe", "width", "depth")},
            "size": cfg["data"]["size"]}


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a training checkpoint (``.pt``) or weights file (``.safetensors``), in eval mode,
    and the run's config. A checkpoint of another task raises ``CheckpointError`` naming both tasks."""
    state, _, cfg = read_weights(path, task=TASK)
    generator = generator_from_config(cfg)
    generator.load_state_dict(state)
    return generator.to(device).eval(), cfg


def generator_fill(generator: nn.Module, amp: MixedPrecision | None = None) -> Fill:
    """``fill(image, mask) -> composite`` with the generator (call under ``torch.no_grad``, eval mode)."""

    def fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with amp.autocast() if amp is not None else contextlib.nullcontext():
            prediction = generator(image, mask)
        return composite(image, prediction.float(), mask)

    return fill


# --------------------------------------------------------------------------- data


def places_root(cfg: Mapping[str, Any], ctx: DistContext | None = None) -> Path:
    """``data.root``; with ``data.embedded`` the embedded photos are generated there first if missing."""
    root = Path(cfg["data"]["root"])
    if cfg["data"]["embedded"]:
        from datasets.embedded import ensure_places_photos

        if ctx is None or ctx.is_main:
            ensure_places_photos(root)
        if ctx is not None:
            barrier(ctx)
    return root


class TrainItems(Dataset):
    """Training items for keys ``(index, item_seed)`` (``engine.data.ResumableSampler``): the random
    crop, flip and free-form mask are all drawn from ``item_seed``, so the data stream is the same
    whatever the worker count and wherever a run resumed."""

    def __init__(self, images: PlacesDataset, masks: MaskGenerator) -> None:
        self.paths, self.size, self.masks = images.paths, images.size, masks

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        with Image.open(self.paths[index]) as im:
            pixels = random_crop_resize(np.asarray(im.convert("RGB")), self.size, rng)
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float() / 127.5 - 1
        mask = torch.from_numpy(self.masks.sample(rng)).float().unsqueeze(0)
        return {"image": image, "mask": mask}


def fixed_mask_set(cfg: Mapping[str, Any], ctx: DistContext | None = None) -> MaskSet:
    """``masks.eval_dir``, or a set generated once from ``masks.eval_seed`` under ``data/masks/``."""
    m, size = cfg["masks"], cfg["data"]["size"]
    if m["eval_dir"]:
        return load_mask_set(m["eval_dir"])
    folder = MASK_CACHE / f"inpaint_{size}px_{m['eval_count']}_seed{m['eval_seed']}"
    if (ctx is None or ctx.is_main) and not (folder / "manifest.json").is_file():
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        write_mask_set(tmp, m["eval_count"], size, m["eval_seed"])
        try:
            tmp.rename(folder)
        except OSError:  # written meanwhile by another process: keep theirs (identical, same seed)
            shutil.rmtree(tmp, ignore_errors=True)
    if ctx is not None:
        barrier(ctx)
    return load_mask_set(folder)


class EvalItems(Dataset):
    """Validation images (centre crops) with the fixed masks: item ``i`` gets mask ``i % len(masks)``
    and that mask's hole-ratio bucket."""

    def __init__(self, images: PlacesDataset, masks: MaskSet, limit: int | None = None) -> None:
        self.images, self.masks = images, masks
        self.count = len(images) if limit is None else min(int(limit), len(images))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.images[index]
        return {"image": item["image"], "mask": item["mask"], "bucket": self.masks.buckets[index % len(self.masks)]}


def eval_items(cfg: Mapping[str, Any], root: Path, masks: MaskSet) -> EvalItems:
    images = PlacesDataset(root, "val", size=cfg["data"]["size"], file_list=cfg["data"]["val_list"], masks=masks)
    return EvalItems(images, masks, cfg["data"]["val_images"])


def evaluate_fills(fills: Mapping[str, Fill], items: Dataset, batch_size: int, ctx: DistContext) -> dict[str, dict]:
    """Metrics of every ``fill`` on ``items``, shared across processes; every process gets the
    summaries. Per-image values are put back in dataset order, so the averages are the same
    numbers a single process computes."""
    shard = Subset(items, shard_indices(len(items), ctx.rank, ctx.world_size))
    results = {}
    for name, fill in fills.items():
        loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=0)
        rows = all_gather_objects(evaluate(fill, loader, ctx.device).rows, ctx)
        accumulator = MetricAccumulator()
        accumulator.extend(r[j] for j in range(max(map(len, rows))) for r in rows if j < len(r))
        results[name] = accumulator.summary()
    return results


# --------------------------------------------------------------------------- training


class InpaintTrainer:
    """One training iteration (discriminator step, then generator step) and the evaluations."""

    def __init__(self, cfg: Mapping[str, Any], ctx: DistContext) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.generator = wrap_model(generator_from_config(cfg), ctx, cfg["train"]["sync_bn"])
        self.discriminator = wrap_model(discriminator_from_config(cfg), ctx, sync_bn=False)
        loss = cfg["loss"]
        weights = LossWeights(**{k: loss[k] for k in LOSS_TERMS})
        self.loss = InpaintingLoss(weights, loss["adversarial_mode"], loss["vgg_weights"]).to(ctx.device)
        o = cfg["optim"]
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=o["lr"], betas=tuple(o["betas"]))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=o["d_lr"], betas=tuple(o["betas"]))
        if o["schedule"] not in ("constant", "poly"):
            raise ValueError(f"optim.schedule must be 'constant' or 'poly', got {o['schedule']!r}")
        max_iters = cfg["train"]["max_iters"]
        self.schedulers = [poly_scheduler(opt, max_iters) for opt in (self.opt_g, self.opt_d)] \
            if o["schedule"] == "poly" else []
        self.amp_g = MixedPrecision(cfg["amp"], ctx.device)
        self.amp_d = MixedPrecision(cfg["amp"], ctx.device)

    def state_objects(self) -> dict[str, Any]:
        objects = {"model": self.generator, "discriminator": self.discriminator, "optimizer": self.opt_g,
                   "optimizer_d": self.opt_d, "scaler": self.amp_g.scaler, "scaler_d": self.amp_d.scaler}
        objects.update({f"scheduler{'_d' if i else ''}": s for i, s in enumerate(self.schedulers)})
        return objects

    def step(self, batch: Mapping[str, torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        image = batch["image"].to(self.ctx.device, non_blocking=True)
        mask = batch["mask"].to(self.ctx.device, non_blocking=True)
        with self.amp_g.autocast():
            prediction = self.generator(image, mask).float()
        composited = composite(image, prediction, mask)

        # Discriminator: real images and the (detached) composite in one forward pass (one DDP reduction).
        with self.amp_d.autocast():
            logits = self.discriminator(torch.cat([image, composited.detach()]), torch.cat([mask, mask])).float()
        real_logits, fake_logits = logits.chunk(2)
        d_loss = self.loss.discriminator_loss(real_logits, fake_logits, mask)
        self.opt_d.zero_grad(set_to_none=True)
        self.amp_d.backward_step(d_loss, self.opt_d)

        # Generator: reconstruction terms plus the adversarial term from the updated discriminator,
        # called unwrapped and frozen so DDP does not wait for discriminator gradients.
        discriminator = unwrap(self.discriminator)
        discriminator.requires_grad_(False)
        with self.amp_g.autocast():
            fake_logits = discriminator(composited, mask).float() if self.loss.weights.adversarial > 0 else None
        terms = self.loss.generator_loss(prediction, composited, image, mask, fake_logits)
        discriminator.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        self.amp_g.backward_step(terms["total"], self.opt_g)
        for scheduler in self.schedulers:
            scheduler.step()
        return {f"g_{name}": value.detach() for name, value in terms.items()} | {"d_loss": d_loss.detach()}

    def fill(self) -> Fill:
        return generator_fill(unwrap(self.generator), self.amp_g)

    @torch.no_grad()
    def evaluate(self, items: EvalItems, iteration: int, logger: RunLogger, run_dir: Path,
                 baselines: bool = False) -> dict[str, dict]:
        """Metrics on the fixed validation set (logged), image grids and kernel views (rank 0)."""
        generator = unwrap(self.generator)
        broadcast_buffers(generator, self.ctx)  # every process evaluates rank 0's BatchNorm statistics
        generator.eval()
        try:
            fills = {"model": self.fill()} | (dict(BASELINES) if baselines else {})
            results = evaluate_fills(fills, items, self.cfg["eval"]["batch_size"], self.ctx)
            logger.scalars({f"val/{k}": v for k, v in results["model"]["overall"].items() if k != "count"}, iteration)
            if self.ctx.is_main:
                self.log_images(items, iteration, logger, run_dir)
        finally:
            generator.train()
        logger.flush()
        return results

    def log_images(self, items: EvalItems, iteration: int, logger: RunLogger, run_dir: Path) -> None:
        count = min(self.cfg["eval"]["grid_samples"], len(items))
        if count == 0:
            return
        samples = [items[i] for i in range(count)]
        image = torch.stack([s["image"] for s in samples]).to(self.ctx.device)
        mask = torch.stack([s["mask"] for s in samples]).to(self.ctx.device)
        generator = unwrap(self.generator)
        with capture_kernels(generator) as captures, self.amp_g.autocast():
            prediction = generator(image, mask).float()
        grid = inpainting_grid(image, mask, prediction, composite(image, prediction, mask))
        logger.image("val/samples", grid.permute(1, 2, 0).numpy(), iteration)
        save_image(grid, run_dir / "images" / f"val_{iteration:07d}.png")
        view_input = to_uint8_image(masked_input_view(image[0], mask[0]))
        for capture in pick_layers(captures, self.cfg["eval"]["kernel_views"]):
            logger.image(f"carafe/{capture.name}", render_kernel_view(view_input, capture), iteration)


def default_run_dir(config_path: Path) -> Path:
    return Path("runs") / f"inpaint_{config_path.stem}"


def train(cfg: dict[str, Any], run_dir: Path, resume: Path | None, ctx: DistContext) -> dict[str, dict]:
    """Train ``cfg`` into ``run_dir`` (resuming from ``resume`` if given), evaluate, write the results."""
    if cfg.get("task") != TASK:
        raise ValueError(f"config task must be {TASK!r} for train_inpaint.py, got {cfg.get('task')!r}")
    t = cfg["train"]
    if t["batch_size"] % ctx.world_size:
        raise ValueError(f"train.batch_size {t['batch_size']} must divide by the process count {ctx.world_size}")
    seed_everything(cfg["seed"])
    root = places_root(cfg, ctx)
    train_images = PlacesDataset(root, "train", size=cfg["data"]["size"], file_list=cfg["data"]["train_list"])
    train_masks = MaskGenerator(cfg["data"]["size"], box_prob=cfg["masks"]["box_prob"])
    items = eval_items(cfg, root, fixed_mask_set(cfg, ctx))

    trainer = InpaintTrainer(cfg, ctx)
    checkpointer = Checkpointer(run_dir, trainer.state_objects(), model_meta(cfg), cfg, ctx)
    start = 0
    if resume is not None:
        start = checkpointer.load(resume)
        if ctx.is_main:
            print(f"resumed from {resume} at iteration {start}", file=sys.stderr)
    if ctx.is_main:
        save_config(cfg, run_dir / "config.yaml")
    per_process = t["batch_size"] // ctx.world_size
    sampler = ResumableSampler(len(train_images), per_process, cfg["seed"], ctx.rank, ctx.world_size)
    loader = DataLoader(TrainItems(train_images, train_masks), batch_size=per_process,
                        sampler=sampler, num_workers=cfg["data"]["num_workers"], drop_last=True,
                        pin_memory=ctx.device.type == "cuda", persistent_workers=False)
    logger = RunLogger(run_dir, enabled=ctx.is_main, purge_step=start + 1 if start else None)
    schedule = LoopSchedule(t["max_iters"], t["log_interval"], t["checkpoint_interval"], t["eval_interval"])
    try:
        train_loop(trainer.step, infinite_batches(loader, sampler, start), start, schedule, ctx, checkpointer, logger,
                   lr=lambda: trainer.opt_g.param_groups[0]["lr"], samples_per_iter=t["batch_size"],
                   evaluate=lambda it: trainer.evaluate(items, it, logger, run_dir))
        results = trainer.evaluate(items, t["max_iters"], logger, run_dir, baselines=cfg["eval"]["baselines"])
    finally:
        logger.close()
    if ctx.is_main:
        save_weights(unwrap(trainer.generator), run_dir / "generator.safetensors", model_meta(cfg), cfg)
        write_results(results, run_dir / "metrics.json", {"iteration": t["max_iters"], "images": len(items),
                                                             "masks": os.fspath(items.masks.root)})
    return results


def write_results(results: Mapping[str, dict], path: Path, info: Mapping[str, Any]) -> None:
    """Metrics JSON: the definitions, ``info`` and one summary per method (infinite PSNR as a string)."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return {k: plain(v) for k, v in value.items()} if isinstance(value, dict) else value

    payload = {"definitions": DEFINITIONS, **info, "results": plain(dict(results))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    parser.add_argument("--run-dir", type=Path, help="output folder (default: runs/inpaint_<config name>)")
    parser.add_argument("--resume", type=Path, help="checkpoint to resume (default: <run dir>/last.pt if it exists)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing <run dir>/last.pt and start over")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.max_iters=100")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    run_dir = args.run_dir or (Path(cfg["run_dir"]) if cfg["run_dir"] else default_run_dir(args.config))
    resume = args.resume
    if resume is None and not args.fresh and (run_dir / "last.pt").is_file():
        resume = run_dir / "last.pt"
    ctx = init_distributed(cfg["device"])
    started = time.perf_counter()
    try:
        results = train(cfg, run_dir, resume, ctx)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        cleanup()
    if ctx.is_main:
        minutes = (time.perf_counter() - started) / 60
        print(f"\nfinished in {minutes:.1f} min on {ctx.world_size} x {ctx.device}; "
              f"fixed validation set, hole-ratio buckets as in the mask set:\n")
        print(format_table(results))
        print("\n" + "\n".join(f"- {text}" for text in DEFINITIONS.values()))
        print(f"\nmetrics:      {run_dir / 'metrics.json'}\ncheckpoint:   {run_dir / 'last.pt'} "
              f"(weights: {run_dir / 'generator.safetensors'})\nimage grids:  {run_dir / 'images'}/ "
              f"(masked input | output | composite | ground truth)\nTensorBoard:  tensorboard --logdir {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
