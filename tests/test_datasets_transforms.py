"""Segmentation transforms: resize rules, cat_max_ratio crop, photometric distortion."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from datasets.transforms import CatMaxRandomCrop, FitResize, PhotoMetricDistortion


def _run(t, img, mask=None, seed=0):
    c = A.Compose([t], seed=seed)
    return c(image=img, mask=mask) if mask is not None else c(image=img)


@pytest.mark.parametrize(
    ("hw", "short", "long", "expect"),
    [
        ((400, 600), 300, 1200, (300, 450)),  # short edge reaches 300
        ((100, 1000), 600, 1200, (120, 1200)),  # long edge capped at 1200
        ((683, 512), 450, 1200, (600, 450)),
        ((512, 683), 512, 2048, (512, 683)),  # mmseg val: already fits
        ((1024, 2048), 512, 2048, (512, 1024)),
    ],
)
def test_fit_resize_sizes(hw, short, long, expect):
    img = np.zeros((*hw, 3), np.uint8)
    mask = np.zeros(hw, np.uint8)
    out = _run(FitResize(short, long), img, mask)
    assert out["image"].shape[:2] == expect and out["mask"].shape == expect


def test_fit_resize_ratio_range_and_nearest_labels():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 5, (64, 96), dtype=np.uint8)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    sizes = set()
    for s in range(20):
        out = _run(FitResize(64, 256, ratio_range=(0.5, 2.0)), img, mask, seed=s)
        sizes.add(out["mask"].shape)
        assert set(np.unique(out["mask"])) <= set(range(5))
        h, w = out["mask"].shape
        assert 32 <= h <= 128 and abs(w / h - 1.5) < 0.05
    assert len(sizes) > 5


def test_cat_max_ratio_crop():
    mask = np.zeros((200, 200), np.uint8)
    mask[:, 150:] = 1  # class 0 dominates most crops
    mask[:10, :] = 255
    img = np.zeros((200, 200, 3), np.uint8)
    for s in range(10):
        out = _run(CatMaxRandomCrop(64, 64, cat_max_ratio=0.75), img, mask, seed=s)["mask"]
        assert out.shape == (64, 64)
        counts = np.bincount(out[out != 255].ravel(), minlength=2)
        assert (counts > 0).sum() > 1 and counts.max() / counts.sum() < 0.75
    small = _run(CatMaxRandomCrop(512, 512), img[:50, :60], mask[:50, :60])
    assert small["image"].shape[:2] == (50, 60)  # smaller images are not padded here


def test_photometric_distortion():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    outs = [_run(PhotoMetricDistortion(), img, seed=s)["image"] for s in range(8)]
    assert all(o.dtype == np.uint8 and o.shape == img.shape for o in outs)
    assert any(not np.array_equal(o, img) for o in outs)
    t = PhotoMetricDistortion()
    bright = t.apply(img, brightness=20.0, contrast_first=True, contrast=None, saturation=None, hue=None)
    np.testing.assert_array_equal(bright, np.clip(img.astype(np.int32) + 20, 0, 255).astype(np.uint8))
    gray = np.full((4, 4, 3), 100, np.uint8)
    assert np.array_equal(t.apply(gray, saturation=1.5, hue=10, contrast_first=True), gray)  # no colour to change
