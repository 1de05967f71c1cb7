"""A 2-process gloo DDP run of train_seg.py on the CPU (torchrun) trains, and its distributed
evaluation equals a single-process evaluation of the same checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

from test_train_seg import make_tiny_dataset, tiny_config

import eval_seg
from engine.checkpoint import read_checkpoint

REPO = Path(__file__).resolve().parents[1]


def test_two_process_run_matches_single_process_evaluation(tmp_path):
    root = make_tiny_dataset(tmp_path / "data", sizes_val=((64, 80), (72, 64), (96, 96), (64, 64), (80, 64)))
    cfg = tiny_config(tmp_path / "tiny.yaml", root, tmp_path / "runs", train={"max_iters": 3, "batch_size": 4},
                      log={"num_images": 1, "kernel_layers": 0})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(REPO / "train_seg.py"), "--config", str(cfg), "name=ddp"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "x 2 process(es)" in proc.stdout
    run = tmp_path / "runs" / "ddp"
    assert read_checkpoint(run / "last.pt", task="segmentation")["iteration"] == 3
    distributed = json.loads((run / "metrics.json").read_text())  # 5 val images split 3 + 2 over the ranks

    out = tmp_path / "single.json"
    eval_seg.main(["--checkpoint", str(run / "last.pt"), "--device", "cpu", "--out", str(out)])
    single = json.loads(out.read_text())
    for key in ("aAcc", "mIoU", "mAcc", "per_class", "chance_mIoU"):
        assert single[key] == distributed[key], key
