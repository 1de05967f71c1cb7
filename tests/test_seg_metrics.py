"""seg.metrics against hand-computed cases (mmsegmentation IoUMetric definitions, SPEC §3)."""

import math

import numpy as np
import pytest
import torch

from seg.metrics import (
    IGNORE_INDEX,
    BoundaryAccuracy,
    IoUMetric,
    boundary_band,
    chance_miou,
    compute_metrics,
    format_table,
    intersect_and_union,
)

IGN = 255


def test_intersect_and_union_by_hand():
    pred = torch.tensor([[0, 0, 1], [1, 2, 2]])
    label = torch.tensor([[0, 1, 1], [IGN, 2, 0]])
    # kept pixels (label != 255): pred 0,0,1,2,2 vs label 0,1,1,2,0
    inter, union, area_pred, area_label = intersect_and_union(pred, label, 3, IGN).tolist()
    assert area_pred == [2, 1, 2]
    assert area_label == [2, 2, 1]
    assert inter == [1, 1, 1]
    assert union == [3, 2, 2]


def test_metric_over_images_with_absent_class_and_ignore():
    metric = IoUMetric(num_classes=4)
    # image 1: class 0 perfect, class 1 half right; an ignored pixel predicted as 3 does not count
    metric.update(torch.tensor([[0, 0, 1, 0, 3]]), torch.tensor([[0, 0, 1, 1, IGN]]))
    # image 2: class 2 fully missed (predicted 1)
    metric.update(torch.tensor([[1, 1]]), torch.tensor([[2, 2]]))
    r = metric.compute()
    # I = [2, 1, 0, 0], P = [3, 3, 0, 0], L = [2, 2, 2, 0], U = [3, 4, 2, 0]
    assert r["IoU"][:3] == [round(200 / 3, 2), 25.0, 0.0] and math.isnan(r["IoU"][3])  # class 3: U = 0 -> NaN
    assert r["Acc"][:3] == [100.0, 50.0, 0.0] and math.isnan(r["Acc"][3])
    assert r["aAcc"] == 50.0  # 3 / 6
    assert r["mIoU"] == round((2 / 3 + 0.25 + 0.0) / 3 * 100, 2)  # NaN class left out of the mean
    assert r["mAcc"] == 50.0


def test_predicted_but_unlabelled_class_counts_in_miou_not_macc():
    r = compute_metrics(torch.tensor([[1, 0], [1, 1], [1, 1], [1, 0]]))  # I, U, P, L per class
    # class 1: I = 0, U = 1, P = 1, L = 0 -> IoU 0 (in the mean), Acc NaN (left out)
    assert r["IoU"] == [100.0, 0.0] and r["mIoU"] == 50.0
    assert math.isnan(r["Acc"][1]) and r["mAcc"] == 100.0


def test_out_of_range_predictions_count_in_no_class():
    inter, union, area_pred, area_label = intersect_and_union(torch.tensor([5, 0]), torch.tensor([0, 0]), 2)
    assert area_pred.tolist() == [1, 0] and inter.tolist() == [1, 0] and union.tolist() == [2, 0]


def test_matches_a_direct_numpy_implementation_on_random_data():
    rng = np.random.default_rng(0)
    k, metric, totals = 6, IoUMetric(6), np.zeros((4, 6))
    for _ in range(5):
        pred = rng.integers(0, k, (17, 23))
        label = rng.integers(0, k + 1, (17, 23))
        label[label == k] = IGN
        metric.update(torch.from_numpy(pred), torch.from_numpy(label))
        m = label != IGN
        p, lab = pred[m], label[m]
        for c in range(k):
            i = np.sum((p == c) & (lab == c))
            totals[:, c] += [i, np.sum(p == c) + np.sum(lab == c) - i, np.sum(p == c), np.sum(lab == c)]
    r = metric.compute()
    assert r["mIoU"] == pytest.approx(round(np.mean(totals[0] / totals[1]) * 100, 2))
    assert r["aAcc"] == pytest.approx(round(totals[0].sum() / totals[3].sum() * 100, 2))


def test_chance_miou_and_table():
    # two equally frequent classes, uniform guess: I = L/2, U = P + L - I = 50 + 100 - 50 -> IoU 1/3
    assert chance_miou([100, 100]) == pytest.approx(33.33)
    # three classes, one never labelled (left out): I = 100/3, U = 200/3 + 100 - 100/3 -> IoU 1/4
    assert chance_miou([100, 100, 0]) == pytest.approx(25.0)
    table = format_table({"IoU": [50.0, float("nan")], "Acc": [60.0, float("nan")], "aAcc": 70.0, "mIoU": 50.0,
                          "mAcc": 60.0}, ["wall", "sky"])
    assert "| wall  |  50.00 |  60.00 |" in table and "nan" in table and "|  70.00 |  50.00 |  60.00 |" in table


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        intersect_and_union(torch.zeros(2, 3), torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match="num_classes"):
        IoUMetric(0)


# --------------------------------------------------------------------------- boundary accuracy


def test_boundary_band_marks_pixels_within_width_of_a_label_change():
    label = torch.zeros(8, 10, dtype=torch.long)
    label[:, 5:] = 1  # one vertical edge between columns 4 and 5
    band = boundary_band(label, 2)
    expected = torch.zeros(8, 10, dtype=torch.bool)
    expected[:, 3:7] = True  # two columns either side
    assert torch.equal(band, expected)
    assert not boundary_band(torch.full((5, 5), 3), 1).any()  # image borders are not edges


def test_boundary_band_counts_ignore_as_a_label_and_accepts_batches():
    label = torch.zeros(2, 6, 6, dtype=torch.long)
    label[1, 3:, :] = IGNORE_INDEX
    band = boundary_band(label, 1)
    assert not band[0].any()
    assert band[1, 2:4].all() and not band[1, :2].any() and not band[1, 4:].any()


def test_boundary_accuracy_scores_only_the_band_and_skips_ignored_pixels():
    label = torch.zeros(6, 6, dtype=torch.long)
    label[:, 3:] = 1
    label[0, :] = IGNORE_INDEX
    pred = label.clone()
    pred[pred == IGNORE_INDEX] = 0
    pred[5, 2] = 1   # wrong, inside the band
    pred[3, 0] = 1   # wrong, outside the band (the band is columns 2-3 and rows 0-1)
    metric = BoundaryAccuracy(width=1)
    metric.update(pred, label)
    band = boundary_band(label, 1) & (label != IGNORE_INDEX)
    assert int(metric.counts[1]) == int(band.sum())
    assert int(metric.counts[0]) == int(band.sum()) - 1
    assert metric.compute() == pytest.approx(round(100 * (band.sum().item() - 1) / band.sum().item(), 2))


def test_boundary_accuracy_rejects_bad_width_and_shapes():
    with pytest.raises(ValueError, match="width"):
        BoundaryAccuracy(width=0)
    with pytest.raises(ValueError, match="same shape"):
        BoundaryAccuracy().update(torch.zeros(4, 4), torch.zeros(4, 5))
    assert math.isnan(BoundaryAccuracy().compute())
