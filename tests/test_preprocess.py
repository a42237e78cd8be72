"""Tests of jetkeras.preprocess: pooling, resampling and exposure scaling on real AIA pixels."""

import numpy as np
import pytest

from jetkeras.preprocess import exposure_normalise, max_pool, resample


def test_max_pool_floor_mode_matches_seed_geometry():
    # 500 px -> 166 px as the seed's MaxPool2d(3, stride=3): the last 2 rows/cols dropped.
    frames = np.zeros((2, 500, 500), dtype=np.float64)
    frames[:, 498:, :] = 1e6  # only in the dropped rows: must not leak into the output
    pooled = max_pool(frames, 3)
    assert pooled.shape == (2, 166, 166)
    assert pooled.dtype == np.float32
    assert pooled.max() == 0.0


def test_max_pool_equals_blockwise_loop_on_real_pixels(make_aia_frames):
    frames = make_aia_frames(n_frames=3, size=35, seed=1)
    pooled = max_pool(frames, 3)
    assert pooled.shape == (3, 11, 11)
    expected = np.empty((3, 11, 11), dtype=np.float32)
    for t in range(3):
        for i in range(11):
            for j in range(11):
                expected[t, i, j] = frames[t, 3 * i: 3 * i + 3, 3 * j: 3 * j + 3].max()
    np.testing.assert_array_equal(pooled, expected)


def test_max_pool_factor_one_is_identity(make_aia_frames):
    frames = make_aia_frames(n_frames=2, size=16)
    np.testing.assert_array_equal(max_pool(frames, 1), frames)


@pytest.mark.parametrize("factor", [0, -2, 2.5, True])
def test_max_pool_rejects_bad_factor(factor):
    with pytest.raises(ValueError, match=r"max_pool: `factor` expected an integer >= 1, received"):
        max_pool(np.zeros((1, 6, 6)), factor)


def test_max_pool_rejects_wrong_rank_and_tiny_frames():
    with pytest.raises(ValueError, match=r"expected frames of shape \(n_frames, height, width\), "
                                         r"received shape \(6, 6\)"):
        max_pool(np.zeros((6, 6)), 3)
    with pytest.raises(ValueError, match=r"expected frames of at least 3x3 pixels, received 2x9"):
        max_pool(np.zeros((1, 2, 9)), 3)


def test_resample_shape_corners_and_linearity():
    # A cube linear in t, y and x is reproduced exactly by linear interpolation.
    t, y, x = np.meshgrid(np.arange(4), np.arange(8), np.arange(8), indexing="ij")
    cube = (100.0 * t + 3.0 * y + 1.0 * x).astype(np.float32)
    out = resample(cube, frames_out=7, size_out=15)
    assert out.shape == (7, 15, 15) and out.dtype == np.float32
    # grid_mode=False: corners map onto corners.
    assert out[0, 0, 0] == pytest.approx(0.0)
    assert out[-1, -1, -1] == pytest.approx(100 * 3 + 3 * 7 + 7)
    # The middle output frame sits at t = 1.5.
    assert out[3, 0, 0] == pytest.approx(150.0, abs=1e-3)
    assert out[0, 7, 0] == pytest.approx(3.0 * 3.5, abs=1e-3)


def test_resample_downsamples_real_cube_and_keeps_range(make_aia_frames):
    frames = make_aia_frames(n_frames=6, size=32)
    out = resample(frames, frames_out=3, size_out=16)
    assert out.shape == (3, 16, 16)
    assert frames.min() <= out.min() and out.max() <= frames.max()
    # Same shape in and out: unchanged.
    np.testing.assert_array_equal(resample(frames, frames_out=6, size_out=32), frames)


def test_resample_rejects_bad_sizes():
    with pytest.raises(ValueError,
                       match=r"resample: `size_out` expected an integer >= 1, received 0"):
        resample(np.zeros((2, 4, 4)), frames_out=2, size_out=0)


def test_exposure_normalise_scalar_and_per_frame(make_aia_frames):
    frames = make_aia_frames(n_frames=2, size=8)
    np.testing.assert_allclose(exposure_normalise(frames[0], 2.0), frames[0] / 2.0, rtol=1e-6)
    per_frame = exposure_normalise(frames, [2.0, 4.0])
    assert per_frame.dtype == np.float32
    np.testing.assert_allclose(per_frame[1], frames[1] / 4.0, rtol=1e-6)


@pytest.mark.parametrize("exposure", [0.0, -1.0, float("nan")])
def test_exposure_normalise_rejects_non_positive(exposure):
    with pytest.raises(ValueError, match=r"expected positive finite exposure time\(s\) in seconds"):
        exposure_normalise(np.ones((4, 4)), exposure)


def test_exposure_normalise_rejects_count_mismatch():
    with pytest.raises(ValueError, match=r"received 3 exposure\(s\) for shape \(2, 4, 4\)"):
        exposure_normalise(np.ones((2, 4, 4)), [1.0, 2.0, 3.0])
