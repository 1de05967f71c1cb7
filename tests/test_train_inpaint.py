"""train_inpaint.py end to end at tiny sizes: losses fall, outputs and TensorBoard tags are written,
an interrupted run resumes exactly, NaN stops, and a 2-process gloo DDP run evaluates like one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train_inpaint
from engine.checkpoint import read_checkpoint
from engine.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "inpaint" / "default.yaml"


def make_places(root: Path, train: int = 12, val: int = 6, size: int = 40) -> Path:
    """A tiny Places "easyformat" folder of smooth random colour fields (PNG, lossless)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        folder = root / split / "fields" if split == "train" else root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            coarse = rng.integers(40, 216, (4, 4, 3)).astype(np.float32)
            field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
            Image.fromarray(field.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def tiny_overrides(data_root: Path, **changes) -> list[str]:
    """The default config shrunk to 32 px, a width-1/8 Global&Local w/ CARAFE++ and a few iterations."""
    settings = {
        "data.root": str(data_root), "data.embedded": False, "data.size": 32, "masks.eval_count": 6,
        "model.generator": "global_local", "model.width": 0.125, "model.depth": 1,
        "discriminator.width": 0.0625, "discriminator.num_downsamples": 2,
        "train.batch_size": 4, "train.max_iters": 8, "train.log_interval": 1, "train.checkpoint_interval": 2,
        "train.eval_interval": 4, "eval.batch_size": 4, "eval.grid_samples": 2, "optim.lr": 0.01, "optim.d_lr": 0.01,
        "optim.schedule": "constant",
    } | changes
    return [f"{k}={v}" for k, v in settings.items()]


def scalars(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # generated mask sets go to ./data/masks
    return make_places(tmp_path / "places")


def test_tiny_run_learns_and_writes_everything(places, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_inpaint.main(["--config", str(CONFIG), "--run-dir", str(run), *tiny_overrides(places)]) == 0
    out = capsys.readouterr().out
    assert "| all | model |" in out and "| all | cv2 Telea |" in out and "| all | mean fill |" in out
    assert str(run / "images") in out

    ckpt = read_checkpoint(run / "last.pt", task="inpainting")
    assert ckpt["iteration"] == 8 and ckpt["meta"]["generator"] == "global_local" and ckpt["meta"]["carafe"]
    assert {"model", "discriminator", "optimizer", "optimizer_d"} <= set(ckpt["state"])
    assert (run / "generator.safetensors").is_file() and (run / "config.yaml").is_file()
    assert sorted(p.name for p in (run / "images").glob("*.png")) == ["val_0000004.png", "val_0000008.png"]
    grid = np.asarray(Image.open(run / "images" / "val_0000008.png"))
    assert grid.shape == (2 * 32 + 3 * 2, 4 * 32 + 5 * 2, 3)  # 2 samples x 4 columns, 2 px padding

    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["definitions"]) == {"l1", "psnr", "ssim"}
    assert set(metrics["results"]) == {"model", "mean fill", "cv2 Telea", "cv2 Navier-Stokes"}
    assert metrics["results"]["model"]["overall"]["count"] == 6

    events = scalars(run)
    tags = events.Tags()
    for tag in ("g_hole", "g_valid", "g_adversarial", "g_total", "d_loss", "lr"):
        assert f"train/{tag}" in tags["scalars"], tag
    for tag in ("l1", "psnr", "ssim"):
        assert [e.step for e in events.Scalars(f"val/{tag}")] == [4, 8]
    assert "val/samples" in tags["images"]
    assert any(t.startswith("carafe/") for t in tags["images"])

    hole = [e.value for e in events.Scalars("train/g_hole")]
    valid = [e.value for e in events.Scalars("train/g_valid")]
    reconstruction = [h + v for h, v in zip(hole, valid, strict=True)]
    assert len(reconstruction) == 8
    assert np.mean(reconstruction[-3:]) < 0.85 * reconstruction[0]


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_exactly(places, tmp_path, monkeypatch):
    overrides = tiny_overrides(places, **{"train.max_iters": 4, "train.eval_interval": 0, "eval.baselines": False,
                                          "eval.grid_samples": 0, "optim.schedule": "poly"})
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train_inpaint.main(["--config", str(CONFIG), "--run-dir", str(straight), *overrides]) == 0

    step = train_inpaint.InpaintTrainer.step

    def dying_step(self, batch, iteration):
        if iteration == 4:  # killed after the checkpoint at iteration 2
            raise Interrupt
        return step(self, batch, iteration)

    monkeypatch.setattr(train_inpaint.InpaintTrainer, "step", dying_step)
    with pytest.raises(Interrupt):
        train_inpaint.main(["--config", str(CONFIG), "--run-dir", str(interrupted), *overrides])
    assert read_checkpoint(interrupted / "last.pt")["iteration"] == 2
    monkeypatch.setattr(train_inpaint.InpaintTrainer, "step", step)
    assert train_inpaint.main(["--config", str(CONFIG), "--run-dir", str(interrupted), *overrides]) == 0

    a, b = read_checkpoint(straight / "last.pt"), read_checkpoint(interrupted / "last.pt")
    for name in ("model", "discriminator"):
        for key, value in a["state"][name].items():
            assert torch.equal(value, b["state"][name][key]), f"{name}.{key}"
    losses_a = [e.value for e in scalars(straight).Scalars("train/g_total")]
    losses_b = [e.value for e in scalars(interrupted).Scalars("train/g_total")]
    assert losses_a == losses_b and len(losses_a) == 4


def test_nan_loss_stops_naming_the_iteration(places, tmp_path, capsys):
    run = tmp_path / "nan"
    overrides = tiny_overrides(places, **{"loss.hole": ".nan"})
    assert train_inpaint.main(["--config", str(CONFIG), "--run-dir", str(run), *overrides]) == 1
    assert "non-finite loss at iteration 1" in capsys.readouterr().err
    assert not (run / "last.pt").exists()


def test_bad_config_keys_and_task(places, tmp_path):
    with pytest.raises(ConfigError, match="train.max_iters"):
        train_inpaint.main(["--config", str(CONFIG), "--run-dir", str(tmp_path / "r"), "train.max_iter=3"])
    cfg = train_inpaint.load_config(CONFIG, ["task=segmentation"])
    with pytest.raises(ValueError, match="task must be 'inpainting'"):
        train_inpaint.train(cfg, tmp_path / "r", None, train_inpaint.init_distributed("cpu"))


def test_ddp_two_processes_evaluate_like_one(places, tmp_path):
    run = tmp_path / "ddp"
    overrides = tiny_overrides(places, **{"train.max_iters": 2, "train.eval_interval": 0, "eval.baselines": False,
                                          "eval.grid_samples": 0, "model.generator": "pconv_unet", "model.depth": 2,
                                          "eval.batch_size": 1})  # same per-image arithmetic in both
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", NO_ALBUMENTATIONS_UPDATE="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    subprocess.run([*torchrun, str(REPO / "train_inpaint.py"), "--config", str(CONFIG), "--run-dir", str(run),
                    *overrides], check=True, cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert read_checkpoint(run / "last.pt", task="inpainting")["meta"]["generator"] == "pconv_unet"
    distributed = json.loads((run / "metrics.json").read_text())["results"]["model"]

    import eval_inpaint

    assert eval_inpaint.main(["--checkpoint", str(run / "last.pt"), "--no-baselines", "--device", "cpu",
                              "--out", str(tmp_path / "single.json")]) == 0
    single = json.loads((tmp_path / "single.json").read_text())["results"]["model"]
    assert single == distributed
    assert single["overall"]["count"] == 6
