"""train_seg.py end to end on a tiny synthetic ADE-layout data set: a run learns, writes its
checkpoint, weights, TensorBoard events (read back) and images; a crashed run resumes to
exactly the uninterrupted run's losses and weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train_seg
from engine.checkpoint import read_checkpoint

REPO = Path(__file__).resolve().parents[1]
CLASS_COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))


def make_tiny_dataset(root: Path, num_train: int = 8, sizes_val=((64, 80), (72, 64), (96, 96)), seed: int = 0) -> Path:
    """An ADE-layout folder: 3 colour-coded classes (raw labels 1..3), some 'other' (0) pixels."""
    rng = np.random.default_rng(seed)
    splits = {"training": [(64, 64)] * num_train, "validation": list(sizes_val)}
    for split, sizes in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(sizes):
            label = np.full((h, w), 1 + i % 3, np.uint8)
            for _ in range(4):
                y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
                label[y : y + rng.integers(8, h // 2), x : x + rng.integers(8, w // 2)] = rng.integers(0, 4)
            image = np.zeros((h, w, 3), np.float32)
            for c, colour in enumerate(CLASS_COLOURS, start=1):
                image[label == c] = colour
            image[label == 0] = 128
            image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
            stem = f"ADE_{'train' if split == 'training' else 'val'}_{i + 1:08d}"
            Image.fromarray(image).save(root / "images" / split / f"{stem}.jpg", quality=95)
            Image.fromarray(label).save(root / "annotations" / split / f"{stem}.png")
    (root / "classes.json").write_text(json.dumps({"names": ["red", "green", "blue"],
                                                   "palette": [list(c) for c in CLASS_COLOURS]}))
    return root


def tiny_config(path: Path, data_root: Path, output_dir: Path, **sections) -> Path:
    """A config inheriting configs/seg/base.yaml: R-18 with CARAFE++ everywhere, 16 channels, 64 px."""
    cfg = {
        "_base_": str(REPO / "configs" / "seg" / "base.yaml"),
        "device": "cpu",
        "output_dir": str(output_dir),
        "data": {"root": str(data_root), "train_transform": "mmseg", "val_transform": "val_mmseg",
                 "scale": [2048, 64], "ratio_range": [0.75, 1.25], "crop_size": 64, "photometric": False,
                 "num_workers": 0},
        "model": {"backbone": "resnet18", "channels": 16, "backbone_resampler": "carafe", "ppm": "carafe",
                  "fpn": "carafe", "fuse": "carafe", "pretrained": None},
        "train": {"max_iters": 6, "batch_size": 2, "lr": 0.01},
        "eval": {"num_workers": 0},
        "checkpoint": {"interval": 3},
        "log": {"interval": 1, "num_images": 2, "kernel_layers": 2},
    }
    for section, values in sections.items():
        cfg[section].update(values)
    path.write_text(yaml.safe_dump(cfg))
    return path


def scalars(run_dir: Path, tag: str) -> dict[int, float]:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("train_seg")
    root = make_tiny_dataset(base / "data")
    return base, root


@pytest.fixture(scope="module")
def finished_run(tiny):
    base, root = tiny
    cfg = tiny_config(base / "tiny.yaml", root, base / "runs", train={"max_iters": 8})
    train_seg.main(["--config", str(cfg), "name=full"])
    return base / "runs" / "full"


def test_run_learns_and_writes_its_outputs(finished_run):
    run = finished_run
    loss = scalars(run, "train/loss")
    assert sorted(loss) == list(range(1, 9))
    assert np.mean([loss[7], loss[8]]) < np.mean([loss[1], loss[2]])

    ckpt = read_checkpoint(run / "last.pt", task="segmentation", num_classes=3)
    assert ckpt["iteration"] == 8 and ckpt["meta"]["class_names"] == ["red", "green", "blue"]
    assert set(ckpt["state"]) == {"model", "optimizer", "scheduler", "scaler"}
    weights = load_file(run / "model.safetensors")
    assert all(torch.equal(weights[k], v) for k, v in ckpt["state"]["model"].items())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["max_iters"] == 8 and saved["model"]["channels"] == 16

    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"red", "green", "blue"} and 0 <= metrics["mIoU"] <= 100
    pngs = sorted(p.name for p in (run / "predictions").glob("*.png"))
    assert sum(n.startswith("predictions_") for n in pngs) == 2 and sum(n.startswith("kernels_") for n in pngs) == 2

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("train/loss", "train/lr", "train/throughput_img_per_s", "val/aAcc", "val/mIoU", "val/mAcc"):
        assert tag in tags["scalars"], tag
    assert any(t.startswith("val_IoU/") for t in tags["scalars"])
    assert sum(t.startswith("predictions/") for t in tags["images"]) == 2
    assert sum(t.startswith("kernels/") for t in tags["images"]) == 2
    assert scalars(run, "val/mIoU")[8] == pytest.approx(metrics["mIoU"], abs=1e-4)


def test_crashed_run_resumes_to_identical_losses(tiny, finished_run, monkeypatch):
    base, root = tiny
    cfg = tiny_config(base / "tiny.yaml", root, base / "runs", train={"max_iters": 8})
    real_loss, calls = train_seg.segmentation_loss, {"n": 0}

    def crash_at_seventh(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("simulated kill")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_seg, "segmentation_loss", crash_at_seventh)
    with pytest.raises(KeyboardInterrupt):
        train_seg.main(["--config", str(cfg), "name=resumed"])
    monkeypatch.setattr(train_seg, "segmentation_loss", real_loss)
    run = base / "runs" / "resumed"
    assert read_checkpoint(run / "last.pt")["iteration"] == 6  # checkpoints at 3 and 6; died in 7

    train_seg.main(["--config", str(cfg), "name=resumed"])  # resumes automatically from last.pt
    assert scalars(run, "train/loss") == scalars(finished_run, "train/loss")
    assert scalars(run, "train/lr") == scalars(finished_run, "train/lr")
    a, b = load_file(run / "model.safetensors"), load_file(finished_run / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((run / "metrics.json").read_text())["mIoU"] == \
        json.loads((finished_run / "metrics.json").read_text())["mIoU"]


def test_unknown_override_lists_close_matches(tiny):
    base, root = tiny
    cfg = tiny_config(base / "tiny.yaml", root, base / "runs")
    with pytest.raises(ValueError, match=r"train\.max_iter.*did you mean train\.max_iters"):
        train_seg.main(["--config", str(cfg), "train.max_iter=3"])


def test_default_config_is_the_cpu_demo():
    cfg = train_seg.load_config(train_seg.DEFAULT_CONFIG)
    assert cfg["device"] == "cpu" and cfg["data"]["embedded"] and cfg["model"]["pretrained"] is None
    assert all(cfg["model"][k] == "carafe" for k in ("backbone_resampler", "ppm", "fpn", "fuse"))
