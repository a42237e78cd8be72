"""Fresh renders for training (build_records --variants) and the Nuisance render shifts."""

import numpy as np
import pytest

from jetkeras.build_records import build_records, main
from jetkeras.catalogue import load_events
from jetkeras.config import JetConfig
from jetkeras.pipeline import iterate_records, steps_per_epoch
from jetkeras.synthetic import Nuisance, render_event

TINY = JetConfig().replace(data={"frames": 4, "size": 32})


@pytest.fixture(scope="module")
def jet():
    events = load_events()
    return events[events["label"] == 1].iloc[7]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    one = build_records(source="synthetic", out=root / "one", config=TINY, limit=40, seed=2,
                        records_per_shard=16, progress=False)
    three = build_records(source="synthetic", out=root / "three", config=TINY, limit=40,
                          seed=2, records_per_shard=16, progress=False, variants=3)
    return root, one, three


def test_variant_zero_is_the_first_render_and_others_are_new_draws(jet):
    first = render_event(jet, frames=4, size=32, seed=1)
    again = render_event(jet, frames=4, size=32, seed=1, variant=0)
    second = render_event(jet, frames=4, size=32, seed=1, variant=1)
    np.testing.assert_array_equal(first.frames, again.frames)
    assert second.meta["variant"] == 1 and second.meta["event_id"] == first.meta["event_id"]
    # A new background and jet draw, not the same picture with other noise.
    assert np.corrcoef(first.frames[0].ravel(), second.frames[0].ravel())[0, 1] < 0.5
    np.testing.assert_array_equal(second.frames,
                                  render_event(jet, frames=4, size=32, seed=1,
                                               variant=1).frames)


def test_training_split_holds_every_variant_and_val_test_stay_fixed(built):
    root, one, three = built
    assert three["splits"]["train"]["count"] == 3 * one["splits"]["train"]["count"]
    assert three["splits"]["train"]["variants"] == 3
    assert one["splits"]["train"]["variants"] == 1
    for split in ("val", "test"):
        assert three["splits"][split]["count"] == one["splits"][split]["count"]
        assert three["splits"][split]["variants"] == 1
        ours = {r["event_id"]: r["frames"] for r in iterate_records(root / "three", split)}
        theirs = {r["event_id"]: r["frames"] for r in iterate_records(root / "one", split)}
        assert ours.keys() == theirs.keys()
        for event_id, frames in ours.items():
            np.testing.assert_array_equal(frames, theirs[event_id])
    ids = [r["event_id"] for r in iterate_records(root / "three", "train")]
    assert len(ids) == 3 * len(set(ids))  # each training event exactly three times
    # No training event leaks into validation or test through its variants.
    held_out = {r["event_id"] for s in ("val", "test") for r in iterate_records(root / "three", s)}
    assert not held_out & set(ids)


def test_an_epoch_is_one_pass_over_the_events(built):
    _, one, three = built
    assert steps_per_epoch(three, 4) == steps_per_epoch(one, 4) == \
        one["splits"]["train"]["count"] // 4
    with pytest.raises(ValueError, match=r"holds \d+ events, fewer than --batch-size 1000"):
        steps_per_epoch(three, 1000)


