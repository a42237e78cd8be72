"""Real AIA files through predict: cadences, the row, quality flags, one contract for the
CLI and the Python API (issue 26).

The level-1 folders are real JSOC exports (``tests/data/level1/README.md``): 26 frames
of 304 A and of 171 A, 36 s apart, 370 x 500 px over the west limb. The real-jet
sequences are two of ``shared/data/realjets``. All are test fixtures only.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from jetkeras import predict
from jetkeras.io import JetkerasWarning
from jetkeras.rows import COLUMNS, ROW_SCHEMA
from jetkeras.runtime import load_predictor

DATA = Path(__file__).parent / "data"
AIA304 = DATA / "level1" / "aia304"
AIA171 = DATA / "level1" / "aia171"
CHAIN = DATA / "realjets" / "chain_c029.npz"
SINGLE = DATA / "realjets" / "single_70439738.npz"


@pytest.fixture(scope="module")
def bundled():
    return load_predictor(runtime="litert")


def _frames(path):
    with np.load(path, allow_pickle=False) as archive:
        return archive["frames"].astype(np.float32)


def _run(capsys, *argv):
    code = predict.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line]


def test_real_36s_folder_is_resampled_once_and_its_row_says_where_and_when(capsys, tmp_path):
    import astropy.units as u
    import sunpy.map

    code, out, errors = _run(capsys, AIA304, "--out", tmp_path / "row.json")
    assert code == 0, errors
    warnings_shown = [line for line in errors if line.startswith("predict: warning:")]
    assert len(warnings_shown) == 1
    assert "frames 36 s apart interpolated in time to the model's 24 s" in warnings_shown[0]
    assert all(line.startswith(("predict: warning:", "jetkeras: no model given"))
               for line in errors)
    import json

    [row] = json.loads((tmp_path / "row.json").read_text())
    assert list(row) == list(COLUMNS) and row["schema"] == ROW_SCHEMA
    # The cutout's centre, from the first file's WCS through sunpy itself.
    first = sunpy.map.Map(sorted(AIA304.glob("*.fits"))[0])
    centre = first.pixel_to_world((123 * 3 - 1) / 2 * u.pix, (166 * 3 - 1) / 2 * u.pix)
    assert row["hpc_x"] == pytest.approx(centre.Tx.to_value(u.arcsec), abs=0.01)
    assert row["hpc_y"] == pytest.approx(centre.Ty.to_value(u.arcsec), abs=0.01)
    assert row["hpc_x"] > 900  # the west limb
    assert row["cadence_s"] == pytest.approx(36.0, abs=0.1) and row["wavelength"] == 304.0
    # 26 frames 36 s apart span 900 s: 9 windows of 30 frames on the 24 s grid.
    assert row["windows"] == 9 and 0 <= row["window"] < 9
    assert row["start_time"].startswith("2012-07-19T07:3")
    assert row["end_time"] > row["start_time"]
    # 123 px wide at 1.8"/px: enlarged to fill 166 px at 1.33"/px, then cropped.
    assert set(row["quality"].split(";")) >= {"resampled_time", "resampled_space",
                                               "cropped"}
    assert row["resampled"] == 1 and row["label"] is None
    assert row["model"].startswith("jet304-synthetic@") and row["runtime"] == "litert"
    assert row["predicted"] == int(row["probability"] >= row["threshold"])


def test_real_171_twin_is_refused_in_one_line(capsys):
    code, _, errors = _run(capsys, AIA171)
    refusals = [line for line in errors if line.startswith("predict: error:")]
    assert code == 2 and len(refusals) == 1
    assert "expected 304 A frames" in refusals[0] and "received 171 A" in refusals[0]
    assert not any("Traceback" in line for line in errors)


def _write_fits_series(folder: Path, images, times, template) -> Path:
    """FITS frames with ``template``'s header, their own DATE-OBS and T_OBS."""
    from astropy.io import fits

    folder.mkdir()
    for number, (image, moment) in enumerate(zip(images, times)):
        header = template.copy()
        header["DATE-OBS"] = header["T_OBS"] = moment
        fits.PrimaryHDU(np.asarray(image, dtype=np.float32), header).writeto(
            folder / f"frame{number:03d}.fits")
    return folder


