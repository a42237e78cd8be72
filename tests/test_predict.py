"""Tests of jetkeras.predict: the Predictor, cube formats, catalogue, Dask, timeline, errors."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jetkeras import predict, runtime
from jetkeras.catalogue import load_events
from jetkeras.cube import Cube
from jetkeras.io import read_cube, write_cube
from jetkeras.rows import COLUMNS
from jetkeras.synthetic import render_event


@pytest.fixture(scope="module")
def predictor(tiny_run):
    """Shared by the module's tests: none may change it (each asserts it did not)."""
    return runtime.load_predictor(tiny_run["run"])


@pytest.fixture(scope="module")
def event_cubes(tmp_path_factory, tiny_run):
    """Four synthetic cubes (2 jets, 2 not) named <event_id>.npz, 4 frames of 32x32."""
    folder = tmp_path_factory.mktemp("event_cubes")
    events = load_events()
    chosen = [events[events["label"] == 1].iloc[i] for i in (0, 1)] + \
             [events[events["label"] == 0].iloc[i] for i in (0, 1)]
    for number, event in enumerate(chosen):
        cube = render_event(event, frames=4, size=32, seed=number,
                            field_of_view_arcsec=tiny_run["config"].data.field_of_view_arcsec)
        write_cube(folder / f"{event['event_id']}.npz", cube)
    return folder


def test_run_folder_savedmodel_and_keras_agree(tiny_run, tiny_export, predictor,
                                               make_aia_frames):
    import keras

    import jetkeras.layers  # noqa: F401  (registers the custom layers)

    from jetkeras.runtime import clean_frames

    frames = np.stack([make_aia_frames(n_frames=4, size=32, seed=s) for s in range(5)])
    model = keras.saving.load_model(tiny_run["run"] / "model.keras")
    # What every predictor feeds its network: each window levelled and despiked.
    cleaned = np.stack([clean_frames(f) for f in frames])
    logits = model.predict(predictor.normalise(cleaned), verbose=0).astype(np.float64).ravel()
    from_keras = 1.0 / (1.0 + np.exp(-logits))
    assert predictor.runtime == "litert"  # the default where model.tflite exists
    for folder in (tiny_run["run"], tiny_export):
        for runtime_name in ("litert", "tensorflow"):
            loaded = predictor if (folder, runtime_name) == (tiny_run["run"], "litert") else \
                runtime.load_predictor(folder, runtime=runtime_name)
            assert loaded.runtime == runtime_name
            # model.tflite and the SavedModel take DN (the normalisation is in the graph);
            # the run folder's Keras model is fed frames normalised in NumPy.
            takes = "normalised" if (folder, runtime_name) == (tiny_run["run"],
                                                                "tensorflow") else "dn"
            assert loaded._logits_function.model_input == takes
            # Batches of 2 then 1: the LiteRT interpreter is resized between them.
            probabilities = loaded.predict_proba(frames, batch_size=2)
            assert probabilities.shape == (5,) and probabilities.dtype == np.float64
            np.testing.assert_allclose(probabilities, from_keras, atol=1e-5,
                                       err_msg=f"{folder.name} on {runtime_name}")
    # Normalisation is the training one: clip at clip_dn, then standardise.
    stats = json.loads((tiny_run["run"] / "normalisation.json").read_text())
    expected = (np.minimum(frames, stats["clip_dn"]) - stats["mean"]) / stats["std"]
    np.testing.assert_allclose(predictor.normalise(frames)[..., 0], expected, rtol=1e-5,
                               atol=1e-5)


