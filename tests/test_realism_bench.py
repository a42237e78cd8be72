"""Tests of the realism benchmark's statistics (bench/realism.py) on arrays of known answer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import realism


def _power_law_field(rng, count, size, beta):
    """Gaussian random fields with power spectrum ~ k^beta, (count, size, size)."""
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    amplitude = np.where(k > 0, np.maximum(k, 1e-9) ** (beta / 2.0), 0.0)
    noise = np.fft.fft2(rng.standard_normal((count, size, size)))
    return np.real(np.fft.ifft2(noise * amplitude))


@pytest.mark.parametrize("beta", [-3.0, -2.0])
def test_power_spectrum_slope_of_power_law_field(beta):
    frames = _power_law_field(np.random.default_rng(0), 4, 128, beta)
    k, power = realism.radial_power_spectrum(frames)
    assert k.shape == power.shape == (64,)
    assert k[0] == pytest.approx(1 / 128) and k[-1] == pytest.approx(0.5)
    assert realism.power_law_slope(k, power) == pytest.approx(beta, abs=0.25)


def test_power_spectrum_is_normalised_and_white_noise_is_flat():
    frames = np.random.default_rng(1).standard_normal((4, 64, 64))
    k, power = realism.radial_power_spectrum(frames * 1000.0)
    assert np.all(power > 0)
    assert realism.power_law_slope(k, power) == pytest.approx(0.0, abs=0.2)


def test_axis_lengths_of_bar_are_exact():
    mask = np.zeros((40, 40), bool)
    mask[10:13, 5:25] = True  # 3 rows x 20 columns
    assert realism.axis_lengths(mask) == pytest.approx((20.0, 3.0), abs=1e-9)
    rotated = np.zeros((40, 40), bool)
    for step in range(20):
        rotated[5 + step, 5 + step] = True
    length, width = realism.axis_lengths(rotated)
    assert length == pytest.approx(20 * np.sqrt(2), rel=0.05) and width < 1.5


def test_moving_structure_measures_a_drawn_bar():
    rng = np.random.default_rng(2)
    frames = 50.0 + rng.standard_normal((6, 64, 64))
    frames[4, 30:33, 20:40] += 40.0  # a 3 x 20 px bar appears in frame 4
    frames[5, 30:33, 20:30] += 40.0  # a smaller one in frame 5
    result = realism.moving_structure(frames)
    assert result["frame"] == 4
    assert result["length_px"] == pytest.approx(20.0, abs=1.0)
    assert result["width_px"] == pytest.approx(3.0, abs=0.5)
    assert result["area_px"] == pytest.approx(60, abs=4)


def test_moving_structure_finds_bar_beside_a_noisy_bright_half():
    # A bright "disk" half with 20x the noise of the dark "sky" half: a single global sigma
    # (set by the sky) would flag the whole disk; the local one finds the bar in the sky.
    rng = np.random.default_rng(9)
    frames = 5.0 + rng.standard_normal((4, 64, 64))
    frames[:, :, 40:] = 500.0 + 20.0 * rng.standard_normal((4, 64, 24))
    frames[3, 20:23, 5:25] += 30.0
    result = realism.moving_structure(frames, block_px=32)
    assert result["length_px"] == pytest.approx(20.0, abs=1.0)
    assert result["width_px"] == pytest.approx(3.0, abs=0.5)
    spread = realism.local_spread(frames[3] - frames[0], block_px=16)
    assert spread.shape == (64, 64)
    assert np.median(spread[:, 48:]) > 10 * np.median(spread[:, :32])


def test_moving_structure_of_still_noise_is_small():
    frames = 50.0 + np.random.default_rng(3).standard_normal((5, 64, 64))
    result = realism.moving_structure(frames)
    assert result["area_px"] <= 3


def test_temporal_statistics_frozen_and_independent():
    rng = np.random.default_rng(4)
    still = np.repeat(rng.standard_normal((1, 32, 32)), 8, axis=0) + 1e-3 * rng.standard_normal(
        (8, 32, 32))
    frozen = realism.temporal_statistics(still)
    assert frozen["diff_std_ratio"] < 0.01
    independent = realism.temporal_statistics(rng.standard_normal((40, 32, 32)))
    assert independent["diff_std_ratio"] == pytest.approx(np.sqrt(2), rel=0.05)
    assert abs(independent["lag1_autocorrelation"]) < 0.05
    assert abs(independent["diff_kurtosis"]) < 0.1


def test_noise_curve_recovers_a_known_noise_law():
    rng = np.random.default_rng(5)
    levels, residuals = [], []
    for level in (20.0, 50.0, 200.0):
        sigma = 0.1 * level ** 0.92
        frames = level + sigma * rng.standard_normal((3, 64, 64))
        level_sample, residual = realism.laplacian_residuals(frames)
        levels.append(level_sample)
        residuals.append(residual)
    centres, sigma, _ = realism.noise_curve(np.concatenate(levels), np.concatenate(residuals))
    a, b = realism.fit_power_law(centres, sigma)
    assert b == pytest.approx(0.92, abs=0.08)
    assert a * 50.0 ** b == pytest.approx(0.1 * 50.0 ** 0.92, rel=0.1)


def test_intensity_sample_and_summary():
    rng = np.random.default_rng(6)
    frames = rng.lognormal(0.0, 0.5, size=(3, 32, 32)) * np.array([1.0, 10.0, 100.0])[:, None,
                                                                                       None]
    sample = realism.intensity_sample(frames, rng, per_frame=500)
    assert sample.shape == (1500,)
    assert np.median(sample) == pytest.approx(1.0, abs=0.1)  # level divided out
    summary = realism.intensity_summary(sample, sample)
    assert summary["ks_statistic"] == 0.0 and summary["wasserstein"] == 0.0
    shifted = realism.intensity_summary(sample, sample * 2.0)
    assert shifted["ks_statistic"] > 0.4


def test_two_sample_auc_identical_and_different():
    rng = np.random.default_rng(7)
    groups_a = np.repeat(np.arange(20), 15)
    groups_b = np.repeat(np.arange(20), 15)  # same keys on both sides are kept apart
    first, second = rng.standard_normal((300, 5)), rng.standard_normal((300, 5))
    same = realism.two_sample_auc(first, second, groups_a, groups_b, max_iter=30)
    assert abs(same["auc_mean"] - 0.5) < 0.08
    assert len(same["auc_folds"]) == 5
    different = realism.two_sample_auc(first + 3.0, second, groups_a, groups_b, max_iter=30)
    assert different["auc_mean"] > 0.97
    with pytest.raises(ValueError, match="at least 5 groups"):
        realism.two_sample_auc(first, second, np.zeros(300), groups_b)


def test_frame_features_are_scale_free_and_finite():
    rng = np.random.default_rng(8)
    frames = 50.0 + 10.0 * _power_law_field(rng, 3, 96, -2.5)
    first = realism.frame_features(frames, np.random.default_rng(0))
    scaled = realism.frame_features(frames * 7.0, np.random.default_rng(0))
    assert first.shape == (3, len(realism.FEATURE_NAMES))
    assert np.all(np.isfinite(first))
    np.testing.assert_allclose(first, scaled, rtol=1e-6, atol=1e-9)