def test_a_12s_folder_is_thinned_not_resampled(bundled, tmp_path):
    """Real frames at 12 s (36 s frames with two interpolants between each pair): the
    model takes every other one as it is, exactly as a folder of those at 24 s."""
    from astropy.io import fits
    from astropy.time import Time, TimeDelta

    files = sorted(AIA304.glob("*.fits"))[:21]
    images, headers = [], []
    for path in files:
        with fits.open(path) as hdus:
            images.append(hdus[1].data.astype(np.float32))
            headers.append(hdus[1].header)
    template = fits.Header([card for card in headers[0].cards
                            if card.keyword not in ("XTENSION", "PCOUNT", "GCOUNT", "BLANK",
                                                    "BZERO", "BSCALE", "CHECKSUM", "DATASUM")])
    start = Time(headers[0]["T_OBS"].rstrip("Z"))
    at_12s = [(1 - w) * a + w * b for a, b in zip(images[:-1], images[1:])
              for w in (0.0, 1 / 3, 2 / 3)] + [images[-1]]  # 61 frames 12 s apart
    times = [(start + TimeDelta(12.0 * k, format="sec")).isot for k in range(len(at_12s))]
    folder_12 = _write_fits_series(tmp_path / "at_12s", at_12s, times, template)
    folder_24 = _write_fits_series(tmp_path / "at_24s", at_12s[::2], times[::2], template)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row_12 = predict.predict_cube(str(folder_12), model=bundled)
    row_24 = predict.predict_cube(str(folder_24), model=bundled)
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, JetkerasWarning))
    assert "in time" not in said and "to fill the field" in said  # only the field changes
    assert row_12["cadence_s"] == pytest.approx(12.0, abs=0.01)
    assert "resampled_time" not in row_12["quality"]
    assert row_12["windows"] == 2 and row_24["windows"] == 2
    assert row_12["probability"] == pytest.approx(row_24["probability"], abs=1e-6)


def test_frozen_and_constant_cubes_are_flagged_and_never_jets(bundled):
    real = _frames(CHAIN)[:30]
    cases = {"frozen": np.repeat(real[:1], 30, axis=0),
             "constant": np.zeros_like(real), "constant ": np.full_like(real, 50.0)}
    for flag, frames in cases.items():
        row = predict.predict_cube(frames, model=bundled.with_threshold(0.0))
        assert flag.strip() in row["quality"].split(";"), row["quality"]
        # At threshold 0 everything else is a jet: the flag alone says no.
        assert row["predicted"] == 0 and row["threshold"] == 0.0
    moving = predict.predict_cube(real, model=bundled.with_threshold(0.0))
    assert moving["predicted"] == 1 and "frozen" not in moving["quality"]


def test_a_nan_cube_is_refused_with_the_same_line_by_the_api_and_the_cli(bundled, capsys,
                                                                         tmp_path):
    frames = _frames(CHAIN)[:30]
    frames[3, 10, 10] = np.nan
    # A jetkeras-cube/1 file holding a NaN (write_cube itself refuses to write one).
    path = tmp_path / "nan.npz"
    np.savez_compressed(path, format=np.array("jetkeras-cube/1"), frames=frames,
                        times=np.array([], dtype=np.str_), meta_json=np.array("{}"))
    with pytest.raises(ValueError) as api:
        predict.predict_cube(str(path), model=bundled)
    code, _, errors = _run(capsys, path)
    assert code == 2 and errors[-1] == f"predict: error: {api.value}"
    assert "expected finite values, received 1 NaN/Inf pixel(s)" in str(api.value)
    # The array API refuses it too, instead of returning [nan].
    with pytest.raises(ValueError, match=r"expected finite values, received 1 NaN/Inf"):
        bundled.predict_proba(frames[None])


