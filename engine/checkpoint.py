"""Checkpoints: atomic writes, full training state, safetensors weights, and task / class checks.

A checkpoint is a dict with ``format``, ``meta`` (``task`` - "segmentation" or "inpainting" -
plus task facts such as ``num_classes``), ``config``, ``iteration``, one ``state_dict`` per
stateful object (model, optimiser, scheduler, scaler, ...) under ``state``, and ``rng`` (one
random state per process). Everything is plain data or tensors, so it loads with
``torch.load(weights_only=True)``. Writes go to a temporary file that then replaces the
target (``os.replace``): a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .distributed import DistContext, all_gather_objects, unwrap
from .rng import get_rng_state, set_rng_state

FORMAT = 1
LAST = "last.pt"
CHECKED_META = ("task", "num_classes")  # meta entries a loaded checkpoint must match


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit what loads it."""


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_meta(meta: Mapping[str, Any], source: str, **expected: Any) -> None:
    """Raise ``CheckpointError`` if ``meta`` disagrees with ``expected`` (``None`` values are not checked)."""
    for key, want in expected.items():
        if want is None:
            continue
        have = meta.get(key)
        if have != want:
            what = {"task": "task", "num_classes": "class count"}.get(key, key)
            raise CheckpointError(
                f"checkpoint {source} has {what} {have!r}, but {want!r} is expected here; "
                f"it belongs to a different {'task' if key == 'task' else 'setup'}"
            )


def read_checkpoint(path: str | os.PathLike, **expected: Any) -> dict[str, Any]:
    """Load a checkpoint file (``weights_only=True``) and check its ``meta`` against ``expected``
    (e.g. ``task="segmentation", num_classes=150``); errors name the file and both values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {os.fspath(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, unsafe pickle, ...
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r} cannot be read (corrupt, truncated or not a checkpoint): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "state" not in ckpt:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a training checkpoint of this project (no 'meta' / 'state' entries)"
        )
    check_meta(ckpt["meta"], repr(os.fspath(path)), **expected)
    return ckpt


def state_dict_of(obj: Any) -> dict[str, Any]:
    """``obj.state_dict()``; models are unwrapped from DDP first."""
    return unwrap(obj).state_dict() if isinstance(obj, nn.Module) else obj.state_dict()


class Checkpointer:
    """Saves and restores a run's stateful objects in ``directory / "last.pt"``.

    ``objects``: name → object with ``state_dict`` / ``load_state_dict`` (models, optimisers,
    schedulers, grad scalers). ``meta``: task facts stored with every checkpoint and checked on
    load. ``save`` must be called on every process (it gathers each one's RNG state); only
    rank 0 writes.
    """

    def __init__(self, directory: str | os.PathLike, objects: Mapping[str, Any], meta: Mapping[str, Any],
                 config: Mapping[str, Any], ctx: DistContext) -> None:
        self.directory = Path(directory)
        self.objects = dict(objects)
        self.meta = dict(meta)
        self.config = dict(config)
        self.ctx = ctx

    @property
    def last(self) -> Path:
        return self.directory / LAST

    def save(self, iteration: int) -> Path:
        rng = all_gather_objects(get_rng_state(), self.ctx)
        if self.ctx.is_main:
            atomic_save(
                {
                    "format": FORMAT,
                    "meta": self.meta,
                    "config": self.config,
                    "iteration": int(iteration),
                    "state": {name: state_dict_of(obj) for name, obj in self.objects.items()},
                    "rng": rng,
                },
                self.last,
            )
        return self.last

    def load(self, path: str | os.PathLike) -> int:
        """Restore every object and this process's RNG state from ``path``; returns the iteration."""
        ckpt = read_checkpoint(path, **{k: self.meta.get(k) for k in CHECKED_META})
        missing = [name for name in self.objects if name not in ckpt["state"]]
        if missing:
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} lacks the state of {', '.join(missing)}")
        for name, obj in self.objects.items():
            target = unwrap(obj) if isinstance(obj, nn.Module) else obj
            if isinstance(target, nn.Module):
                target.load_state_dict(ckpt["state"][name], strict=True)
            else:
                target.load_state_dict(ckpt["state"][name])
        rng = ckpt.get("rng") or []
        if len(rng) == self.ctx.world_size:
            set_rng_state(rng[self.ctx.rank])
        return int(ckpt["iteration"])


def save_weights(model: nn.Module, path: str | os.PathLike, meta: Mapping[str, Any],
                 config: Mapping[str, Any]) -> Path:
    """The model's weights as safetensors, with ``meta`` and ``config`` as JSON in the file's metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state_dict_of(model).items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, os.fspath(tmp), metadata={"meta": json.dumps(dict(meta)), "config": json.dumps(dict(config))})
    os.replace(tmp, path)
    return path


def read_weights(path: str | os.PathLike, **expected: Any) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """``(model state dict, meta, config)`` from a checkpoint (``.pt``) or a ``save_weights`` file
    (``.safetensors``); ``meta`` is checked against ``expected`` as in ``read_checkpoint``."""
    path = Path(path)
    if path.suffix != ".safetensors":
        ckpt = read_checkpoint(path, **expected)
        return ckpt["state"]["model"], ckpt["meta"], ckpt.get("config", {})
    if not path.is_file():
        raise FileNotFoundError(f"weights file {os.fspath(path)!r} does not exist")
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(os.fspath(path), "pt") as f:
            header = f.metadata() or {}
        state = load_file(os.fspath(path))
        meta, config = json.loads(header["meta"]), json.loads(header["config"])
    except Exception as exc:
        raise CheckpointError(
            f"weights file {os.fspath(path)!r} cannot be read or lacks this project's metadata: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    check_meta(meta, repr(os.fspath(path)), **expected)
    return state, meta, config
