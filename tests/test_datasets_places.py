"""PlacesDataset / ImageFolderDataset: layouts, output ranges, masks, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datasets._io import ImageReadError
from datasets._testdata import make_image_tree, truncate_file
from datasets.masks import MaskGenerator, load_mask_set, write_mask_set
from datasets.places import ImageFolderDataset, PlacesDataset, center_crop_resize, random_crop_resize


@pytest.fixture()
def easy(tmp_path):
    root = tmp_path / "places"
    make_image_tree(root, [f"train/{c}/{i:08d}.jpg" for c in ("abbey", "beach") for i in range(3)], size=(300, 400))
    make_image_tree(root, [f"val/Places365_val_{i:08d}.jpg" for i in range(1, 4)], size=(256, 340), seed=1)
    return root


def _check(item, size):
    img = item["image"]
    assert img.dtype == torch.float32 and img.shape == (3, size, size)
    assert img.min() >= -1.0 and img.max() <= 1.0 and img.min() < -0.5 and img.max() > 0.5


def test_easyformat(easy):
    tr, va = PlacesDataset(easy, "train"), PlacesDataset(easy, "val", size=128)
    assert len(tr) == 6 and len(va) == 3
    _check(tr[0], 256)
    _check(va[0], 128)
    assert set(tr[0]) == {"image", "path"} and tr[0]["path"].endswith("abbey/00000000.jpg")
    assert torch.equal(va[1]["image"], va[1]["image"])  # deterministic centre crop


def test_val_crop_is_exact_centre():
    img = np.arange(10 * 14 * 3, dtype=np.uint8).reshape(10, 14, 3)
    np.testing.assert_array_equal(center_crop_resize(img, 10), img[:, 2:12])
    assert center_crop_resize(img, 20).shape == (20, 20, 3)


def test_train_crop_varies_and_flips():
    img = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    outs = [random_crop_resize(img, 128, rng) for _ in range(6)]
    assert all(o.shape == (128, 128, 3) for o in outs)
    assert len({o.tobytes() for o in outs}) == 6
    small = np.zeros((40, 60, 3), np.uint8)
    assert random_crop_resize(small, 64, rng).shape == (64, 64, 3)  # smaller images are enlarged


def test_official_lists_layout(tmp_path):
    root = tmp_path / "p365"
    make_image_tree(root / "data_large", ["a/abbey/00000001.jpg", "b/beach/00000002.jpg"])
    make_image_tree(root / "val_large", ["Places365_val_00000001.jpg"])
    (root / "places365_train_standard.txt").write_text("/a/abbey/00000001.jpg 0\n/b/beach/00000002.jpg 48\n")
    (root / "filelist").mkdir()
    (root / "filelist" / "places365_val.txt").write_text("Places365_val_00000001.jpg 165\n")
    assert len(PlacesDataset(root, "train")) == 2
    va = PlacesDataset(root, "val", size=64)
    assert len(va) == 1 and va[0]["image"].shape == (3, 64, 64)
    (root / "places365_train_standard.txt").write_text("/a/abbey/00000009.jpg 0\n")
    with pytest.raises(FileNotFoundError, match="00000009.jpg"):
        PlacesDataset(root, "train")


def test_file_list_and_image_folder(easy):
    ds = PlacesDataset(easy, "train", file_list=["train/beach/00000001.jpg 3", "val/Places365_val_00000001.jpg"])
    assert len(ds) == 2 and ds[1]["path"].endswith("Places365_val_00000001.jpg")
    folder = ImageFolderDataset(easy / "train", size=64, train=False)
    assert len(folder) == 6
    _check(folder[5], 64)


def test_masks_from_generator_and_set(easy, tmp_path):
    ds = PlacesDataset(easy, "train", size=64, masks=MaskGenerator(64, seed=0))
    m = ds[0]["mask"]
    assert m.shape == (1, 64, 64) and m.dtype == torch.float32 and set(m.unique().tolist()) <= {0.0, 1.0}
    det = PlacesDataset(easy, "train", size=64, masks=MaskGenerator(64, seed=0), deterministic_masks=True)
    assert torch.equal(det[2]["mask"], det[2]["mask"])
    det.set_epoch(1)
    a = det[2]["mask"]
    det.set_epoch(2)
    assert not torch.equal(a, det[2]["mask"])
    ms = load_mask_set(write_mask_set(tmp_path / "ms", count=2, size=64, seed=0))
    va = PlacesDataset(easy, "val", size=64, masks=ms)
    np.testing.assert_array_equal(va[2]["mask"][0].numpy(), ms[0])  # item i uses mask i % len
    with pytest.raises(ValueError, match="mask set is 64x64"):
        PlacesDataset(easy, "val", size=32, masks=ms)


def test_random_crops_differ_across_workers(easy):
    one = "train/abbey/00000000.jpg"
    ds = PlacesDataset(easy, "train", size=64, file_list=[one] * 6)
    torch.manual_seed(0)
    imgs = [b["image"][0] for b in DataLoader(ds, batch_size=1, num_workers=2)]
    assert len({i.numpy().tobytes() for i in imgs}) == 6


def test_bad_input(tmp_path, easy):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*easyformat.*train/<category>"):
        PlacesDataset(tmp_path / "none", "train")
    only_train = tmp_path / "ot"
    make_image_tree(only_train, ["train/x/1.jpg"])
    with pytest.raises(FileNotFoundError, match=r"'val' not found.*val.*places365_val.txt"):
        PlacesDataset(only_train, "val")
    with pytest.raises(ValueError, match="split"):
        PlacesDataset(easy, "test")
    bad = sorted((easy / "val").iterdir())[0]
    truncate_file(bad, 0.4)
    with pytest.raises(ImageReadError, match=bad.name):
        PlacesDataset(easy, "val")[0]
    ds = PlacesDataset(easy, "val", on_bad_image="skip")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert ds[0]["path"].endswith("Places365_val_00000002.jpg")
    assert len(ds.skipped) == 1
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="contains no images"):
        PlacesDataset(empty, "train")
