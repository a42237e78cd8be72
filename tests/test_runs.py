"""Tests of jetkeras.runs' checked readers: every stored run or export file a person or a
half-finished copy could have changed is refused in one line naming the file, the key,
what was expected, what was received and what to do (the library and ``predict``)."""

from __future__ import annotations

import json
import math
import os
import shutil

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jetkeras import predict, runs
from jetkeras.catalogue import load_events
from jetkeras.io import write_cube
from jetkeras.synthetic import render_event

RUN_FIX = "rerun `python -m jetkeras.train` or fix the file"
EXPORT_FIX = "rerun `python -m jetkeras.export` or fix the file"
UNIT = "expected a finite number in [0, 1]"
POSITIVE = "expected a finite number > 0"
FINITE = "expected a finite number,"
VERSION = "expected a known version"


def _drop(key):
    return lambda content: content.pop(key)


def _set(key, value):
    return lambda content: content.__setitem__(key, value)


# (file, change, the key named, what the line says after the key)
CORRUPTIONS = {
    "threshold 5.0": (runs.THRESHOLD_FILE, _set("threshold", 5.0), "threshold",
                      f"{UNIT}, received 5.0"),
    "threshold -0.1": (runs.THRESHOLD_FILE, _set("threshold", -0.1), "threshold",
                       f"{UNIT}, received -0.1"),
    "threshold NaN": (runs.THRESHOLD_FILE, _set("threshold", math.nan), "threshold",
                      f"{UNIT}, received nan"),
    "threshold text": (runs.THRESHOLD_FILE, _set("threshold", "abc"), "threshold",
                       f"{UNIT}, received 'abc'"),
    "threshold missing": (runs.THRESHOLD_FILE, _drop("threshold"), "threshold",
                          "expected the key, received a file without it"),
    "threshold version": (runs.THRESHOLD_FILE, _set("format", "jetkeras-threshold/9"),
                          "format", VERSION),
    "std 0": (runs.NORMALISATION_FILE, _set("std", 0), "std", f"{POSITIVE}, received 0"),
    "std negative": (runs.NORMALISATION_FILE, _set("std", -2.5), "std",
                     f"{POSITIVE}, received -2.5"),
    "std NaN": (runs.NORMALISATION_FILE, _set("std", math.nan), "std",
                f"{POSITIVE}, received nan"),
    "mean missing": (runs.NORMALISATION_FILE, _drop("mean"), "mean",
                     "expected the key, received a file without it"),
    "mean infinite": (runs.NORMALISATION_FILE, _set("mean", math.inf), "mean",
                      f"{FINITE} received inf"),
    "scaling unknown": (runs.NORMALISATION_FILE, _set("scaling", "sqrt"), "scaling",
                        "expected one of ['clip', 'log'], received 'sqrt'"),
    "frames not the config's": (runs.NORMALISATION_FILE, _set("frames", 7), "frames",
                                "expected 4 as config.json's data.frames, received 7"),
    "normalisation version": (runs.NORMALISATION_FILE,
                              _set("format", "jetkeras-normalisation/2"), "format", VERSION),
}


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    """One synthetic cube of 4 frames of 32x32 (the tiny run's input)."""
    event = load_events().iloc[0]
    path = tmp_path_factory.mktemp("cube") / "cube.npz"
    write_cube(path, render_event(event, frames=4, size=32, seed=0))
    return path


def _corrupt(source, target, name, change):
    shutil.copytree(source, target)
    content = json.loads((target / name).read_text())
    change(content)
    (target / name).write_text(json.dumps(content))
    return target


