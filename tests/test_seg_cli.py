"""eval_seg.py and infer_seg.py on files, as a user runs them, and their bad-input errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_seg import make_tiny_dataset, tiny_config

import eval_seg
import infer_seg
import train_seg
from engine.checkpoint import CheckpointError
from engine.config import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("seg_cli")
    root = make_tiny_dataset(base / "data")
    cfg = tiny_config(base / "tiny.yaml", root, base / "runs", train={"max_iters": 2},
                      log={"num_images": 1, "kernel_layers": 1})
    train_seg.main(["--config", str(cfg), "name=cli"])
    return base, base / "runs" / "cli"


def test_eval_reproduces_the_training_evaluation(run):
    base, run_dir = run
    trained = json.loads((run_dir / "metrics.json").read_text())
    for checkpoint in ("last.pt", "model.safetensors"):
        out = base / f"eval_{checkpoint}.json"
        assert eval_seg.main(["--checkpoint", str(run_dir / checkpoint), "--out", str(out)]) == 0
        result = json.loads(out.read_text())
        assert (result["aAcc"], result["mIoU"], result["mAcc"]) == (trained["aAcc"], trained["mIoU"], trained["mAcc"])
        assert result["per_class"] == trained["per_class"] and result["num_images"] == 3


def test_eval_multi_scale_and_flip(run):
    base, run_dir = run
    out = base / "tta.json"
    eval_seg.main(["--checkpoint", str(run_dir / "last.pt"), "--scales", "0.75", "1.25", "--flip", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["scales"] == [0.75, 1.25] and result["flip"] is True and 0 <= result["mIoU"] <= 100


def test_infer_writes_overlay_and_index_pngs_at_input_size(run):
    base, run_dir = run
    images = base / "data" / "images" / "validation"
    single = sorted(images.glob("*.jpg"))[1]
    out = base / "infer"
    infer_seg.main(["--checkpoint", str(run_dir / "model.safetensors"), str(single), str(images), "--out", str(out)])
    index = np.asarray(Image.open(out / f"{single.stem}_index.png"))
    overlay = Image.open(out / f"{single.stem}_overlay.png")
    w, h = Image.open(single).size
    assert index.shape == (h, w) and index.max() < 3 and overlay.size == (w, h) and overlay.mode == "RGB"
    assert len(list((out / "validation").glob("*_index.png"))) == 3  # the folder, mirrored under --out


def test_bad_inputs_give_clear_errors(run, tmp_path):
    base, run_dir = run
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        eval_seg.main(["--checkpoint", str(tmp_path / "nothing.pt")])
    (tmp_path / "corrupt.pt").write_bytes((run_dir / "last.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt.pt.*cannot be read"):
        eval_seg.main(["--checkpoint", str(tmp_path / "corrupt.pt")])

    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    ckpt["meta"]["task"] = "inpainting"
    torch.save(ckpt, tmp_path / "inpaint.pt")
    with pytest.raises(CheckpointError, match="task 'inpainting', but 'segmentation'"):
        eval_seg.main(["--checkpoint", str(tmp_path / "inpaint.pt")])

    other = make_tiny_dataset(tmp_path / "four_classes", num_train=2, sizes_val=((64, 64),))
    (other / "classes.json").write_text(json.dumps({"names": ["a", "b", "c", "d"]}))
    with pytest.raises(CheckpointError, match="has 3 classes, but the data set .* has 4"):
        eval_seg.main(["--checkpoint", str(run_dir / "last.pt"), f"data.root={other}"])
    with pytest.raises(ConfigError, match="did you mean data.root"):
        eval_seg.main(["--checkpoint", str(run_dir / "last.pt"), "data.rot=x"])
    with pytest.raises(FileNotFoundError, match="no_such.jpg"):
        infer_seg.main(["--checkpoint", str(run_dir / "last.pt"), str(tmp_path / "no_such.jpg"), "--out", "x"])
