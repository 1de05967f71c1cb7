"""Shared test settings: no network calls from albumentations, deterministic seeds."""

import os

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SHARED = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
