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

from jetkeras import predict
from jetkeras.catalogue import load_events
from jetkeras.cube import Cube
from jetkeras.io import read_cube, write_cube
from jetkeras.synthetic import render_event


@pytest.fixture(scope="module")
def predictor(tiny_run):
    return predict.load_predictor(tiny_run["run"])


@pytest.fixture(scope="module")
def event_cubes(tmp_path_factory):
    """Four synthetic cubes (2 jets, 2 not) named <event_id>.npz, 4 frames of 32x32."""
    folder = tmp_path_factory.mktemp("event_cubes")
    events = load_events()
    chosen = [events[events["label"] == 1].iloc[i] for i in (0, 1)] + \
             [events[events["label"] == 0].iloc[i] for i in (0, 1)]
    for number, event in enumerate(chosen):
        cube = render_event(event, frames=4, size=32, seed=number)
        write_cube(folder / f"{event['event_id']}.npz", cube)
    return folder


def test_run_folder_savedmodel_and_keras_agree(tiny_run, tiny_export, predictor,
                                               make_aia_frames):
    import keras

    import jetkeras.layers  # noqa: F401  (registers the custom layers)

    frames = np.stack([make_aia_frames(n_frames=4, size=32, seed=s) for s in range(5)])
    model = keras.saving.load_model(tiny_run["run"] / "model.keras")
    logits = model.predict(predictor.normalise(frames), verbose=0).astype(np.float64).ravel()
    from_keras = 1.0 / (1.0 + np.exp(-logits))
    assert predictor.runtime == "litert"  # the default where model.tflite exists
    for folder in (tiny_run["run"], tiny_export):
        for runtime in ("litert", "tensorflow"):
            loaded = predictor if (folder, runtime) == (tiny_run["run"], "litert") else \
                predict.load_predictor(folder, runtime=runtime)
            assert loaded.runtime == runtime
            # Batches of 2 then 1: the LiteRT interpreter is resized between them.
            probabilities = loaded.predict_proba(frames, batch_size=2)
            assert probabilities.shape == (5,) and probabilities.dtype == np.float64
            np.testing.assert_allclose(probabilities, from_keras, atol=1e-5,
                                       err_msg=f"{folder.name} on {runtime}")
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
    fits_dir = make_aia_fits_dir(n_frames=4, native_size=96)
    out = tmp_path / "predictions.csv"
    rows = predict.predict_cubes(cubes=[event_cubes, seed_root / "data1", fits_dir],
                                 model=tiny_run["run"], out=out, batch_size=3)
    assert len(rows) == 4 + 2 + 1
    with open(out) as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0])[:4] == ["file", "probability", "label", "threshold"]
    assert [row["file"] for row in written] == [row["file"] for row in rows]
    # Our cubes carry their event id and truth; the seed's and FITS do not.
    assert written[0]["event_id"] == min(p.stem for p in event_cubes.iterdir())
    assert written[0]["true_label"] in ("0", "1")
    assert written[-1]["event_id"] == "" and written[-1]["start_time"].startswith("2013-03-10")
    for row in rows:
        cube = read_cube(row["file"])
        expected = predictor.predict_proba(cube.frames[None])[0]
        assert row["probability"] == pytest.approx(expected, abs=1e-6)
        assert row["label"] == int(row["probability"] >= predictor.threshold)
    json_rows = predict.predict_cubes(cubes=[fits_dir], model=predictor,
                                      out=tmp_path / "p.json", threshold=0.0)
    assert json.loads((tmp_path / "p.json").read_text())[0]["label"] == 1
    assert json_rows[0]["threshold"] == 0.0


def test_catalogue_inference_on_both_layouts(tiny_run, event_cubes, make_seed_npz_root,
                                             tmp_path):
    rows = predict.predict_catalogue(model=tiny_run["run"], cubes=event_cubes,
                                     out=tmp_path / "catalogue.csv", progress=False)
    events = load_events().set_index("event_id")
    assert sorted(row["event_id"] for row in rows) == sorted(p.stem for p in
                                                             event_cubes.iterdir())
    for row in rows:
        assert list(row)[:7] == predict.CATALOGUE_COLUMNS
        assert row["label"] == events.loc[row["event_id"], "label"]
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
    cube = render_event(event, frames=10, size=32, seed=0)
    path = write_cube(tmp_path / "long.npz", cube)
    rows = predict.predict_timeline(cube=path, model=predictor, stride=2,
                                    out=tmp_path / "timeline.csv")
    assert [row["start_frame"] for row in rows] == [0, 2, 4, 6]
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
    frames = make_aia_frames(n_frames=6, size=40)
    path = write_cube(tmp_path / "big.npz", Cube(frames=frames, source="test"))
    with pytest.raises(ValueError, match=(
            r"big\.npz: cube of 6 frames of 40x40 px, but the model \(.*\) expects 4 frames "
            r"of 32x32 px \(pass --resample to interpolate\)")):
        predict.predict_cubes(cubes=[path], model=predictor)
    rows = predict.predict_cubes(cubes=[path], model=predictor, resample=True)
    from jetkeras.preprocess import resample

    expected = predictor.predict_proba(resample(frames, frames_out=4, size_out=32)[None])
    assert rows[0]["probability"] == pytest.approx(expected[0], abs=1e-7)


