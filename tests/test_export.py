"""Tests of jetkeras.export: DN-in SavedModel and LiteRT graphs, metadata, the old contract,
no cuDNN ops, fresh-process load."""

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


def _dn_frames(make_aia_frames, clip_dn, count=3):
    """Real-AIA DN cubes of 4 frames of 32x32, some pixels above clip_dn (clipped in graph)."""
    frames = np.stack([make_aia_frames(n_frames=4, size=32, seed=s) for s in range(count)])
    frames[0, :, :5, :5] = 3.0 * clip_dn
    return frames


def test_export_takes_dn_in_plain_tensorflow_and_agrees_with_litert_and_keras(
        tiny_run, tiny_export, make_aia_frames, tmp_path):
    metadata = json.loads((tiny_export / "assets" / "jetkeras.json").read_text())
    stored = json.loads((tiny_run["run"] / "threshold.json").read_text())["threshold"]
    assert metadata["threshold"] == pytest.approx(stored)
    assert (metadata["frames"], metadata["size"]) == (4, 32)
    normalisation = json.loads((tiny_run["run"] / "normalisation.json").read_text())
    assert metadata["normalisation"] == normalisation
    assert metadata["config"]["model"]["preset"] == "tiny"
    # The contract, recorded: frames in DN for the endpoints and for both model.tflite.
    assert metadata["input"] == "dn"
    assert metadata["input_spec"]["shape"] == [None, 4, 32, 32, 1]
    assert metadata["input_spec"]["name"] == "frames_dn"
    for folder in (tiny_export, tiny_run["run"]):
        lite = json.loads((folder / "litert.json").read_text())
        assert (lite["input"], lite["shape"]) == ("dn", [None, 4, 32, 32, 1])
        assert lite["normalisation"]["clip_dn"] == normalisation["clip_dn"]

    from jetkeras.runtime import clean_frames

    # The graphs compared on the same DN frames: predictors without their cleaning step.
    keras_predictor = load_predictor(tiny_run["run"], runtime="tensorflow", despike=False)
    frames = _dn_frames(make_aia_frames, normalisation["clip_dn"])
    assert frames.max() > normalisation["clip_dn"]
    np.save(tmp_path / "dn.npy", frames[..., None])
    # Keras and jetkeras cannot be imported: TensorFlow, JSON, NumPy and LiteRT only, fed
    # the DN frames as they are.
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["keras"] = None
        sys.modules["jetkeras"] = None
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({str(tiny_export)!r})
        x = np.load({str(tmp_path / "dn.npy")!r})
        logits = loaded.serve(tf.constant(x)).numpy().ravel().tolist()
        probabilities = loaded.serve_proba(tf.constant(x)).numpy().ravel().tolist()
        meta = json.load(open({str(tiny_export / "assets" / "jetkeras.json")!r}))
        from ai_edge_litert.interpreter import Interpreter  # the LiteRT copy beside it
        lite = Interpreter(model_path={str(tiny_export / "model.tflite")!r})
        index = lite.get_input_details()[0]["index"]
        lite.resize_tensor_input(index, x.shape)
        lite.allocate_tensors()
        lite.set_tensor(index, x)
        lite.invoke()
        lite_logits = lite.get_tensor(lite.get_output_details()[0]["index"]).ravel().tolist()
        print(json.dumps({{"logits": logits, "probabilities": probabilities,
                          "lite_logits": lite_logits, "input": meta["input"],
                          "threshold": meta["threshold"],
                          "imported": sorted(m for m in sys.modules
                                             if m.startswith(("jetkeras", "keras"))
                                             and sys.modules[m] is not None)}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["imported"] == [] and answer["input"] == "dn"
    expected = keras_predictor.predict_proba(frames)  # Keras, normalised in NumPy
    lite_probabilities = 1.0 / (1.0 + np.exp(-np.array(answer["lite_logits"])))
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-4)
    np.testing.assert_allclose(lite_probabilities, expected, atol=1e-4)
    np.testing.assert_allclose(lite_probabilities, answer["probabilities"], atol=1e-4)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-np.array(answer["logits"]))),
                               answer["probabilities"], atol=1e-6)
    assert answer["threshold"] == pytest.approx(stored)
    # The Predictor feeds a DN-in graph the DN frames themselves, and agrees too.
    for folder, runtime_name in [(tiny_export, "tensorflow"), (tiny_export, "litert"),
                                 (tiny_run["run"], "litert")]:
        predictor = load_predictor(folder, runtime=runtime_name, despike=False)
        assert predictor._logits_function.model_input == "dn"
        np.testing.assert_allclose(predictor.predict_proba(frames), expected, atol=1e-4,
                                   err_msg=f"{folder.name} on {runtime_name}")
    # With its cleaning (the default), a predictor is the graph on the cleaned frames.
    cleaned = np.stack([clean_frames(f) for f in frames])
    np.testing.assert_allclose(load_predictor(tiny_export).predict_proba(frames),
                               keras_predictor.predict_proba(cleaned), atol=1e-4)


