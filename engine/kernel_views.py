"""CARAFE / CARAFE++ kernel views (the paper's Figure 9): where sampled output pixels draw from.

``capture_kernels`` records, during one forward pass, the normalised reassembly kernels of
every CARAFE layer (forward hooks on ``carafe_op.KernelPredictor``). ``render_kernel_view``
draws, for a few output pixels of one layer, the k x k input locations their kernel reads,
shaded by weight, on top of the input image: one panel per sampled pixel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from carafe_op import KernelPredictor

POINT_FRACTIONS = ((0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7))
TAP_COLOUR = (255, 40, 40)
PIXEL_COLOUR = (40, 255, 255)


@dataclass
class KernelCapture:
    """One layer's kernels for the first image of the batch.

    ``kernels``: (G*k*k, H_out, W_out); ``input_size``: the (H, W) of the layer's input map.
    """

    name: str
    upsample: bool
    scale: int
    kernel_size: int
    groups: int
    input_size: tuple[int, int]
    kernels: torch.Tensor

    @property
    def output_size(self) -> tuple[int, int]:
        return int(self.kernels.shape[-2]), int(self.kernels.shape[-1])

    def taps(self, y: int, x: int) -> list[tuple[int, int, float]]:
        """``(row, col, weight)`` in the input map for output pixel ``(y, x)`` (weights averaged over
        groups; taps outside the map, which read zeros, are left out)."""
        k, r = self.kernel_size, self.kernel_size // 2
        weights = self.kernels[:, y, x].float().view(self.groups, k * k).mean(0)
        cy, cx = (y // self.scale, x // self.scale) if self.upsample else (y * self.scale, x * self.scale)
        out = []
        for t, w in enumerate(weights.tolist()):
            row, col = cy + t // k - r, cx + t % k - r
            if 0 <= row < self.input_size[0] and 0 <= col < self.input_size[1]:
                out.append((row, col, w))
        return out


@contextlib.contextmanager
def capture_kernels(model: nn.Module) -> Iterator[list[KernelCapture]]:
    """Within the block, forward passes of ``model`` append one ``KernelCapture`` per CARAFE layer call."""
    captured: list[KernelCapture] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, KernelPredictor):
            layer = name.removesuffix(".predictor").removeprefix("module.")

            def hook(mod: KernelPredictor, inputs: tuple, output: torch.Tensor, layer: str = layer) -> None:
                captured.append(KernelCapture(
                    layer, mod.upsample, mod.scale_factor, mod.kernel_size, mod.groups,
                    (int(inputs[0].shape[-2]), int(inputs[0].shape[-1])), output[0].detach().float().cpu(),
                ))

            handles.append(module.register_forward_hook(hook))
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def default_points(
    capture: KernelCapture, fractions: Sequence[tuple[float, float]] = POINT_FRACTIONS
) -> list[tuple[int, int]]:
    """Output pixels at fixed fractions of the output map (the same places in every view)."""
    h, w = capture.output_size
    return [(min(h - 1, int(fy * h)), min(w - 1, int(fx * w))) for fy, fx in fractions]


def render_kernel_view(image: np.ndarray, capture: KernelCapture, points: Sequence[tuple[int, int]] | None = None,
                       panel: int = 160, margin: int = 2) -> np.ndarray:
    """Panels (one per output pixel) zoomed on the pixel's neighbourhood in ``image`` (H, W, 3
    uint8, the network input): the pixel is ringed in cyan and the input cells its kernel reads
    are shaded red with opacity 0.7 x weight / the kernel's largest weight. The window spans the
    kernel's footprint plus ``margin`` cells on each side (clipped to the image).
    Returns (panel, n * (panel + 2) - 2, 3) uint8."""
    points = list(points) if points is not None else default_points(capture)
    h, w = image.shape[:2]
    in_h, in_w = capture.input_size
    out_h, out_w = capture.output_size
    cell_y, cell_x = h / in_h, w / in_w
    reach = capture.kernel_size // 2 + margin
    panels = []
    for y, x in points:
        taps = capture.taps(y, x)
        s = capture.scale
        cy, cx = (y // s, x // s) if capture.upsample else (y * s, x * s)
        y0, y1 = max(0, int((cy - reach) * cell_y)), min(h, int(np.ceil((cy + reach + 1) * cell_y)))
        x0, x1 = max(0, int((cx - reach) * cell_x)), min(w, int(np.ceil((cx + reach + 1) * cell_x)))
        f = panel / max(y1 - y0, x1 - x0)
        view = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (round((x1 - x0) * f), round((y1 - y0) * f)),
                          interpolation=cv2.INTER_NEAREST if f > 2 else cv2.INTER_LINEAR).astype(np.float32)
        top = max((t[2] for t in taps), default=1.0) or 1.0
        for row, col, weight in taps:
            ty0, ty1 = round((row * cell_y - y0) * f), round(((row + 1) * cell_y - y0) * f)
            tx0, tx1 = round((col * cell_x - x0) * f), round(((col + 1) * cell_x - x0) * f)
            a = 0.7 * max(weight, 0.0) / top
            region = view[max(ty0, 0):max(ty1, ty0 + 1), max(tx0, 0):max(tx1, tx0 + 1)]
            region *= 1 - a
            region += a * np.asarray(TAP_COLOUR, np.float32)
        view = view.astype(np.uint8)
        if capture.upsample:  # the output pixel's own place in the image
            centre = (round(((x + 0.5) * w / out_w - x0) * f), round(((y + 0.5) * h / out_h - y0) * f))
        else:  # a downsampled pixel sits on its source cell (s*y, s*x)
            centre = (round(((cx + 0.5) * cell_x - x0) * f), round(((cy + 0.5) * cell_y - y0) * f))
        cv2.circle(view, centre, max(3, round(0.25 * f * min(h / out_h, w / out_w))), PIXEL_COLOUR, 2, cv2.LINE_AA)
        canvas = np.zeros((panel, panel, 3), np.uint8)
        canvas[: view.shape[0], : view.shape[1]] = view[:panel, :panel]
        panels.append(canvas)
    gap = np.full((panel, 2, 3), 255, np.uint8)
    strip = [panels[0]]
    for p in panels[1:]:
        strip += [gap, p]
    return np.concatenate(strip, axis=1)


def pick_layers(captures: Sequence[KernelCapture], limit: int) -> list[KernelCapture]:
    """At most ``limit`` captures spread evenly over the network (first and last included)."""
    if limit <= 0 or not captures:
        return []
    if len(captures) <= limit:
        return list(captures)
    idx = np.linspace(0, len(captures) - 1, limit).round().astype(int)
    return [captures[i] for i in sorted(set(idx.tolist()))]
