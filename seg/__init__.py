"""Semantic segmentation with CARAFE++: ResNet backbone + UperNet, each resampling point switchable."""

from .model import Segmentor, build_segmentor, count_carafe_modules
from .weights import LoadReport, load_backbone_weights, load_state, read_state_dict

__all__ = [
    "LoadReport",
    "Segmentor",
    "build_segmentor",
    "count_carafe_modules",
    "load_backbone_weights",
    "load_state",
    "read_state_dict",
]
