"""Inpainting masks (SPEC §3): DeepFill v2 free-form brush strokes, random boxes, a
data-loader-safe generator, and fixed evaluation mask sets bucketed by hole ratio.

All masks are (H, W) uint8 arrays with 1 = hole, 0 = known pixel.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ._io import WorkerRNG, require_files

# DeepFill v2 (Yu et al. 2019, generative_inpainting `brush_stroke_mask`)
MIN_STROKES, MAX_STROKES = 1, 3
MIN_VERTICES, MAX_VERTICES = 4, 11  # inclusive
MEAN_ANGLE = 2 * math.pi / 5
ANGLE_RANGE = 2 * math.pi / 15
MIN_WIDTH, MAX_WIDTH = 12, 40

# LaMa-style evaluation buckets of hole ratio: [0, 10%), [10%, 20%), ... [50%, 60%)
DEFAULT_BUCKETS: tuple[tuple[float, float], ...] = tuple((i / 10, (i + 1) / 10) for i in range(6))
MANIFEST = "manifest.json"


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def free_form_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    min_strokes: int = MIN_STROKES,
    max_strokes: int = MAX_STROKES,
    min_vertices: int = MIN_VERTICES,
    max_vertices: int = MAX_VERTICES,
    mean_angle: float = MEAN_ANGLE,
    angle_range: float = ANGLE_RANGE,
    min_width: float = MIN_WIDTH,
    max_width: float = MAX_WIDTH,
    radius: float | None = None,
    width_scale: float | None = None,
    random_flip: bool = True,
) -> np.ndarray:
    """DeepFill v2 brush strokes: (H, W) uint8, 1 = hole.

    Per mask ``min_strokes..max_strokes`` strokes; each has ``min_vertices..max_vertices``
    vertices starting at a uniform random point; its angle range is ``mean_angle`` widened by
    U(0, ``angle_range``) on each side, and every other vertex's angle is mirrored
    (2π − a); step lengths ~ Normal(R, R/2) clipped to [0, 2R] with R = √(H² + W²) / 8
    (``radius``); width U(``min_width``, ``max_width``); drawn as a thick polyline with round
    joints. ``random_flip`` flips the result left/right and up/down with p = 0.5 each — what
    DeepFill v2's code intends (its flips are no-ops there), so strokes do not all drift the
    same way. The widths are DeepFill v2's at 256×256 and scale with the mask:
    ``width_scale`` defaults to min(H, W) / 256 (1 at 256×256).
    """
    h, w = int(height), int(width)
    if h <= 0 or w <= 0:
        raise ValueError(f"mask size must be positive, got {h}x{w}")
    r_avg = math.sqrt(h * h + w * w) / 8 if radius is None else float(radius)
    ws = min(h, w) / 256 if width_scale is None else float(width_scale)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(min_strokes, max_strokes + 1))):
        n = int(rng.integers(min_vertices, max_vertices + 1))
        a_min = mean_angle - rng.uniform(0, angle_range)
        a_max = mean_angle + rng.uniform(0, angle_range)
        angles = rng.uniform(a_min, a_max, size=n)
        angles[0::2] = 2 * math.pi - angles[0::2]
        steps = np.clip(rng.normal(r_avg, r_avg / 2, size=n), 0, 2 * r_avg)
        dx, dy = (steps * np.cos(angles)).tolist(), (steps * np.sin(angles)).tolist()
        x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
        pts = [(int(x), int(y))]
        for i in range(n):
            x = min(max(x + dx[i], 0.0), w - 1.0)
            y = min(max(y + dy[i], 0.0), h - 1.0)
            pts.append((int(x), int(y)))
        width_px = max(1, int(rng.uniform(min_width, max_width) * ws))
        cv2.polylines(mask, [np.asarray(pts, np.int32)], False, 1, thickness=width_px, lineType=cv2.LINE_8)
        for px, py in pts:  # round joints and caps
            cv2.circle(mask, (px, py), width_px // 2, 1, thickness=-1, lineType=cv2.LINE_8)
    if random_flip:
        if rng.random() < 0.5:
            mask = mask[:, ::-1]
        if rng.random() < 0.5:
            mask = mask[::-1, :]
    return np.ascontiguousarray(mask)


def random_box_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    box_height: int | None = None,
    box_width: int | None = None,
    max_delta_height: int | None = None,
    max_delta_width: int | None = None,
    margin: int = 0,
) -> np.ndarray:
    """DeepFill v2's random box: (H, W) uint8, 1 = hole.

    A ``box_height`` × ``box_width`` box (default H/2 × W/2, DeepFill's 128 at 256) at a
    uniform position inside ``margin``, shrunk on each side by U{0..max_delta/2} (default
    max_delta = H/8, W/8: DeepFill's 32 at 256).
    """
    h, w = int(height), int(width)
    bh = h // 2 if box_height is None else int(box_height)
    bw = w // 2 if box_width is None else int(box_width)
    dh = h // 8 if max_delta_height is None else int(max_delta_height)
    dw = w // 8 if max_delta_width is None else int(max_delta_width)
    if not (0 < bh <= h - 2 * margin and 0 < bw <= w - 2 * margin):
        raise ValueError(f"box {bh}x{bw} with margin {margin} does not fit in {h}x{w}")
    top = int(rng.integers(margin, h - margin - bh + 1))
    left = int(rng.integers(margin, w - margin - bw + 1))
    sh = int(rng.integers(0, dh // 2 + 1))
    sw = int(rng.integers(0, dw // 2 + 1))
    mask = np.zeros((h, w), np.uint8)
    mask[top + sh : top + bh - sh, left + sw : left + bw - sw] = 1
    return mask


def hole_ratio(mask: Any) -> float:
    """Fraction of hole pixels (nonzero) in a mask (numpy array or torch tensor, any shape)."""
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    m = np.asarray(mask)
    return float(np.count_nonzero(m)) / m.size if m.size else 0.0


def bucket_name(lo: float, hi: float) -> str:
    return f"{round(lo * 100)}-{round(hi * 100)}"


def bucket_of(ratio: float, buckets: Sequence[tuple[float, float]] = DEFAULT_BUCKETS) -> str | None:
    """The bucket ``lo <= ratio < hi`` a hole ratio falls in (name like ``"10-20"``), or None."""
    for lo, hi in buckets:
        if lo <= ratio < hi:
            return bucket_name(lo, hi)
    return None


class MaskGenerator:
    """Random training masks, safe inside DataLoader workers.

    ``gen()`` draws the next mask from a stream that is seeded from ``seed`` in the main
    process and from ``(seed, worker_info.seed)`` in each worker, so masks are not repeated
    across workers or epochs (PyTorch gives each epoch's workers a new base seed, and
    persistent workers continue their stream). ``gen(index, epoch)`` is instead a pure
    function of ``(seed, epoch, index)``: the same mask for the same sample, whatever the
    worker count. Each mask is a free-form mask, united with a random box with probability
    ``box_prob`` (DeepFill v2 trains with the union: ``box_prob=1``).
    """

    def __init__(
        self,
        height: int,
        width: int | None = None,
        seed: int | None = 0,
        box_prob: float = 0.0,
        **free_form_kwargs: Any,
    ):
        self.height = int(height)
        self.width = int(height if width is None else width)
        self.seed = seed
        self.box_prob = float(box_prob)
        self.free_form_kwargs = free_form_kwargs
        self._stream = WorkerRNG(seed)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        mask = free_form_mask(self.height, self.width, rng, **self.free_form_kwargs)
        if self.box_prob > 0 and rng.random() < self.box_prob:
            mask |= random_box_mask(self.height, self.width, rng)
        return mask

    def __call__(self, index: int | None = None, epoch: int = 0) -> np.ndarray:
        if index is None:
            return self.sample(self._stream.get())
        entropy = [int(epoch), int(index)] if self.seed is None else [int(self.seed), int(epoch), int(index)]
        return self.sample(np.random.default_rng(np.random.SeedSequence(entropy)))


# --------------------------------------------------------------------------- mask sets


def _mask_for_bucket(h: int, w: int, lo: float, hi: float, rng: np.random.Generator, max_tries: int = 1000):
    """Union free-form masks (and now and then a box) until the hole ratio reaches ``lo``;
    accept when it is still below ``hi``."""
    for _ in range(max_tries):
        mask = np.zeros((h, w), np.uint8)
        ratio = 0.0
        while ratio <= lo or ratio == 0.0:
            if ratio > 0 and rng.random() < 0.3:
                mask |= random_box_mask(h, w, rng)
            else:
                mask |= free_form_mask(h, w, rng)
            ratio = hole_ratio(mask)
        if lo <= ratio < hi:
            return mask, ratio
    raise RuntimeError(f"could not draw a mask with hole ratio in [{lo}, {hi}) in {max_tries} tries")


def write_mask_set(
    out_dir: str | os.PathLike,
    count: int,
    size: int | Sequence[int] = 256,
    seed: int = 0,
    buckets: Sequence[tuple[float, float]] = DEFAULT_BUCKETS,
) -> Path:
    """Write ``count`` masks as PNGs (0 / 255, 255 = hole) plus ``manifest.json``.

    The masks are spread evenly over the hole-ratio ``buckets`` (the first ``count % B``
    buckets get one more); each is a union of DeepFill v2 free-form masks (and sometimes a
    DeepFill box) grown until its ratio reaches the bucket. Deterministic from ``seed``.
    The manifest lists ``file``, ``ratio`` and ``bucket`` per mask.
    """
    count = int(count)
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    h, w = _hw(size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nb = len(buckets)
    per_bucket = [count // nb + (1 if i < count % nb else 0) for i in range(nb)]
    entries = []
    idx = 0
    for b, ((lo, hi), n) in enumerate(zip(buckets, per_bucket, strict=True)):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), b]))
        for _ in range(n):
            mask, ratio = _mask_for_bucket(h, w, lo, hi, rng)
            name = f"mask_{idx:05d}.png"
            Image.fromarray(mask * np.uint8(255)).save(out / name, optimize=False)
            entries.append({"file": name, "ratio": round(ratio, 6), "bucket": bucket_name(lo, hi)})
            idx += 1
    manifest = {
        "format": "carafe-pp mask set v1",
        "height": h,
        "width": w,
        "seed": int(seed),
        "count": count,
        "hole_value": 255,
        "buckets": [bucket_name(lo, hi) for lo, hi in buckets],
        "masks": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


@dataclass(frozen=True)
class MaskEntry:
    path: Path
    ratio: float
    bucket: str


class MaskSet(Sequence):
    """A fixed evaluation mask set: ``ms[i]`` is an (H, W) uint8 mask, 1 = hole, read lazily."""

    def __init__(self, root: Path, entries: list[MaskEntry], height: int, width: int, meta: dict):
        self.root, self.entries, self.height, self.width, self.meta = root, entries, height, width, meta

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        e = self.entries[i]
        try:
            with Image.open(e.path) as im:
                m = np.asarray(im.convert("L"))
        except Exception as exc:
            raise OSError(f"cannot read mask {os.fspath(e.path)!r}: {exc}") from exc
        if m.shape != (self.height, self.width):
            raise ValueError(f"mask {os.fspath(e.path)!r} is {m.shape}, manifest says {(self.height, self.width)}")
        return (m > 127).astype(np.uint8)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    @property
    def ratios(self) -> list[float]:
        return [e.ratio for e in self.entries]

    @property
    def buckets(self) -> list[str]:
        return [e.bucket for e in self.entries]

    def indices_by_bucket(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {b: [] for b in self.meta.get("buckets", [])}
        for i, e in enumerate(self.entries):
            out.setdefault(e.bucket, []).append(i)
        return out


def load_mask_set(mask_dir: str | os.PathLike) -> MaskSet:
    """Open a mask set written by ``write_mask_set``; every listed file must exist.

    Raises FileNotFoundError for a missing folder, manifest or mask file, ValueError for an
    empty set or a malformed manifest.
    """
    root = Path(mask_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"mask set folder {os.fspath(root)!r} does not exist (make one with "
            "`python -m datasets.make_masks --out DIR --count N --size 256 --seed 0`)"
        )
    mf = root / MANIFEST
    if not mf.is_file():
        raise FileNotFoundError(f"mask set {os.fspath(root)!r} has no {MANIFEST}")
    try:
        meta = json.loads(mf.read_text())
        rows = meta["masks"]
        h, w = int(meta["height"]), int(meta["width"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed mask manifest {os.fspath(mf)!r}: {exc}") from exc
    if not rows:
        raise ValueError(f"mask set {os.fspath(root)!r} is empty: its manifest lists no masks")
    entries = [MaskEntry(root / r["file"], float(r["ratio"]), str(r["bucket"])) for r in rows]
    require_files([e.path for e in entries], f"mask set {os.fspath(root)!r}, files listed in {MANIFEST}")
    return MaskSet(root, entries, h, w, meta)
