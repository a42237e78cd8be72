"""crossval: grouped and stratified folds, one-line errors, a resumable tiny end-to-end run."""

import csv
import json
import math
import re

import numpy as np
import pytest

from jetkeras.build_records import build_records
from jetkeras.catalogue import load_events
from jetkeras.config import JetConfig, model_preset
from jetkeras.crossval import assign_folds, check_assignment, crossval, main, read_sequences

TINY = JetConfig().replace(
    data={"frames": 4, "size": 32},
    model={**model_preset("tiny").__dict__},
    train={"epochs": 1, "batch_size": 4, "seed": 0},
)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """32 synthetic sequences of 4 frames of 32x32 (16 jets), 8 per shard."""
    out = tmp_path_factory.mktemp("crossval") / "records"
    build_records(source="synthetic", out=out, config=TINY, limit=32, seed=0,
                  records_per_shard=8, progress=False)
    return out


@pytest.mark.parametrize("folds", [2, 5])
def test_folds_are_grouped_and_stratified_on_the_real_catalogue(folds):
    events = load_events()  # 1,766 sequences; 229 jet groups, some holding negatives too
    labels, groups = events["label"].to_numpy(), events["group"].to_numpy()
    roles = assign_folds(labels, groups, folds=folds, seed=0)
    assert roles.shape == (folds, len(events))
    # Every sequence is tested in exactly one fold.
    assert ((roles == "test").sum(axis=0) == 1).all()
    overall = labels.mean()
    for fold_roles in roles:
        members = {role: set(groups[fold_roles == role]) for role in ("train", "val", "test")}
        assert not members["train"] & members["val"]
        assert not members["train"] & members["test"]
        assert not members["val"] & members["test"]
        test = fold_roles == "test"
        assert abs(test.sum() - len(events) / folds) < 0.1 * len(events) / folds
        assert abs(labels[test].mean() - overall) < 0.03  # stratified
        val = fold_roles == "val"
        rest = len(events) - test.sum()
        assert abs(val.sum() / rest - 1 / max(folds - 1, 3)) < 0.05
        assert abs(labels[val].mean() - overall) < 0.05
    assert (assign_folds(labels, groups, folds=folds, seed=0) == roles).all()
    assert not (assign_folds(labels, groups, folds=folds, seed=1) == roles).all()


def test_a_group_in_two_roles_is_refused():
    labels = np.array([1, 0, 1, 0, 1, 0])
    groups = np.array(["a", "b", "c", "d", "a", "e"])
    roles = np.array([["train", "val", "test", "val", "test", "train"],
                      ["test", "test", "train", "test", "val", "test"]])
    with pytest.raises(ValueError, match=r"fold 0: group 'a' is in both train and test"):
        check_assignment(roles, labels, groups)


def test_bad_folds_and_missing_records_are_one_line_errors(records, tmp_path, capsys):
    out = str(tmp_path / "cv")
    with pytest.raises(SystemExit, match="2"):
        main(["--records", str(records), "--folds", "1", "--out", out])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m jetkeras.crossval: error: argument --folds: expected an integer >= 2, "
        "received 1")
    sequences = read_sequences(records)
    most = min(sequences.loc[sequences["label"] == label, "group"].nunique()
               for label in (0, 1))
    assert main(["--records", str(records), "--folds", str(most + 1), "--out", out]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"crossval: error: --folds: expected an integer from 2 to {most} "
                            f"(the event groups holding ")
    assert error.endswith(f"received {most + 1}\n") and error.count("\n") == 1
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit, match="2"):
        main(["--records", str(missing), "--folds", "2", "--out", out])
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"python -m jetkeras.crossval: error: argument --records: expected an existing "
        f"folder, received '{missing}' (nothing there); check the path")
    assert not (tmp_path / "cv").exists()


def test_read_sequences_pools_every_split(records):
    sequences = read_sequences(records)
    manifest = json.loads((records / "manifest.json").read_text())
    assert len(sequences) == manifest["count"] == 32
    assert sequences["event_id"].is_unique
    assert set(sequences["split"]) == set(manifest["splits"])
    assert sequences["label"].sum() == sum(e["counts"]["jet"] for e in manifest["splits"].values())


