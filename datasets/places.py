"""Places365-Standard and plain image folders for inpainting (SPEC §3, §4).

Layouts read by ``PlacesDataset(root, split)``, tried in this order:

1. ``file_list`` given: one image path per line (extra columns, like Places' class index,
   are ignored), relative to ``root`` or absolute.
2. "easyformat": ``root/train/<category>/*.jpg`` and ``root/val/*.jpg`` (images are found
   recursively, so ``val/<category>/*.jpg`` works too).
3. Official lists: ``root/places365_train_standard.txt`` (or under ``root/filelist/``) with
   images under ``root/data_large/`` (or ``data_256/``); ``root/places365_val.txt`` with
   images under ``root/val_large/`` (or ``val_256/``).

``ImageFolderDataset(root)`` takes every image below any folder.

Items: ``{"image": FloatTensor(3, size, size) in [-1, 1], "path": str}``, plus ``"mask"``
(FloatTensor(1, size, size), 1 = hole) when ``masks`` is given.
Training: a random square crop whose side is uniform between min(size, short side) and the
short side, resized to size × size, and a horizontal flip with p = 0.5. Validation: the short
side resized to ``size``, then the centre crop (deterministic).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ._io import BadImagePolicy, WorkerRNG, list_images, read_file_list, read_rgb, require_files, resolve
from .masks import MaskGenerator, MaskSet

SPLITS = {"train": "train", "training": "train", "val": "val", "validation": "val"}
OFFICIAL = {
    "train": ("places365_train_standard.txt", ("data_large", "data_256")),
    "val": ("places365_val.txt", ("val_large", "val_256")),
}
_LAYOUT = (
    "expected Places365-Standard as 'easyformat' (<root>/train/<category>/*.jpg, <root>/val/*.jpg) or as "
    "<root>/data_large/ + <root>/places365_train_standard.txt and <root>/val_large/ + <root>/places365_val.txt"
)


def random_crop_resize(img: np.ndarray, size: int, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    """Random square crop (side U[min(size, short), short]) resized to size × size; h-flip p = 0.5."""
    h, w = img.shape[:2]
    short = min(h, w)
    side = int(rng.integers(min(size, short), short + 1))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = img[y : y + side, x : x + side]
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (size, size), interpolation=interp)
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop


def center_crop_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Short side resized to ``size`` (area when shrinking, cubic when enlarging), centre crop."""
    h, w = img.shape[:2]
    if min(h, w) != size:
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        h, w = nh, nw
    y, x = (h - size) // 2, (w - size) // 2
    return img[y : y + size, x : x + size]


class ImageFolderDataset(Dataset):
    """Every image below ``root`` (recursively, sorted), or the entries of ``file_list``,
    prepared for inpainting. See the module docstring for items and augmentation.

    ``train``: random crop / resize / flip (True) or deterministic centre crop (False).
    ``masks``: a ``MaskGenerator`` (training: ``gen(index, epoch)`` when ``deterministic_masks``
    is set, else its per-worker stream) or a ``MaskSet`` (evaluation: mask ``i % len(set)``).
    ``on_bad_image``: ``"error"`` (default) or ``"skip"`` (warn, count, take the next item).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int = 256,
        train: bool = True,
        file_list: str | os.PathLike | Sequence[str] | None = None,
        *,
        masks: MaskGenerator | MaskSet | None = None,
        deterministic_masks: bool = False,
        seed: int | None = None,
        on_bad_image: str = "error",
        paths: Sequence[str | os.PathLike] | None = None,
    ):
        self.root = Path(root)
        self.size = int(size)
        self.train = bool(train)
        self.masks = masks
        self.deterministic_masks = deterministic_masks
        self.epoch = 0
        self._rng = WorkerRNG(seed)
        self._bad = BadImagePolicy(on_bad_image)
        if paths is not None:
            self.paths = [Path(p) for p in paths]
        elif file_list is not None:
            self.paths = self._from_file_list(file_list)
        else:
            if not self.root.is_dir():
                raise FileNotFoundError(f"image folder {os.fspath(self.root)!r} does not exist")
            self.paths = list_images(self.root)
        if not self.paths:
            raise FileNotFoundError(f"no images found in {os.fspath(self.root)!r}")
        if isinstance(masks, MaskSet) and (masks.height, masks.width) != (self.size, self.size):
            raise ValueError(f"mask set is {masks.height}x{masks.width} but images are {self.size}x{self.size}")

    def _from_file_list(self, file_list) -> list[Path]:
        paths = [resolve(self.root, row[0]) for row in read_file_list(file_list)]
        require_files(paths, f"file list {file_list!r}")
        return paths

    def set_epoch(self, epoch: int) -> None:
        """For ``deterministic_masks``: masks are a function of (seed, epoch, index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def skipped(self) -> list[str]:
        return self._bad.skipped

    def _load(self, index: int) -> dict[str, Any]:
        img = read_rgb(self.paths[index])
        img = random_crop_resize(img, self.size, self._rng.get()) if self.train else center_crop_resize(img, self.size)
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)
        return {"image": t, "path": os.fspath(self.paths[index])}

    def __getitem__(self, index: int) -> dict[str, Any]:
        out = self._bad.load(len(self), index, self._load)
        if self.masks is not None:
            if isinstance(self.masks, MaskSet):
                m = self.masks[index % len(self.masks)]
            elif self.deterministic_masks:
                m = self.masks(index, self.epoch)
            else:
                m = self.masks()
            out["mask"] = torch.from_numpy(np.ascontiguousarray(m)).float().unsqueeze(0)
        return out


class PlacesDataset(ImageFolderDataset):
    """Places365-Standard (``split`` "train" or "val") in one of the layouts of the module
    docstring; any folder with ``train/`` and ``val/`` image subfolders works the same way."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: int = 256,
        file_list: str | os.PathLike | Sequence[str] | None = None,
        **kwargs: Any,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        self.split = SPLITS[split]
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"Places root {os.fspath(root)!r} does not exist; {_LAYOUT}")
        paths = None if file_list is not None else self._discover(root, self.split)
        super().__init__(root, size=size, train=self.split == "train", file_list=file_list, paths=paths, **kwargs)

    @staticmethod
    def _discover(root: Path, split: str) -> list[Path]:
        easy = root / split
        if easy.is_dir():
            paths = list_images(easy)
            if not paths:
                raise FileNotFoundError(f"Places split folder {os.fspath(easy)!r} contains no images; {_LAYOUT}")
            return paths
        list_name, dirs = OFFICIAL[split]
        for lst in (root / list_name, root / "filelist" / list_name):
            if not lst.is_file():
                continue
            for d in dirs:
                if (root / d).is_dir():
                    base = root / d
                    rows = read_file_list(lst)
                    paths = [base / r[0].lstrip("/") for r in rows]
                    missing = [p for p in paths[:1000] if not p.is_file()]
                    if missing:
                        raise FileNotFoundError(
                            f"{os.fspath(lst)!r} lists {os.fspath(missing[0])!r}, which does not exist; {_LAYOUT}"
                        )
                    return paths
            raise FileNotFoundError(
                f"found {os.fspath(lst)!r} but no image folder {' or '.join(repr(os.fspath(root / d)) for d in dirs)}; "
                f"{_LAYOUT}"
            )
        raise FileNotFoundError(
            f"Places split {split!r} not found: neither {os.fspath(easy)!r} nor {os.fspath(root / list_name)!r} "
            f"exists; {_LAYOUT}"
        )
