"""Tests of jetkeras.calibrate: a run's threshold chosen again on labelled records."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jetkeras import calibrate as calibrate_module


def _split_scores(tiny_run, split):
    """Labels and the original run's probabilities on one split, computed independently."""
    from jetkeras.pipeline import iterate_records
    from jetkeras.runtime import load_predictor

    records = list(iterate_records(tiny_run["records"], split))
    frames = np.stack([record["frames"][..., 0] for record in records])
    labels = np.array([record["label"] for record in records])
    return labels, frames, load_predictor(tiny_run["run"]).predict_proba(frames)


def test_calibrate_copies_the_run_with_a_threshold_chosen_on_the_split(tiny_run, tmp_path,
                                                                       capsys):
    from scipy.stats import beta

    from jetkeras.metrics import choose_threshold
    from jetkeras.runtime import load_predictor

    run, out = tiny_run["run"], tmp_path / "calibrated"
    original = (run / "threshold.json").read_text()
    labels, frames, probabilities = _split_scores(tiny_run, "train")
    assert 0 < labels.sum() < labels.size  # both classes, or the threshold means nothing

    code = calibrate_module.main(["--model", str(run), "--records", str(tiny_run["records"]),
                                  "--split", "train", "--target-recall", "0.9",
                                  "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    content = json.loads((out / "threshold.json").read_text())
    assert printed.startswith("calibrate: threshold ") and str(out) in printed

    expected = choose_threshold(labels, probabilities, metric="recall", target_recall=0.9)
    assert content["threshold"] == pytest.approx(expected["threshold"], abs=1e-6)
    assert content["recall"] >= 0.9
    assert np.mean(probabilities[labels == 1] >= content["threshold"]) >= 0.9
    assert content["rule"] == (f"highest threshold with train-split ({tiny_run['records']}) "
                               f"recall >= 0.9")
    assert content["calibrated_on"]["sequences"] == labels.size
    assert content["calibrated_on"]["jets"] == int(labels.sum())
    assert content["previous"] == json.loads(original)
    # The order-statistic bound: m misses of n jets, 1 - recall ~ Beta(m + 1, n - m).
    jets = int(labels.sum())
    misses = int(np.sum(probabilities[labels == 1] < content["threshold"]))
    assert content["calibrated_on"]["recall_lower_95"] == pytest.approx(
        1 - beta.ppf(0.95, misses + 1, jets - misses))
    assert content["calibrated_on"]["recall_lower_95"] < content["recall"]
    # The run it came from is untouched; every other file is copied byte for byte.
    assert (run / "threshold.json").read_text() == original
    copied = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    assert copied == sorted(path.relative_to(run) for path in run.rglob("*") if path.is_file())
    for relative in copied:
        if relative.name != "threshold.json":
            assert (out / relative).read_bytes() == (run / relative).read_bytes(), relative
    # Same network, same scores; only the decision moved.
    calibrated = load_predictor(out)
    assert calibrated.threshold == pytest.approx(content["threshold"])
    np.testing.assert_allclose(calibrated.predict_proba(frames), probabilities, atol=1e-6)


def test_f1_rule_matches_the_metric(tiny_run, tmp_path):
    from jetkeras.metrics import choose_threshold

    labels, _, probabilities = _split_scores(tiny_run, "train")
    content = calibrate_module.calibrate(model=tiny_run["run"], records=tiny_run["records"],
                                         split="train", metric="f1", out=tmp_path / "f1")
    expected = choose_threshold(labels, probabilities, metric="f1")
    assert content["threshold"] == pytest.approx(expected["threshold"], abs=1e-6)
    assert content["f1"] == pytest.approx(expected["f1"])
    assert content["rule"] == f"max F1 on train-split ({tiny_run['records']})"
    assert content["calibrated_on"]["recall_lower_95"] is None  # exact only for the recall rule


def test_calibrate_refuses_bad_input_and_leaves_nothing(tiny_run, tiny_export, tmp_path,
                                                        monkeypatch, capsys):
    run, records = tiny_run["run"], tiny_run["records"]
    before = sorted(path.name for path in tmp_path.iterdir())

    def refused(argv):
        assert calibrate_module.main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert "\n" not in error and "Traceback" not in error
        return error

    assert refused(["--model", str(run), "--records", str(records), "--out", str(run)]) == (
        f"calibrate: error: --out {run}: the model's own folder; choose a new folder, so "
        f"the model and the threshold it was shipped with stay as they are")
    existing = tmp_path / "existing"
    existing.mkdir()
    assert refused(["--model", str(run), "--records", str(records), "--out",
                    str(existing)]) == (f"calibrate: error: --out {existing}: already "
                                        f"exists; pass --overwrite to replace it or choose "
                                        f"another folder")
    assert f"--model {tiny_export}: a SavedModel export" in refused(
        ["--model", str(tiny_export), "--records", str(records), "--out",
         str(tmp_path / "from_export")])
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage, then one error line
        calibrate_module.main(["--records", str(records), "--target-recall", "1.5", "--out",
                               str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "python -m jetkeras.calibrate: error: argument --target-recall: expected a recall "
        "in (0, 1], received 1.5")
    # A split of one class cannot place a threshold.
    monkeypatch.setattr(calibrate_module, "_labelled_scores",
                        lambda *args: (np.ones(5, dtype=int), np.linspace(0.1, 0.9, 5)))
    assert refused(["--model", str(run), "--records", str(records), "--out",
                    str(tmp_path / "one_class")]) == (
        f"calibrate: error: --records {records}: split 'val' holds 5 sequences, 5 of them "
        f"jets; both jets and jet-free windows are needed to choose a threshold")
    monkeypatch.undo()

    # A failure while writing leaves no half-written folder behind.
    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr(calibrate_module, "atomic_write_text", broken)
    with pytest.raises(OSError, match="disk went away"):
        calibrate_module.calibrate(model=run, records=records, split="train",
                                   out=tmp_path / "broken")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(before + ["existing"])
