"""Tiny synthetic data sets in the ADE20K and Places layouts, for tests and benchmarks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def random_photo(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour image (uint8 RGB) that compresses like a photo."""
    import cv2

    small = rng.integers(0, 256, size=(max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-8, 9, size=img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def random_label(h: int, w: int, num_classes: int, rng: np.random.Generator, zero_frac: float = 0.1) -> np.ndarray:
    """Blocky raw label (uint8): values 1..num_classes, with some 0 ("other")."""
    import cv2

    small = rng.integers(1, num_classes + 1, size=(max(2, h // 8), max(2, w // 8)), dtype=np.uint8)
    small[rng.random(small.shape) < zero_frac] = 0
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def make_ade(
    root: str | os.PathLike,
    sizes: Sequence[tuple[int, int]] = ((48, 64), (64, 48), (40, 40)),
    splits: Sequence[str] = ("training", "validation"),
    num_classes: int = 150,
    seed: int = 0,
    wrap: bool = True,
    quality: int = 90,
) -> Path:
    """Write an ADE20K-layout folder (``root/ADEChallengeData2016`` if ``wrap``), one image per size."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "ADEChallengeData2016" if wrap else Path(root)
    for split in splits:
        prefix = "ADE_train" if split == "training" else "ADE_val"
        (base / "images" / split).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(sizes):
            stem = f"{prefix}_{i + 1:08d}"
            Image.fromarray(random_photo(h, w, rng)).save(base / "images" / split / f"{stem}.jpg", quality=quality)
            Image.fromarray(random_label(h, w, num_classes, rng)).save(base / "annotations" / split / f"{stem}.png")
    return base


def make_image_tree(
    root: str | os.PathLike, rel_paths: Sequence[str], size: tuple[int, int] = (64, 80), seed: int = 0
) -> list[Path]:
    """Write JPEGs at the given relative paths below ``root``."""
    rng = np.random.default_rng(seed)
    out = []
    for rel in rel_paths:
        p = Path(root) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(random_photo(size[0], size[1], rng)).save(p, quality=90)
        out.append(p)
    return out


def truncate_file(path: str | os.PathLike, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its length (a truncated download)."""
    p = Path(path)
    data = p.read_bytes()
    p.write_bytes(data[: max(1, int(len(data) * keep))])
