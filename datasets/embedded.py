"""Embedded default data sets, generated on first use from images bundled in scikit-image.

- ``ensure_texture_scenes()``: "texture scenes" in the exact ADE20K SceneParsing layout, for
  segmentation. Each image is a random partition into regions (Voronoi cells with warped,
  irregular boundaries, plus star-shaped polygons and thin strips), each region filled with a
  class's texture; labels 1..K, 0 = unlabeled ("other" texture). Classes come in look-alike
  pairs (same mean colour and contrast, different fine structure: brick vs. brick turned 90°,
  grass vs. gravel tinted like grass), so at coarse scale the pair is hard to tell apart and
  boundary detail decides.
- ``ensure_places_photos()``: scikit-image's natural photos cut into 256×256 crops in the
  Places365 "easyformat" layout, split into train and val by source photo.

Only files shipped inside the scikit-image wheel are read (directly from its ``data``
folder): nothing is downloaded. Generation is deterministic for a given seed and library
versions, and takes a few seconds.

    python -m datasets.embedded --out data      # writes data/texture_scenes and data/places_photos
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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

GENERATOR_VERSION = 1
MARKER = ".complete"
SCENE_SIZES = (224, 256, 288, 320)


# --------------------------------------------------------------------------- sources


def skimage_data_dir() -> Path:
    """The ``data`` folder inside the installed scikit-image package (bundled files only)."""
    return Path(str(resources.files("skimage") / "data"))


def load_bundled(name: str, gray: bool = False) -> np.ndarray:
    """A file bundled in scikit-image's wheel, as uint8 RGB (or grey) — never downloaded."""
    path = skimage_data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"scikit-image's bundled image {name!r} is not at {os.fspath(path)!r}; the embedded data sets need "
            "scikit-image >= 0.19 installed from its wheel (which ships this file)"
        )
    with Image.open(path) as im:
        return np.asarray(im.convert("L" if gray else "RGB"))


@dataclass(frozen=True)
class TextureClass:
    name: str
    source: str  # file in skimage/data
    kind: str  # "gray" (tinted texture) or "photo"
    tint: tuple[int, int, int] = (128, 128, 128)
    contrast: float = 40.0
    rot90: bool = False
    crop: tuple[int, int, int, int] | None = None  # y0, y1, x0, x1 of the useful part


# Classes 1..K. Pairs with the same tint and contrast look alike at coarse scale.
TEXTURE_CLASSES: tuple[TextureClass, ...] = (
    TextureClass("brick", "brick.png", "gray", (150, 82, 62), 45.0),
    TextureClass("brick turned", "brick.png", "gray", (150, 82, 62), 45.0, rot90=True),
    TextureClass("grass", "grass.png", "gray", (86, 124, 58), 42.0),
    TextureClass("gravel, grass-coloured", "gravel.png", "gray", (86, 124, 58), 42.0),
    TextureClass("gravel", "gravel.png", "gray", (138, 132, 120), 45.0),
    TextureClass("moon surface", "moon.png", "gray", (138, 132, 120), 45.0),
    TextureClass("astronaut", "astronaut.png", "photo"),
    TextureClass("coffee", "coffee.png", "photo"),
    TextureClass("cat", "chelsea.png", "photo"),
    TextureClass("rocket", "rocket.jpg", "photo"),
    TextureClass("retina", "retina.jpg", "photo", crop=(300, 1110, 300, 1110)),
    TextureClass("deep field", "hubble_deep_field.jpg", "photo"),
    TextureClass("tissue", "ihc.png", "photo"),
    TextureClass("motorcycle", "motorcycle_left.png", "photo"),
)
ALIKE_PAIRS = ((1, 2), (3, 4), (5, 6))  # raw label values
OTHER_SOURCES = ("text.png", "page.png", "camera.png")  # label 0 ("other", not scored)
SCENE_PALETTE = (
    (180, 80, 60), (230, 150, 50), (60, 170, 60), (160, 220, 90), (140, 140, 140), (90, 90, 200),
    (220, 60, 160), (120, 70, 30), (250, 210, 0), (0, 200, 220), (200, 0, 40), (20, 20, 110),
    (150, 90, 230), (0, 120, 110),
)  # fmt: skip