def test_variants_flag_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit, match="2"):  # argparse refuses it before any work
        main(["--frames", "4", "--size", "32", "--limit", "8", "--variants", "0",
              "--out", str(tmp_path / "r")])
    assert "argument --variants: expected a positive integer, received 0" in \
        capsys.readouterr().err
    with pytest.raises(ValueError, match="--variants: expected a positive integer, received 0"):
        build_records(source="synthetic", out=tmp_path / "r", variants=0, progress=False)
    assert main(["--source", "npz", "--npz-root", str(tmp_path), "--variants", "2",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--variants: only the synthetic source" in capsys.readouterr().err


def test_default_nuisance_renders_exactly_as_without(jet):
    plain = render_event(jet, frames=4, size=32, seed=5)
    same = render_event(jet, frames=4, size=32, seed=5, nuisance=Nuisance())
    np.testing.assert_array_equal(plain.frames, same.frames)


def test_nuisance_shifts_do_what_they_say(jet):
    plain = render_event(jet, frames=6, size=48, seed=5, randomise=False)
    dim = render_event(jet, frames=6, size=48, seed=5, randomise=False,
                       nuisance=Nuisance(exposure_scale=0.4))
    assert dim.meta["exposure_scale"] == pytest.approx(0.4 * plain.meta["exposure_scale"],
                                                       rel=1e-3)
    # The max-pooled noise adds a bias that scales with the square root of the signal,
    # so the mean falls a little less than 0.4x.
    assert 0.4 < dim.frames.mean() / plain.frames.mean() < 0.5
    # At the seed's 1.8"/px, frame-to-frame differences are mostly noise: 3x the noise,
    # about 3x their spread.
    plain, noisy = (render_event(jet, frames=6, size=166, seed=5, randomise=False,
                                 nuisance=Nuisance(noise_scale=scale)) for scale in (1.0, 3.0))
    spread = [np.std(np.diff(cube.frames, axis=0)) for cube in (plain, noisy)]
    assert 2.5 < spread[1] / spread[0] < 3.2
    faint = render_event(jet, frames=6, size=48, seed=5, nuisance=Nuisance(contrast_scale=0.2))
    assert faint.meta["jet_contrast"] == pytest.approx(0.2 * plain.meta["jet_contrast"],
                                                       rel=1e-3)
    limb = render_event(jet, frames=6, size=48, seed=5, nuisance=Nuisance(limb_fraction=1.0))
    assert limb.meta["basepoint_x_arcsec"] != plain.meta["basepoint_x_arcsec"]
    radius = np.hypot(limb.meta["basepoint_x_arcsec"], limb.meta["basepoint_y_arcsec"])
    assert 0.97 <= radius / limb.meta["solar_radius_arcsec"] <= 1.02


@pytest.mark.parametrize("fields,message", [
    ({"exposure_scale": 0.0}, "`exposure_scale` a positive number, received 0.0"),
    ({"noise_scale": float("nan")}, "`noise_scale` a positive number, received nan"),
    ({"limb_fraction": 1.5}, "`limb_fraction` in \\[0, 1\\], received 1.5"),
    ({"jet_under_way_windows": -0.5},
     "`jet_under_way_windows` None or a non-negative number, received -0.5"),
])
def test_bad_nuisance_is_named(fields, message):
    with pytest.raises(ValueError, match=message):
        Nuisance(**fields)


def test_jet_under_way_is_already_lit_in_the_first_frame(jet):
    fresh, under_way = (render_event(jet, frames=8, size=48, seed=5, randomise=False,
                                     nuisance=Nuisance(jet_under_way_windows=windows))
                        for windows in (0.0, 0.5))
    window_s = 8 * 24.0
    assert fresh.meta["jet_start_s"] == 0.0
    assert under_way.meta["jet_start_s"] == pytest.approx(-0.5 * window_s)
    # Same background, confusers and noise streams: the first frames differ only by the
    # jet, which has had half a window to grow in one and has barely begun in the other.
    excess = under_way.frames[0] - fresh.frames[0]
    assert excess.mean() > 0.5  # DN over the whole frame: the grown jet's flux
    assert excess.max() > 50.0  # its spire, far above the pooled noise (a few DN)


def test_training_renders_catch_jets_at_every_phase_of_their_life():
    events = load_events()
    jets = events[events["label"] == 1].iloc[:240]
    starts = np.array([render_event(row, frames=4, size=16, seed=3).meta["jet_start_s"]
                       for _, row in jets.iterrows()])
    durations_s = jets["duration"].to_numpy() * 60.0
    with_window, later, under_way = starts == 0.0, starts > 0.0, starts < 0.0
    # 40 % / 20 % / 40 % by design; 240 draws put each within +-0.1 of it.
    assert abs(with_window.mean() - 0.4) < 0.1 and abs(later.mean() - 0.2) < 0.1
    assert abs(under_way.mean() - 0.4) < 0.1
    elapsed = -starts[under_way] / durations_s[under_way]
    assert elapsed.max() <= 0.6 and elapsed.mean() == pytest.approx(0.3, abs=0.06)


def test_subset_negatives_match_the_jets_distance_from_disk_centre():
    from jetkeras.build_records import _limb_distance, _select

    events = load_events()
    gaps = {}
    for match in (False, True):
        subset = _select(events, 200, seed=4, match_position=match)
        assert (subset["label"] == 1).sum() == (subset["label"] == 0).sum() == 100
        distance = _limb_distance(subset)
        labels = subset["label"].to_numpy()
        gaps[match] = np.abs(np.quantile(distance[labels == 1], [0.25, 0.5, 0.75])
                             - np.quantile(distance[labels == 0], [0.25, 0.5, 0.75])).max()
    # The catalogue's jets sit nearer the limb; matched negatives follow them.
    assert gaps[True] < 0.03 < gaps[False]
