"""Seed ensembles as one model (jetkeras.ensemble, model.members)."""

import json

import keras
import numpy as np
import pytest

from jetkeras.config import DataConfig, JetConfig, model_preset
from jetkeras.ensemble import build_ensemble, main
from jetkeras.models import build_model, estimate_flops


@pytest.fixture(scope="module")
def second_run(tiny_run, tmp_path_factory):
    from jetkeras.train import train

    out = tmp_path_factory.mktemp("ensemble") / "seed1"
    config = tiny_run["config"].replace(train={"seed": 1})
    train(records=tiny_run["records"], out=out, config=config, verbose=0)
    return out


def test_members_are_independent_networks_averaged():
    config = JetConfig(data=DataConfig(frames=4, size=32),
                       model=model_preset("tiny", members=3))
    model = build_model(config)
    members = [model.get_layer(f"member{i}") for i in (1, 2, 3)]
    cubes = np.random.default_rng(0).normal(size=(2, 4, 32, 32, 1)).astype("float32")
    logits = [keras.ops.convert_to_numpy(member(cubes)) for member in members]
    assert not np.allclose(logits[0], logits[1])  # different initial weights
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(cubes)), np.mean(logits, 0),
                               atol=1e-6)
    single = config.replace(model={"members": 1})
    assert estimate_flops(config) == pytest.approx(3 * estimate_flops(single))
    assert model.count_params() == 3 * build_model(single).count_params()


def test_ensemble_run_predicts_the_mean_logit_on_every_runtime(tiny_run, second_run,
                                                               make_aia_frames, tmp_path):
    from jetkeras.runtime import load_predictor

    out = tmp_path / "ensemble"
    choice = build_ensemble(runs=[tiny_run["run"], second_run], records=tiny_run["records"],
                            out=out)
    assert 0.0 <= choice["threshold"] <= 1.0 and len(choice["member_val_auc"]) == 2
    stored = json.loads((out / "config.json").read_text())
    assert stored["model"]["members"] == 2
    frames = np.stack([make_aia_frames(4, 32, seed=s) for s in range(3)])
    members = [load_predictor(run, runtime="tensorflow").predict_logits(frames)
               for run in (tiny_run["run"], second_run)]
    for runtime in ("tensorflow", "litert"):
        ours = load_predictor(out, runtime=runtime).predict_logits(frames)
        np.testing.assert_allclose(ours, np.mean(members, axis=0), atol=1e-4)


def test_mismatched_or_single_runs_are_refused(tiny_run, tmp_path, capsys):
    assert main(["--runs", str(tiny_run["run"]), "--records", str(tiny_run["records"]),
                 "--out", str(tmp_path / "e")]) == 2
    assert "--runs: expected at least two run folders, received 1" in capsys.readouterr().err
    from jetkeras.train import train

    other = tmp_path / "other"
    config = tiny_run["config"].replace(model={"lstm_units": 4})
    train(records=tiny_run["records"], out=other, config=config, verbose=0)
    assert main(["--runs", str(tiny_run["run"]), str(other), "--records",
                 str(tiny_run["records"]), "--out", str(tmp_path / "e")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "only --seed may differ" in error[0]
