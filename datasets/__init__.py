"""Data layer: ADE20K and Places loaders, embedded mini data sets, inpainting masks.

Submodules (imported on demand, so ``python -m datasets.make_masks`` stays light):

- ``datasets.ade20k``: ``ADE20KDataset``, ``build_transform`` ("paper", "mmseg", "val_paper", "val_mmseg")
- ``datasets.places``: ``PlacesDataset``, ``ImageFolderDataset``
- ``datasets.collate``: ``pad_collate``, ``AspectRatioBatchSampler``
- ``datasets.masks``: ``free_form_mask``, ``random_box_mask``, ``MaskGenerator``, ``hole_ratio``,
  ``write_mask_set``, ``load_mask_set``
- ``datasets.embedded``: ``ensure_texture_scenes``, ``ensure_places_photos``
- ``datasets.ade20k_classes``: ``ADE20K_CLASSES``, ``ADE20K_SHORT_NAMES``, ``ADE20K_PALETTE``
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ADE20KDataset": "ade20k",
    "build_transform": "ade20k",
    "PlacesDataset": "places",
    "ImageFolderDataset": "places",
    "pad_collate": "collate",
    "AspectRatioBatchSampler": "collate",
    "free_form_mask": "masks",
    "random_box_mask": "masks",
    "MaskGenerator": "masks",
    "hole_ratio": "masks",
    "write_mask_set": "masks",
    "load_mask_set": "masks",
    "ensure_texture_scenes": "embedded",
    "ensure_places_photos": "embedded",
    "ImageReadError": "_io",
    "LabelFormatError": "_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