def _prepare_sources() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Class source images (uint8 RGB) and the 'other' sources."""
    cache: dict[str, np.ndarray] = {}
    out = []
    for c in TEXTURE_CLASSES:
        if c.kind == "gray":
            g = cache.setdefault("g:" + c.source, load_bundled(c.source, gray=True)).astype(np.float32)
            z = (g - g.mean()) / (g.std() + 1e-6)
            if c.rot90:
                z = np.ascontiguousarray(np.rot90(z))
            img = np.clip(np.asarray(c.tint, np.float32) + c.contrast * z[..., None], 0, 255).astype(np.uint8)
        else:
            img = cache.setdefault("c:" + c.source, load_bundled(c.source))
            if c.crop is not None:
                y0, y1, x0, x1 = c.crop
                img = img[y0:y1, x0:x1]
        out.append(np.ascontiguousarray(img))
    others = []
    for name in OTHER_SOURCES:
        g = load_bundled(name, gray=True)
        others.append(np.repeat(g[..., None], 3, axis=2))
    return out, others


# --------------------------------------------------------------------------- scenes


def _warp_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement field (h, w) in pixels: three octaves of cubic-interpolated
    noise (3, 10 and 40 cells across), built at quarter resolution and upsampled."""
    s = max(h, w)
    qh, qw = max(2, h // 4), max(2, w // 4)
    field = np.zeros((qh, qw), np.float32)
    for cells, amp in ((3, 0.09), (10, 0.025), (40, 0.006)):
        grid = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
        field += amp * s * cv2.resize(grid, (qw, qh), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


def _patch(src: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random (h, w) window of ``src`` at a random scale in [0.75, 1.25], maybe mirrored,
    with a random gain in [0.9, 1.1]; uint8."""
    sh, sw = src.shape[:2]
    f = max(rng.uniform(0.75, 1.25), h / sh, w / sw)
    wh, ww = min(sh, math.ceil(h / f)), min(sw, math.ceil(w / f))
    y = int(rng.integers(0, sh - wh + 1))
    x = int(rng.integers(0, sw - ww + 1))
    win = src[y : y + wh, x : x + ww]
    if rng.random() < 0.5:
        win = win[:, ::-1]
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(np.ascontiguousarray(win), (w, h), interpolation=interp)
    return cv2.convertScaleAbs(patch, alpha=float(rng.uniform(0.9, 1.1)))


def _star_polygon(cy: float, cx: float, radius: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(5, 13))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.35, 1.0, n)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return np.round(pts).astype(np.int32)


def make_scene(
    rng: np.random.Generator, sources: list[np.ndarray], others: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """One texture scene: (image uint8 HxWx3, label uint8 HxW with 0 = other, 1..K)."""
    k = len(sources)
    mate = {a: b for a, b in ALIKE_PAIRS} | {b: a for a, b in ALIKE_PAIRS}
    h, w = (int(v) for v in rng.choice(SCENE_SIZES, 2))

    # Voronoi cells on warped coordinates: irregular, multi-scale boundaries
    n = int(rng.integers(3, 9))
    seeds = rng.uniform((0, 0), (h, w), size=(n, 2)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    s = max(h, w)
    py, px = yy + _warp_field(h, w, rng), xx + _warp_field(h, w, rng)
    d = (py[None] - seeds[:, 0, None, None]) ** 2 + (px[None] - seeds[:, 1, None, None]) ** 2
    cell = np.argmin(d, axis=0)
    cell_class = rng.integers(1, k + 1, size=n)
    # neighbouring cells often hold a look-alike pair
    for i in range(1, n):
        if rng.random() < 0.35 and int(cell_class[i - 1]) in mate:
            cell_class[i] = mate[int(cell_class[i - 1])]
    label = cell_class[cell].astype(np.uint8)

    def pick_class(y: float, x: float) -> int:
        under = int(label[min(h - 1, max(0, int(y))), min(w - 1, max(0, int(x)))])
        if under in mate and rng.random() < 0.5:
            return mate[under]
        return int(rng.integers(1, k + 1))

    # star-shaped polygons: sharp corners
    for _ in range(int(rng.integers(0, 4))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        poly = _star_polygon(cy, cx, rng.uniform(0.06, 0.22) * s, rng)
        cv2.fillPoly(label, [poly], pick_class(cy, cx))
    # thin strips: structures a few pixels wide
    for _ in range(int(rng.integers(0, 3))):
        m = int(rng.integers(2, 5))
        pts = np.round(rng.uniform((0, 0), (w, h), size=(m, 2))).astype(np.int32)
        cv2.polylines(label, [pts], False, pick_class(pts[0, 1], pts[0, 0]), thickness=int(rng.integers(3, 10)))
    # sometimes an unlabeled ("other") object
    if rng.random() < 0.35:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        cv2.fillPoly(label, [_star_polygon(cy, cx, rng.uniform(0.08, 0.2) * s, rng)], 0)

    image = np.zeros((h, w, 3), np.uint8)
    for c in np.unique(label):
        c = int(c)
        src = others[int(rng.integers(len(others)))] if c == 0 else sources[c - 1]
        np.copyto(image, _patch(src, h, w, rng), where=(label == c)[..., None])
    noise = rng.integers(-3, 4, size=image.shape, dtype=np.int16)  # sensor-like noise, sigma 2
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8), label


def _save_jpeg(arr: np.ndarray, path: Path, quality: int) -> None:
    Image.fromarray(arr).save(path, format="JPEG", quality=quality, subsampling=0, optimize=False)


def _marker_ok(d: Path, params: dict) -> bool | None:
    """True: complete with these params; False: ours but different; None: no marker."""
    m = d / MARKER
    if not m.is_file():
        return None
    try:
        return json.loads(m.read_text()) == params
    except ValueError:
        return False


def _publish(tmp: Path, final: Path, params: dict) -> Path:
    (tmp / MARKER).write_text(json.dumps(params, sort_keys=True))
    if not final.exists():
        with contextlib.suppress(OSError):  # atomic; fails if a concurrent process published first
            os.rename(tmp, final)
    if tmp.exists():  # another process published first, or final existed
        shutil.rmtree(tmp, ignore_errors=True)
    if _marker_ok(final, params) is not True:
        raise RuntimeError(f"could not publish generated data to {os.fspath(final)!r}")
    return final


def _prepare_target(final: Path, params: dict, force: bool) -> bool:
    """Whether ``final`` must be (re)generated; refuses to delete a folder that is not ours."""
    state = _marker_ok(final, params) if final.exists() else None
    if state is True and not force:
        return False
    if final.exists():
        if state is None and not force:
            raise FileExistsError(
                f"{os.fspath(final)!r} exists but was not made by datasets.embedded (no {MARKER} marker); "
                "remove it or choose another root"
            )
        shutil.rmtree(final)
    return True


def ensure_texture_scenes(
    root: str | os.PathLike = "data/texture_scenes",
    seed: int = 0,
    *,
    num_train: int = 300,
    num_val: int = 50,
    force: bool = False,
) -> Path:
    """Return ``root/ADEChallengeData2016``, generating the texture scenes there if missing.

    ``num_train`` / ``num_val`` images of 224–320 px per side, labels 1..K (K = 14) and 0 for
    "other", ``classes.json`` (names, palette, look-alike pairs) beside ``images/``. A
    ``.complete`` marker records the parameters; a different seed or count regenerates.
    """
    final = Path(root) / "ADEChallengeData2016"
    params = {"kind": "texture_scenes", "version": GENERATOR_VERSION, "seed": int(seed),
              "num_train": int(num_train), "num_val": int(num_val)}  # fmt: skip
    if not _prepare_target(final, params, force):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-scenes-{os.getpid()}-{time.monotonic_ns()}"
    sources, others = _prepare_sources()
    for split, count, prefix, key in (
        ("training", num_train, "ADE_train", 0),
        ("validation", num_val, "ADE_val", 1),
    ):
        (tmp / "images" / split).mkdir(parents=True)
        (tmp / "annotations" / split).mkdir(parents=True)
        for i in range(count):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), key, i]))
            image, label = make_scene(rng, sources, others)
            stem = f"{prefix}_{i + 1:08d}"
            _save_jpeg(image, tmp / "images" / split / f"{stem}.jpg", quality=92)
            Image.fromarray(label).save(tmp / "annotations" / split / f"{stem}.png")
    meta = {
        "names": [c.name for c in TEXTURE_CLASSES],
        "palette": [list(c) for c in SCENE_PALETTE],
        "label_0": "other (unlabeled; ignored with reduce_zero_label)",
        "alike_pairs": [[a, b] for a, b in ALIKE_PAIRS],
        "sources": {c.name: c.source for c in TEXTURE_CLASSES},
        "other_sources": list(OTHER_SOURCES),
        "generator": params,
    }
    (tmp / "classes.json").write_text(json.dumps(meta, indent=1) + "\n")
    return _publish(tmp, final, params)


# --------------------------------------------------------------------------- photos

# (file, category); val photos never contribute to train
PHOTO_TRAIN = (
    ("astronaut.png", "astronaut"),
    ("rocket.jpg", "rocket"),
    ("motorcycle_left.png", "motorcycle"),
    ("motorcycle_right.png", "motorcycle"),
    ("hubble_deep_field.jpg", "deep_field"),
    ("retina.jpg", "retina"),
    ("ihc.png", "tissue"),
    ("camera.png", "camera"),
    ("moon.png", "moon"),
    ("coins.png", "coins"),
    ("brick.png", "brick"),
    ("grass.png", "grass"),
    ("gravel.png", "gravel"),
)
PHOTO_VAL = (("chelsea.png", "cat"), ("coffee.png", "coffee"))


def _crops(img: np.ndarray, size: int, stride: int, cap: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Overlapping size×size crops at scales 1, 0.75, 0.5 of the photo (photos whose short
    side exceeds 512 are first reduced to 512); at most ``cap``, chosen at random."""
    h, w = img.shape[:2]
    base = min(1.0, 512 / min(h, w))
    cands = []
    scaled = {}
    for f in (1.0, 0.75, 0.5):
        sh, sw = round(h * base * f), round(w * base * f)
        if min(sh, sw) < size:
            continue
        scaled[f] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA) if (sh, sw) != (h, w) else img
        ys = sorted(set(list(range(0, sh - size + 1, stride)) + [sh - size]))
        xs = sorted(set(list(range(0, sw - size + 1, stride)) + [sw - size]))
        cands += [(f, y, x) for y in ys for x in xs]
    if len(cands) > cap:
        keep = np.sort(rng.choice(len(cands), size=cap, replace=False))
        cands = [cands[i] for i in keep]
    return [np.ascontiguousarray(scaled[f][y : y + size, x : x + size]) for f, y, x in cands]


def ensure_places_photos(
    root: str | os.PathLike = "data/places_photos",
    *,
    size: int = 256,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Return ``root`` holding ``train/<category>/*.jpg`` and ``val/*.jpg``, generating it if missing.

    Crops of ``size``×``size`` from scikit-image's bundled photos; train and val come from
    disjoint source photos (val: the cat "chelsea" and "coffee").
    """
    final = Path(root)
    params = {"kind": "places_photos", "version": GENERATOR_VERSION, "seed": int(seed), "size": int(size)}
    if not _prepare_target(final, params, force):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-photos-{os.getpid()}-{time.monotonic_ns()}"
    sources = {}
    for split, table, stride, cap in (("train", PHOTO_TRAIN, 96, 24), ("val", PHOTO_VAL, 64, 32)):
        for j, (fname, category) in enumerate(table):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0 if split == "train" else 1, j]))
            crops = _crops(load_bundled(fname), size, stride, cap, rng)
            folder = tmp / "train" / category if split == "train" else tmp / "val"
            folder.mkdir(parents=True, exist_ok=True)
            stem = Path(fname).stem
            for i, crop in enumerate(crops):
                _save_jpeg(crop, folder / f"{stem}_{i:03d}.jpg", quality=95)
            sources[f"{split}/{fname}"] = len(crops)
    (tmp / "sources.json").write_text(json.dumps({"crops_per_source": sources, "generator": params}, indent=1))
    return _publish(tmp, final, params)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m datasets.embedded", description="Generate the embedded data sets.")
    ap.add_argument("--out", default="data", help="parent folder (default: data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args(argv)
    out = Path(args.out)
    t0 = time.perf_counter()
    scenes = ensure_texture_scenes(out / "texture_scenes", seed=args.seed, force=args.force)
    t1 = time.perf_counter()
    photos = ensure_places_photos(out / "places_photos", seed=args.seed, force=args.force)
    t2 = time.perf_counter()
    n_tr = len(list((scenes / "images" / "training").glob("*.jpg")))
    n_va = len(list((scenes / "images" / "validation").glob("*.jpg")))
    p_tr = len(list((photos / "train").rglob("*.jpg")))
    p_va = len(list((photos / "val").glob("*.jpg")))
    print(f"texture scenes: {scenes} ({n_tr} training, {n_va} validation images) [{t1 - t0:.1f} s]")
    print(f"places photos:  {photos} ({p_tr} train, {p_va} val crops) [{t2 - t1:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