def _cli(capsys, *argv):
    code = predict.main([str(a) for a in argv])
    return code, capsys.readouterr()


def test_cli_prints_a_table_and_refuses_bad_input(tiny_run, tiny_export, event_cubes,
                                                  make_aia_frames, tmp_path, capsys):
    run = tiny_run["run"]
    first = min(event_cubes.iterdir())
    code, captured = _cli(capsys, first, "--model", tiny_export, "--quiet", "--out",
                          tmp_path / "one.csv")
    assert code == 0 and (tmp_path / "one.csv").is_file()
    code, captured = _cli(capsys, first, "--model", run)
    assert code == 0
    header, line = captured.out.strip().splitlines()
    assert header.split() == ["file", "probability", "label", "threshold"]
    assert line.startswith(str(first))

    def refused(*argv, match):
        code, captured = _cli(capsys, *argv)
        assert code == 2
        lines = captured.err.strip().splitlines()
        assert lines[-1].startswith("predict: error: ")
        assert match in lines[-1], lines[-1]

    with pytest.raises(SystemExit, match="2"):  # argparse refuses it before any work
        predict.main([str(first), "--model", str(run), "--threshold", "1.5"])
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: argument --threshold: expected a probability in [0, 1], received 1.5")
    refused(tmp_path / "absent.npz", "--model", run, match="absent.npz: cube not found")
    (tmp_path / "notes.txt").write_text("not a cube")
    refused(tmp_path / "notes.txt", "--model", run,
            match="notes.txt: expected a .npz cube or a directory of FITS frames")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "--model", run,
            match="empty: expected .npz cubes or FITS frames in this directory, found none")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(first, mixed / "a.npz")
    write_cube(mixed / "b.npz", Cube(frames=make_aia_frames(n_frames=4, size=24)))
    refused(mixed, "--model", run,
            match="b.npz: cube of 4 frames of 24x24 px, but the model")
    write_cube(tmp_path / "five.npz", Cube(frames=make_aia_frames(n_frames=5, size=32)))
    refused(tmp_path / "five.npz", "--model", tiny_export,
            match="five.npz: cube of 5 frames of 32x32 px, but the model")
    refused(first, "--model", tmp_path / "nowhere", match="run folder or SavedModel not found")
    refused(first, "--model", run, "--out", tmp_path / "p.xlsx",
            match="expected a .csv or .json file name, received suffix '.xlsx'")
    # Corrupt run folder and corrupt SavedModel.
    broken_run = tmp_path / "broken_run"
    shutil.copytree(run, broken_run)
    (broken_run / "model.keras").write_bytes(b"garbage")
    refused(first, "--model", broken_run, "--runtime", "tensorflow",
            match="model.keras: cannot load the weights")
    (broken_run / "model.tflite").write_bytes(b"garbage")
    refused(first, "--model", broken_run, match="model.tflite: not a readable LiteRT model")
    (broken_run / "model.tflite").unlink()
    refused(first, "--model", broken_run, "--runtime", "litert",
            match="expected model.tflite for --runtime litert (written by train and export)")
    refused(first, "--model", run, "--runtime", "litert", "--jit",
            match="--jit: XLA compiles the TensorFlow graph; it needs --runtime tensorflow")
    half_run = tmp_path / "half_run"
    half_run.mkdir()
    (half_run / "config.json").write_text("{}")
    refused(first, "--model", half_run, match="expected a finished run folder or a SavedModel")
    broken_export = tmp_path / "broken_export"
    shutil.copytree(tiny_export, broken_export)
    (broken_export / "saved_model.pb").write_bytes(b"garbage")
    refused(first, "--model", broken_export, "--runtime", "tensorflow",
            match="cannot load the SavedModel")
    for argv, flag in ((["--catalogue", tmp_path / "none.csv", "--cubes", event_cubes],
                        "--catalogue: expected an existing file"),
                       (["--timeline", first, "--stride", "0"],
                        "--stride: expected an integer >= 1, received 0")):
        with pytest.raises(SystemExit, match="2"):  # argparse refuses them before any work
            predict.main([str(a) for a in argv] + ["--model", str(run)])
        assert f"error: argument {flag}" in capsys.readouterr().err
    # Nothing was written by the refused commands.
    assert not (tmp_path / "p.xlsx").exists() and not list(tmp_path.glob(".*tmp"))


def test_xla_forward_pass_gives_the_same_probabilities(tiny_run):
    from jetkeras.predict import load_predictor

    plain = load_predictor(tiny_run["run"])
    compiled = load_predictor(tiny_run["run"], jit=True)
    frames = np.random.default_rng(0).gamma(2.0, 25.0, (3, plain.frames, plain.size,
                                                        plain.size)).astype(np.float32)
    np.testing.assert_allclose(compiled.predict_proba(frames), plain.predict_proba(frames),
                               atol=1e-5)