def _cli_error(capsys, cube, model):
    code = predict.main([str(cube), "--model", str(model)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    return lines[0]


def test_a_finished_run_reads_with_its_format_versions(tiny_run):
    threshold = json.loads((tiny_run["run"] / runs.THRESHOLD_FILE).read_text())
    normalisation = json.loads((tiny_run["run"] / runs.NORMALISATION_FILE).read_text())
    assert threshold["format"] == runs.THRESHOLD_FORMAT
    assert normalisation["format"] == runs.NORMALISATION_FORMAT
    loaded = runs.read_run(tiny_run["run"])
    assert 0 <= loaded["threshold"] <= 1 and (loaded["frames"], loaded["size"]) == (4, 32)


def test_files_without_format_read_as_version_1(tiny_run, tmp_path):
    """The bundled model's files predate the versions: they still load."""
    bundled = runs.read_run(runs.BUNDLED_MODEL)
    assert 0 < bundled["threshold"] < 1 and bundled["frames"] == 30
    run = tmp_path / "run"
    shutil.copytree(tiny_run["run"], run)
    for name in (runs.THRESHOLD_FILE, runs.NORMALISATION_FILE):
        content = json.loads((run / name).read_text())
        del content["format"]
        (run / name).write_text(json.dumps(content))
    assert runs.read_run(run)["threshold"] == runs.read_run(tiny_run["run"])["threshold"]


@pytest.mark.parametrize("scenario", sorted(CORRUPTIONS))
def test_a_corrupt_run_file_is_one_line(scenario, tiny_run, cube, tmp_path, capsys):
    name, change, key, says = CORRUPTIONS[scenario]
    run = _corrupt(tiny_run["run"], tmp_path / "run", name, change)
    start = f"{run / name}: key `{key}`: {says}"
    with pytest.raises(ValueError) as caught:
        runs.read_run(run)
    message = str(caught.value)
    assert message.startswith(start) and message.endswith(f"; {RUN_FIX}")
    assert "\n" not in message
    with pytest.raises(ValueError, match="^" + str(run / name).replace(".", r"\.")):
        runs.stored_threshold(run)
    line = _cli_error(capsys, cube, run)
    assert start in line and line.endswith(RUN_FIX)


@pytest.mark.parametrize("text, says", [
    ('{"data": {"frames": 0}}', "frames"),
    ('{"data": {"size": "big"}}', "size"),
    ('{"epochs": 3}', "unknown section"),
    ("[1, 2]", "expected a JSON object"),
    ("{not json", "expected JSON, received invalid JSON"),
])
def test_a_corrupt_run_config_names_the_file_and_what_to_do(text, says, tiny_run, cube,
                                                            tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run["run"], run)
    (run / runs.CONFIG_FILE).write_text(text)
    with pytest.raises(ValueError) as caught:
        runs.read_run(run)
    message = str(caught.value)
    assert message.startswith(str(run / runs.CONFIG_FILE)) and says in message
    assert message.endswith(RUN_FIX) and "\n" not in message
    line = _cli_error(capsys, cube, run)
    assert str(run / runs.CONFIG_FILE) in line and line.endswith(RUN_FIX)


def _fake_export(tiny_run, folder, change=None):
    """An export's metadata beside an empty saved_model.pb: read before the network."""
    loaded = runs.read_run(tiny_run["run"])
    metadata = {"format": runs.EXPORT_FORMAT, "threshold": loaded["threshold"],
                "normalisation": loaded["normalisation"], "frames": loaded["frames"],
                "size": loaded["size"], "config": loaded["config"].to_dict()}
    if change is not None:
        change(metadata)
    (folder / runs.ASSETS_FOLDER).mkdir(parents=True)
    (folder / runs.SAVED_MODEL_FILE).write_bytes(b"")
    (folder / runs.ASSETS_FOLDER / runs.EXPORT_METADATA_FILE).write_text(
        json.dumps(metadata))
    return folder


def _set_in(section, key, value):
    return lambda content: content[section].__setitem__(key, value)


EXPORT_CORRUPTIONS = {
    "threshold 5.0": (_set("threshold", 5.0), "threshold", f"{UNIT}, received 5.0"),
    "threshold NaN": (_set("threshold", math.nan), "threshold", f"{UNIT}, received nan"),
    "threshold missing": (_drop("threshold"), "threshold", "expected the key"),
    "frames not the config's": (_set("frames", 6), "frames",
                                "expected 4 as config.data.frames, received 6"),
    "size not the config's": (_set("size", 64), "size",
                              "expected 32 as config.data.size, received 64"),
    "std 0": (_set_in("normalisation", "std", 0), "normalisation.std",
              f"{POSITIVE}, received 0"),
    "mean missing": (lambda content: content["normalisation"].pop("mean"),
                     "normalisation.mean", "expected the key"),
    "unknown version": (_set("format", "jetkeras-savedmodel/3"), "format", VERSION),
    "config missing": (_drop("config"), "config", "expected the key"),
}


def test_a_sound_export_reads(tiny_run, tmp_path):
    loaded = runs.read_export(_fake_export(tiny_run, tmp_path / "export"))
    assert (loaded["frames"], loaded["size"]) == (4, 32)
    metadata = tmp_path / "export" / runs.ASSETS_FOLDER / runs.EXPORT_METADATA_FILE
    content = json.loads(metadata.read_text())
    del content["format"]  # none: version 1
    metadata.write_text(json.dumps(content))
    assert runs.read_export(tmp_path / "export")["threshold"] == loaded["threshold"]


@pytest.mark.parametrize("scenario", sorted(EXPORT_CORRUPTIONS))
def test_a_corrupt_export_metadata_is_one_line(scenario, tiny_run, cube, tmp_path, capsys):
    change, key, says = EXPORT_CORRUPTIONS[scenario]
    export = _fake_export(tiny_run, tmp_path / "export", change)
    path = export / runs.ASSETS_FOLDER / runs.EXPORT_METADATA_FILE
    start = f"{path}: key `{key}`: {says}"
    with pytest.raises(ValueError) as caught:
        runs.read_model_folder(export)
    message = str(caught.value)
    assert message.startswith(start) and message.endswith(f"; {EXPORT_FIX}")
    assert "\n" not in message
    line = _cli_error(capsys, cube, export)
    assert start in line and line.endswith(EXPORT_FIX)


def test_a_corrupt_export_config_names_the_key(tiny_run, tmp_path):
    export = _fake_export(tiny_run, tmp_path / "export",
                          _set_in("config", "data", {"frames": -1}))
    path = export / runs.ASSETS_FOLDER / runs.EXPORT_METADATA_FILE
    with pytest.raises(ValueError, match=rf"^{path}: key `config`.*frames.*; rerun "):
        runs.read_export(export)
