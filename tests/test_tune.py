"""Tests of jetkeras.tune: space validation, grid/random/bayesian searches on tiny records,
resume after SIGKILL (keras-tuner#1055 fixed in our oracle), chief + 2 workers.

Records: 24 synthetic sequences of 4 frames of 32x32 (train 15, val 5), built once.
Model: the tiny td_lstm preset, 1 epoch per trial.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jetkeras.config import JetConfig
from jetkeras.space import load_space
from jetkeras.tune import main, tune

REPO = Path(__file__).resolve().parents[1]
TUNING = REPO / "tuning"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from jetkeras.build_records import build_records

    out = tmp_path_factory.mktemp("tune_records") / "records"
    config = JetConfig().replace(data={"frames": 4, "size": 32})
    build_records(source="synthetic", out=out, config=config, limit=24, seed=0,
                  records_per_shard=32, progress=False)
    return out


def write_space(path: Path, hyperparameters, fixed=None, name="test_space") -> Path:
    fixed = {"model.preset": "tiny", "train.epochs": 1, "train.batch_size": 4,
             "data.shuffle_buffer": 16} if fixed is None else fixed
    searched = {spec.get("name") for spec in hyperparameters}
    fixed = {key: value for key, value in fixed.items() if key not in searched}
    path.write_text(json.dumps({"name": name, "fixed": fixed,
                                "hyperparameters": hyperparameters}))
    return path


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv") as handle:
        return list(csv.DictReader(handle))


def environment() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------ the space files
def test_seed_grid_is_the_seeds_18_points():
    space = load_space(TUNING / "seed_grid.json")
    values = {spec["name"]: spec["values"] for spec in space["hyperparameters"]}
    assert values == {"train.learning_rate": [1e-4, 1e-5, 1e-6],
                      "train.optimizer": ["sgd", "adamw"],
                      "train.schedule": ["exponential", "cosine", "plateau"]}
    assert space["fixed"] == {"model.arch": "epfl2d", "train.batch_size": 2,
                              "train.epochs": 100, "train.weight_decay": 0.005}
    from jetkeras.space import grid_points

    assert grid_points(space) == 18


def test_architecture_space_maps_onto_one_config():
    import keras_tuner

    from jetkeras.space import apply_values, config_keys, declare

    space = load_space(TUNING / "architecture.json")
    names = {spec["name"] for spec in space["hyperparameters"]}
    assert {"model.widths", "model.lstm_units", "model.dropout", "train.learning_rate",
            "train.batch_size", "data.max_angle_deg", "data.brightness_jitter"} <= names
    hp = keras_tuner.HyperParameters()
    values = {spec["name"]: declare(hp, spec, config_keys())
              for spec in space["hyperparameters"]}
    config = apply_values(apply_values(JetConfig(), space["fixed"]), values)
    assert config.model.arch == "td_lstm"
    assert config.model.widths == (8, 16, 32)  # the first choice, decoded from JSON
    assert 1e-5 <= config.train.learning_rate <= 1e-2
    with pytest.raises(ValueError, match="--tuner grid: hyperparameter `model.dropout`.*"
                                         "continuous float range without `step`"):
        from jetkeras.space import grid_points

        grid_points(space)


def test_projection_space_builds_the_shipped_model_at_its_first_values():
    import keras_tuner
    import numpy as np

    from jetkeras.models import build_model
    from jetkeras.space import apply_values, config_keys, declare

    space = load_space(TUNING / "projection.json")
    hp = keras_tuner.HyperParameters()
    values = {spec["name"]: declare(hp, spec, config_keys())
              for spec in space["hyperparameters"]}
    config = apply_values(apply_values(JetConfig(), space["fixed"]), values)
    # The first choices are the shipped recipe's: the search starts from the default.
    shipped = JetConfig()
    assert config.model.arch == shipped.model.arch == "projection"
    assert config.model.widths == shipped.model.widths
    assert config.model.members == shipped.model.members
    assert config.train.batch_size == shipped.train.batch_size
    assert config.train.epochs == 20 and 3e-4 <= config.train.learning_rate <= 1e-2
    small = config.replace(data={"frames": 4, "size": 32})
    logits = build_model(small, seed=0)(np.zeros((2, 4, 32, 32, 1), "float32"))
    assert tuple(logits.shape) == (2, 1)


def test_tiny_grid_expands_the_tiny_preset():
    from jetkeras.space import apply_values

    space = load_space(TUNING / "tiny_grid.json")
    config = apply_values(JetConfig(), space["fixed"])
    assert (config.model.widths, config.model.lstm_units, config.model.preset) == \
        ((4, 8), 8, "tiny")


# ------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("hyperparameters, fixed, message", [
    ([{"name": "train.lr", "type": "choice", "values": [1e-3]}], {},
     r"unknown key `train.lr`; valid keys are \[.*'train.learning_rate'"),
    ([{"name": "train.learning_rate", "type": "choice", "values": []}], {},
     r"hyperparameter `train.learning_rate` expected a non-empty list `values`"),
    ([{"name": "train.learning_rate", "type": "choice", "values": ["fast"]}], {},
     r"key `train.learning_rate` expected float, received str 'fast'"),
    ([{"name": "train.optimizer", "type": "float", "min": 0, "max": 1}], {},
     r"`train.optimizer` is a float range but config key `train.optimizer` holds str"),
    ([{"name": "train.epochs", "type": "int", "min": 1, "max": 2.5}], {},
     r"`train.epochs` expected `max` an integer, received 2.5"),
    ([{"name": "train.learning_rate", "type": "float", "min": 0.0, "max": 1.0,
       "sampling": "log"}], {}, r"with log sampling expected min > 0, received min=0.0"),
    ([{"name": "model.dropout", "type": "choice", "values": [0.2, 1.5]}], {},
     r"config key `model.dropout`: expected a value in \[0, 1\), received 1.5"),
    ([{"name": "train.epochs", "type": "choice", "values": [1]}], {"data.colour": 1},
     r"unknown key `data.colour`"),
    ([{"name": "train.epochs", "type": "grid", "values": [1]}], {},
     r"`train.epochs` expected `type` one of \['choice', 'float', 'int'\], received 'grid'"),
])
def test_bad_space_is_one_clear_error(tmp_path, hyperparameters, fixed, message):
    path = write_space(tmp_path / "bad.json", hyperparameters, fixed=fixed)
    with pytest.raises(ValueError, match=message):
        load_space(path)
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        load_space(path)


def test_missing_space_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.json: search space file not found"):
        load_space(tmp_path / "nowhere.json")


def test_grid_over_continuous_range_refused_by_tune(records, tmp_path, capsys):
    space = write_space(tmp_path / "continuous.json", [
        {"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2}])
    code = main(["--records", str(records), "--space", str(space), "--tuner", "grid",
                 "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert "--tuner grid: hyperparameter `train.learning_rate`" in error[0]
    assert not (tmp_path / "out" / "tuner").exists()


def test_worker_without_chief_fails_within_timeout(records, tmp_path, capsys):
    port = free_port()  # nothing listens there
    start = time.monotonic()
    code = main(["--records", str(records), "--space", str(TUNING / "tiny_grid.json"),
                 "--tuner", "grid", "--out", str(tmp_path / "out"), "--role", "worker",
                 "--worker-id", "0", "--oracle", f"127.0.0.1:{port}",
                 "--connect-timeout", "1.5"])
    elapsed = time.monotonic() - start
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and elapsed < 15
    assert error == [(f"tune: error: --oracle 127.0.0.1:{port}: no chief answered within "
                      f"1.5 s (--connect-timeout); start the chief first (--role chief)")]


def test_bad_oracle_and_role_flags(records, tmp_path):
    common = {"records": records, "space": TUNING / "tiny_grid.json", "tuner": "grid",
              "out": tmp_path / "out"}
    with pytest.raises(ValueError, match=r"--oracle: expected HOST:PORT .*received 'localhost'"):
        tune(**common, role="chief", oracle="localhost")
    with pytest.raises(ValueError, match=r"--role worker: expected --worker-id 0, 1, ..."):
        tune(**common, role="worker", oracle="127.0.0.1:1")
    with pytest.raises(FileNotFoundError, match="--resume given but no search to resume"):
        tune(**common, resume=True)


# ------------------------------------------------------------------------ searches
@pytest.mark.slow
def test_grid_search_records_failed_trial_and_writes_best_run(records, tmp_path):
    from jetkeras.pipeline import make_dataset
    from jetkeras.runtime import load_run_model
    from jetkeras.train import predict_probabilities

    space = write_space(tmp_path / "grid.json", [
        {"name": "train.batch_size", "type": "choice", "values": [4, 64]}])
    out = tmp_path / "grid"
    result = tune(records=records, space=space, tuner="grid", out=out, seed=1, epochs=2)

    rows = read_rows(out)
    assert [row["train.batch_size"] for row in rows] == ["4", "64"]  # best (completed) first
    assert [row["status"] for row in rows] == ["COMPLETED", "FAILED"]
    assert rows[1]["error"] == (f"ValueError: {records}: the train split holds 15 events, "
                                f"fewer than train.batch_size 64")
    assert rows[1]["val_auc"] == "" and 0.0 <= float(rows[0]["val_auc"]) <= 1.0
    assert (rows[0]["epochs_run"], rows[1]["epochs_run"]) == ("2", "0")
    assert rows[0]["best_epoch"] in ("1", "2") and float(rows[0]["seconds"]) > 0
    assert "| COMPLETED |" in (out / "results.md").read_text()
    for figure in ("objective.png", "val_f1_per_epoch.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"

    best = JetConfig.from_json(out / "best_config.json")
    assert best == result["best_config"]
    assert (best.train.batch_size, best.model.widths, best.data.size) == (4, (4, 8), 32)
    run = load_run_model(out / "best_run")
    history = json.loads((out / "best_run" / "history.json").read_text())
    assert len(history["val_f1"]) == len(history["loss"]) == 2
    assert max(history["val_auc"]) == pytest.approx(float(rows[0]["val_auc"]))
    threshold = json.loads((out / "best_run" / "threshold.json").read_text())
    # The saved model is the best trial's checkpoint: same validation AUC as the search.
    assert threshold["val_auc"] == pytest.approx(float(rows[0]["val_auc"]), abs=0.02)
    probabilities, labels = predict_probabilities(
        run["model"], make_dataset(records, "val", run["config"], training=False))
    assert probabilities.shape == labels.shape == (5,)
    assert 0.0 <= run["threshold"] <= 1.0


def test_too_many_failures_stop_the_search(records, tmp_path):
    space = write_space(tmp_path / "failing.json", [
        {"name": "train.batch_size", "type": "choice", "values": [64, 128, 256]}])
    out = tmp_path / "failing"
    with pytest.raises(ValueError, match=r"search stopped, number of consecutive failures "
                                         r"exceeded the limit of 2 .*fewer than "
                                         r"train.batch_size 128\)"):
        tune(records=records, space=space, tuner="grid", out=out,
             max_consecutive_failed_trials=2)
    rows = read_rows(out)
    assert [row["status"] for row in rows] == ["FAILED", "FAILED"]
    assert not (out / "best_config.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["random", "bayesian"])
def test_random_and_bayesian_draw_within_the_space(records, tmp_path, tuner):
    space = write_space(tmp_path / "draws.json", [
        {"name": "train.learning_rate", "type": "float", "min": 1e-3, "max": 3e-2,
         "sampling": "log"},
        {"name": "model.lstm_units", "type": "int", "min": 4, "max": 12, "step": 4}])
    out = tmp_path / tuner
    tune(records=records, space=space, tuner=tuner, out=out, max_trials=2, seed=3,
         objective="val_loss")
    rows = read_rows(out)
    assert len(rows) == 2 and all(row["status"] == "COMPLETED" for row in rows)
    losses = [float(row["val_loss"]) for row in rows]
    assert losses == sorted(losses)  # val_loss is minimised: best (lowest) first
    for row in rows:
        assert 1e-3 <= float(row["train.learning_rate"]) <= 3e-2
        assert int(row["model.lstm_units"]) in (4, 8, 12)
    best = JetConfig.from_json(out / "best_config.json")
    assert best.train.learning_rate == pytest.approx(float(rows[0]["train.learning_rate"]))
    assert best.model.lstm_units == int(rows[0]["model.lstm_units"])


# ------------------------------------------------------------------------ resume
def tune_command(records, out, *extra, space="tiny_grid.json"):
    return [sys.executable, "-m", "jetkeras.tune", "--records", str(records), "--space",
            str(TUNING / space), "--tuner", "grid", "--out", str(out), *extra]


def trial_status(out: Path) -> dict[str, str]:
    status = {}
    for path in (out / "tuner").glob("trial_*/trial.json"):
        try:
            trial = json.loads(path.read_text())
        except json.JSONDecodeError:  # being written
            continue
        status[trial["trial_id"]] = trial["status"]
    return status


def test_keras_tuner_state_files_are_written_atomically(tmp_path, monkeypatch):
    """A kill while KerasTuner saves its state leaves the previous file, never an empty one."""
    from keras_tuner.src import utils as keras_tuner_utils

    from jetkeras import tuners

    assert keras_tuner_utils.save_json is tuners.atomic_save_json
    path = tmp_path / "oracle.json"
    keras_tuner_utils.save_json(str(path), {"round": 1})

    def killed(source, target):
        raise KeyboardInterrupt  # the process dies before the new file is swapped in

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        keras_tuner_utils.save_json(str(path), {"round": 2})
    assert json.loads(path.read_text()) == {"round": 1}
    assert [file.name for file in tmp_path.iterdir()] == ["oracle.json"]


@pytest.mark.slow
def test_grid_resumes_after_sigkill_without_rerunning(records, tmp_path):
    out = tmp_path / "resumed"
    process = subprocess.Popen(tune_command(records, out), env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        # Kill once trial 0 is complete and trial 1 has started (mid-trial).
        while time.monotonic() < deadline:
            status = trial_status(out)
            if status.get("0") == "COMPLETED" and status.get("1") == "RUNNING":
                break
            assert process.poll() is None, "the search ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail(f"no second trial started within 240 s: {trial_status(out)}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_with = trial_status(out)
    completed_before = {trial_id for trial_id, status in killed_with.items()
                        if status == "COMPLETED"}
    assert "0" in completed_before and not (out / "results.csv").exists()

    # Resuming on a different space names both.
    finished = subprocess.run(
        tune_command(records, out, "--resume", space="seed_grid.json"), env=environment(),
        capture_output=True, text=True, check=False)
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines()[-1] == (
        f"tune: error: --resume: {out} holds a search of space 'tiny_grid' "
        f"({TUNING / 'tiny_grid.json'}), received space 'seed_grid' "
        f"({TUNING / 'seed_grid.json'}); use another --out or drop --resume")

    finished = subprocess.run(tune_command(records, out, "--resume"), env=environment(),
                              capture_output=True, text=True, timeout=400, check=False)
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = read_rows(out)
    points = sorted((float(row["train.learning_rate"]), row["train.optimizer"]) for row in rows)
    assert points == sorted([(1e-3, "adamw"), (1e-3, "sgd"), (1e-2, "adamw"), (1e-2, "sgd")])
    assert all(row["status"] == "COMPLETED" for row in rows)
    starts = [json.loads(line)["trial_id"]
              for line in (out / "trial_starts.jsonl").read_text().splitlines()]
    for trial_id in completed_before:
        assert starts.count(trial_id) == 1  # finished before the kill: never rerun
    assert sorted(set(starts)) == sorted(row["trial_id"] for row in rows)


# ------------------------------------------------------------------------ distributed
@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_once(records, tmp_path):
    out = tmp_path / "distributed"
    oracle = f"127.0.0.1:{free_port()}"
    chief = subprocess.Popen(tune_command(records, out, "--role", "chief", "--oracle", oracle),
                             env=environment(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    workers = [subprocess.Popen(tune_command(records, out, "--role", "worker", "--oracle",
                                             oracle, "--worker-id", str(index),
                                             "--connect-timeout", "120"),
                                env=environment(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for index in range(2)]
    try:
        for process in [*workers, chief]:
            _, stderr = process.communicate(timeout=400)
            assert process.returncode == 0, stderr[-2000:]
    finally:
        for process in [*workers, chief]:
            if process.poll() is None:
                process.kill()
    rows = read_rows(out)
    assert len(rows) == 4 and all(row["status"] == "COMPLETED" for row in rows)
    points = {(float(row["train.learning_rate"]), row["train.optimizer"]) for row in rows}
    assert len(points) == 4
    starts = [json.loads(line) for line in (out / "trial_starts.jsonl").read_text().splitlines()]
    assert sorted(start["trial_id"] for start in starts) == sorted(row["trial_id"]
                                                                   for row in rows)
    assert {start["tuner_id"] for start in starts} <= {"tuner0", "tuner1"}
    assert (out / "best_run" / "threshold.json").is_file()


# ------------------------------------------------------------ stored state
def _search_record(**changes):
    from jetkeras.tune import SEARCH_FORMAT

    record = {"format": SEARCH_FORMAT, "space": "tiny_grid", "space_file": "tiny_grid.json",
              "space_sha256": "0" * 64, "tuner": "grid", "objective": "val_auc",
              "grid_points": 2, "max_trials": 2, "seed": 0, "records": "tfrecords/x",
              "base_config": JetConfig().to_dict()}
    record.update(changes)
    return {key: value for key, value in record.items() if value is not _ABSENT}


_ABSENT = object()


def test_search_record_is_read_and_an_old_one_is_version_1(tmp_path):
    from jetkeras.tune import read_search_record

    (tmp_path / "search.json").write_text(json.dumps(_search_record()))
    assert read_search_record(tmp_path)["tuner"] == "grid"
    (tmp_path / "search.json").write_text(json.dumps(_search_record(format=_ABSENT)))
    assert read_search_record(tmp_path)["space"] == "tiny_grid"


@pytest.mark.parametrize("changes, message", [
    ({"format": "jetkeras-search/2"}, "key `format`: expected the known version "
                                      "'jetkeras-search/1'"),
    ({"tuner": "annealing"}, "key `tuner`: expected one of ['grid', 'random', 'bayesian', "
                             "'hyperband'], received 'annealing'"),
    ({"objective": "val_acc"}, "key `objective`: expected one of"),
    ({"max_trials": 0}, "key `max_trials`: expected an integer >= 1, received 0"),
    ({"seed": -1}, "key `seed`: expected an integer >= 0, received -1"),
    ({"space_sha256": "abc"}, "key `space_sha256`: expected a SHA-256"),
    ({"records": _ABSENT}, "key `records`: expected a non-empty string, received None"),
    ({"base_config": {"train": {"epochs": 0}}},
     "key `base_config`: config key `train.epochs`: expected a positive integer"),
])
def test_a_changed_search_record_is_refused_with_the_key(tmp_path, changes, message):
    from jetkeras.tune import read_search_record

    (tmp_path / "search.json").write_text(json.dumps(_search_record(**changes)))
    with pytest.raises(ValueError) as error:
        read_search_record(tmp_path)
    line = str(error.value)
    assert line.startswith(f"{tmp_path / 'search.json'}: "), line
    assert message in line, line
    assert line.endswith("start the search again without --resume (or in another --out), or "
                         "fix the file")


def test_trial_record_is_checked(tmp_path):
    from jetkeras.tune import read_trial_record

    path = tmp_path / "trial_00" / "jetkeras.json"
    path.parent.mkdir()
    # Version 1 without "format"; a diverged trial's NaN loss is a number.
    path.write_text(json.dumps({"seconds": 1.5, "tuner_id": "tuner0",
                                "history": {"loss": [0.7, float("nan")]}}))
    assert read_trial_record(path)["seconds"] == 1.5
    for record, message in (
            ({"seconds": -1.0}, "key `seconds`: expected a finite number >= 0, received -1.0"),
            ({"seconds": 1.0, "history": {"loss": ["x"]}},
             "key `history.loss`: expected a list of numbers"),
            ({"format": "jetkeras-trial/2", "seconds": 1.0}, "key `format`: expected the known "
                                                             "version 'jetkeras-trial/1'")):
        path.write_text(json.dumps(record))
        with pytest.raises(ValueError, match="rerun the search with --resume") as error:
            read_trial_record(path)
        assert message in str(error.value)


def test_resume_refuses_a_changed_search_record(records, tmp_path, capsys):
    out = tmp_path / "search"
    (out / "tuner").mkdir(parents=True)
    (out / "tuner" / "oracle.json").write_text("{}")
    (out / "search.json").write_text(json.dumps(_search_record(tuner="sideways")))
    code = main(["--records", str(records), "--space", str(TUNING / "tiny_grid.json"),
                 "--tuner", "grid", "--out", str(out), "--resume"])
    assert code == 2
    assert "search.json: key `tuner`: expected one of" in capsys.readouterr().err


def test_keras_tuner_outside_the_patched_versions_is_refused():
    """tuners.py reaches into KerasTuner 1.4 internals: another minor release is refused."""
    import keras_tuner

    from jetkeras import tuners

    tuners.check_version()  # the installed release is one the patches were written for
    assert tuners.SUPPORTED_VERSIONS[0] <= tuple(
        int(part) for part in keras_tuner.__version__.split(".")[:3]) < \
        tuners.SUPPORTED_VERSIONS[1]
    for version in ("1.5.0", "1.4.6", "2.0.0rc1"):
        with pytest.raises(ValueError, match=rf"keras-tuner {version}: jetkeras.tune patches "
                                             r"KerasTuner internals .*,<1\.5"):
            tuners.check_version(version)


def test_search_shows_trial_progress_with_the_best_so_far(records, tmp_path, capsys):
    """At the default verbosity a search still reports each trial: k of n and the best."""
    space = write_space(tmp_path / "progress.json", [
        {"name": "train.learning_rate", "type": "choice", "values": [1e-3, 1e-2]}])
    tune(records=records, space=space, tuner="grid", out=tmp_path / "progress", seed=0,
         epochs=1)
    error = capsys.readouterr().err
    assert "tune: trials" in error and "2/2" in error, error
    best = read_rows(tmp_path / "progress")[0]
    assert f"best val_auc {float(best['val_auc']):.4f}" in error, error
