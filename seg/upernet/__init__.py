"""UperNet decoder blocks: PPM, FPN, FUSE, and the prediction heads."""

from .decoder import UperNetDecoder
from .fpn import FPN, FPN_MODES
from .fuse import FUSE_MODES, Fuse
from .head import AUX_LOSS_WEIGHT, Classifier, FCNAuxHead
from .ppm import PPM, PPM_MODES

__all__ = [
    "AUX_LOSS_WEIGHT",
    "FPN",
    "FPN_MODES",
    "FUSE_MODES",
    "PPM",
    "PPM_MODES",
    "Classifier",
    "FCNAuxHead",
    "Fuse",
    "UperNetDecoder",
]
