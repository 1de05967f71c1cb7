"""Huge-page advice for the CPU kernels' output buffers: when it is given, and that it changes no result."""

import re
import sys
from pathlib import Path

import pytest
import torch
from carafe_cases import random_case

from carafe_op import carafe, carafe_down
from carafe_op.huge_pages import HUGE_PAGE_BYTES, MIN_HUGE_PAGES, advise_huge_pages

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_mode() -> str | None:
    """The selected transparent-huge-page mode ('always', 'madvise', 'never'), None if unknown."""
    if not THP_SETTING.exists():
        return None
    match = re.search(r"\[(\w+)\]", THP_SETTING.read_text())
    return match.group(1) if match else None


def test_small_tensors_are_left_alone():
    assert not advise_huge_pages(torch.empty(MIN_HUGE_PAGES * HUGE_PAGE_BYTES // 4 - 1, dtype=torch.float32))


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_HUGE_PAGES", "0")
    assert not advise_huge_pages(torch.empty((MIN_HUGE_PAGES + 1) * HUGE_PAGE_BYTES // 4, dtype=torch.float32))


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_HUGE_PAGES", "off")
    with pytest.raises(ValueError, match="CARAFE_OP_HUGE_PAGES must be '0' or '1', got 'off'"):
        advise_huge_pages(torch.empty(4, dtype=torch.float32))


@pytest.mark.skipif(not sys.platform.startswith("linux") or _thp_mode() not in ("always", "madvise"),
                    reason="needs Linux with transparent huge pages in 'always' or 'madvise' mode")
def test_large_buffers_are_advised(monkeypatch):
    monkeypatch.delenv("CARAFE_OP_HUGE_PAGES", raising=False)
    assert advise_huge_pages(torch.empty((MIN_HUGE_PAGES + 1) * HUGE_PAGE_BYTES // 4, dtype=torch.float32))


@pytest.mark.parametrize("upsample", [True, False])
def test_results_do_not_depend_on_huge_pages(monkeypatch, upsample):
    """Outputs and gradients large enough to be advised (32 MiB) are the same with and without."""
    size = 128 if upsample else 256
    features, masks = random_case(1, 128, size, size, 3, 1, 2, upsample, dtype=torch.float32)
    op = carafe if upsample else carafe_down
    results = []
    for setting in ("1", "0"):
        monkeypatch.setenv("CARAFE_OP_HUGE_PAGES", setting)
        x = features.clone().requires_grad_()
        w = masks.clone().requires_grad_()
        out = op(x, w, 3, 1, 2)
        out.backward(torch.ones_like(out))
        results.append((out.detach(), x.grad, w.grad))
    for with_huge, without in zip(*results, strict=True):
        assert torch.equal(with_huge, without)
