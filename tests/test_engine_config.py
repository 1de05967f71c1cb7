"""engine.config: inheritance, checked overrides with close-match hints, saving; every seg config loads."""

from pathlib import Path

import pytest

from engine.config import ConfigError, apply_overrides, load_config, parse_value, save_config
from seg.backbone.resnet import BACKBONE_RESAMPLERS, BACKBONES
from seg.upernet import FPN_MODES, FUSE_MODES, PPM_MODES

SEG_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "seg").glob("*.yaml"))


@pytest.fixture
def chain(tmp_path):
    (tmp_path / "base.yaml").write_text("a: 1\nlr: 0.1\ntrain:\n  max_iters: 10\n  amp: auto\n  clip: null\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\ntrain:\n  max_iters: 20\n")
    return tmp_path


def test_inheritance_and_overrides(chain):
    cfg = load_config(chain / "child.yaml", ["train.amp=fp16", "lr=1e-4", "train.clip=[1, 2]"])
    assert cfg == {"a": 1, "lr": 1e-4, "train": {"max_iters": 20, "amp": "fp16", "clip": [1, 2]}}
    assert apply_overrides(cfg, ["a=3"])["a"] == 3 and cfg["a"] == 1  # no mutation
    assert parse_value("true") is True and parse_value("null") is None and parse_value("x/y") == "x/y"


def test_unknown_keys_list_close_matches(chain):
    with pytest.raises(ConfigError, match=r"'train\.max_iter'.*did you mean train\.max_iters"):
        load_config(chain / "child.yaml", ["train.max_iter=5"])
    with pytest.raises(ConfigError, match=r"'max_iters'.*train\.max_iters"):  # right leaf, wrong section
        load_config(chain / "child.yaml", ["max_iters=5"])
    (chain / "bad.yaml").write_text("_base_: base.yaml\ntrian:\n  max_iters: 3\n")
    with pytest.raises(ConfigError, match=r"'trian' in .*bad\.yaml.*did you mean train"):
        load_config(chain / "bad.yaml")


def test_bad_values_and_files(chain):
    with pytest.raises(ConfigError, match="expects a int"):
        load_config(chain / "child.yaml", ["train.max_iters=abc"])
    with pytest.raises(ConfigError, match="is a section"):
        load_config(chain / "child.yaml", ["train=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(chain / "child.yaml", ["train.max_iters"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(chain / "nope.yaml")
    (chain / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(chain / "broken.yaml")


def test_saved_config_round_trips(chain, tmp_path):
    cfg = load_config(chain / "child.yaml", ["lr=0.5"])
    assert load_config(save_config(cfg, tmp_path / "run" / "config.yaml")) == cfg


@pytest.mark.parametrize("path", SEG_CONFIGS, ids=lambda p: p.stem)
def test_every_segmentation_config_resolves_to_valid_choices(path):
    cfg = load_config(path)
    model = cfg["model"]
    assert model["backbone"] in BACKBONES and model["backbone_resampler"] in BACKBONE_RESAMPLERS
    assert model["ppm"] in PPM_MODES and model["fpn"] in FPN_MODES and model["fuse"] in FUSE_MODES
    assert cfg["train"]["max_iters"] > 0 and cfg["data"]["train_transform"] in ("paper", "mmseg")


def test_paper_configs_cover_table_ix():
    names = {p.stem for p in SEG_CONFIGS}
    for part in ("ppm", "fpn", "fuse", "ppm_fpn", "fpn_fuse", "ppm_fuse", "ppm_fpn_fuse", "backbone"):
        assert f"ade20k_upernet_r50_table9_{part}" in names
    carafe = load_config(SEG_CONFIGS[0].parent / "ade20k_upernet_r101_carafe.yaml")["model"]
    assert carafe["backbone"] == "resnet101" and {carafe[k] for k in ("ppm", "fpn", "fuse")} == {"carafe"}
