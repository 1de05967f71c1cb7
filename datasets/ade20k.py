"""ADE20K SceneParsing dataset and its training / validation pipelines (SPEC §3, §4).

Layout (``root`` is the ``ADEChallengeData2016`` folder, or a folder that contains it)::

    ADEChallengeData2016/
        images/training/ADE_train_00000001.jpg ...
        images/validation/ADE_val_00000001.jpg ...
        annotations/training/ADE_train_00000001.png ...   single-channel index PNGs
        annotations/validation/ADE_val_00000001.png ...
        classes.json            optional: {"names": [...], "palette": [[r, g, b], ...]}

Without ``classes.json`` the 150 objectInfo150 classes are used. Labels are index PNGs
(0 = other, 1..K = classes); with ``reduce_zero_label`` (default) 0 becomes 255 (ignore)
and v becomes v - 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ._io import (
    IMAGE_SUFFIXES,
    AlbumentationsWorkerSeeder,
    BadImagePolicy,
    LabelFormatError,
    read_file_list,
    read_index_label,
    read_rgb,
    require_files,
    resolve,
)
from .ade20k_classes import ADE20K_CLASSES, ADE20K_PALETTE
from .transforms import CatMaxRandomCrop, FitResize, PhotoMetricDistortion

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255

SPLITS = {"training": "training", "train": "training", "validation": "validation", "val": "validation"}
TRANSFORM_NAMES = ("paper", "mmseg", "val_paper", "val_mmseg")
CLASSES_FILE = "classes.json"


def _layout(split: str = "{training,validation}") -> str:
    return (
        f"expected the ADE20K SceneParsing layout: <root>/images/{split}/*.jpg with matching "
        f"<root>/annotations/{split}/*.png, where <root> is the ADEChallengeData2016 folder (or a folder containing it)"
    )


# --------------------------------------------------------------------------- pipelines


def build_transform(
    name: str,
    *,
    short_edges: Sequence[int] | int | None = None,
    long_edge: int | None = None,
    scale: tuple[int, int] | None = None,
    ratio_range: tuple[float, float] | None = (0.5, 2.0),
    crop_size: int | tuple[int, int] = 512,
    cat_max_ratio: float = 0.75,
    flip_p: float = 0.5,
    photometric: bool = True,
    ignore_index: int = IGNORE_INDEX,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    seed: int | None = None,
) -> A.Compose:
    """An albumentations pipeline by name; its output image is float32 HWC, normalised.

    - ``"paper"``: short edge drawn from ``short_edges`` (default (300, 375, 450, 525, 600)),
      long edge ≤ ``long_edge`` (1200), horizontal flip. No crop: batches are padded by
      ``pad_collate``.
    - ``"mmseg"``: keep-ratio resize to fit ``scale`` (default (2048, 512) = (long, short))
      times r ~ U(``ratio_range``), random crop ``crop_size`` with ``cat_max_ratio``, flip,
      photometric distortion, then normalise and pad to ``crop_size`` (image 0, label
      ``ignore_index``) at the bottom / right.
    - ``"val_paper"``: short edge ``short_edges`` (450), long edge ≤ ``long_edge`` (1200).
    - ``"val_mmseg"``: keep-ratio fit to ``scale`` (2048, 512).

    Images are resized bilinearly, labels by nearest neighbour; mean / std are ImageNet's.
    The keyword arguments override the defaults (e.g. smaller sizes for the embedded data).
    ``seed`` seeds the Compose (datasets re-seed it per DataLoader worker).
    """
    if name not in TRANSFORM_NAMES:
        raise ValueError(f"unknown transform {name!r}; choose one of {TRANSFORM_NAMES}")
    normalize = A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0)
    if name in ("paper", "val_paper"):
        if short_edges is None:
            short_edges = (300, 375, 450, 525, 600) if name == "paper" else 450
        steps: list[Any] = [FitResize(short_edges, long_edge or 1200)]
        if name == "paper":
            steps.append(A.HorizontalFlip(p=flip_p))
        steps.append(normalize)
    else:
        long_s, short_s = scale or (2048, 512)
        long_s, short_s = max(long_s, short_s), min(long_s, short_s)
        if name == "val_mmseg":
            steps = [FitResize(short_s, long_s), normalize]
        else:
            ch, cw = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
            steps = [
                FitResize(short_s, long_s, ratio_range=ratio_range),
                CatMaxRandomCrop(ch, cw, cat_max_ratio=cat_max_ratio, ignore_index=ignore_index),
                A.HorizontalFlip(p=flip_p),
            ]
            if photometric:
                steps.append(PhotoMetricDistortion())
            steps += [
                normalize,
                A.PadIfNeeded(
                    min_height=ch,
                    min_width=cw,
                    position="top_left",
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=ignore_index,
                ),
            ]
    return A.Compose(steps, seed=seed)


# --------------------------------------------------------------------------- classes


def load_classes(root: str | os.PathLike) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Class names and palette of an ADE-layout folder: its ``classes.json`` if present,
    else the 150 ADE20K classes and the standard palette."""
    f = Path(root) / CLASSES_FILE
    if not f.is_file():
        return list(ADE20K_CLASSES), [tuple(c) for c in ADE20K_PALETTE]
    meta = json.loads(f.read_text())
    names = [str(n) for n in meta["names"]]
    palette = [tuple(int(v) for v in c) for c in meta.get("palette", [])] or [
        tuple(int(v) for v in c) for c in ADE20K_PALETTE
    ][: len(names)]
    if len(palette) < len(names):
        raise ValueError(f"{f}: palette has {len(palette)} colours for {len(names)} classes")
    return names, palette[: len(names)]