def test_litert_prediction_never_imports_tensorflow(tiny_run, event_cubes):
    """A cold `predict` on LiteRT: no TensorFlow, no Keras, no pandas in the process."""
    import subprocess
    import sys

    script = ("import sys; from jetkeras.predict import main; "
              f"code = main([{str(min(event_cubes.iterdir()))!r}, '--model', "
              f"{str(tiny_run['run'])!r}, '--quiet']); "
              "print(code, sorted(m for m in ('tensorflow', 'keras', 'pandas') "
              "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.split("\n")[-2] == "0 []", result.stdout + result.stderr
    assert "XNNPACK" not in result.stderr  # the interpreter's INFO line is silenced


def test_predict_cubes_of_every_format(tiny_run, predictor, event_cubes, make_seed_npz_root,
                                       make_aia_fits_dir, tmp_path):
    seed_root = make_seed_npz_root(shape=(32, 32, 4))
    fits_dir = make_aia_fits_dir(n_frames=4, native_size=96, wavelength_angstrom=[304] * 4)
    out = tmp_path / "predictions.csv"
    rows = predict.predict_cubes(cubes=[event_cubes, seed_root / "data1", fits_dir],
                                 model=tiny_run["run"], out=out, batch_size=3)
    assert len(rows) == 4 + 2 + 1
    with open(out) as handle:
        written = list(csv.DictReader(handle))
    # One schema, every column in every row, whatever the cube's format.
    assert list(written[0]) == list(COLUMNS)
    assert all(list(row) == list(COLUMNS) for row in rows)
    assert [row["file"] for row in written] == [row["file"] for row in rows]
    # Our cubes carry their event id and truth; the seed's and FITS do not.
    assert written[0]["event_id"] == min(p.stem for p in event_cubes.iterdir())
    assert written[0]["label"] in ("0", "1")
    assert written[-1]["event_id"] == "" and written[-1]["label"] == ""
    assert written[-1]["start_time"].startswith("2013-03-10")
    assert written[-1]["wavelength"] == "304.0" and written[-1]["cadence_s"] == "24.0"
    assert written[-1]["hpc_x"] != "" and written[0]["hpc_x"] == ""
    # One render is at 36 s (the renderer's 36 s mode): put on the 24 s grid. The others,
    # and the FITS cube at the model's own pixel scale, are scored as stored.
    at_36 = [row for row in rows if row["cadence_s"] == 36.0]
    assert [row["resampled"] for row in rows].count(1) == 1 and len(at_36) == 1
    assert at_36[0]["resampled"] == 1 and "resampled_time" in at_36[0]["quality"]
    for row in rows:
        assert row["predicted"] == int(row["probability"] >= predictor.threshold)
        if not row["resampled"]:
            cube = read_cube(row["file"])
            expected = predictor.predict_proba(cube.frames[None])[0]
            assert row["probability"] == pytest.approx(expected, abs=1e-6)
            assert row["windows"] == 1
    stored = predictor.threshold
    json_rows = predict.predict_cubes(cubes=[fits_dir], model=predictor,
                                      out=tmp_path / "p.json", threshold=0.0)
    assert json.loads((tmp_path / "p.json").read_text())[0]["predicted"] == 1
    assert list(json.loads((tmp_path / "p.json").read_text())[0]) == list(COLUMNS)
    assert json_rows[0]["threshold"] == 0.0
    # The caller's Predictor keeps its own threshold (it used to be set to 0.0 in place).
    assert predictor.threshold == stored and stored > 0.0


def test_catalogue_inference_on_both_layouts(tiny_run, event_cubes, make_seed_npz_root,
                                             tmp_path):
    rows = predict.predict_catalogue(model=tiny_run["run"], cubes=event_cubes,
                                     out=tmp_path / "catalogue.csv", progress=False)
    events = load_events().set_index("event_id")
    assert sorted(row["event_id"] for row in rows) == sorted(p.stem for p in
                                                             event_cubes.iterdir())
    for row in rows:
        assert list(row) == list(COLUMNS)
        assert row["label"] == events.loc[row["event_id"], "label"]
        assert row["predicted"] == int(row["probability"] >= row["threshold"])
        assert row["basepoint_X"] == pytest.approx(events.loc[row["event_id"], "basepoint_X"])
    # The seed's tree is matched on (label, row): data1/0.npz is jet row 0.
    seed_root = make_seed_npz_root(shape=(32, 32, 4))
    seed_rows = predict.predict_catalogue(model=tiny_run["run"], cubes=seed_root,
                                          progress=False)
    assert len(seed_rows) == 6
    jets = load_events().query("label == 1")
    first_jet = next(row for row in seed_rows if row["label"] == 1)
    assert first_jet["sjh_ID"] == jets.iloc[0]["sjh_ID"]
    # The published Solar Jet Hunter CSV itself is accepted as --catalogue.
    from jetkeras.catalogue import JET_CATALOGUE, _bundled

    published = predict.predict_catalogue(model=tiny_run["run"], progress=False,
                                          catalogue=_bundled(JET_CATALOGUE), cubes=seed_root)
    assert {row["sjh_ID"] for row in published if row["label"] == 1} == {
        row["sjh_ID"] for row in seed_rows if row["label"] == 1}
    # A records split, joined to the catalogue on event_id.
    record_rows = predict.predict_catalogue(model=tiny_run["run"], records=tiny_run["records"],
                                            split="test")
    assert len(record_rows) == 4 and all(row["date"] for row in record_rows)


def test_published_catalogue_with_a_records_split(tiny_run, tmp_path, capsys):
    """``--catalogue <published SJH CSV> --records DIR`` once crashed with KeyError: 'event_id'."""
    from jetkeras.catalogue import JET_CATALOGUE, _bundled

    out = tmp_path / "records.csv"
    code = predict.main(["--catalogue", str(_bundled(JET_CATALOGUE)), "--records",
                         str(tiny_run["records"]), "--split", "test", "--model",
                         str(tiny_run["run"]), "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    events = load_events().set_index("event_id")
    assert len(rows) == 4 and {row["label"] for row in rows} == {"0", "1"}
    for row in rows:  # joined to the table given: its jets carry their Solar Jet Hunter id
        if row["label"] == "1":
            assert row["date"] == events.loc[row["event_id"], "date"]
            assert row["sjh_ID"] == str(events.loc[row["event_id"], "sjh_ID"])
        else:  # the published jet table knows no jet-free interval
            assert row["sjh_ID"] == ""


@pytest.mark.slow
def test_dask_two_workers_equal_single_process(tiny_run, event_cubes):
    single = predict.predict_catalogue(model=tiny_run["run"], cubes=event_cubes, batch_size=1,
                                       progress=False)
    distributed = predict.predict_catalogue(model=tiny_run["run"], cubes=event_cubes,
                                            batch_size=1, workers=2, progress=False)
    assert [row["event_id"] for row in distributed] == [row["event_id"] for row in single]
    np.testing.assert_allclose([row["probability"] for row in distributed],
                               [row["probability"] for row in single], atol=1e-6)
    assert distributed[0]["threshold"] == single[0]["threshold"]


def test_timeline_slides_the_window(tiny_run, predictor, tmp_path):
    event = load_events().iloc[0]
    cube = render_event(event, frames=10, size=32, seed=0,
                        field_of_view_arcsec=tiny_run["config"].data.field_of_view_arcsec)
    path = write_cube(tmp_path / "long.npz", cube)
    rows = predict.predict_timeline(cube=path, model=predictor, stride=2,
                                    out=tmp_path / "timeline.csv")
    stored = predictor.threshold
    anything = predict.predict_timeline(cube=path, model=predictor, stride=2, threshold=0.0,
                                        out=tmp_path / "anything.csv")
    # The threshold is honoured with a loaded Predictor too, and the Predictor unchanged.
    assert {(row["threshold"], row["predicted"]) for row in anything} == {(0.0, 1)}
    assert predictor.threshold == stored
    assert [row["window"] for row in rows] == [0, 1, 2, 3]
    assert {row["windows"] for row in rows} == {4}
    assert [row["start_s"] for row in rows] == [0.0, 48.0, 96.0, 144.0]
    assert rows[1]["start_time"] == cube.times[2]
    windows = np.stack([cube.frames[s:s + 4] for s in (0, 2, 4, 6)])
    np.testing.assert_allclose([row["probability"] for row in rows],
                               predictor.predict_proba(windows), atol=1e-7)
    with Image.open(tmp_path / "timeline.png") as image:
        assert image.format == "PNG" and image.size[0] > 500
    with open(tmp_path / "timeline.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4


def test_resample_only_when_asked(tiny_run, predictor, make_aia_frames, tmp_path):
    """Frames of another size and no pixel scale: refused, or zoomed under resample; a
    cube longer than the window is scored window by window, its best one reported."""
    from scipy import ndimage

    frames = make_aia_frames(n_frames=6, size=40)
    path = write_cube(tmp_path / "big.npz", Cube(frames=frames, source="test"))
    with pytest.raises(ValueError, match=(
            r"big\.npz: frames of 40x40 px with no pixel scale recorded, but the model "
            r"expects 32x32 px \(pass --resample to zoom them\)")):
        predict.predict_cubes(cubes=[path], model=predictor)
    with pytest.warns(UserWarning, match=r"big\.npz: zoomed by 0\.8 from 40x40 px"):
        rows = predict.predict_cubes(cubes=[path], model=predictor, resample=True)
    zoomed = ndimage.zoom(frames, (1.0, 0.8, 0.8), order=1, grid_mode=False, mode="nearest")
    expected = predictor.predict_proba(np.stack([zoomed[s:s + 4] for s in range(3)]))
    assert rows[0]["windows"] == 3 and rows[0]["window"] == int(np.argmax(expected))
    assert rows[0]["probability"] == pytest.approx(expected.max(), abs=1e-6)
    assert rows[0]["resampled"] == 1 and "resampled_space" in rows[0]["quality"].split(";")


def _cli(capsys, *argv):
    code = predict.main([str(a) for a in argv])
    return code, capsys.readouterr()


def test_cli_prints_a_table(tiny_run, tiny_export, event_cubes, tmp_path, capsys):
    run = tiny_run["run"]
    first = min(event_cubes.iterdir())
    code, captured = _cli(capsys, first, "--model", tiny_export, "--quiet", "--out",
                          tmp_path / "one.csv")
    assert code == 0 and (tmp_path / "one.csv").is_file()
    code, captured = _cli(capsys, first, "--model", run)
    assert code == 0
    # One cube: its whole row, one "column  value" line per known value.
    shown = dict(line.split(None, 1) for line in captured.out.strip().splitlines())
    assert shown["file"] == str(first) and shown["schema"] == "jetkeras-row/2"
    assert set(shown) <= set(COLUMNS) and {"probability", "predicted", "model"} <= set(shown)
    code, captured = _cli(capsys, first, max(event_cubes.iterdir()), "--model", run)
    header, *lines = captured.out.strip().splitlines()
    assert header.split()[:4] == ["file", "probability", "predicted", "threshold"]
    assert len(lines) == 2 and lines[0].startswith(str(first))


def _broken_copy(folder, destination, name, content=b"garbage"):
    shutil.copytree(folder, destination)
    (destination / name).write_bytes(content)
    return destination


def _without_litert(run, destination):
    _broken_copy(run, destination, "model.keras")
    (destination / "model.tflite").unlink()
    return destination


def _half_run(destination):
    destination.mkdir()
    (destination / "config.json").write_text("{}")
    return destination


def _mixed_folder(first, make_aia_frames, destination):
    destination.mkdir()
    shutil.copy(first, destination / "a.npz")
    write_cube(destination / "b.npz", Cube(frames=make_aia_frames(n_frames=4, size=24)))
    return destination


# Each scenario: (arguments, given the test's files; the text its one error line holds).
CLI_ERRORS = {
    "missing cube": (
        lambda c: [c.tmp / "absent.npz", "--model", c.run], "absent.npz: cube not found"),
    "not a cube": (
        lambda c: [c.write("notes.txt", "not a cube"), "--model", c.run],
        "notes.txt: expected a .npz cube or a directory of FITS frames"),
    "empty folder": (
        lambda c: [c.folder("empty"), "--model", c.run],
        "empty: expected .npz cubes, FITS frames or folders of FITS frames in this "
        "directory, found none"),
    "cubes of another size": (
        lambda c: [_mixed_folder(c.first, c.make_aia_frames, c.tmp / "mixed"), "--model", c.run],
        "b.npz: frames of 24x24 px with no pixel scale recorded, but the model expects "
        "32x32 px (pass --resample to zoom them)"),
    "cube shorter than the window, export": (
        lambda c: [c.cube("three.npz", 3, 32), "--model", c.export],
        "three.npz: 3 frame(s) spanning 48 s, but the model's window is 4 frames 24 s "
        "apart: give at least 72 s of frames; or exactly 2 frames 24-36 s apart with "
        "--resample"),
    "no such model": (
        lambda c: [c.first, "--model", c.tmp / "nowhere"],
        "nowhere: run folder or SavedModel not found"),
    "bad output suffix": (
        lambda c: [c.first, "--model", c.run, "--out", c.tmp / "p.xlsx"],
        "expected a .csv or .json file name, received suffix '.xlsx'"),
    "corrupt model.keras": (
        lambda c: [c.first, "--model", _broken_copy(c.run, c.tmp / "broken", "model.keras"),
                   "--runtime", "tensorflow"],
        "model.keras: cannot load the weights"),
    "corrupt model.tflite": (
        lambda c: [c.first, "--model", _broken_copy(c.run, c.tmp / "broken", "model.tflite")],
        "model.tflite: not a readable LiteRT model"),
    "litert without model.tflite": (
        lambda c: [c.first, "--model", _without_litert(c.run, c.tmp / "broken"),
                   "--runtime", "litert"],
        "expected model.tflite for the litert runtime (written by train and export)"),
    "jit on litert": (
        lambda c: [c.first, "--model", c.run, "--runtime", "litert", "--jit"],
        "--jit: XLA compiles the TensorFlow graph; it needs --runtime tensorflow"),
    "unfinished run folder": (
        lambda c: [c.first, "--model", _half_run(c.tmp / "half_run")],
        "expected a finished run folder or a SavedModel"),
    "corrupt SavedModel": (
        lambda c: [c.first, "--model", _broken_copy(c.export, c.tmp / "broken_export",
                                                    "saved_model.pb"),
                   "--runtime", "tensorflow"],
        "cannot load the SavedModel"),
    "missing catalogue": (
        lambda c: ["--catalogue", c.tmp / "none.csv", "--cubes", c.cubes, "--model", c.run],
        "none.csv: catalogue CSV file not found"),
    "catalogue without cubes or records": (
        lambda c: ["--catalogue", c.tmp / "none.csv", "--model", c.run],
        "--catalogue: expected exactly one of --cubes ROOT or --records DIR"),
    "catalogue and CUBE arguments": (
        lambda c: [c.first, "--catalogue", c.tmp / "none.csv", "--cubes", c.cubes,
                   "--model", c.run],
        "--catalogue: expected --cubes ROOT or --records DIR, not CUBE arguments"),
    "timeline and CUBE arguments": (
        lambda c: [c.first, "--timeline", c.first, "--model", c.run],
        "--timeline: expected one cube and no other CUBE arguments"),
    "no cube at all": (lambda c: ["--model", c.run], "CUBE: expected at least one cube"),
}


@pytest.mark.parametrize("argv, message", [
    (["--threshold", "1.5"], "--threshold: expected a probability in [0, 1], received 1.5"),
    (["--threshold", "nan"], "--threshold: expected a probability in [0, 1], received 'nan'"),
    (["--batch-size", "-1"], "--batch-size: expected a positive integer, received -1"),
])
def test_cli_flags_out_of_range_are_refused_by_argparse(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit, match="2"):  # before any model or cube is read
        predict.main([str(tmp_path / "cube.npz"), *argv])
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: argument {message}")


@pytest.mark.parametrize("scenario", sorted(CLI_ERRORS))
def test_cli_refuses_bad_input_in_one_line(scenario, tiny_run, tiny_export, event_cubes,
                                           make_aia_frames, tmp_path, capsys):
    from types import SimpleNamespace

    def write(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    def folder(name):
        (tmp_path / name).mkdir()
        return tmp_path / name

    def cube(name, frames, size):
        return write_cube(tmp_path / name, Cube(frames=make_aia_frames(n_frames=frames,
                                                                       size=size)))

    context = SimpleNamespace(run=tiny_run["run"], export=tiny_export, cubes=event_cubes,
                              first=min(event_cubes.iterdir()), tmp=tmp_path,
                              make_aia_frames=make_aia_frames, write=write, folder=folder,
                              cube=cube)
    arguments, match = CLI_ERRORS[scenario]
    code, captured = _cli(capsys, *arguments(context))
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith("predict: error: ")
    assert match in lines[-1], lines[-1]
    assert "Traceback" not in captured.err
    # Nothing was written by the refused command.
    assert not (tmp_path / "p.xlsx").exists() and not list(tmp_path.glob(".*tmp"))


def test_stride_zero_is_refused_by_the_parser(tiny_run, event_cubes, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--timeline", str(min(event_cubes.iterdir())), "--stride", "0"])
    assert exit_info.value.code == 2
    assert "--stride: expected a positive integer, received 0" in capsys.readouterr().err


def test_cli_leaves_its_arguments_alone_and_passes_jit_to_every_mode(tiny_run, event_cubes,
                                                                     monkeypatch):
    calls = {}

    def recorder(name):
        def record(**kwargs):
            calls[name] = kwargs
            return [{"probability": 0.5, "start_frame": 0, "label": 0, "threshold": 0.5}]
        return record

    for name in ("predict_cubes", "predict_catalogue", "predict_timeline"):
        monkeypatch.setattr(predict, name, recorder(name))
    first = str(min(event_cubes.iterdir()))
    model = ["--model", str(tiny_run["run"]), "--jit", "--quiet"]
    for argv in ([first, *model], ["--cubes", str(event_cubes), *model],
                 ["--timeline", first, *model]):
        assert predict.main(argv) == 0
    assert {name: kwargs["jit"] for name, kwargs in calls.items()} == {
        "predict_cubes": True, "predict_catalogue": True, "predict_timeline": True}
    parsed = predict._parser().parse_args(["--records", "r", *model])
    before = dict(vars(parsed))
    assert predict._check_flags(parsed) == "catalogue"
    assert vars(parsed) == before


def test_xla_forward_pass_gives_the_same_probabilities(tiny_run):
    plain = runtime.load_predictor(tiny_run["run"])
    compiled = runtime.load_predictor(tiny_run["run"], jit=True)
    frames = np.random.default_rng(0).gamma(2.0, 25.0, (3, plain.frames, plain.size,
                                                        plain.size)).astype(np.float32)
    np.testing.assert_allclose(compiled.predict_proba(frames), plain.predict_proba(frames),
                               atol=1e-5)


def test_another_channel_is_refused_unless_the_user_means_it(tiny_run, make_aia_fits_dir,
                                                             capsys):
    # The real AIA cutout is 171 A; the model (like the bundled one) is for 304 A.
    fits_171 = make_aia_fits_dir(n_frames=4, native_size=96)
    with pytest.raises(ValueError, match=r"aia_fits\d*: expected 304 A frames, as .*run was "
                                         r"trained on, received 171 A \(pass --any-channel if "
                                         r"you mean it\)"):
        predict.predict_cubes(cubes=[fits_171], model=tiny_run["run"], progress=False)
    code = predict.main([str(fits_171), "--model", str(tiny_run["run"]), "--quiet"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "received 171 A" in error
    assert predict.main([str(fits_171), "--model", str(tiny_run["run"]), "--quiet",
                         "--any-channel"]) == 0
    rows = predict.predict_cubes(cubes=[fits_171], model=tiny_run["run"], any_channel=True,
                                 progress=False)
    assert 0.0 <= rows[0]["probability"] <= 1.0


def test_units_follow_the_model(predictor, make_aia_fits_dir):
    from jetkeras.io import match_model_input, read_fits_dir

    folder = make_aia_fits_dir(n_frames=4, native_size=96, wavelength_angstrom=[304] * 4,
                               exptime_s=[2.0, 2.5, 2.0, 3.0])
    dn = read_fits_dir(folder, pool=3)
    per_second = read_fits_dir(folder, pool=3, exposure_normalise=True)
    assert predictor.config.data.exposure_normalise is False  # the model takes DN
    # A cube stored in DN/s is brought back to DN with its own exposure times.
    back = match_model_input(per_second, wavelength_angstrom=304, instrument="AIA",
                             exposure_normalise=False)
    np.testing.assert_allclose(back.frames, dn.frames, rtol=1e-5)
    assert back.meta["exposure_normalised"] is False
    forward = match_model_input(dn, wavelength_angstrom=304, instrument="AIA",
                                exposure_normalise=True)
    np.testing.assert_allclose(forward.frames, per_second.frames, rtol=1e-5)
    # Without exposure times the conversion cannot be made: refused in one line.
    blind = Cube(frames=per_second.frames, source="blind.npz", times=None,
                 meta={"exposure_normalised": True})
    with pytest.raises(ValueError, match=r"blind\.npz: expected frames in DN, as the model takes "
                                         r"them, received DN/s without one exposure time per "
                                         r"frame"):
        match_model_input(blind, wavelength_angstrom=304, instrument="AIA",
                          exposure_normalise=False)
    with pytest.raises(ValueError, match=r"expected frames from AIA, as the model was trained "
                                         r"on, received EIT"):
        match_model_input(Cube(frames=dn.frames, source="eit", times=None,
                               meta={"instrument": "EIT"}),
                          wavelength_angstrom=304, instrument="AIA", exposure_normalise=False)
