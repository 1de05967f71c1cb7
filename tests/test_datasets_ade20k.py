"""ADE20KDataset: layout, label mapping, pipelines and bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from datasets._io import ImageReadError, LabelFormatError
from datasets._testdata import make_ade, truncate_file
from datasets.ade20k import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ADE20KDataset,
    build_transform,
    colorize,
)
from datasets.ade20k_classes import ADE20K_CLASSES, ADE20K_PALETTE
from datasets.collate import pad_collate


@pytest.fixture()
def ade(tmp_path):
    return make_ade(tmp_path / "ade")


def _write_label(ade, split, idx, arr, mode=None):
    stem = sorted((ade / "images" / split).iterdir())[idx].stem
    p = ade / "annotations" / split / f"{stem}.png"
    Image.fromarray(arr, mode=mode).save(p) if mode else Image.fromarray(arr).save(p)
    return p


def test_class_tables():
    assert len(ADE20K_CLASSES) == 150 and len(ADE20K_PALETTE) == 150
    assert ADE20K_CLASSES[0] == "wall" and ADE20K_CLASSES[149] == "flag"
    assert ADE20K_PALETTE[0] == (120, 120, 120) and ADE20K_PALETTE[149] == (92, 0, 255)


def test_layout_and_defaults(ade):
    ds = ADE20KDataset(ade.parent, "training")  # parent of ADEChallengeData2016 works too
    assert ds.root == ade and len(ds) == 3 and ds.num_classes == 150
    assert ds.class_names == list(ADE20K_CLASSES)
    item = ds[0]
    assert set(item) == {"image", "label", "path"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 48, 64)
    assert item["label"].dtype == torch.int64 and item["label"].shape == (48, 64)
    assert item["path"].endswith("ADE_train_00000001.jpg")
    # no transform: plain ImageNet normalisation of the decoded image
    raw = np.asarray(Image.open(item["path"]).convert("RGB")).astype(np.float32) / 255.0
    expect = (raw - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), expect, atol=1e-5)
    val = ADE20KDataset(ade, "validation")[1]
    assert {"label_orig", "orig_size"} <= set(val) and val["orig_size"].tolist() == [64, 48]


def test_reduce_zero_label_mapping(ade):
    raw = np.array([[0, 1, 2, 150], [255, 75, 0, 1]], np.uint8)
    raw = np.kron(raw, np.ones((12, 16), np.uint8))  # 24x64 -> resize image to match
    img_path = sorted((ade / "images" / "training").iterdir())[0]
    Image.fromarray(np.zeros((24, 64, 3), np.uint8)).save(img_path)
    _write_label(ade, "training", 0, raw)
    lbl = ADE20KDataset(ade, "training")[0]["label"].numpy()
    expect = np.where((raw == 0) | (raw == 255), 255, raw.astype(np.int64) - 1)
    np.testing.assert_array_equal(lbl, expect)
    # without reduction values are kept (0..149 valid, 255 ignore)
    raw2 = np.where(raw == 150, 149, raw).astype(np.uint8)
    _write_label(ade, "training", 0, raw2)
    lbl2 = ADE20KDataset(ade, "training", reduce_zero_label=False)[0]["label"].numpy()
    np.testing.assert_array_equal(lbl2, raw2)


def test_palette_label_png_is_accepted(ade):
    raw = np.full((48, 64), 3, np.uint8)
    im = Image.fromarray(raw, mode="L").convert("P")
    im.putpalette([v for c in ADE20K_PALETTE for v in c])
    stem = sorted((ade / "images" / "training").iterdir())[0].stem
    im.save(ade / "annotations" / "training" / f"{stem}.png")
    assert (ADE20KDataset(ade, "training")[0]["label"] == 2).all()


def test_classes_json(ade):
    (ade / "classes.json").write_text(json.dumps({"names": ["a", "b", "c"], "palette": [[1, 2, 3]] * 3}))
    for split in ("training", "validation"):
        for p in (ade / "annotations" / split).iterdir():
            arr = np.asarray(Image.open(p)) % 4
            Image.fromarray(arr.astype(np.uint8)).save(p)
    ds = ADE20KDataset(ade, "training")
    assert ds.num_classes == 3 and ds.class_names == ["a", "b", "c"] and ds.palette[0] == (1, 2, 3)
    assert int(ds[0]["label"][ds[0]["label"] != 255].max()) <= 2


@pytest.mark.parametrize("name", ["paper", "mmseg", "val_paper", "val_mmseg"])
def test_pipelines_shapes_dtypes_ranges(ade, name):
    kw = {}
    if name in ("mmseg", "val_mmseg"):
        kw = {"scale": (128, 64), "crop_size": 64}
    split = "training" if name in ("paper", "mmseg") else "validation"
    ds = ADE20KDataset(ade, split, transform=build_transform(name, seed=1, **kw))
    for i in range(len(ds)):
        item = ds[i]
        img, lbl = item["image"], item["label"]
        assert img.dtype == torch.float32 and img.ndim == 3 and img.shape[0] == 3
        assert lbl.dtype == torch.int64 and lbl.shape == img.shape[1:]
        assert torch.isfinite(img).all() and img.min() > -3.0 and img.max() < 3.0
        vals = set(lbl.unique().tolist())
        assert vals <= set(range(150)) | {255}
        h, w = img.shape[1:]
        if name == "paper":
            assert min(h, w) in (300, 375, 450, 525, 600) and max(h, w) <= 1200
        elif name == "val_paper":
            assert min(h, w) == 450 and max(h, w) <= 1200
        elif name == "mmseg":
            assert (h, w) == (64, 64)
        else:
            assert min(h, w) == 64 or max(h, w) == 128
        if "label_orig" in item:  # validation keeps the original-size label
            raw = ADE20KDataset(ade, split).load_raw(i)[1]
            np.testing.assert_array_equal(item["label_orig"].numpy(), raw)
            assert item["orig_size"].tolist() == list(raw.shape)
            assert set(lbl.unique().tolist()) <= set(np.unique(raw).tolist())  # nearest: no new values


def test_mmseg_pads_with_ignore(ade):
    # images of 40..64 px, scale fit to (64, 32) * r <= 2: smaller than the 96 crop -> padded
    t = build_transform("mmseg", scale=(64, 32), ratio_range=(1.0, 1.0), crop_size=96, seed=0)
    ds = ADE20KDataset(ade, "training", transform=t)
    item = ds[2]  # 40x40 -> 32x32, padded to 96x96
    lbl, img = item["label"], item["image"]
    assert lbl.shape == (96, 96)
    assert (lbl[32:, :] == 255).all() and (lbl[:, 32:] == 255).all()
    assert (img[:, 32:, :] == 0).all() and (img[:, :, 32:] == 0).all()


def test_paper_pipeline_batches_pad_to_32_with_ignore(ade):
    ds = ADE20KDataset(ade, "training", transform=build_transform("paper", short_edges=(50, 70), long_edge=90))
    batch = pad_collate([ds[i] for i in range(3)])
    b, _, h, w = batch["image"].shape
    assert b == 3 and h % 32 == 0 and w % 32 == 0
    for i, (ih, iw) in enumerate(batch["img_shape"].tolist()):
        assert (batch["label"][i, ih:, :] == 255).all() and (batch["label"][i, :, iw:] == 255).all()
        assert (batch["image"][i, :, ih:, :] == 0).all()


def test_file_list_forms(ade):
    rel = [f"images/training/{p.name}" for p in sorted((ade / "images" / "training").iterdir())]
    two = [f"{r} {r.replace('images', 'annotations').replace('.jpg', '.png')}" for r in rel]
    stems = [r.split("/")[-1][:-4] for r in rel]
    for fl in (rel[:2], two[1:], stems[:1]):
        ds = ADE20KDataset(ade, "training", file_list=fl)
        assert len(ds) == len(fl) and ds[0]["label"].ndim == 2
    lst = ade / "list.txt"
    lst.write_text("# comment\n" + "\n".join(rel) + "\n\n")
    assert len(ADE20KDataset(ade, "training", file_list=lst)) == 3
    with pytest.raises(FileNotFoundError, match="ADE_nope"):
        ADE20KDataset(ade, "training", file_list=["images/training/ADE_nope.jpg"])


def test_augmentations_differ_across_workers(ade):
    one = "images/training/ADE_train_00000001.jpg"
    t = build_transform("mmseg", scale=(128, 64), crop_size=32, seed=0)
    ds = ADE20KDataset(ade, "training", transform=t, file_list=[one] * 8)
    torch.manual_seed(0)
    dl = DataLoader(ds, batch_size=1, num_workers=2)
    imgs = [b["image"][0] for b in dl]
    # worker 0 makes items 0,2,4,6 and worker 1 items 1,3,5,7: copies of one RNG would pair up
    assert not all(torch.equal(imgs[2 * k], imgs[2 * k + 1]) for k in range(4))
    torch.manual_seed(0)
    again = [b["image"][0] for b in DataLoader(ds, batch_size=1, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(imgs, again, strict=True))  # reproducible


def test_colorize():
    lbl = np.array([[0, 1], [255, 2]])
    out = colorize(lbl, ADE20K_PALETTE)
    assert out.shape == (2, 2, 3) and tuple(out[0, 0]) == ADE20K_PALETTE[0] and tuple(out[1, 0]) == (0, 0, 0)


# ------------------------------------------------------------------ bad input


def test_missing_root_and_split(tmp_path, ade):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*images/training/\*\.jpg"):
        ADE20KDataset(tmp_path / "nowhere", "training")
    import shutil

    shutil.rmtree(ade / "images" / "validation")
    with pytest.raises(FileNotFoundError, match=r"images/validation.*does not exist.*ADEChallengeData2016"):
        ADE20KDataset(ade, "validation")
    with pytest.raises(ValueError, match="split"):
        ADE20KDataset(ade, "test")


def test_image_without_label(ade):
    next((ade / "annotations" / "training").iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match=r"have no label.*\.png"):
        ADE20KDataset(ade, "training")


def test_truncated_image_error_and_skip(ade):
    bad = sorted((ade / "images" / "training").iterdir())[1]
    truncate_file(bad, 0.3)
    ds = ADE20KDataset(ade, "training")
    with pytest.raises(ImageReadError, match=bad.name):
        ds[1]
    skip = ADE20KDataset(ade, "training", on_bad_image="skip")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        item = skip[1]
    assert item["path"].endswith("ADE_train_00000003.jpg")
    assert len(skip.skipped) == 1 and bad.name in skip.skipped[0]
    assert any("skipping unreadable" in str(w.message) and "1 skipped" in str(w.message) for w in rec)
    (bad).write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match=bad.name):
        ds[1]


def test_label_size_mismatch_names_both(ade):
    p = _write_label(ade, "training", 0, np.ones((10, 10), np.uint8))
    with pytest.raises(LabelFormatError, match=rf"{p.name}.*ADE_train_00000001\.jpg"):
        ADE20KDataset(ade, "training")[0]


def test_label_value_above_class_count(ade):
    arr = np.ones((48, 64), np.uint8)
    arr[5, 5] = 151
    p = _write_label(ade, "training", 0, arr)
    with pytest.raises(LabelFormatError, match=rf"{p.name}.*151.*150 classes"):
        ADE20KDataset(ade, "training")[0]
    arr[5, 5] = 255  # the ignore value is allowed
    _write_label(ade, "training", 0, arr)
    assert ADE20KDataset(ade, "training")[0]["label"][5, 5] == 255
    arr[5, 5] = 150  # without reduction 150 is out of range (0..149)
    _write_label(ade, "training", 0, arr)
    with pytest.raises(LabelFormatError, match="150"):
        ADE20KDataset(ade, "training", reduce_zero_label=False)[0]


def test_rgb_label_rejected(ade):
    p = _write_label(ade, "training", 0, np.ones((48, 64, 3), np.uint8))
    with pytest.raises(LabelFormatError, match=rf"{p.name}.*'RGB'.*single-channel index PNG"):
        ADE20KDataset(ade, "training")[0]


def test_unknown_transform_name():
    with pytest.raises(ValueError, match="unknown transform"):
        build_transform("nope")


def test_orientation_groups(ade):
    assert ADE20KDataset(ade, "training").orientation_groups() == [0, 1, 0]  # 48x64, 64x48, 40x40
