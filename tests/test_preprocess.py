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


def _moving_real_cube(make_aia_frames, frames=8):
    return make_aia_frames(n_frames=frames, size=32, seed=3)


def test_despike_removes_single_frame_hits_and_keeps_what_moves(make_aia_frames):
    from jetkeras.preprocess import despike

    clean = _moving_real_cube(make_aia_frames)
    hit = clean.copy()
    hit[3, 10, 12] += 4000.0          # a one-pixel hit
    hit[5, 20, 7:9] += 4000.0         # a two-pixel streak
    hit[6, 0, 20:22] += 4000.0        # a streak on the frame's edge
    cleaned, replaced = despike(hit)
    assert replaced == 5
    # The hits are gone: each pixel is the mean of its neighbours in time.
    for frame, row, col in ((3, 10, 12), (5, 20, 7), (5, 20, 8), (6, 0, 20), (6, 0, 21)):
        assert cleaned[frame, row, col] == pytest.approx(
            0.5 * (hit[frame - 1, row, col] + hit[frame + 1, row, col]))
    # A blob lasting three frames (a real brightening) is kept whole.
    lasting = clean.copy()
    lasting[2:5, 14:17, 14:17] += 2000.0
    kept, _ = despike(lasting)
    np.testing.assert_array_equal(kept[2:5, 14:17, 14:17], lasting[2:5, 14:17, 14:17])
    # A blob seen once but spread like the PSF (a fast feature, not a hit) is kept.
    spread = clean.copy()
    rows, cols = np.mgrid[0:32, 0:32]
    spread[4] += 2000.0 * np.exp(-((rows - 16) ** 2 + (cols - 16) ** 2) / (2 * 1.1 ** 2))
    kept, _ = despike(spread)
    assert kept[4, 16, 16] == pytest.approx(spread[4, 16, 16])
    # Under three frames there is no "neighbour in time" to compare with.
    assert despike(hit[:2])[1] == 0


def test_level_normalise_undoes_an_exposure_jump_not_a_local_brightening(make_aia_frames):
    from jetkeras.preprocess import level_normalise

    clean = _moving_real_cube(make_aia_frames)
    jumped = clean.copy()
    jumped[3:5] *= 0.4                 # two frames at 0.4 times the exposure
    levelled, levels = level_normalise(jumped)
    assert levels[3:5] / levels[2] == pytest.approx([0.4, 0.4], rel=0.08)
    # Up to one common factor (the window's level moved), the frames are as before.
    baseline, _ = level_normalise(clean)
    factor = np.median(levelled / np.maximum(baseline, 1.0))
    np.testing.assert_allclose(levelled, factor * baseline, rtol=0.08, atol=5.0)
    # A brightening over a tenth of the field moves the level by little.
    bright = clean.copy()
    bright[4, :10, :10] *= 3.0
    _, levels = level_normalise(bright)
    assert abs(levels[4] - levels[3]) < 0.1
