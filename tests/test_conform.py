"""The model's time grid and field (jetkeras.conform) and the quality flags
(jetkeras.quality), on small arrays whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from jetkeras.conform import conform, offsets_s
from jetkeras.cube import Cube
from jetkeras.quality import FLAGS, VETO_FLAGS, exposure_flags, format_flags, pixel_flags

MODEL = {"frames": 4, "size": 8, "cadence_s": 24.0, "cadence_tolerance_s": 6.0,
         "pixel_scale_arcsec": 1.8}


def _times(seconds):
    start = np.datetime64("2012-07-19T07:30:00.000", "ms")
    return [str(start + np.timedelta64(int(s * 1000), "ms")) for s in seconds]


def _ramp(count, size=8):
    """Frame k holds the value 10 + k everywhere but one bright pixel (not constant)."""
    frames = np.stack([np.full((size, size), 10.0 + k, np.float32) for k in range(count)])
    frames[:, 0, 0] += 100.0
    return frames


def _cube(seconds, size=8, **meta):
    return Cube(frames=_ramp(len(seconds), size), source="test", times=_times(seconds),
                meta={"pixel_scale_arcsec": 1.8, **meta})


def test_offsets_are_seconds_from_the_first_time():
    assert offsets_s(["2012-07-19T07:30:00Z", "2012-07-19T07:30:36.5"]).tolist() == [0, 36.5]
    with pytest.raises(ValueError, match="expected ISO 8601 UTC times"):
        offsets_s(["yesterday"])


def test_12s_frames_are_thinned_to_real_frames_with_jitter():
    seconds = np.arange(9) * 12.0 + np.array([0, .3, -.2, .1, 0, .4, -.1, 0, .2])
    model_input = conform(_cube(seconds), **MODEL)
    assert model_input.starts == [0, 1] and model_input.changes == []
    assert model_input.window_flags == [[], []]
    assert model_input.cadence_s == pytest.approx(12.0, abs=0.3)
    # Grid frames are real frames 0, 2, 4, 6, 8: values 10, 12, 14, 16, 18.
    assert model_input.frames[:, 1, 1].tolist() == [10, 12, 14, 16, 18]


def test_36s_frames_are_interpolated_in_time_and_said_so():
    model_input = conform(_cube(np.arange(4) * 36.0), **MODEL)
    # Grid 0, 24, 48, 72, 96: frames 0, 2/3 of 0->1, 1/3 of 1->2, frame 2, 2/3 of 2->3.
    np.testing.assert_allclose(model_input.frames[:, 1, 1],
                               [10, 10 + 2 / 3, 11 + 1 / 3, 12, 12 + 2 / 3], atol=1e-5)
    assert model_input.starts == [0, 1]
    assert model_input.window_flags == [["resampled_time"], ["resampled_time"]]
    assert model_input.changes == ["frames 36 s apart interpolated in time to the model's "
                                   "24 s"]
    assert model_input.time_at(24.0) == "2012-07-19T07:30:24.000"


def test_a_gap_wider_than_a_cadence_is_not_bridged():
    # 24 s frames with frames 4-5 missing: a 72 s gap the grid cannot cross.
    seconds = [0, 24, 48, 72, 144, 168, 192, 216]
    model_input = conform(_cube(seconds), **MODEL)
    assert model_input.starts == [0, 6]  # grid 0..72 and 144..216
    assert model_input.window_flags == [[], []]
    with pytest.raises(ValueError, match=(
            r"test: no window of 4 frames 24 s apart free of data gaps: 72 s between "
            r"frames 2 and 3 \(at most 30 s can be bridged\)")):
        conform(_cube([0, 24, 48, 120, 144, 168]), **MODEL)
    # One missing frame at 12 s is bridged (24 s between its neighbours), and flagged.
    seconds = [0, 12, 24, 36, 60, 72, 84]
    model_input = conform(_cube(seconds), **MODEL)
    assert "data_gap" in model_input.window_flags[0]
    assert "resampled_time" in model_input.window_flags[0]


def test_short_sequences_are_refused_or_shown_twice_as_a_subject():
    with pytest.raises(ValueError, match=(
            r"test: 2 frame\(s\) spanning 24 s, but the model's window is 4 frames 24 s "
            r"apart: give at least 72 s of frames; or exactly 2 frames 24-36 s apart with "
            r"--resample")):
        conform(_cube([0, 24]), **MODEL)
    model_input = conform(_cube([0, 24]), **MODEL, resample=True)
    assert model_input.frames[:, 1, 1].tolist() == [10, 10, 11, 11]
    assert model_input.window_flags == [["resampled_time"]]
    with pytest.raises(ValueError, match="spanning 12 s"):  # 12 s apart: not a subject
        conform(_cube([0, 12]), **MODEL, resample=True)


def test_times_out_of_order_are_refused():
    with pytest.raises(ValueError, match=r"expected frame times in increasing order, "
                                         r"received 2012-07-19T07:30:48.000 then "
                                         r"2012-07-19T07:30:24.000"):
        conform(_cube([0, 48, 24, 72]), **MODEL)


def test_the_field_is_padded_cropped_or_zoomed_at_the_pixel_scale():
    # A narrower field is enlarged to fill the model's while its pixel scale stays one
    # the renders covered (1.8 -> 1.35"/px); a flat padding is a scene never trained on.
    filled = conform(_cube([0, 24, 48, 72], size=6), **MODEL)
    assert filled.frames.shape == (4, 8, 8) and filled.window_flags == [["resampled_space"]]
    assert filled.changes == ["zoomed by 1.33 to fill the field (1.8 to 1.35 arcsec per "
                              "pixel)"]
    # Too small for that (1.8 -> 0.68"/px would leave 0.72-2.88): padded.
    padded = conform(_cube([0, 24, 48, 72], size=3), **MODEL)
    assert padded.frames.shape == (4, 8, 8) and padded.window_flags == [["padded"]]
    # The padding is one level, the same in every frame: it never moves.
    assert np.ptp(padded.frames[:, 0, 4]) == 0
    cropped = conform(_cube([0, 24, 48, 72], size=11), **MODEL)
    assert cropped.frames.shape == (4, 8, 8) and cropped.window_flags == [["cropped"]]
    assert cropped.changes == ["cropped from 11x11 to 8x8 px about the centre"]
    # 0.6"/px is outside the 0.72-2.88"/px the renders covered: zoomed by 1/3 (24 -> 8).
    fine = conform(_cube([0, 24, 48, 72], size=24, pixel_scale_arcsec=0.6), **MODEL)
    assert fine.frames.shape == (4, 8, 8) and fine.window_flags == [["resampled_space"]]
    unknown = Cube(frames=_ramp(4, 10), source="test")
    with pytest.raises(ValueError, match=r"test: frames of 10x10 px with no pixel scale "
                                         r"recorded, but the model expects 8x8 px"):
        conform(unknown, **MODEL)
    assert conform(unknown, **MODEL, resample=True).frames.shape == (4, 8, 8)


def test_pixel_flags_name_what_is_wrong():
    real = np.random.default_rng(0).gamma(2.0, 30.0, (5, 16, 16)).astype(np.float32)
    assert pixel_flags(real) == []
    assert pixel_flags(np.repeat(real[:1], 5, axis=0)) == ["frozen"]
    assert pixel_flags(np.concatenate([real[:2], real[1:4]])) == ["repeated_frames"]
    assert pixel_flags(np.zeros_like(real)) == ["frozen", "constant"]
    gap = real.copy()
    gap[2] = 0
    assert pixel_flags(gap) == ["constant_frames"]
    hot = real.copy()
    hot[1, 3, 3] = 16000
    assert pixel_flags(hot) == ["saturated"]
    assert pixel_flags(real * 20) == ["out_of_range"]  # a 171 A cube's levels
    assert pixel_flags(real / 2.9, to_dn=2.9) == []  # DN/s given with its exposure
    assert pixel_flags(real * 20, to_dn=None) == []  # unit unknown: no range rule
    assert exposure_flags([2.9, 2.9, 2.0]) == ["exposure_varies"]
    assert exposure_flags([2.9, 2.901]) == [] and exposure_flags(None) == []
    assert format_flags({"padded", "frozen"}) == "frozen;padded"
    assert VETO_FLAGS <= set(FLAGS)


def test_grid_pixels_map_back_to_the_cube_pixels_as_stored():
    # A marked pixel at (4, 5) of the cube must come back to (4, 5) through to_input,
    # whatever was done to the field (pads, crops, zooms to fill or to the scale).
    for size, scale in ((6, 1.8), (3, 1.8), (11, 1.8), (10, 1.2)):
        frames = _ramp(4, size)
        frames[:, 0, 0] -= 100.0
        frames[:, min(4, size - 1), min(5, size - 1)] += 500.0
        cube = Cube(frames=frames, source="test", times=_times([0, 24, 48, 72]),
                    meta={"pixel_scale_arcsec": scale})
        fitted = conform(cube, **MODEL)
        row, col = np.unravel_index(np.argmax(fitted.frames[0]), (8, 8))
        back = fitted.input_pixel(row, col)
        assert back == pytest.approx((min(4, size - 1), min(5, size - 1)), abs=0.75), size
    # The pixel scale of the grid: the cube's, divided by any zoom.
    assert conform(_cube([0, 24, 48, 72], size=6), **MODEL).pixel_scale_arcsec == \
        pytest.approx(1.35)
    assert conform(_cube([0, 24, 48, 72], size=11), **MODEL).to_input == (1.0, 1.0, 1.0, 1.0)
    assert conform(Cube(frames=_ramp(4, 8), source="t"), **MODEL).pixel_scale_arcsec is None
