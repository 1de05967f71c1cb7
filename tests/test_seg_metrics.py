"""seg.metrics against hand-computed cases (mmsegmentation IoUMetric definitions, SPEC §3)."""

import math

import numpy as np
import pytest
import torch

from seg.metrics import IoUMetric, chance_miou, compute_metrics, format_table, intersect_and_union

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
