"""Tests of the synthetic renderer of the real catalogue (jetkeras.synthetic)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from jetkeras.baseline import best_feature_auc
from jetkeras.catalogue import load_events
from jetkeras.synthetic import (
    DISK_MEAN_DN,
    _jet_emission,
    event_rng,
    render_event,
    render_events,
    solar_radius_arcsec,
)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return load_events()


@pytest.fixture(scope="module")
def jet(events) -> pd.Series:
    return events[events["label"] == 1].iloc[3]


@pytest.fixture(scope="module")
def negative(events) -> pd.Series:
    return events[events["label"] == 0].iloc[3]


def test_shapes_dtype_times_and_meta(jet, negative):
    for event in (jet, negative):
        cube = render_event(event, frames=4, size=32, randomise=False)
        assert cube.frames.shape == (4, 32, 32)
        assert cube.frames.dtype == np.float32
        assert np.isfinite(cube.frames).all()
        assert cube.meta["event_id"] == event["event_id"]
        assert cube.meta["label"] == event["label"]
        assert cube.meta["group"] == event["group"]
        assert cube.meta["pixel_scale_arcsec"] == pytest.approx(300.0 / 32, rel=1e-5)
        start = datetime.fromisoformat(event["date"])
        offsets = [(datetime.fromisoformat(t) - start).total_seconds() for t in cube.times]
        assert offsets == pytest.approx([0.0, 24.0, 48.0, 72.0], abs=1e-3)
    assert "jet_angle_deg" in render_event(jet, frames=4, size=32).meta
    assert "jet_angle_deg" not in render_event(negative, frames=4, size=32).meta


def test_viewing_conditions_vary_and_are_recorded(events):
    rows = events.iloc[list(range(0, 40)) + list(range(900, 940))]
    cubes = list(render_events(rows, frames=30, size=32, seed=2))
    fields = np.array([cube.meta["field_of_view_arcsec"] for cube in cubes])
    repeats = np.array([cube.meta["frame_repeat"] for cube in cubes])
    cadences = {cube.meta["cadence_s"] for cube in cubes}
    # Half keep the nominal 300" cutout, the rest zoom to 40-160 % of it.
    assert 0.3 < np.mean(fields == 300.0) < 0.7
    assert fields.min() >= 120.0 - 1e-6 and fields.max() <= 480.0 + 1e-6 and fields.max() > 300.0
    assert cadences == {24.0, 36.0}
    assert 0.05 < np.mean(repeats == 2) < 0.4
    assert any(cube.meta["display_roundtrip"] for cube in cubes)
    for cube in cubes:
        assert cube.meta["pixel_scale_arcsec"] == pytest.approx(
            cube.meta["field_of_view_arcsec"] / 32, rel=1e-4)
        start = datetime.fromisoformat(cube.times[0])
        offsets = np.array([(datetime.fromisoformat(t) - start).total_seconds()
                            for t in cube.times])
        if cube.meta["frame_repeat"] == 2:
            # A volunteer's subject padded to the window: 15 frames at the data's own
            # cadence, each shown twice at the same time, so it spans half the window.
            np.testing.assert_array_equal(cube.frames[0::2], cube.frames[1::2])
            np.testing.assert_allclose(
                offsets, np.repeat(np.arange(15) * cube.meta["cadence_s"], 2), atol=1e-3)
        else:
            np.testing.assert_allclose(offsets, np.arange(30) * cube.meta["cadence_s"],
                                       atol=1e-3)
            assert np.abs(np.diff(cube.frames, axis=0)).mean() > 0
    # A window too short to show a subject's 15 frames twice holds no subjects.
    short = [cube.meta["frame_repeat"] for cube in render_events(rows, frames=8, size=32,
                                                                  seed=2)]
    assert set(short) == {1}


def test_accepts_a_plain_dict_and_odd_sizes(jet):
    from_series = render_event(jet, frames=3, size=17, cadence_s=12.0)
    from_dict = render_event(jet.to_dict(), frames=3, size=17, cadence_s=12.0)
    assert from_series.frames.shape == (3, 17, 17)
    np.testing.assert_array_equal(from_series.frames, from_dict.frames)


def test_same_seed_same_cube_other_seed_other_cube(jet):
    first = render_event(jet, frames=4, size=32, seed=5)
    again = render_event(jet, frames=4, size=32, seed=5)
    other = render_event(jet, frames=4, size=32, seed=6)
    np.testing.assert_array_equal(first.frames, again.frames)
    assert np.abs(first.frames - other.frames).mean() > 1.0


def test_order_does_not_matter(events):
    subset = events.iloc[[0, 1, 900, 901]]
    forward = {c.meta["event_id"]: c.frames for c in render_events(subset, frames=3, size=16)}
    backward = list(render_events(subset.iloc[::-1], frames=3, size=16))
    for cube in backward:
        np.testing.assert_array_equal(cube.frames, forward[cube.meta["event_id"]])


def test_stream_does_not_depend_on_python_hash_salt(jet, tmp_path):
    # Python's str hash() changes with PYTHONHASHSEED; crc32 must not.
    script = (
        "import sys, numpy as np\n"
        "from jetkeras.synthetic import event_rng\n"
        f"np.save(sys.argv[1], event_rng(3, {jet['event_id']!r}).standard_normal(8))\n"
    )
    target = tmp_path / "draw.npy"
    environment = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", script, str(target)], check=True, env=environment)
    np.testing.assert_array_equal(np.load(target, allow_pickle=False),
                                  event_rng(3, jet["event_id"]).standard_normal(8))


def test_solar_radius_follows_earth_distance():
    from astropy.time import Time
    from sunpy.coordinates import sun

    for text in ("2011-01-04T00:00:00", "2013-07-05T12:00:00", "2016-10-01T06:00:00"):
        expected = sun.angular_radius(Time(text)).to_value("arcsec")
        assert solar_radius_arcsec(datetime.fromisoformat(text)) == pytest.approx(expected, abs=1.0)
    assert 940 < solar_radius_arcsec(datetime(2014, 7, 4)) < 946
    assert 974 < solar_radius_arcsec(datetime(2014, 1, 3)) < 978


def test_disk_statistics_and_dark_sky(events):
    on_disk = events[(events["label"] == 0)
                     & (np.hypot(events["basepoint_X"], events["basepoint_Y"]) < 600)].iloc[:20]
    cubes = list(render_events(on_disk, frames=4, size=48, randomise=False))
    means = np.array([cube.frames.mean() for cube in cubes])
    stds = np.array([cube.frames.std() for cube in cubes])
    # Quiet-disk 304 A after the seed's pooling: tens of DN, std comparable to the mean.
    assert 0.5 * DISK_MEAN_DN < np.median(means) < 1.6 * DISK_MEAN_DN
    assert 0.4 < np.median(stds / means) < 1.6
    # Per-sequence exposure varies: the cube means are not all alike.
    assert means.std() / means.mean() > 0.15
    # A base point beyond the limb: the far sky is dark, the disk part is not.
    off_limb = {"event_id": "test_limb", "label": 0, "date": "2014-07-04T00:00:00",
                "basepoint_X": 1000.0, "basepoint_Y": 0.0}
    cube = render_event(off_limb, frames=4, size=64, randomise=False)
    scale = 300.0 / 64
    x = 1000.0 + (np.arange(64) - 31.5) * scale
    radius = solar_radius_arcsec(datetime(2014, 7, 4))
    sky = x > radius + 60.0
    disk = x < radius - 20.0
    # The sky is dim (corona and scattered light, at most 15 % of the disk), not black.
    assert 0.0 < cube.frames[:, :, sky].mean() < 0.15 * DISK_MEAN_DN
    assert cube.frames[:, :, disk].mean() > 5 * cube.frames[:, :, sky].mean()


def test_jet_grows_outward_from_the_base_and_is_elongated():
    rng = np.random.default_rng(0)
    size, scale = 96, 300.0 / 96
    offsets = (np.arange(size) - (size - 1) / 2) * scale
    dx, dy = np.meshgrid(offsets, offsets)
    event = {"max_height": 150.0, "avg_width": 20.0, "duration": 30.0, "velocity": 0.25,
             "base_x": 0.0, "base_y": 0.0}
    times = np.arange(30) * 24.0
    emission, parameters = _jet_emission(rng, times, dx, dy, event, 0.0, 960.0, scale)
    assert emission.shape == (30, size, size)
    angle = math.radians(parameters["jet_angle_deg"])
    along = dx * math.cos(angle) + dy * math.sin(angle)
    lengths = []
    for frame in emission:
        lit = frame > 0.2 * frame.max()
        lengths.append(along[lit].max())
        # Rooted at the base: nothing bright far behind it.
        assert along[lit].min() > -0.25 * event["avg_width"] - 3 * scale
    lengths = np.array(lengths)
    # Grows at ~velocity until max_height (x 24 s per frame), never beyond it.
    assert lengths[10] > lengths[2] + 0.25 * 8 * 24.0 * 0.5
    assert lengths.max() < event["max_height"] + 10 * scale
    assert lengths[-1] > 0.7 * event["max_height"]
    # Elongated: second moments along the axis exceed those across it.
    frame = emission[20]
    across = -dx * math.sin(angle) + dy * math.cos(angle)
    weight = frame / frame.sum()
    spread_along = np.sqrt((weight * (along - (weight * along).sum()) ** 2).sum())
    spread_across = np.sqrt((weight * across**2).sum())
    assert spread_along > 2.5 * spread_across


def test_not_separable_by_brightness_summaries(events):
    chosen = pd.concat([events[events["label"] == label].sample(200, random_state=11)
                        for label in (1, 0)])
    cubes = list(render_events(chosen, frames=16, size=48, seed=0))
    name, auc = best_feature_auc(cubes, chosen["label"].to_numpy())
    assert 0.5 <= auc < 0.9, (name, auc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frames": 1}, r"`frames` expects an integer >= 2, received 1"),
        ({"size": 15}, r"`size` expects an integer >= 16, received 15"),
        ({"cadence_s": 0.0}, r"`cadence_s` expects a positive number of seconds, received 0.0"),
        ({"field_of_view_arcsec": -1.0}, r"`field_of_view_arcsec` expects a positive number"),
    ],
)
def test_bad_arguments_are_named(jet, change, message):
    arguments = {"frames": 4, "size": 32} | change
    with pytest.raises(ValueError, match=message):
        render_event(jet, **arguments)


def test_bad_rows_are_named(jet):
    row = jet.to_dict()
    with pytest.raises(ValueError, match=r"event sjh_.*: column `max_height` expects a finite"):
        render_event(row | {"max_height": float("nan")}, frames=2, size=16)
    with pytest.raises(ValueError, match=r"column `label` expects 0 or 1, received 7"):
        render_event(row | {"label": 7}, frames=2, size=16)
    with pytest.raises(ValueError, match=r"column `date` expects an ISO 8601 UTC time, received 'soon'"):
        render_event(row | {"date": "soon"}, frames=2, size=16)
    without_base = {key: value for key, value in row.items() if key != "basepoint_X"}
    with pytest.raises(ValueError, match=r"expected a catalogue row with column `basepoint_X`"):
        render_event(without_base, frames=2, size=16)
    with pytest.raises(ValueError, match=r"expected a catalogue row with column `event_id`"):
        render_event({"label": 0}, frames=2, size=16)


def test_spires_are_thin_and_non_jet_spires_do_not_propagate():
    from jetkeras.synthetic import _confusers

    size, scale = 96, 300.0 / 96
    offsets = (np.arange(size) - (size - 1) / 2) * scale
    dx, dy = np.meshgrid(offsets, offsets)
    times = np.arange(20) * 24.0
    event = {"max_height": 150.0, "avg_width": 40.0, "duration": 30.0, "velocity": 0.3,
             "base_x": 0.0, "base_y": 0.0}
    emission, parameters = _jet_emission(np.random.default_rng(4), times, dx, dy, event,
                                         0.0, 960.0, scale)
    # The bright spire is a fraction of the catalogue's (box) width, with a PSF floor.
    assert 1.5 <= parameters["jet_spire_fwhm_arcsec"] <= 0.3 * event["avg_width"]
    assert parameters["jet_threads"] in (1, 2, 3)
    kinds_seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        total, kinds = _confusers(rng, times, dx, dy, scale, 1)
        kinds_seen.update(kinds)
        if kinds == ["static_spire"]:
            # Held in place: every frame is the same picture up to a slow brightness drift.
            shape = total / total.sum(axis=(1, 2), keepdims=True)
            assert np.abs(shape - shape[0]).max() < 1e-6
        if kinds == ["incoherent_spire"]:
            # Its frames are a jet's frames in random order: the lit area does not grow
            # monotonically, as it does for the jet itself.
            lit = (total > 0.2 * total.max()).sum(axis=(1, 2))
            assert np.any(np.diff(lit) < 0)
    assert {"static_spire", "incoherent_spire"} <= kinds_seen


def test_confuser_families_can_be_left_out_or_drawn_alone():
    """The leave-one-family-out hooks: the default draws as before, a restricted draw
    holds only the families asked for, and unknown families are refused in one line."""
    from jetkeras.catalogue import load_events
    from jetkeras.synthetic import CONFUSER_KINDS, Nuisance, render_event

    negatives = load_events().query("label == 0").head(6)
    for _, event in negatives.iterrows():
        plain = render_event(event, seed=3, frames=6, size=40)
        same = render_event(event, seed=3, frames=6, size=40, nuisance=Nuisance())
        np.testing.assert_array_equal(plain.frames, same.frames)
        only = render_event(event, seed=3, frames=6, size=40,
                            nuisance=Nuisance(confuser_kinds=("loop",),
                                              confuser_probability=1.0))
        assert set(only.meta["confusers"].split(",")) == {"loop"}
        without = render_event(event, seed=3, frames=6, size=40,
                               nuisance=Nuisance(confuser_kinds=tuple(
                                   k for k in CONFUSER_KINDS if k != "surge")))
        assert "surge" not in without.meta["confusers"].split(",")
    with pytest.raises(ValueError, match=r"Nuisance: expected `confuser_kinds` a non-empty "
                                         r"subset of .*, received \('jet',\)"):
        Nuisance(confuser_kinds=("jet",))
    with pytest.raises(ValueError, match=r"`confuser_probability` None or in \[0, 1\], "
                                         r"received 2"):
        Nuisance(confuser_probability=2)