@pytest.mark.slow
def test_two_fold_crossval_end_to_end_and_rerun_keeps_finished_folds(records, tmp_path):
    from jetkeras.pipeline import iterate_records

    out = tmp_path / "cv"
    summary = crossval(records=records, out=out, folds=2, config=TINY, seed=0, verbose=0)
    with open(out / "folds.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["fold"]) for row in rows] == [0, 1]
    for row in rows:
        assert 0.0 <= float(row["roc_auc"]) <= 1.0 and math.isfinite(float(row["roc_auc"]))
        assert 0.0 <= float(row["f1"]) <= 1.0
        assert int(row["test_sequences"]) == int(row["tn"]) + int(row["fp"]) + int(row["fn"]) \
            + int(row["tp"])
    assert sum(int(row["test_sequences"]) for row in rows) == 32  # each tested once
    stored = json.loads((out / "summary.json").read_text())
    assert stored["folds"] == 2 and stored["seed"] == 0
    assert stored["metrics"]["roc_auc"]["values"] == [float(r["roc_auc"]) for r in rows]
    assert stored["metrics"]["roc_auc"]["mean"] == pytest.approx(
        np.mean([float(r["roc_auc"]) for r in rows]))
    assert JetConfig.from_json(out / "config.json") == TINY
    assert summary["pooled"]["count"] == 32
    assert (out / "crossval.png").stat().st_size > 0

    # Each fold's records hold the source bytes, with statistics of its training split only.
    source = {r["event_id"]: r for split in ("train", "val", "test")
              for r in iterate_records(records, split)}
    fold = out / "fold_0" / "records"
    manifest = json.loads((fold / "manifest.json").read_text())
    train_frames = [r["frames"] for r in iterate_records(fold, "train")]
    assert manifest["normalisation"]["mean"] == pytest.approx(np.mean(train_frames), rel=1e-5)
    for record in iterate_records(fold, "test"):
        np.testing.assert_array_equal(record["frames"], source[record["event_id"]]["frames"])
    test_groups = {r["group"] for r in iterate_records(fold, "test")}
    assert not test_groups & {r["group"] for r in iterate_records(fold, "train")}

    # A rerun keeps finished folds: nothing is retrained or rescored.
    watched = [out / f"fold_{k}" / name for k in (0, 1)
               for name in ("metrics.json", "run/model.keras", "report/metrics.json")]
    before = [path.stat().st_mtime_ns for path in watched]
    again = crossval(records=records, out=out, folds=2, config=TINY, seed=0, verbose=0)
    assert [path.stat().st_mtime_ns for path in watched] == before
    assert again["metrics"] == summary["metrics"]

    # A fold without metrics.json is finished again from its run; the other is kept.
    (out / "fold_1" / "metrics.json").unlink()
    model_time = (out / "fold_1" / "run" / "model.keras").stat().st_mtime_ns
    crossval(records=records, out=out, folds=2, config=TINY, seed=0, verbose=0)
    assert (out / "fold_1" / "metrics.json").is_file()
    assert (out / "fold_1" / "run" / "model.keras").stat().st_mtime_ns == model_time
    assert (out / "fold_0" / "metrics.json").stat().st_mtime_ns == before[0]

    # Other settings on the same folder are refused in one line.
    with pytest.raises(ValueError, match=r"holds a cross-validation with seed=0, this one "
                                         r"asks seed=1; pass --overwrite"):
        crossval(records=records, out=out, folds=2, config=TINY, seed=1, verbose=0)
    with pytest.raises(ValueError, match=r"with config key `train.epochs`=1, this one asks 3"):
        crossval(records=records, out=out, folds=2, config=TINY.replace(train={"epochs": 3}),
                 seed=0, verbose=0)

    # A changed fold metrics.json, history.json or crossval.json is one line naming it.
    finished, history = out / "fold_0" / "metrics.json", out / "fold_1" / "run" / "history.json"
    row = json.loads(finished.read_text())
    finished.write_text(json.dumps({**row, "threshold": 5.0}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(finished))}: key `threshold`: "
                                         r"expected a number in \[0, 1\] or NaN, received "
                                         r"5\.0; delete fold_0/metrics\.json and rerun"):
        crossval(records=records, out=out, folds=2, config=TINY, seed=0, verbose=0)
    finished.write_text(json.dumps(row))
    (out / "fold_1" / "metrics.json").unlink()
    history.write_text(json.dumps({"loss": [0.5], "val_auc": "high"}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(history))}: key `val_auc`: "
                                         r"expected a list of numbers.*received 'high'; rerun"):
        crossval(records=records, out=out, folds=2, config=TINY, seed=0, verbose=0)
    (out / "crossval.json").write_text("{half")
    with pytest.raises(ValueError, match=r"crossval\.json: expected JSON, received invalid "
                                         r"JSON .*; pass --overwrite"):
        crossval(records=records, out=out, folds=2, config=TINY, seed=0, verbose=0)


@pytest.mark.slow
def test_an_interrupted_fold_resumes_its_training(records, tmp_path, monkeypatch):
    import keras

    import jetkeras.train as train_module

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    config = TINY.replace(train={"epochs": 2})
    original = train_module._callbacks
    monkeypatch.setattr(train_module, "_callbacks",
                        lambda out, cfg: original(out, cfg) + [Interrupt()])
    out = tmp_path / "cv"
    with pytest.raises(KeyboardInterrupt):
        crossval(records=records, out=out, folds=2, config=config, seed=0, verbose=0)
    assert (out / "fold_0" / "run" / "backup").is_dir()
    assert not (out / "fold_0" / "metrics.json").exists()
    monkeypatch.setattr(train_module, "_callbacks", original)
    crossval(records=records, out=out, folds=2, config=config, seed=0, verbose=0)
    history = json.loads((out / "fold_0" / "run" / "history.json").read_text())
    assert history["epoch"] == [0.0, 1.0]  # epoch 0 kept, epoch 1 trained after the resume
    assert (out / "fold_1" / "metrics.json").is_file()
