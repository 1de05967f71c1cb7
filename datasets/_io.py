"""Image and label reading with errors that name the file, plus per-worker random streams."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Generous: a real ADE20K / Places image is far below this, but it keeps PIL from refusing
# large photos with a DecompressionBombError while still rejecting absurd headers.
Image.MAX_IMAGE_PIXELS = 1 << 28


class ImageReadError(OSError):
    """An image or label file that cannot be opened or decoded (missing, truncated, corrupt)."""


class LabelFormatError(ValueError):
    """A label file that decodes but is not a valid index label (RGB, wrong size, bad values)."""


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to an (H, W, 3) uint8 RGB array; ImageReadError names the file."""
    try:
        with Image.open(path) as im:
            im.load()  # forces the full decode: truncated files fail here, not later
            if im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ...
        raise ImageReadError(f"cannot read image {os.fspath(path)!r}: {type(exc).__name__}: {exc}") from exc


def read_index_label(path: str | os.PathLike) -> np.ndarray:
    """Decode a single-channel index PNG to an (H, W) integer array (uint8 for 8-bit files).

    Accepts PIL modes L (8-bit grey), P (palette: the indices are the labels) and I / I;16.
    An RGB(A) or grey+alpha file is refused: segmentation labels must store class indices,
    not colours.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "P"):
                return np.asarray(im)  # for P this is the index plane, not the colours
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                return np.asarray(im).astype(np.int64)
    except Exception as exc:
        raise ImageReadError(f"cannot read label {os.fspath(path)!r}: {type(exc).__name__}: {exc}") from exc
    raise LabelFormatError(
        f"label {os.fspath(path)!r} is a {mode!r} image, but labels must be single-channel index PNGs "
        "(PIL mode 'L' or 'P') whose pixel values are class indices (ADE20K: 0 = other, 1..150 = classes). "
        "A colour-coded (RGB) segmentation must be converted to indices first."
    )


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """All image files under ``folder`` (by suffix, case-insensitive), sorted by path."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_file_list(file_list: str | os.PathLike | Sequence[str]) -> list[list[str]]:
    """A file list as rows of whitespace-separated fields; blank lines and '#' comments skipped.

    ``file_list`` is a path to a text file, or already a sequence of lines.
    """
    if isinstance(file_list, str | os.PathLike):
        p = Path(file_list)
        if not p.is_file():
            raise FileNotFoundError(f"file list {os.fspath(p)!r} does not exist")
        lines = p.read_text().splitlines()
    else:
        lines = list(file_list)
    rows = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(line.split())
    return rows


def require_files(paths: Sequence[Path], context: str) -> None:
    """Raise ``FileNotFoundError`` naming (the first five of) ``paths`` that are not files."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise FileNotFoundError(
            f"{context}: {len(missing)} of {len(paths)} files do not exist: "
            + ", ".join(repr(os.fspath(p)) for p in missing[:5])
            + more
        )


def resolve(root: Path, rel: str) -> Path:
    """``rel`` relative to ``root``; absolute paths are kept; a leading '/' on a relative
    entry (as in Places' official lists, e.g. '/a/abbey/00000001.jpg') is treated as relative."""
    p = Path(rel)
    if p.is_absolute() and p.exists():
        return p
    return root / rel.lstrip("/")


class BadImagePolicy:
    """What a dataset does with an unreadable image: ``"error"`` (raise) or ``"skip"``.

    With ``"skip"`` the dataset warns, counts the file in ``skipped`` (per process: each
    DataLoader worker keeps its own count) and returns the next readable item instead.
    """

    def __init__(self, mode: str = "error"):
        if mode not in ("error", "skip"):
            raise ValueError(f"on_bad_image must be 'error' or 'skip', not {mode!r}")
        self.mode = mode
        self.skipped: list[str] = []

    def load(self, n: int, index: int, load_one: Callable[[int], Any]) -> Any:
        if self.mode == "error":
            return load_one(index)
        for k in range(n):
            i = (index + k) % n
            try:
                return load_one(i)
            except ImageReadError as exc:
                self.skipped.append(str(exc))
                warnings.warn(
                    f"skipping unreadable item {i}: {exc} ({len(self.skipped)} skipped so far in this process)",
                    RuntimeWarning,
                    stacklevel=3,
                )
        raise ImageReadError(f"no readable item among all {n} items (every one failed to load)")


class WorkerRNG:
    """A numpy Generator that gets a fresh, distinct seed inside every DataLoader worker.

    In the main process it is ``default_rng(seed)``. Inside a worker it is re-seeded from
    ``(seed, worker_info.seed)``; PyTorch draws a new base seed for every epoch's workers
    (``worker_info.seed = base_seed + worker_id``), so streams differ across workers and
    epochs, and are reproducible when ``torch.manual_seed`` is set. Persistent workers keep
    their stream going, which does not repeat either.
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._key: int | None = None
        self._rng: np.random.Generator | None = None

    def get(self) -> np.random.Generator:
        worker_seed = _worker_seed()
        if self._rng is None or worker_seed != self._key:
            if worker_seed is None:
                self._rng = np.random.default_rng(self.seed)
            else:
                entropy = [worker_seed] if self.seed is None else [self.seed, worker_seed]
                self._rng = np.random.default_rng(np.random.SeedSequence(entropy))
            self._key = worker_seed
        return self._rng

    def __getstate__(self):  # a copy pickled into a (spawned) worker starts its own stream
        return {"seed": self.seed, "_key": None, "_rng": None}


def _worker_seed() -> int | None:
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return None if info is None else int(info.seed)


class AlbumentationsWorkerSeeder:
    """Re-seeds an albumentations ``Compose`` once in each DataLoader worker.

    ``Compose`` holds its own RNG, and a forked worker gets a verbatim copy of it: without
    this every worker applies the same sequence of augmentations. In a worker the new seed
    comes from ``(Compose.seed, worker_info.seed)``, so a seeded Compose stays reproducible
    (given ``torch.manual_seed``) and an unseeded one still differs per worker and epoch.
    The main process (``num_workers=0``) is left alone.
    """

    def __init__(self) -> None:
        self._key: int | None = None
        self._base: int | None = None

    def __call__(self, transform: Any) -> None:
        worker_seed = _worker_seed()
        if worker_seed is None or worker_seed == self._key or not hasattr(transform, "set_random_seed"):
            return
        if self._key is None:
            self._base = getattr(transform, "seed", None)
        self._key = worker_seed
        entropy = [worker_seed] if self._base is None else [int(self._base), worker_seed]
        transform.set_random_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
