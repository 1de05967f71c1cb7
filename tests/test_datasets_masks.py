"""Masks: DeepFill v2 strokes, boxes, the loader-safe generator, bucketed evaluation sets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datasets import make_masks
from datasets.masks import (
    DEFAULT_BUCKETS,
    MaskGenerator,
    bucket_of,
    free_form_mask,
    hole_ratio,
    load_mask_set,
    random_box_mask,
    write_mask_set,
)

REPO = Path(__file__).resolve().parents[1]


def test_free_form_deterministic_and_valid():
    a = free_form_mask(256, 256, np.random.default_rng(3))
    b = free_form_mask(256, 256, np.random.default_rng(3))
    c = free_form_mask(256, 256, np.random.default_rng(4))
    assert a.dtype == np.uint8 and a.shape == (256, 256) and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    m = free_form_mask(120, 200, np.random.default_rng(0))
    assert m.shape == (120, 200) and m.flags.c_contiguous


def test_free_form_hole_ratios_in_range():
    rng = np.random.default_rng(0)
    ratios = np.array([hole_ratio(free_form_mask(256, 256, rng)) for _ in range(300)])
    assert (ratios > 0).all() and (ratios < 0.75).all()
    assert 0.08 < ratios.mean() < 0.3  # DeepFill v2 strokes at 256: ~16 % on average
    # one thin stroke with few vertices is much smaller than three wide ones
    thin = np.mean([hole_ratio(free_form_mask(256, 256, rng, max_strokes=1, max_width=13)) for _ in range(50)])
    wide = np.mean([hole_ratio(free_form_mask(256, 256, rng, min_strokes=3, min_width=39)) for _ in range(50)])
    assert thin < 0.08 < wide


def test_random_box_mask_size():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = random_box_mask(256, 256, rng)
        ys, xs = np.nonzero(m)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 128 - 32 <= h <= 128 and 128 - 32 <= w <= 128 and m.sum() == h * w
    with pytest.raises(ValueError):
        random_box_mask(10, 10, rng, box_height=20)


def test_hole_ratio_numpy_and_torch():
    m = np.zeros((4, 5), np.uint8)
    m[0, :] = 1
    assert hole_ratio(m) == pytest.approx(0.25)
    assert hole_ratio(torch.from_numpy(m).float()[None]) == pytest.approx(0.25)
    assert hole_ratio(m * 255) == pytest.approx(0.25)


def test_generator_index_mode_is_pure():
    g = MaskGenerator(64, seed=5)
    assert np.array_equal(g(3), g(3)) and not np.array_equal(g(3), g(4))
    assert not np.array_equal(g(3, epoch=0), g(3, epoch=1))
    assert np.array_equal(MaskGenerator(64, seed=5)(3), g(3))
    box = MaskGenerator(64, seed=0, box_prob=1.0)
    assert np.mean([hole_ratio(box(i)) for i in range(30)]) > np.mean([hole_ratio(g(i)) for i in range(30)])


class _MaskDS(Dataset):
    def __init__(self, gen, n=16):
        self.gen, self.n = gen, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.from_numpy(self.gen())


def _epoch(loader):
    return [m for batch in loader for m in batch]


def test_generator_streams_differ_across_workers_and_epochs():
    gen = MaskGenerator(48, seed=0)
    torch.manual_seed(0)
    dl = DataLoader(_MaskDS(gen), batch_size=2, num_workers=2)
    masks = _epoch(dl) + _epoch(dl)  # two epochs
    keys = {m.numpy().tobytes() for m in masks}
    assert len(keys) == len(masks) == 32  # no repeats across workers or epochs
    torch.manual_seed(0)
    again = _epoch(DataLoader(_MaskDS(gen), batch_size=2, num_workers=2))
    assert all(torch.equal(a, b) for a, b in zip(masks[:16], again, strict=True))  # reproducible
    persistent = DataLoader(_MaskDS(gen), batch_size=2, num_workers=2, persistent_workers=True)
    pm = _epoch(persistent) + _epoch(persistent)
    assert len({m.numpy().tobytes() for m in pm}) == 32


def test_mask_set_buckets_and_determinism(tmp_path):
    out = write_mask_set(tmp_path / "a", count=26, size=64, seed=1)
    ms = load_mask_set(out)
    assert len(ms) == 26 and (ms.height, ms.width) == (64, 64)
    names = [f"{round(lo * 100)}-{round(hi * 100)}" for lo, hi in DEFAULT_BUCKETS]
    by = ms.indices_by_bucket()
    assert list(by) == names and [len(by[n]) for n in names] == [5, 5, 4, 4, 4, 4]
    for i, m in enumerate(ms):
        e = ms.entries[i]
        assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
        r = hole_ratio(m)
        assert r == pytest.approx(e.ratio, abs=1e-6) and bucket_of(r) == e.bucket and r > 0
        png = np.asarray(Image.open(e.path))
        assert set(np.unique(png)) <= {0, 255}
    write_mask_set(tmp_path / "b", count=26, size=64, seed=1)
    write_mask_set(tmp_path / "c", count=26, size=64, seed=2)
    files = sorted(p.name for p in out.iterdir())
    assert all((out / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((out / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files if f.endswith(".png"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"file", "ratio", "bucket"} <= set(manifest["masks"][0])


def test_mask_set_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mask_set(tmp_path / "none")
    (tmp_path / "nomf").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_mask_set(tmp_path / "nomf")
    out = write_mask_set(tmp_path / "s", count=6, size=32, seed=0)
    mf = json.loads((out / "manifest.json").read_text())
    (out / mf["masks"][2]["file"]).unlink()
    with pytest.raises(FileNotFoundError, match=mf["masks"][2]["file"]):
        load_mask_set(out)
    mf["masks"] = []
    (out / "manifest.json").write_text(json.dumps(mf))
    with pytest.raises(ValueError, match="empty"):
        load_mask_set(out)
    with pytest.raises(ValueError):
        write_mask_set(tmp_path / "z", count=0)


def test_make_masks_cli(tmp_path, capsys):
    assert make_masks.main(["--out", str(tmp_path / "m"), "--count", "12", "--size", "48x64", "--seed", "3"]) == 0
    ms = load_mask_set(tmp_path / "m")
    assert len(ms) == 12 and (ms.height, ms.width) == (48, 64)
    assert "50-60%: 2" in capsys.readouterr().out


def test_make_masks_module_entry_point(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "datasets.make_masks", "--out", str(tmp_path / "m"), "--count", "6", "--size", "32"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(load_mask_set(tmp_path / "m")) == 6
