"""eval_inpaint.py and infer_inpaint.py as a user runs them: repeatable evaluation on a fixed mask
set, inference with 0/255 and 0/1 masks at any size, and clear errors for bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_inpaint import CONFIG, make_places, tiny_overrides

import eval_inpaint
import infer_inpaint
from datasets.masks import write_mask_set
from engine.checkpoint import atomic_save, save_weights
from engine.config import load_config
from train_inpaint import generator_from_config, model_meta


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny Places folder, a 32 px mask set, and an (untrained) Global&Local w/ CARAFE++ weights file."""
    root = tmp_path_factory.mktemp("inpaint_cli")
    places = make_places(root / "places")
    cfg = load_config(CONFIG, tiny_overrides(places))
    torch.manual_seed(0)
    generator = generator_from_config(cfg).eval()
    weights = save_weights(generator, root / "generator.safetensors", model_meta(cfg), cfg)
    masks = write_mask_set(root / "masks", count=6, size=32, seed=3)
    return {"root": root, "weights": weights, "masks": masks}


def test_eval_cli_is_repeatable_and_complete(workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace["root"])
    outs = [workspace["root"] / f"eval_{i}.json" for i in range(2)]
    for out in outs:
        assert eval_inpaint.main(["--checkpoint", str(workspace["weights"]), "--masks", str(workspace["masks"]),
                                  "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PSNR (dB) = 20 * log10(255 / sqrt(MSE))" in printed and "| all | cv2 Navier-Stokes |" in printed
    first, second = (json.loads(out.read_text()) for out in outs)
    assert first["results"] == second["results"]
    results = first["results"]
    assert set(results) == {"model", "mean fill", "cv2 Telea", "cv2 Navier-Stokes"}
    assert set(first["definitions"]) == {"l1", "psnr", "ssim"}
    model = results["model"]
    assert model["overall"]["count"] == 6 and sum(b["count"] for b in model["buckets"].values()) == 6
    assert set(model["buckets"]) == {"0-10", "10-20", "20-30", "30-40", "40-50", "50-60"}


def test_eval_cli_rejects_a_mask_set_of_another_size(workspace, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    masks = write_mask_set(tmp_path / "masks64", count=2, size=64, seed=0)
    code = eval_inpaint.main(["--checkpoint", str(workspace["weights"]), "--masks", str(masks), "--no-baselines"])
    assert code == 2 and "mask set is 64x64 but images are 32x32" in capsys.readouterr().err


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    hole = np.zeros((37, 45), bool)
    hole[10:20, 5:30] = True
    return path, pixels, hole


def _write_mask(path, values):
    Image.fromarray(values.astype(np.uint8)).save(path)
    return path


def _infer(workspace, photo_path, out, *extra):
    return infer_inpaint.main(["--checkpoint", str(workspace["weights"]), "--image", str(photo_path),
                               "--out", str(out), "--device", "cpu", *extra])


def test_infer_cli_accepts_0_255_and_0_1_masks(workspace, photo, tmp_path):
    path, pixels, hole = photo
    results = []
    for name, values in (("m255", hole * 255), ("m01", hole * 1)):
        mask = _write_mask(tmp_path / f"{name}.png", values)
        out = tmp_path / f"{name}_out.png"
        assert _infer(workspace, path, out, "--mask", str(mask)) == 0
        results.append(np.asarray(Image.open(out)))
    assert np.array_equal(results[0], results[1])
    result = results[0]
    assert result.shape == pixels.shape  # 45x37 is padded for the network, the output keeps the input size
    assert np.array_equal(result[~hole], pixels[~hole])
    assert not np.array_equal(result[hole], pixels[hole])

    small = tmp_path / "small.png"  # a network size below the image's: filled at 16 px, scaled back up
    assert _infer(workspace, path, small, "--mask", str(tmp_path / "m255.png"), "--max-size", "16") == 0
    resized = np.asarray(Image.open(small))
    assert resized.shape == pixels.shape and np.array_equal(resized[~hole], pixels[~hole])


def test_infer_cli_generates_a_mask(workspace, photo, tmp_path):
    path, pixels, _ = photo
    out = tmp_path / "gen.png"
    assert _infer(workspace, path, out, "--generate-mask", "5") == 0
    hole = np.asarray(Image.open(tmp_path / "gen_mask.png")) == 255
    assert hole.any() and hole.shape == pixels.shape[:2]
    assert np.array_equal(np.asarray(Image.open(out))[~hole], pixels[~hole])


def test_infer_cli_bad_inputs(workspace, photo, tmp_path, capsys):
    path, _, hole = photo
    cases = {
        "wrong size": (_write_mask(tmp_path / "big.png", np.pad(hole, ((0, 1), (0, 0))) * 255),
                       "is 45x38 (WxH) but the image is 45x37"),
        "RGB": (_write_mask(tmp_path / "rgb.png", np.stack([hole * 255] * 3, axis=-1)), "single-channel"),
        "empty": (_write_mask(tmp_path / "empty.png", hole * 0), "is empty"),
        "missing": (tmp_path / "nope.png", "does not exist"),
    }
    for name, (mask, message) in cases.items():
        assert _infer(workspace, path, tmp_path / "x.png", "--mask", str(mask)) == 2, name
        assert message in capsys.readouterr().err, name
    assert not (tmp_path / "x.png").exists()

    segmentation = tmp_path / "seg.pt"
    atomic_save({"format": 1, "meta": {"task": "segmentation", "num_classes": 150}, "config": {}, "iteration": 1,
                 "state": {"model": {}}, "rng": []}, segmentation)
    mask = _write_mask(tmp_path / "ok.png", hole * 255)
    for run in (lambda: infer_inpaint.main(["--checkpoint", str(segmentation), "--image", str(path), "--mask",
                                            str(mask), "--out", str(tmp_path / "y.png")]),
                lambda: eval_inpaint.main(["--checkpoint", str(segmentation)])):
        assert run() == 2
        err = capsys.readouterr().err
        assert "'segmentation'" in err and "'inpainting'" in err
