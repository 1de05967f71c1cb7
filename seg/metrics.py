"""Segmentation metrics with the definitions of mmsegmentation's ``IoUMetric`` (SPEC §3).

Per image, pixels whose label is ``ignore_index`` are dropped; over the whole split and per
class, the intersection I, prediction area P, label area L and union U = P + L - I are
summed. aAcc = ΣI / ΣL; IoU_c = I_c / U_c; Acc_c = I_c / L_c; mIoU and mAcc are NaN-ignoring
means (a class with U = 0, resp. L = 0, is left out), reported x100 and rounded to two
decimals. Predictions outside 0..K-1 count in no class (as with mmseg's ``histc``). Counts are
exact int64 sums (mmseg sums float32 histograms; the results agree to the reported decimals).

Boundary accuracy (bAcc, ours, not mmseg's) is the pixel accuracy restricted to a band around
label edges, where content-aware resampling should matter most: a pixel is in the band when a
pixel with another label (the ignore label included) lies within ``width`` pixels of it
(Chebyshev distance); ignored pixels are never scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


def _check_same_shape(pred: torch.Tensor, label: torch.Tensor) -> None:
    if pred.shape != label.shape:
        raise ValueError(f"pred and label must have the same shape, got {tuple(pred.shape)} and {tuple(label.shape)}")


def intersect_and_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                        ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Per-class (I, U, P, L) counts of one image (or batch) as a (4, K) int64 tensor."""
    _check_same_shape(pred, label)
    keep = label != ignore_index
    pred, label = pred[keep].long(), label[keep].long()
    inside = (pred >= 0) & (pred < num_classes)
    area_pred = torch.bincount(pred[inside], minlength=num_classes)[:num_classes]
    label_ok = (label >= 0) & (label < num_classes)
    area_label = torch.bincount(label[label_ok], minlength=num_classes)[:num_classes]
    hit = pred[inside & (pred == label)]
    area_intersect = torch.bincount(hit, minlength=num_classes)[:num_classes]
    area_union = area_pred + area_label - area_intersect
    return torch.stack([area_intersect, area_union, area_pred, area_label])


class IoUMetric:
    """Accumulates ``intersect_and_union`` over a split; ``compute`` gives the summary and per-class table.

    ``totals`` is the (4, K) int64 accumulator: sum it over processes (e.g.
    ``engine.distributed.all_reduce_sum``) before ``compute`` to evaluate a sharded split.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.totals = torch.zeros(4, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Add one prediction (class indices) and its label (same shape; ``ignore_index`` pixels skipped)."""
        self.totals += intersect_and_union(pred.cpu(), label.cpu(), self.num_classes, self.ignore_index)

    def compute(self) -> dict[str, float | list[float]]:
        """``aAcc``, ``mIoU``, ``mAcc`` (x100, 2 decimals), per-class ``IoU`` / ``Acc`` (NaN where undefined)."""
        return compute_metrics(self.totals)


def compute_metrics(totals: torch.Tensor) -> dict[str, float | list[float]]:
    """Metrics from a (4, K) tensor of summed (I, U, P, L), as in mmseg's ``IoUMetric.compute_metrics``."""
    inter, union, _pred, label = (t.double().numpy() for t in totals)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
        acc = inter / label
        aacc = inter.sum() / label.sum()

    def pct(v: float) -> float:
        return float(np.round(v * 100, 2))

    with np.errstate(invalid="ignore"):
        miou = np.nanmean(iou) if np.isfinite(iou).any() else np.nan
        macc = np.nanmean(acc) if np.isfinite(acc).any() else np.nan
    return {
        "aAcc": pct(aacc),
        "mIoU": pct(miou),
        "mAcc": pct(macc),
        "IoU": [pct(v) for v in iou],
        "Acc": [pct(v) for v in acc],
    }


def _check_width(width: int) -> None:
    if width < 1:
        raise ValueError(f"boundary width must be >= 1 pixel, got {width}")


def boundary_band(label: torch.Tensor, width: int) -> torch.Tensor:
    """Bool mask, same shape as ``label`` (H, W) or (N, H, W): pixels within ``width`` px of a label change."""
    _check_width(width)
    if label.dim() not in (2, 3):
        raise ValueError(f"label must be (H, W) or (N, H, W), got shape {tuple(label.shape)}")
    x = label.reshape(-1, 1, *label.shape[-2:]).float()
    size, pad = 2 * width + 1, width
    # replicate padding: the image border is not a label edge
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    highest = F.max_pool2d(padded, size, stride=1)
    lowest = -F.max_pool2d(-padded, size, stride=1)
    return (highest != lowest).reshape(label.shape)


class BoundaryAccuracy:
    """Accumulates correct / scored pixels inside the label-edge band (``boundary_band``)."""

    def __init__(self, width: int = 3, ignore_index: int = IGNORE_INDEX) -> None:
        _check_width(width)
        self.width, self.ignore_index = width, ignore_index
        self.counts = torch.zeros(2, dtype=torch.int64)  # (correct, scored); sum over processes before compute

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Add one prediction (class indices) and its label of the same shape."""
        _check_same_shape(pred, label)
        pred, label = pred.cpu(), label.cpu()
        scored = boundary_band(label, self.width) & (label != self.ignore_index)
        self.counts += torch.stack([(pred[scored] == label[scored]).sum(), scored.sum()]).to(torch.int64)

    def compute(self) -> float:
        """bAcc x100 with two decimals (NaN when no pixel was scored)."""
        return boundary_accuracy(self.counts)


def boundary_accuracy(counts: torch.Tensor) -> float:
    """bAcc x100 (two decimals) from summed (correct, scored) counts; NaN when nothing was scored."""
    correct, scored = (int(v) for v in counts)
    return float(np.round(100 * correct / scored, 2)) if scored else float("nan")


def chance_miou(label_area: torch.Tensor | Sequence[int]) -> float:
    """Expected mIoU (x100) of a prediction drawn uniformly at random among the K classes, given
    the per-class label areas L: I_c = L_c / K, P_c = ΣL / K, U_c = P_c + L_c - I_c; classes with
    no labelled pixels are left out (their IoU is 0 and the metric has no NaN)."""
    area = torch.as_tensor(label_area, dtype=torch.float64)
    k, total = area.numel(), area.sum()
    present = area > 0
    inter = area / k
    union = total / k + area - inter
    return float(np.round((inter[present] / union[present]).mean().item() * 100, 2))


def format_table(results: dict, class_names: Sequence[str]) -> str:
    """The per-class IoU / Acc table followed by the aAcc / mIoU / mAcc summary (mmseg's layout)."""
    width = max([len("Class"), *(len(n) for n in class_names)])
    lines = [f"| {'Class':<{width}} |   IoU  |   Acc  |", f"|{'-' * (width + 2)}|--------|--------|"]
    for name, iou, acc in zip(class_names, results["IoU"], results["Acc"], strict=True):
        lines.append(f"| {name:<{width}} | {_cell(iou)} | {_cell(acc)} |")
    lines += ["", "|  aAcc  |  mIoU  |  mAcc  |", "|--------|--------|--------|",
              f"| {_cell(results['aAcc'])} | {_cell(results['mIoU'])} | {_cell(results['mAcc'])} |"]
    return "\n".join(lines)


def _cell(v: float) -> str:
    return f"{v:6.2f}" if np.isfinite(v) else "   nan"
