"""Inpainting metrics against scikit-image and hand-computed cases; baselines; image grids."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaint.baselines import BASELINES, mean_fill
from inpaint.metrics import (
    DEFINITIONS,
    MetricAccumulator,
    evaluate,
    format_table,
    image_metrics,
    l1_percent,
    psnr,
    ssim,
)
from inpaint.visualize import inpainting_grid


def _pair(seed: int, shape=(2, 3, 24, 30), noise=25.0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.float64)
    b = np.clip(a + rng.normal(0, noise, shape), 0, 255).round()
    return a, b


def test_l1_hand_computed():
    target = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    output = target.clone()
    output[0, :, 0, 0] = torch.tensor([0.5, 0.25, 0.0])  # hole pixel, errors 0.5, 0.25, 0
    output[0, :, 1, 1] = 1.0  # known pixel: must not count
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert l1_percent(output, target, mask).item() == pytest.approx(100 * 0.75 / 3)
    mask[0, 0, 0, 1] = 1  # a second hole pixel with zero error halves the mean
    assert l1_percent(output, target, mask).item() == pytest.approx(100 * 0.75 / 6)
    assert math.isnan(l1_percent(output, target, torch.zeros_like(mask)).item())


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_and_ssim_match_scikit_image(seed):
    a, b = _pair(seed)
    out = psnr(torch.from_numpy(b) / 255, torch.from_numpy(a) / 255)
    s = ssim(torch.from_numpy(b) / 255, torch.from_numpy(a) / 255)
    for i in range(a.shape[0]):
        expected_psnr = peak_signal_noise_ratio(a[i], b[i], data_range=255)
        expected_ssim = structural_similarity(
            a[i], b[i], channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert out[i].item() == pytest.approx(expected_psnr, abs=1e-9)
        assert s[i].item() == pytest.approx(expected_ssim, abs=1e-9)
    assert ssim(torch.from_numpy(a) / 255, torch.from_numpy(a) / 255).allclose(torch.ones(2, dtype=torch.float64))


def test_image_metrics_take_minus_one_to_one_images():
    a, b = _pair(2, shape=(1, 3, 16, 16))
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:9, 2:12] = 1
    values = image_metrics(torch.from_numpy(b) / 127.5 - 1, torch.from_numpy(a) / 127.5 - 1, mask)
    hole = mask[0, 0].numpy().astype(bool)
    expected_l1 = 100 * np.abs(a[0][:, hole] - b[0][:, hole]).mean() / 255
    assert values["l1"].item() == pytest.approx(expected_l1)
    assert values["psnr"].item() == pytest.approx(peak_signal_noise_ratio(a[0], b[0], data_range=255))
    assert set(DEFINITIONS) == set(values)


def test_bad_metric_inputs():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="mask"):
        l1_percent(x, x, torch.ones(1, 3, 16, 16))


def test_accumulator_averages_over_images_and_buckets():
    acc = MetricAccumulator()
    target = torch.zeros(3, 3, 16, 16)
    output = target.clone()
    output[1] = 0.5  # errors 0, 0.25 (in [0, 1]), 0
    mask = torch.ones(3, 1, 16, 16)
    acc.update(output, target, mask, ["0-10", "0-10", "10-20"])
    summary = acc.summary()
    assert summary["overall"]["count"] == 3
    assert summary["overall"]["l1"] == pytest.approx(100 * 0.25 / 3)
    assert summary["buckets"]["0-10"]["l1"] == pytest.approx(100 * 0.25 / 2)
    assert summary["buckets"]["10-20"] == {"l1": 0.0, "psnr": math.inf, "ssim": pytest.approx(1.0), "count": 1}
    other = MetricAccumulator()
    other.extend(acc.rows)
    assert other.summary() == summary
    table = format_table({"mean fill": summary, "other": summary}).splitlines()
    assert table[2].startswith("| all | mean fill | 8.33 |") and table[4].startswith("| 0-10% | mean fill | 12.50 |")
    with pytest.raises(ValueError, match="bucket names"):
        acc.update(output, target, mask, ["0-10"])


def test_baselines_fill_only_holes_and_beat_nothing():
    torch.manual_seed(0)
    y = torch.linspace(-0.2, 0.9, 32)
    image = (y.view(1, 1, -1, 1) + y.view(1, 1, 1, -1) / 2).expand(2, 3, 32, 32).contiguous()  # a smooth ramp
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 10:16, 8:20] = 1
    zero = image * (1 - mask)  # holes left at 0
    zero_l1 = image_metrics(zero, image, mask)["l1"]
    for name, fill in BASELINES.items():
        out = fill(image, mask)
        assert out.shape == image.shape and out.dtype == image.dtype
        assert torch.equal(out * (1 - mask), image * (1 - mask)), name
        if name != "mean fill":  # diffusion-style fills recover a smooth ramp far better than a constant
            assert (image_metrics(out, image, mask)["l1"] < 0.5 * zero_l1).all(), name
    filled = mean_fill(image, mask)
    known_mean = image[0, 0][mask[0, 0] == 0].mean()
    assert filled[0, 0, 12, 10].item() == pytest.approx(known_mean.item(), abs=1e-6)


def test_evaluate_runs_a_fill_over_batches():
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 2:6, 2:6] = 1
    batches = [{"image": image, "mask": mask, "bucket": ["0-10", "0-10"]}]
    summary = evaluate(lambda x, m: x, batches).summary()  # the identity "fill" is perfect
    assert summary["overall"]["l1"] == 0 and summary["overall"]["count"] == 2


def test_grid_layout():
    n, h, w = 2, 8, 10
    image = torch.full((n, 3, h, w), -1.0)
    mask = torch.zeros(n, 1, h, w)
    mask[..., :4, :] = 1
    prediction = torch.ones(n, 3, h, w)
    grid = inpainting_grid(image, mask, prediction, prediction, padding=0)
    assert grid.dtype == torch.uint8 and grid.shape == (3, n * h, 4 * w)
    assert (grid[:, :4, :w] == 255).all() and (grid[:, 4:h, :w] == 0).all()  # holes painted white
    assert (grid[:, :, w : 3 * w] == 255).all() and (grid[:, :, 3 * w :] == 0).all()
