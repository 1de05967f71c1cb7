"""Inpainting metrics (SPEC §3): L1 (%), PSNR and SSIM, per image, overall and per hole-ratio bucket.

The metric functions take images in [0, 1], shape (N, 3, H, W), and return one value per image;
``image_metrics`` takes the model's [-1, 1] outputs. ``MetricAccumulator`` collects the per-image
values of a whole evaluation (with each mask's hole-ratio bucket) and averages them over images.
``DEFINITIONS`` is printed by the CLIs and written into their JSON, so every number says what it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

METRICS = ("l1", "psnr", "ssim")
DEFINITIONS = {
    "l1": "L1 (%) = 100 * mean |output - ground truth| over the hole pixels and the 3 channels, pixels in [0, 1]; "
    "per image, then averaged over images",
    "psnr": "PSNR (dB) = 20 * log10(255 / sqrt(MSE)), MSE over all pixels and channels of the composited image "
    "in [0, 255]; per image, then averaged over images",
    "ssim": "SSIM of the composited image in [0, 255]: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, "
    "data range 255, population covariances, mean over the window positions inside the image, per channel then "
    "averaged (= scikit-image structural_similarity(gaussian_weights=True, sigma=1.5, "
    "use_sample_covariance=False, data_range=255)); per image, then averaged over images",
}
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def _check_pair(output: torch.Tensor, target: torch.Tensor) -> None:
    if output.shape != target.shape or output.dim() != 4:
        raise ValueError(
            f"output and target must be (N, C, H, W) images of the same shape, got {tuple(output.shape)} "
            f"and {tuple(target.shape)}"
        )


def to_unit_range(image: torch.Tensor) -> torch.Tensor:
    """A [-1, 1] image mapped to [0, 1] (clamped), in float64 so that metrics do not depend on the dtype."""
    return ((image.detach().double() + 1) / 2).clamp(0, 1)


def l1_percent(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: 100 * mean |output − target| over hole pixels (``mask`` (N, 1, H, W), 1 = hole) and channels.

    An image without hole pixels gets NaN (left out of ``MetricAccumulator``'s averages).
    """
    _check_pair(output, target)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"mask must be (N, 1, H, W) matching the images, got {tuple(mask.shape)}")
    mask = mask.to(output.dtype)
    error = ((output - target).abs() * mask).sum(dim=(1, 2, 3))
    count = mask.sum(dim=(1, 2, 3)) * output.shape[1]
    return 100 * error / count


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: 20·log10(255 / √MSE) with pixels scaled to [0, 255] (inf for identical images)."""
    _check_pair(output, target)
    mse = ((output - target) * 255).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(255**2 / mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - SSIM_WINDOW // 2
    window = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return window / window.sum()


def ssim(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: SSIM of ``DEFINITIONS["ssim"]`` with pixels scaled to [0, 255].

    Written out rather than taken from torchmetrics, whose SSIM differs from scikit-image's by
    ~1e-3 (border handling) and whose PSNR computes in float32; these equal scikit-image's to
    float64 precision. Images must be at least 11x11.
    """
    _check_pair(output, target)
    if min(output.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(output.shape[-2:])}")
    x, y = output * 255, target * 255
    channels = x.shape[1]
    window = _gaussian_window(x.dtype, x.device)
    rows = window.view(1, 1, 1, -1).expand(channels, 1, 1, SSIM_WINDOW)
    cols = window.view(1, 1, -1, 1).expand(channels, 1, SSIM_WINDOW, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # "valid" separable Gaussian filter, per channel
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x**2
    var_y = blur(y * y) - mean_y**2
    cov = blur(x * y) - mean_x * mean_y
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def image_metrics(composited: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1 (%), PSNR and SSIM per image for [-1, 1] images and a hole mask (1 = hole); float64 (N,) each."""
    output, truth = to_unit_range(composited), to_unit_range(target)
    return {"l1": l1_percent(output, truth, mask), "psnr": psnr(output, truth), "ssim": ssim(output, truth)}


def _mean(values: Iterable[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


class MetricAccumulator:
    """Per-image metric values of a whole evaluation, averaged over images overall and per bucket.

    ``rows`` (one dict per image: ``l1``, ``psnr``, ``ssim``, ``bucket``) can be gathered from
    several processes and ``extend``-ed, so a distributed evaluation gives the same averages.
    """

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def update(
        self,
        composited: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
        buckets: Sequence[str | None] | None = None,
    ) -> None:
        values = image_metrics(composited, target, mask)
        buckets = [None] * len(target) if buckets is None else list(buckets)
        if len(buckets) != len(target):
            raise ValueError(f"got {len(buckets)} bucket names for {len(target)} images")
        for i, bucket in enumerate(buckets):
            self.rows.append({name: float(values[name][i]) for name in METRICS} | {"bucket": bucket})

    def extend(self, rows: Iterable[dict]) -> None:
        self.rows.extend(rows)

    def summary(self) -> dict:
        """``{"overall": {l1, psnr, ssim, count}, "buckets": {name: {...}}}`` (buckets in first-seen order)."""

        def averages(rows: list[dict]) -> dict:
            return {name: _mean(row[name] for row in rows) for name in METRICS} | {"count": len(rows)}

        buckets: dict[str, list[dict]] = {}
        for row in self.rows:
            if row["bucket"] is not None:
                buckets.setdefault(row["bucket"], []).append(row)
        return {"overall": averages(self.rows), "buckets": {name: averages(rows) for name, rows in buckets.items()}}


FillFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def evaluate(fill: FillFunction, batches: Iterable[dict], device: torch.device | str = "cpu") -> MetricAccumulator:
    """Run ``fill(image, mask) -> composited`` (all [-1, 1], masks 1 = hole) over ``batches`` of
    ``{"image", "mask"[, "bucket"]}`` and collect the per-image metrics."""
    accumulator = MetricAccumulator()
    for batch in batches:
        image, mask = batch["image"].to(device), batch["mask"].to(device)
        accumulator.update(fill(image, mask).cpu(), image.cpu(), mask.cpu(), batch.get("bucket"))
    return accumulator


def format_table(results: dict[str, dict]) -> str:
    """A markdown table: every method on all images, then every method per hole-ratio bucket."""
    lines = ["| holes | method | L1 (%) | PSNR (dB) | SSIM | images |", "|---|---|---:|---:|---:|---:|"]
    groups = [("all", {method: s["overall"] for method, s in results.items()})]
    bucket_names = dict.fromkeys(name for s in results.values() for name in s["buckets"])
    groups += [(f"{name}%", {m: s["buckets"][name] for m, s in results.items() if name in s["buckets"]})
               for name in bucket_names]
    for holes, by_method in groups:
        for method, v in by_method.items():
            lines.append(f"| {holes} | {method} | {v['l1']:.2f} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['count']} |")
    return "\n".join(lines)
