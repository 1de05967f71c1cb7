"""Shared test settings: no network calls from albumentations, deterministic seeds."""

import os

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SHARED = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny training runs: tiny tensors gain nothing from
    more, and a busy machine loses a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
