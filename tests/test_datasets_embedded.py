"""Embedded data: deterministic, in the real layouts, read by the ordinary loaders."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import embedded
from datasets.ade20k import ADE20KDataset, build_transform
from datasets.collate import pad_collate
from datasets.places import PlacesDataset

REPO = Path(__file__).resolve().parents[1]
K = len(embedded.TEXTURE_CLASSES)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_only_bundled_files_are_used():
    data = embedded.skimage_data_dir()
    names = [c.source for c in embedded.TEXTURE_CLASSES] + list(embedded.OTHER_SOURCES)
    names += [f for f, _ in embedded.PHOTO_TRAIN + embedded.PHOTO_VAL]
    for n in names:
        assert (data / n).is_file(), n
    with pytest.raises(FileNotFoundError, match="bundled"):
        embedded.load_bundled("no_such_image.png")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return embedded.ensure_texture_scenes(root, seed=0, num_train=12, num_val=4)


def test_texture_scenes_layout_and_labels(scenes):
    assert scenes.name == "ADEChallengeData2016"
    imgs = sorted((scenes / "images" / "training").glob("*.jpg"))
    assert len(imgs) == 12 and len(list((scenes / "images" / "validation").glob("*.jpg"))) == 4
    assert imgs[0].name == "ADE_train_00000001.jpg"
    meta = json.loads((scenes / "classes.json").read_text())
    assert len(meta["names"]) == K == len(meta["palette"])
    seen = set()
    for p in imgs:
        lbl_im = Image.open(scenes / "annotations" / "training" / p.with_suffix(".png").name)
        assert lbl_im.mode == "L"
        lbl = np.asarray(lbl_im)
        assert lbl.shape == Image.open(p).size[::-1] and min(lbl.shape) >= 224 and max(lbl.shape) <= 320
        assert lbl.max() <= K
        seen |= set(np.unique(lbl).tolist())
        assert len(np.unique(lbl)) >= 2  # every scene has several regions
    assert 0 in seen and len(seen) > K // 2


def test_texture_scenes_read_by_ade_loader(scenes):
    ds = ADE20KDataset(scenes.parent.parent / scenes.parent.name, "training", transform=build_transform("paper"))
    assert ds.num_classes == K and ds.class_names[0] == "brick"
    batch = pad_collate([ds[0], ds[1]])
    assert batch["image"].shape[0] == 2 and batch["label"].max() == 255
    val = ADE20KDataset(scenes, "validation", transform=build_transform("val_paper"))
    assert val[0]["label_orig"].max() < 256


def test_texture_scenes_deterministic_and_cached(tmp_path, scenes):
    b = embedded.ensure_texture_scenes(tmp_path / "b", seed=0, num_train=12, num_val=4)
    assert _digest(b) == _digest(scenes)
    c = embedded.ensure_texture_scenes(tmp_path / "c", seed=1, num_train=12, num_val=4)
    assert _digest(c) != _digest(scenes)
    first = (b / "images" / "training" / "ADE_train_00000001.jpg").stat().st_mtime_ns
    assert embedded.ensure_texture_scenes(tmp_path / "b", seed=0, num_train=12, num_val=4) == b
    assert (b / "images" / "training" / "ADE_train_00000001.jpg").stat().st_mtime_ns == first  # not regenerated
    embedded.ensure_texture_scenes(tmp_path / "b", seed=0, num_train=3, num_val=1)  # other params: regenerate
    assert len(list((b / "images" / "training").glob("*.jpg"))) == 3


def test_refuses_to_replace_foreign_folder(tmp_path):
    foreign = tmp_path / "mine" / "ADEChallengeData2016"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not made by datasets.embedded"):
        embedded.ensure_texture_scenes(tmp_path / "mine", num_train=1, num_val=1)
    assert (foreign / "keep.txt").exists()


def test_alike_pairs_share_colour_but_not_texture():
    import cv2

    sources, _ = embedded._prepare_sources()
    for a, b in embedded.ALIKE_PAIRS:
        sa, sb = sources[a - 1].astype(np.float32), sources[b - 1].astype(np.float32)
        assert np.abs(sa.mean((0, 1)) - sb.mean((0, 1))).max() < 3.0  # same colour at coarse scale

        def grad(x):
            g = x.mean(2)
            return np.array(
                [np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)).mean(), np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1)).mean()]
            )

        assert np.abs(grad(sa) - grad(sb)).max() > 15.0  # different fine structure


def test_places_photos(tmp_path):
    root = embedded.ensure_places_photos(tmp_path / "photos")
    train = sorted((root / "train").rglob("*.jpg"))
    val = sorted((root / "val").glob("*.jpg"))
    assert len(train) >= 200 and len(val) >= 30
    assert all(p.parent.parent.name == "train" for p in train)  # train/<category>/*.jpg
    train_sources = {p.stem.rsplit("_", 1)[0] for p in train}
    val_sources = {p.stem.rsplit("_", 1)[0] for p in val}
    assert val_sources == {"chelsea", "coffee"} and not (train_sources & val_sources)
    assert all(Image.open(p).size == (256, 256) for p in train[:20] + val[:5])
    assert len(PlacesDataset(root, "train")) == len(train)
    item = PlacesDataset(root, "val")[0]
    assert item["image"].shape == (3, 256, 256) and -1 <= item["image"].min() <= item["image"].max() <= 1
    again = embedded.ensure_places_photos(tmp_path / "photos2")
    assert _digest(again) == _digest(root)


def test_cli(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "datasets.embedded", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "--out" in r.stdout


@pytest.mark.slow
def test_default_generation_under_a_minute(tmp_path):
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "datasets.embedded", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert r.returncode == 0, r.stderr
    assert "300 training, 50 validation" in r.stdout
    # CPU seconds, so that other load on a shared machine cannot fail it; wall time is reported
    assert cpu < 60, f"generation used {cpu:.1f} CPU s ({wall:.1f} s wall)"
