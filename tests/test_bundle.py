"""The bundled default model (jetkeras.bundle) and predict without --model."""

import json
import zipfile

import numpy as np
import pytest

from jetkeras import predict, runtime
from jetkeras.bundle import BUNDLE_FILES, BUNDLED_MODEL, build_bundle
from jetkeras.io import write_cube
from jetkeras.cube import Cube


def test_shipped_bundle_is_complete_small_and_of_the_seed_geometry():
    sizes = {name: (BUNDLED_MODEL / name).stat().st_size for name in BUNDLE_FILES}
    assert sum(sizes.values()) < 20e6  # package data budget
    provenance = json.loads((BUNDLED_MODEL / "bundle.json").read_text())
    assert provenance["geometry"]["frames"] == 30 and provenance["geometry"]["size"] == 166
    assert provenance["trained_on"].startswith("synthetic")
    threshold = json.loads((BUNDLED_MODEL / "threshold.json").read_text())["threshold"]
    assert 0.0 < threshold < 1.0 and threshold == provenance["threshold"]


def test_predict_with_no_model_uses_the_bundle_once(tmp_path, capsys, monkeypatch):
    from jetkeras.catalogue import load_events
    from jetkeras.synthetic import render_event

    monkeypatch.setattr(runtime, "_BUNDLED_NOTE_SHOWN", False)
    events = load_events()
    for number, row in enumerate([events.iloc[5], events.iloc[1000]]):
        # The seed's own npz layout: arr_0 of shape (166, 166, 30), float64.
        frames = render_event(row, seed=11, randomise=False).frames
        np.savez_compressed(tmp_path / f"cube{number}.npz",
                            frames.transpose(1, 2, 0).astype(np.float64))
    assert predict.main([str(tmp_path / "cube0.npz"), str(tmp_path / "cube1.npz"),
                         "--out", str(tmp_path / "p.csv")]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("using the bundled model jet304-synthetic") == 1
    assert "docs/model_card.md" in captured.err
    assert str(BUNDLED_MODEL) in captured.err
    import pandas as pd

    table = pd.read_csv(tmp_path / "p.csv")
    assert len(table) == 2 and table["probability"].between(0.0, 1.0).all()
    stored = json.loads((BUNDLED_MODEL / "threshold.json").read_text())["threshold"]
    np.testing.assert_allclose(table["threshold"], stored)
    assert (table["predicted"] == (table["probability"] >= stored)).all()
    assert table["label"].isna().all()  # no truth in a seed npz file


def test_explicit_model_wins_and_a_missing_bundle_is_one_line(tiny_run, tmp_path,
                                                              monkeypatch, capsys):
    import jetkeras.runs

    predictor = runtime.load_predictor(tiny_run["run"])
    assert str(predictor.source) == str(tiny_run["run"])
    monkeypatch.setattr(jetkeras.runs, "BUNDLED_MODEL", tmp_path / "nothing")
    write_cube(tmp_path / "cube.npz", Cube(np.ones((4, 32, 32), np.float32), source="test"))
    assert predict.main([str(tmp_path / "cube.npz")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no bundled model" in error[0] and "--install" in error[0]


@pytest.mark.slow
def test_build_bundle_trains_scores_and_installs_atomically(tmp_path, monkeypatch):
    import jetkeras.bundle

    target = tmp_path / "package_bundled"
    monkeypatch.setattr(jetkeras.bundle, "BUNDLED_MODEL", target)
    provenance = build_bundle(work=tmp_path / "work", out=tmp_path / "jet", seed=3, limit=24,
                              variants=2, epochs=2, frames=4, size=32, install=True,
                              verbose=0)
    for folder in (tmp_path / "jet", target):
        assert sorted(p.name for p in folder.iterdir()) == sorted([*BUNDLE_FILES,
                                                                    "bundle.json"])
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.old"))
    assert provenance["threshold_rule"].startswith("highest threshold with validation recall")
    assert 0.0 <= provenance["rendered_test"]["roc_auc"] <= 1.0
    assert "--seed 3 --limit 24 --variants 2 --epochs 2" in provenance["command"]
    # A rerun keeps the finished run and still reports how long its training took.
    again = build_bundle(work=tmp_path / "work", out=tmp_path / "jet", seed=3, limit=24,
                         variants=2, epochs=2, frames=4, size=32, verbose=0)
    trained_for = json.loads((tmp_path / "work" / "run" / "threshold.json").read_text())
    assert again["train_seconds"] == provenance["train_seconds"] == trained_for["train_seconds"]
    assert trained_for["train_seconds"] > 0
    predictor = runtime.load_predictor(target)
    assert (predictor.frames, predictor.size) == (4, 32)
    # The bundle's model.keras carries weights only, not the optimiser's moments.
    with zipfile.ZipFile(target / "model.keras") as archive:
        shipped = archive.read("model.weights.h5")
    with zipfile.ZipFile(tmp_path / "work" / "run" / "model.keras") as archive:
        trained = archive.read("model.weights.h5")
    assert len(shipped) < len(trained) / 2
