"""The same config trains on the JAX backend too (the data pipeline stays tf.data)."""

import json
import os
import subprocess
import sys

import pytest

from jetkeras.build_records import build_records
from jetkeras.config import JetConfig, model_preset

TINY = JetConfig().replace(
    data={"frames": 4, "size": 32},
    model={**model_preset("tiny").__dict__},
    train={"epochs": 1, "batch_size": 4},
)

SCRIPT = """
import json, sys
import keras
from jetkeras.config import JetConfig
from jetkeras.runtime import load_run_model
from jetkeras.train import train
from jetkeras.pipeline import make_dataset
from jetkeras.train import predict_probabilities
assert keras.backend.backend() == "jax", keras.backend.backend()
config = JetConfig.from_json(sys.argv[3])
summary = train(records=sys.argv[1], out=sys.argv[2], config=config, verbose=0)
run = load_run_model(sys.argv[2])
probabilities, labels = predict_probabilities(run["model"], make_dataset(sys.argv[1], "test", config))
print(json.dumps({"epochs": summary["epochs_run"], "n": len(probabilities),
                  "finite": bool(((probabilities >= 0) & (probabilities <= 1)).all())}))
"""


@pytest.mark.slow
def test_jax_backend_trains_the_same_config(tmp_path):
    records = tmp_path / "records"
    manifest = build_records(source="synthetic", out=records, config=TINY, limit=24, seed=0,
                             records_per_shard=8, progress=False)
    config_path = tmp_path / "config.json"
    TINY.to_json(config_path)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(records), str(tmp_path / "run"),
                             str(config_path)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"epochs": 1, "n": manifest["splits"]["test"]["count"], "finite": True}
    assert (tmp_path / "run" / "threshold.json").is_file()