def colorize(
    label: np.ndarray | torch.Tensor, palette: Sequence[Sequence[int]], ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """(H, W) reduced label → (H, W, 3) uint8 colour image; ignore pixels are black."""
    lbl = label.cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8)
    out = lut[np.clip(lbl, 0, 255).astype(np.uint8)]
    out[lbl == ignore_index] = 0
    return out


# --------------------------------------------------------------------------- dataset


def find_ade_root(root: str | os.PathLike, split: str = "{training,validation}") -> Path:
    """``root`` itself if it has ``images/`` and ``annotations/``, else ``root/ADEChallengeData2016``."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"ADE20K root {os.fspath(root)!r} does not exist; {_layout(split)}")
    if (root / "images").is_dir() or (root / "annotations").is_dir():
        return root
    nested = root / "ADEChallengeData2016"
    if nested.is_dir():
        return nested
    return root


class ADE20KDataset(Dataset):
    """ADE20K (or any folder in its layout) as dicts of tensors.

    Item keys:
      - ``image``: FloatTensor (3, H, W), ImageNet-normalised (after ``transform``).
      - ``label``: LongTensor (H, W) of reduced indices 0..K-1, 255 = ignore (same size as image).
      - ``path``: the image file (str).
      - validation (or ``return_orig_label=True``) adds ``label_orig``: LongTensor (H0, W0), the
        label at the original image size for scoring, and ``orig_size``: LongTensor [H0, W0].

    ``transform``: an albumentations pipeline (``build_transform``) called as
    ``transform(image=uint8 HWC RGB, mask=uint8 HW reduced label)``. An output image that is
    still uint8 is normalised here; a float32 output is taken as already normalised.

    ``file_list``: a text file (or a list of lines) instead of listing ``images/<split>``:
    one entry per line, either ``image label`` paths relative to the root (or absolute), or a
    single image path (its label is the same path with ``images`` → ``annotations`` and
    ``.png``), or a bare stem ``ADE_val_00000001`` (mmsegmentation's split-file form).

    ``classes``: class names (K = len); default: ``classes.json`` beside ``images/``, else the
    150 ADE20K classes. Raw label values above K (other than 255) raise an error.
    ``on_bad_image``: ``"error"`` (default) or ``"skip"`` (warn, count, take the next item).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "training",
        transform: Any = None,
        reduce_zero_label: bool = True,
        file_list: str | os.PathLike | Sequence[str] | None = None,
        *,
        classes: Sequence[str] | None = None,
        ignore_index: int = IGNORE_INDEX,
        return_orig_label: bool | None = None,
        check_labels: bool = True,
        on_bad_image: str = "error",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be 'training' or 'validation', not {split!r}")
        self.split = SPLITS[split]
        self.root = find_ade_root(root, self.split)
        self.transform = transform
        self.reduce_zero_label = bool(reduce_zero_label)
        self.ignore_index = int(ignore_index)
        self.return_orig_label = (self.split == "validation") if return_orig_label is None else bool(return_orig_label)
        self.check_labels = bool(check_labels)
        self._bad = BadImagePolicy(on_bad_image)
        self._seeder = AlbumentationsWorkerSeeder()
        self._mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255.0
        self._inv_std_t = 1.0 / (torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255.0)

        names, palette = load_classes(self.root)
        if classes is not None:
            names = list(classes)
            palette = (palette + [tuple(c) for c in ADE20K_PALETTE] * 2)[: len(names)]
        self.class_names: list[str] = names
        self.palette: list[tuple[int, int, int]] = palette
        self.num_classes = len(names)
        if self.num_classes >= 255:
            raise ValueError("at most 254 classes fit an 8-bit label with 255 = ignore")

        self.samples = self._list_samples(file_list)
        if not self.samples:
            where = (
                f"file list {file_list!r}" if file_list is not None else os.fspath(self.root / "images" / self.split)
            )
            raise FileNotFoundError(f"no images found in {where}; {_layout(self.split)}")

        # raw value -> reduced value lookup table; invalid values are caught in _check_label
        lut = np.arange(256, dtype=np.uint8)
        if self.reduce_zero_label:
            lut = (np.arange(256, dtype=np.int64) - 1).clip(0, 255).astype(np.uint8)
            lut[0] = self.ignore_index
            lut[255] = self.ignore_index
        self._lut = lut
        self._max_raw = self.num_classes if self.reduce_zero_label else self.num_classes - 1

    # ---------------------------------------------------------------- listing

    def _list_samples(self, file_list) -> list[tuple[Path, Path]]:
        img_dir = self.root / "images" / self.split
        ann_dir = self.root / "annotations" / self.split
        if file_list is not None:
            samples = []
            for row in read_file_list(file_list):
                if len(row) >= 2:
                    img, ann = resolve(self.root, row[0]), resolve(self.root, row[1])
                elif Path(row[0]).suffix.lower() in IMAGE_SUFFIXES:
                    img = resolve(self.root, row[0])
                    ann = _label_for_image(img)
                else:  # bare stem, mmsegmentation split-file style
                    img, ann = img_dir / f"{row[0]}.jpg", ann_dir / f"{row[0]}.png"
                samples.append((img, ann))
            require_files([p for s in samples for p in s], f"file list {file_list!r}")
            return samples

        for d in (img_dir, ann_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"ADE20K split folder {os.fspath(d)!r} does not exist; {_layout(self.split)}")
        labels = {p.stem: p for p in ann_dir.iterdir() if p.suffix.lower() == ".png"}
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        samples, missing = [], []
        for img in images:
            ann = labels.get(img.stem)
            if ann is None:
                missing.append(ann_dir / f"{img.stem}.png")
            else:
                samples.append((img, ann))
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} image(s) in {os.fspath(img_dir)!r} have no label, e.g. "
                f"{os.fspath(missing[0])!r} is missing; {_layout(self.split)}"
            )
        return samples

    # ---------------------------------------------------------------- items

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def skipped(self) -> list[str]:
        """Unreadable images skipped so far in this process (``on_bad_image="skip"``)."""
        return self._bad.skipped

    def orientation_groups(self) -> list[int]:
        """0 for landscape (W >= H), 1 for portrait, per item, from the image headers only
        (for ``AspectRatioBatchSampler``)."""
        from PIL import Image

        groups = []
        for img_path, _ in self.samples:
            with Image.open(img_path) as im:
                w, h = im.size
            groups.append(0 if w >= h else 1)
        return groups

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 HWC RGB, reduced label uint8 HW) before any transform, validated."""
        img_path, ann_path = self.samples[index]
        image = read_rgb(img_path)
        raw = read_index_label(ann_path)
        if raw.shape[:2] != image.shape[:2]:
            raise LabelFormatError(
                f"label {os.fspath(ann_path)!r} is {raw.shape[1]}x{raw.shape[0]} (WxH) but image "
                f"{os.fspath(img_path)!r} is {image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        if self.check_labels:
            self._check_label(raw, ann_path)
        label = self._lut[raw] if raw.dtype == np.uint8 else self._lut[np.clip(raw, 0, 255).astype(np.uint8)]
        return image, label

    def _check_label(self, raw: np.ndarray, path: Path) -> None:
        if int(raw.max()) <= self._max_raw:
            return
        bad = raw[(raw > self._max_raw) & (raw != self.ignore_index)]
        if bad.size == 0:
            return
        mx = int(bad.max())
        expected = (
            f"0..{self.num_classes} (0 = other, reduced to ignore)"
            if self.reduce_zero_label
            else f"0..{self.num_classes - 1}"
        )
        raise LabelFormatError(
            f"label {os.fspath(path)!r} contains value {mx}, above the class count: {self.num_classes} classes "
            f"allow raw values {expected} and {self.ignore_index} (ignore)"
        )

    def _load(self, index: int) -> dict[str, Any]:
        self._seeder(self.transform)
        image, label = self.load_raw(index)
        out: dict[str, Any] = {}
        if self.return_orig_label:
            out["label_orig"] = torch.from_numpy(label.astype(np.int64))
            out["orig_size"] = torch.tensor(label.shape[:2], dtype=torch.long)
        if self.transform is not None:
            res = self.transform(image=image, mask=label)
            image, label = res["image"], res["mask"]
        if image.dtype == np.uint8:  # not normalised by the transform: do it here
            t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()  # a writable copy
            out["image"] = t.sub_(self._mean_t).mul_(self._inv_std_t)
        else:
            out["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        out["label"] = torch.from_numpy(np.asarray(label).astype(np.int64))
        out["path"] = os.fspath(self.samples[index][0])
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._bad.load(len(self), index, self._load)


def _label_for_image(img: Path) -> Path:
    parts = list(img.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "annotations"
            break
    return Path(*parts).with_suffix(".png")
