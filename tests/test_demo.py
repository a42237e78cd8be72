"""The main job end to end, small: python -m jetkeras.demo (what `make demo` runs)."""

import json

import pytest

from jetkeras.demo import VARIANTS, demo_config, main


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reports_every_baseline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--limit", "40", "--epochs", "2", "--seed", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "records" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["variants"] == VARIANTS
    assert manifest["build"]["match_position"] is True
    assert summary["sequences"] == manifest["count"]
    assert summary["events"] == 40 and manifest["splits"]["train"]["count"] == \
        VARIANTS * (40 - manifest["splits"]["val"]["count"] - manifest["splits"]["test"]["count"])
    for key in ("test_roc_auc", "baseline_logistic_test_auc", "baseline_boosting_test_auc",
                "best_baseline_test_auc"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["best_baseline_test_auc"] == max(
        summary["baseline_feature_test_auc"], summary["baseline_logistic_test_auc"],
        summary["baseline_boosting_test_auc"])
    assert summary["margin_over_best_baseline"] == pytest.approx(
        summary["test_roc_auc"] - summary["best_baseline_test_auc"])
    assert (out / "savedmodel" / "saved_model.pb").is_file()
    assert (out / "run" / "model.tflite").is_file()
    text = capsys.readouterr().err
    assert "gradient-boosted trees" in text and "margin" in text


def test_demo_config_is_the_measured_recipe():
    config = demo_config(seed=3)
    assert (config.data.frames, config.data.size, config.model.input_pool) == (30, 128, 2)
    assert not config.data.cache  # 2,688 training cubes would hold 5.3 GB in memory
    assert config.model.motion == "differences" and config.train.deterministic
    assert config.train.seed == 3 and config.train.checkpoint == "last"
    assert config.train.epochs == 60 and config.model.input_stem == "patch"
    # Eight test-time views; validated every 5th epoch, so the views cost little time.
    assert config.model.views == 8 and config.train.validation_every == 5
    full = demo_config(full=True)
    assert (full.data.frames, full.data.size, full.model.input_pool) == (30, 166, 3)
    # At the seed's geometry: the learned patch stem and 80 epochs (bench/README.md).
    assert full.model.input_stem == "patch" and full.train.epochs == 80
    assert full.train.validation_every == 1
