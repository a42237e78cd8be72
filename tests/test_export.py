"""Tests of jetkeras.export: SavedModel endpoints, metadata, no cuDNN ops, fresh-process load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jetkeras import export
from jetkeras.runtime import load_predictor


def test_export_metadata_and_endpoints_in_a_fresh_process(tiny_run, tiny_export,
                                                          make_aia_frames, tmp_path):
    metadata = json.loads((tiny_export / "assets" / "jetkeras.json").read_text())
    stored = json.loads((tiny_run["run"] / "threshold.json").read_text())["threshold"]
    assert metadata["threshold"] == pytest.approx(stored)
    assert (metadata["frames"], metadata["size"]) == (4, 32)
    assert metadata["normalisation"] == json.loads(
        (tiny_run["run"] / "normalisation.json").read_text())
    assert metadata["config"]["model"]["preset"] == "tiny"

    predictor = load_predictor(tiny_run["run"])
    frames = np.stack([make_aia_frames(n_frames=4, size=32, seed=s) for s in range(3)])
    np.save(tmp_path / "normalised.npy", predictor.normalise(frames))
    # Only TensorFlow, JSON and NumPy: the SavedModel needs no jetkeras code.
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({str(tiny_export)!r})
        x = tf.constant(np.load({str(tmp_path / "normalised.npy")!r}))
        logits = loaded.serve(x).numpy().ravel().tolist()
        probabilities = loaded.serve_proba(x).numpy().ravel().tolist()
        meta = json.load(open({str(tiny_export / "assets" / "jetkeras.json")!r}))
        from ai_edge_litert.interpreter import Interpreter  # the LiteRT copy beside it
        lite = Interpreter(model_path={str(tiny_export / "model.tflite")!r})
        lite.resize_tensor_input(lite.get_input_details()[0]["index"], x.shape)
        lite.allocate_tensors()
        lite.set_tensor(lite.get_input_details()[0]["index"], x.numpy())
        lite.invoke()
        lite_logits = lite.get_tensor(lite.get_output_details()[0]["index"]).ravel().tolist()
        print(json.dumps({{"logits": logits, "probabilities": probabilities,
                          "lite_logits": lite_logits,
                          "threshold": meta["threshold"],
                          "jetkeras_imported": any(m.startswith("jetkeras")
                                                   for m in sys.modules)}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["jetkeras_imported"] is False
    expected = predictor.predict_proba(frames)
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-np.array(answer["logits"]))), expected,
                               atol=1e-5)
    np.testing.assert_allclose(answer["lite_logits"], answer["logits"], atol=1e-5)
    assert answer["threshold"] == pytest.approx(stored)


def test_gpu_style_cudnn_model_exports_without_cudnn_ops(tiny_run, make_aia_frames, tmp_path):
    import keras

    import jetkeras.layers  # noqa: F401
    from jetkeras.config import JetConfig
    from jetkeras.models import build_model

    # A run folder as a GPU run would leave it: the LSTM saved with use_cudnn=True.
    gpu_run = tmp_path / "gpu_run"
    shutil.copytree(tiny_run["run"], gpu_run)
    config = JetConfig.from_json(gpu_run / "config.json").replace(model={"use_cudnn": "true"})
    config.to_json(gpu_run / "config.json")
    cudnn_model = build_model(config)
    cudnn_model.load_weights(tiny_run["run"] / "model.keras")
    cudnn_model.save(gpu_run / "model.keras")
    assert cudnn_model.get_layer("lstm").use_cudnn is True
    frames = np.stack([make_aia_frames(n_frames=4, size=32, seed=s) for s in range(3)])
    predictor = load_predictor(tiny_run["run"])
    normalised = predictor.normalise(frames)
    # Built as its config says, that model cannot run on a CPU (keras-team/keras#18504).
    with pytest.raises(ValueError, match="use_cudnn=True was specified"):
        cudnn_model(normalised, training=False)

    out = tmp_path / "exported"
    result = export.export_run(run=gpu_run, out=out)
    assert result["bytes"] > 10_000
    ops = export.graph_ops(out)
    # The report is the graph as written: read back from saved_model.pb, not a constant.
    assert result["graph_ops"] == sorted(ops)
    assert "MatMul" in ops and not [op for op in ops if op.startswith("Cudnn")]
    reference = keras.saving.load_model(tiny_run["run"] / "model.keras")
    logits = np.asarray(reference(normalised, training=False), dtype=np.float64).ravel()
    exported = load_predictor(out).predict_logits(frames)
    np.testing.assert_allclose(exported, logits, atol=1e-5)


def test_export_refuses_bad_input_and_writes_atomically(tiny_run, tmp_path, monkeypatch,
                                                        capsys):
    existing = tmp_path / "existing"
    existing.mkdir()
    assert export.main(["--run", str(tiny_run["run"]), "--out", str(existing)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"export: error: {existing}: already exists; pass --overwrite to replace it "
        f"or choose another folder")
    assert export.main(["--run", str(tmp_path / "missing"), "--out",
                        str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    # The library names the folder; it does not speak of predict's --model flag.
    assert error.strip() == (f"export: error: {tmp_path / 'missing'}: run folder or "
                             f"SavedModel not found")
    half = tmp_path / "half"
    half.mkdir()
    (half / "model.keras").write_bytes(b"not a zip")
    assert export.main(["--run", str(half), "--out", str(tmp_path / "y")]) == 2
    assert "expected a finished run folder or a SavedModel, missing ['config.json'" in \
        capsys.readouterr().err
    with pytest.raises(ValueError, match=r"saved_model\.pb: not a readable SavedModel"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "saved_model.pb").write_bytes(b"\xff\xff garbage")
        export.graph_ops(tmp_path / "bad")

    def broken(*args, **kwargs):
        raise ValueError("tracing failed")

    monkeypatch.setattr(export, "_write_saved_model", broken)
    with pytest.raises(ValueError, match="tracing failed"):
        export.export_run(run=tiny_run["run"], out=tmp_path / "z")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "existing", "half"]