def _old_contract_copies(tiny_run, tiny_export, tmp_path):
    """The tiny run and export as written before the DN-in graphs: model.tflite and the
    SavedModel over normalised frames, no litert.json, jetkeras.json's input an object."""
    from jetkeras.runtime import load_run_model

    loaded = load_run_model(tiny_run["run"])
    old_run, old_export = tmp_path / "old_run", tmp_path / "old_export"
    shutil.copytree(tiny_run["run"], old_run)
    shutil.copytree(tiny_export, old_export)
    for folder in (old_run, old_export):
        export.write_litert(loaded["model"], loaded["config"], folder / "model.tflite")
        (folder / "litert.json").unlink()
    shutil.rmtree(old_export / "variables")
    (old_export / "saved_model.pb").unlink()
    export._write_saved_model(loaded["model"], old_export, 4, 32)
    metadata_path = old_export / "assets" / "jetkeras.json"
    metadata = json.loads(metadata_path.read_text())
    metadata.pop("input_spec")
    metadata["input"] = {"shape": [None, 4, 32, 32, 1], "dtype": "float32",
                         "meaning": "frames normalised as in normalisation"}
    metadata_path.write_text(json.dumps(metadata))
    return old_run, old_export


def test_folders_of_the_old_normalised_contract_predict_as_before(tiny_run, tiny_export,
                                                                  make_aia_frames, tmp_path):
    from jetkeras import runs

    old_run, old_export = _old_contract_copies(tiny_run, tiny_export, tmp_path)
    assert runs.read_litert(old_run)["input"] == "normalised"
    assert runs.read_export(old_export)["input"] == "normalised"
    normalisation = json.loads((tiny_run["run"] / "normalisation.json").read_text())
    frames = _dn_frames(make_aia_frames, normalisation["clip_dn"])
    # Before: normalised in NumPy, then the network (the Keras runtime still does that).
    expected = load_predictor(tiny_run["run"], runtime="tensorflow").predict_proba(frames)
    for folder, runtime_name in [(old_run, "litert"), (old_export, "litert"),
                                 (old_export, "tensorflow")]:
        predictor = load_predictor(folder, runtime=runtime_name)
        assert predictor._logits_function.model_input == "normalised"
        np.testing.assert_allclose(predictor.predict_proba(frames), expected, atol=1e-5,
                                   err_msg=f"{folder.name} on {runtime_name}")
    new = load_predictor(tiny_export, runtime="tensorflow").predict_proba(frames)
    np.testing.assert_allclose(new, expected, atol=1e-4)


def test_a_tflite_parted_from_its_record_is_refused(tiny_run, tiny_export, tmp_path):
    from jetkeras.runtime import load_run_model

    # A DN-in graph without its litert.json would be fed normalised frames: refused.
    parted = tmp_path / "parted"
    shutil.copytree(tiny_run["run"], parted)
    (parted / "litert.json").unlink()
    with pytest.raises(ValueError, match=r"input 'serving_default_frames_dn:0' takes frames "
                                         r"in DN, but litert\.json beside it says input "
                                         r"'normalised'"):
        load_predictor(parted, runtime="litert")
    # An old graph over normalised frames beside a record saying "dn": refused too.
    loaded = load_run_model(tiny_run["run"])
    record = (parted / "model.tflite").with_name("kept.json")
    shutil.copy2(tiny_run["run"] / "litert.json", record)
    export.write_litert(loaded["model"], loaded["config"], parted / "model.tflite")
    shutil.copy2(record, parted / "litert.json")
    with pytest.raises(ValueError, match="takes frames normalised, but litert.json"):
        load_predictor(parted, runtime="litert")
    (parted / "litert.json").write_text('{"input": "counts"}')
    with pytest.raises(ValueError, match=r"litert\.json: key `input`: expected one of "
                                         r"\['dn', 'normalised'\], received 'counts'"):
        load_predictor(parted, runtime="litert")


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
    from jetkeras.runtime import clean_frames

    frames = np.stack([make_aia_frames(n_frames=4, size=32, seed=s) for s in range(3)])
    predictor = load_predictor(tiny_run["run"])
    # What the predictor feeds its network: each window levelled and despiked.
    normalised = predictor.normalise(np.stack([clean_frames(f) for f in frames]))
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
