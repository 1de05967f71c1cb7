"""Albumentations transforms for the segmentation pipelines (SPEC §3).

``FitResize`` covers both resize rules in use: the paper's (short edge from a set, long edge
capped) and mmsegmentation's ``RandomResize(scale=(2048, 512), ratio_range=(0.5, 2.0),
keep_ratio=True)``; both are "scale = min(short / short_edge, long / long_edge)".
``CatMaxRandomCrop`` is mmsegmentation's ``RandomCrop(cat_max_ratio=...)``;
``PhotoMetricDistortion`` is mmsegmentation's transform of that name. Images are resized
bilinearly, labels with nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np


def _as_tuple(v: float | Sequence[float]) -> tuple[float, ...]:
    return tuple(v) if isinstance(v, Sequence) else (v,)


class FitResize(A.DualTransform):
    """Keep-ratio resize so that short side ≤ S and long side ≤ L, with one side reaching its bound.

    ``scale = min(S / short_side, L / long_side)`` where S is drawn from ``short_edges`` and
    L = ``long_edge``; with ``ratio_range`` both are first multiplied by r ~ U(ratio_range)
    (mmsegmentation's ``RandomResize``). The new size is ``int(side * scale + 0.5)``.
    """

    def __init__(
        self,
        short_edges: int | Sequence[int],
        long_edge: int,
        ratio_range: tuple[float, float] | None = None,
        interpolation: int = cv2.INTER_LINEAR,
        p: float = 1.0,
    ):
        super().__init__(p=p)
        self.short_edges = tuple(int(s) for s in _as_tuple(short_edges))
        self.long_edge = int(long_edge)
        self.ratio_range = None if ratio_range is None else (float(ratio_range[0]), float(ratio_range[1]))
        self.interpolation = interpolation
        if not self.short_edges or min(self.short_edges) <= 0 or self.long_edge <= 0:
            raise ValueError("FitResize needs positive short_edges and long_edge")

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        short = float(self.py_random.choice(self.short_edges))
        long = float(self.long_edge)
        if self.ratio_range is not None:
            r = self.py_random.uniform(*self.ratio_range)
            short, long = short * r, long * r
        scale = min(short / min(h, w), long / max(h, w))
        return {"size": (max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5)))}

    def apply(self, img: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        if img.shape[:2] == size:
            return img
        return cv2.resize(img, (size[1], size[0]), interpolation=self.interpolation)

    def apply_to_mask(self, mask: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        if mask.shape[:2] == size:
            return mask
        return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("short_edges", "long_edge", "ratio_range", "interpolation")


class CatMaxRandomCrop(A.DualTransform):
    """Random crop of at most (height, width) whose dominant class covers < ``cat_max_ratio``.

    mmsegmentation's rule: up to 10 re-draws until the crop has more than one non-ignore
    class and the largest covers less than ``cat_max_ratio`` of the non-ignore pixels; the
    last draw is kept otherwise. An image smaller than the crop is not padded here (pad
    afterwards, e.g. ``PadIfNeeded`` with the ignore value for the label).
    """

    def __init__(
        self,
        height: int,
        width: int,
        cat_max_ratio: float = 0.75,
        ignore_index: int = 255,
        max_tries: int = 10,
        p: float = 1.0,
    ):
        super().__init__(p=p)
        self.height, self.width = int(height), int(width)
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_index = int(ignore_index)
        self.max_tries = int(max_tries)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        ch, cw = min(self.height, h), min(self.width, w)

        def draw() -> tuple[int, int]:
            return self.py_random.randint(0, h - ch), self.py_random.randint(0, w - cw)

        y, x = draw()
        mask = data.get("mask")
        if mask is not None and self.cat_max_ratio < 1.0:
            for _ in range(self.max_tries):
                crop = mask[y : y + ch, x : x + cw]
                counts = np.bincount(crop.ravel(), minlength=self.ignore_index + 1)
                if self.ignore_index < len(counts):
                    counts[self.ignore_index] = 0
                counts = counts[counts > 0]
                if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                    break
                y, x = draw()
        return {"crop": (y, x, ch, cw)}

    def apply(self, img: np.ndarray, crop: tuple[int, int, int, int], **params: Any) -> np.ndarray:
        y, x, ch, cw = crop
        return np.ascontiguousarray(img[y : y + ch, x : x + cw])

    def apply_to_mask(self, mask: np.ndarray, crop: tuple[int, int, int, int], **params: Any) -> np.ndarray:
        y, x, ch, cw = crop
        return np.ascontiguousarray(mask[y : y + ch, x : x + cw])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width", "cat_max_ratio", "ignore_index", "max_tries")


class PhotoMetricDistortion(A.ImageOnlyTransform):
    """mmsegmentation's PhotoMetricDistortion on uint8 RGB, each step applied with p = 0.5:
    brightness delta U(-32, 32); contrast ×U(0.5, 1.5) (before or after the colour steps,
    at random); saturation ×U(0.5, 1.5); hue shift of U{-18..18} (OpenCV's 0..179 hue).
    Each step clips to 0..255 and truncates to uint8, as mmsegmentation does."""

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: int = 18,
        p: float = 1.0,
    ):
        super().__init__(p=p)
        self.brightness_delta = int(brightness_delta)
        self.contrast_range = tuple(contrast_range)
        self.saturation_range = tuple(saturation_range)
        self.hue_delta = int(hue_delta)

    def get_params(self) -> dict[str, Any]:
        r = self.py_random
        brightness = r.uniform(-self.brightness_delta, self.brightness_delta) if r.randint(0, 1) else None
        contrast_first = r.randint(0, 1) == 1
        contrast = r.uniform(*self.contrast_range) if r.randint(0, 1) else None
        saturation = r.uniform(*self.saturation_range) if r.randint(0, 1) else None
        hue = r.randint(-self.hue_delta, self.hue_delta) if r.randint(0, 1) else None
        return {
            "brightness": brightness,
            "contrast_first": contrast_first,
            "contrast": contrast,
            "saturation": saturation,
            "hue": hue,
        }

    @staticmethod
    def _affine(channel_or_img: np.ndarray, alpha: float, beta: float) -> np.ndarray:
        lut = np.clip(np.arange(256, dtype=np.float32) * alpha + beta, 0, 255).astype(np.uint8)
        return cv2.LUT(channel_or_img, lut)

    def apply(
        self,
        img: np.ndarray,
        brightness: float | None = None,
        contrast_first: bool = True,
        contrast: float | None = None,
        saturation: float | None = None,
        hue: int | None = None,
        **params: Any,
    ) -> np.ndarray:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError("PhotoMetricDistortion expects an (H, W, 3) uint8 RGB image")
        if brightness is not None:
            img = self._affine(img, 1.0, brightness)
        if contrast_first and contrast is not None:
            img = self._affine(img, contrast, 0.0)
        if saturation is not None or hue is not None:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            if saturation is not None:
                hsv[..., 1] = self._affine(np.ascontiguousarray(hsv[..., 1]), saturation, 0.0)
            if hue is not None:
                hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + hue) % 180).astype(np.uint8)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if not contrast_first and contrast is not None:
            img = self._affine(img, contrast, 0.0)
        return img

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("brightness_delta", "contrast_range", "saturation_range", "hue_delta")