def test_a_volunteer_subject_is_shown_twice_under_resample(bundled):
    subject = _frames(SINGLE)  # 15 frames
    with pytest.raises(ValueError, match=(
            r"15 frame\(s\) spanning 336 s, but the model's window is 30 frames 24 s "
            r"apart: give at least 696 s of frames; or exactly 15 frames 24-36 s apart with "
            r"--resample")):
        predict.predict_cube(subject, model=bundled)
    with pytest.warns(JetkerasWarning, match="15 frames each shown twice"):
        row = predict.predict_cube(subject, model=bundled, resample=True)
    doubled = predict.predict_cube(np.repeat(subject, 2, axis=0), model=bundled)
    assert abs(row["probability"] - doubled["probability"]) <= 0.1
    assert row["resampled"] == 1 and "resampled_time" in row["quality"]


def test_the_python_api_takes_a_map_sequence_and_checks_it_as_the_cli_does(bundled, capsys):
    import sunpy.map

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = sunpy.map.Map(sorted(AIA304.glob("*.fits")), sequence=True)
        maps_171 = sunpy.map.Map(sorted(AIA171.glob("*.fits")), sequence=True)
        import jetkeras  # the README's three lines: the package's own API

        row = jetkeras.predict_cube(maps, model=bundled)
    code, out, _ = _run(capsys, AIA304, "--runtime", "litert")
    shown = dict(line.split(None, 1) for line in out.splitlines())
    assert code == 0 and float(shown["probability"]) == pytest.approx(row["probability"],
                                                                      abs=1e-5)
    assert row["hpc_x"] == pytest.approx(float(shown["hpc_x"]), abs=0.01)
    with pytest.raises(ValueError, match=r"expected 304 A frames.*received 171 A"):
        predict.predict_cube(maps_171, model=bundled)
    with pytest.raises(ValueError, match=r"predict_proba: expected a NumPy array of frames "
                                         r"in DN, received MapSequence"):
        bundled.predict_proba(maps)


def test_a_root_of_fits_event_folders_is_one_cube_per_folder(bundled, tmp_path):
    root = tmp_path / "events"
    shutil.copytree(AIA304, root / "SOL_a")
    shutil.copytree(AIA304, root / "SOL_b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JetkerasWarning)
        rows = predict.predict_cubes(cubes=[root], model=bundled, progress=False)
    assert [Path(row["file"]).name for row in rows] == ["SOL_a", "SOL_b"]
    assert rows[0]["probability"] == rows[1]["probability"]


def test_a_jet_row_says_where_which_way_when_and_how_fast(capsys, tmp_path):
    """The measurement columns of a window called a jet, on the real level-1 folder
    (whatever it holds: the model calls it a jet, so it is measured and drawn), and the
    jet map's WCS agreeing with the row's helioprojective base point."""
    import json

    from astropy.io import fits
    from astropy.wcs import WCS

    code, _, errors = _run(capsys, AIA304, "--out", tmp_path / "row.json",
                           "--figures", tmp_path / "figures", "--jet-maps", "--quiet")
    assert code == 0, errors
    [row] = json.loads((tmp_path / "row.json").read_text())
    assert row["predicted"] == 1
    # The base point is a pixel of the input as stored: 166 rows, 123 columns (pooled).
    assert 0 <= row["base_row"] < 166 and 0 <= row["base_col"] < 123
    assert 0 <= row["direction_deg"] < 360
    assert row["onset_frame"] <= row["peak_frame"] <= 29
    assert row["start_time"] <= row["peak_time"] <= row["end_time"]
    assert row["length_arcsec"] > 0 and row["width_arcsec"] > 0 and row["speed_km_s"] >= 0
    assert 0 <= row["localisation_score"] <= 1
    # Within the 300"-wide cutout about its centre.
    assert abs(row["base_hpc_x"] - row["hpc_x"]) < 150
    assert abs(row["base_hpc_y"] - row["hpc_y"]) < 150
    picture = tmp_path / "figures" / f"aia304_w{row['window']:03d}.png"
    assert picture.stat().st_size > 10_000
    with fits.open(tmp_path / "figures" / f"aia304_w{row['window']:03d}_jetmap.fits") as hdus:
        jet_map, header = hdus[0].data, hdus[0].header
    assert jet_map.shape == (166, 166) and (jet_map > 0).any()
    # The map's grid is the model's, its WCS the cube's moved there (another path than
    # the row's): the footprint starts at the base's sky position and ends within the
    # spire's length of it.
    rows, cols = np.nonzero(jet_map > 0)
    x_deg, y_deg = WCS(header).pixel_to_world_values(cols, rows)
    distance = np.hypot(x_deg * 3600 - row["base_hpc_x"], y_deg * 3600 - row["base_hpc_y"])
    assert distance.min() < 5.0
    assert distance.max() < row["length_arcsec"] + 3 * row["width_arcsec"] + 10


def test_rows_not_called_jets_carry_no_measurement(bundled):
    from jetkeras.localise import MEASUREMENT_COLUMNS

    frozen = np.repeat(_frames(CHAIN)[:1], 30, axis=0)
    row = predict.predict_cube(frozen, model=bundled)
    assert row["predicted"] == 0
    assert all(row[column] is None for column in MEASUREMENT_COLUMNS)


def test_jet_maps_need_figures_and_records_cannot_be_drawn(capsys, tmp_path):
    code, _, errors = _run(capsys, AIA304, "--jet-maps")
    assert code == 2 and errors[-1] == ("predict: error: --jet-maps: expected --figures DIR "
                                        "to write them in, received none")
    code, _, errors = _run(capsys, "--records", tmp_path, "--catalogue", tmp_path / "c.csv",
                           "--figures", tmp_path)
    assert code == 2 and errors[-1].startswith("predict: error: --figures: pictures are drawn "
                                               "from cubes")


def test_spikes_and_an_exposure_jump_neither_move_a_score_nor_go_unsaid(bundled):
    """Cosmic-ray hits and a run of short exposures on a real jet window: the predictor
    levels and despikes the frames first, and the row names what it found."""
    real = _frames(CHAIN)[:30]
    rng = np.random.default_rng(5)
    hit = real.copy()
    for frame in hit:  # 3 hits of 2,000 DN per frame, one pixel each
        frame[rng.integers(0, 166, 3), rng.integers(0, 166, 3)] += 2000.0
    short = real.copy()
    short[10:13] *= 0.4  # three frames at 0.4 times the exposure
    clean = predict.predict_cube(real, model=bundled)
    for changed, flag in ((hit, "spikes"), (short, "level_jump")):
        row = predict.predict_cube(changed, model=bundled)
        assert abs(row["probability"] - clean["probability"]) < 0.03, flag
        assert flag in row["quality"].split(";")
    assert "level_jump" not in clean["quality"].split(";")
    # The clean window has a few compact one-frame flashes of its own; the hits are many.
    from jetkeras.preprocess import despike, level_normalise

    assert despike(level_normalise(real)[0])[1] <= 5
    assert despike(level_normalise(hit)[0])[1] >= 85
    # On the same pixels with the motion removed, hits alone would make a jet without
    # the cleaning (what the step is for), and do not with it.
    from jetkeras.realcheck import motion_removed

    still = motion_removed(real, "frozen", np.random.default_rng(0))
    still_hit = still + (hit - real)
    raw = load_predictor(runtime="litert", despike=False)
    assert raw.predict_proba(still_hit[None])[0] - raw.predict_proba(still[None])[0] > 0.05
    assert abs(bundled.predict_proba(still_hit[None])[0]
               - bundled.predict_proba(still[None])[0]) < 0.03
