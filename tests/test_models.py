"""Tests of jetkeras.models and jetkeras.layers on tiny shapes (4 frames of 32x32)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from jetkeras.config import DataConfig, JetConfig, TrainConfig, model_preset
from jetkeras.layers import FrameDistributed, LogitF1Score, LogitPrecision, LogitRecall
from jetkeras.models import (
    _frame_encoder,
    build_model,
    compile_model,
    count_parameters,
    estimate_flops,
    resolve_compute,
)

FRAMES, SIZE = 4, 32


def tiny_config(arch="td_lstm", size=SIZE, **train):
    return JetConfig(data=DataConfig(frames=FRAMES, size=size),
                     # The plain encoder (one channel, flattened): test_motion.py
                     # covers the motion channels and global pooling of the default.
                     model=model_preset("tiny", arch=arch, motion="none", pooling="flatten"),
                     train=TrainConfig(jit="off", **train))


def random_cubes(count, seed=0, size=SIZE):
    generator = np.random.default_rng(seed)
    return generator.normal(size=(count, FRAMES, size, size, 1)).astype("float32")


@pytest.fixture(scope="module")
def td_model():
    return build_model(tiny_config("td_lstm"))


@pytest.fixture(scope="module")
def epfl_model():
    return build_model(tiny_config("epfl2d"))


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("fixture", ["td_model", "epfl_model"])
def test_output_is_one_float32_logit_per_sequence(fixture, request):
    model = request.getfixturevalue(fixture)
    assert model.input.name == "frames"
    assert tuple(model.input.shape) == (None, FRAMES, SIZE, SIZE, 1)
    logits = model(random_cubes(3), training=False)
    assert tuple(logits.shape) == (3, 1)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))


def test_epfl2d_builds_at_16_px_by_skipping_the_last_pool():
    model = build_model(tiny_config("epfl2d", size=16))
    # 16 -> 8 -> 4 -> 2 -> 1 after four pools; the fifth is skipped at 1 px.
    assert [layer.name for layer in model.layers if "pool" in layer.name] == [
        "pool1", "pool2", "pool3", "pool4"]
    assert tuple(model.get_layer("flatten").output.shape) == (None, 512)
    assert tuple(model(random_cubes(2, size=16), training=False).shape) == (2, 1)


def test_epfl2d_parameter_count_matches_the_seed_at_30x166x166():
    config = JetConfig(model=model_preset("light", arch="epfl2d"))
    model = build_model(config)
    trainable, non_trainable = count_parameters(model)
    assert trainable == 18_112_193
    assert trainable + non_trainable == 18_116_033 == model.count_params()
    # layer8 is one shared block: one kernel, three uses.
    assert len(model.get_layer("layer8_conv")._inbound_nodes) == 3
    assert tuple(model.get_layer("flatten").output.shape) == (None, 12_800)


def test_estimate_flops_of_epfl2d_matches_the_seed_reference():
    config = JetConfig(model=model_preset("light", arch="epfl2d"))
    # seed-reference section 1: 6.39 GMAC in the convs + 13.4 M MAC in the LSTM.
    expected = 2 * (6.39e9 + 13.4e6)
    assert estimate_flops(config) == pytest.approx(expected, rel=0.01)


def test_estimate_flops_of_td_lstm_grows_with_frames():
    four = estimate_flops(tiny_config())
    eight = estimate_flops(JetConfig(data=DataConfig(frames=8, size=SIZE),
                                     model=tiny_config().model))
    dense_flops = 2 * (8 * 8 + 8 * 1)  # dense layers run once per sequence
    assert eight - dense_flops == pytest.approx(2 * (four - dense_flops))


# --------------------------------------------------------------------------- FrameDistributed
def test_frame_distributed_equals_time_distributed_with_the_same_weights():
    config = tiny_config()
    encoder = _frame_encoder(config)
    generator = np.random.default_rng(3)
    # Random weights everywhere, including BatchNorm moving statistics (variance > 0).
    encoder.set_weights([generator.uniform(0.5, 1.5, size=w.shape).astype("float32")
                         if "variance" in w.path else
                         generator.normal(size=w.shape).astype("float32") * 0.3
                         for w in encoder.weights])
    frames = keras.Input((FRAMES, SIZE, SIZE, 1))
    folded = keras.Model(frames, FrameDistributed(encoder)(frames))
    looped = keras.Model(frames, keras.layers.TimeDistributed(encoder)(frames))
    cubes = random_cubes(3, seed=4)
    ours = keras.ops.convert_to_numpy(folded(cubes, training=False))
    reference = keras.ops.convert_to_numpy(looped(cubes, training=False))
    assert ours.shape == (3, FRAMES, 512)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert np.abs(reference).max() > 1e-2  # a real comparison, not of zeros


def test_frame_distributed_config_round_trip_and_shape_error():
    layer = FrameDistributed(_frame_encoder(tiny_config()), name="fd")
    config = layer.get_config()
    rebuilt = FrameDistributed.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.compute_output_shape((None, FRAMES, SIZE, SIZE, 1)) == (
        None, FRAMES, 512)
    with pytest.raises(ValueError, match=r"static number of frames. Received: "
                                         r"input_shape=\(None, None, 32, 32, 1\)"):
        rebuilt.compute_output_shape((None, None, SIZE, SIZE, 1))


# --------------------------------------------------------------------------- behaviour
def test_lstm_reads_the_frame_axis(td_model):
    cubes = random_cubes(2, seed=5)
    forward = keras.ops.convert_to_numpy(td_model(cubes, training=False))
    backward = keras.ops.convert_to_numpy(td_model(cubes[:, ::-1], training=False))
    # Same set of frames, other order: only a recurrence over frames can tell.
    assert np.abs(forward - backward).max() > 1e-4


@pytest.mark.parametrize("fixture", ["td_model", "epfl_model"])
def test_a_logit_does_not_depend_on_the_rest_of_the_batch(fixture, request):
    model = request.getfixturevalue(fixture)
    cubes = random_cubes(4, seed=6)
    alone = keras.ops.convert_to_numpy(model(cubes[:1], training=False))
    batched = keras.ops.convert_to_numpy(model(cubes, training=False))
    others = random_cubes(4, seed=7)
    others[2] = cubes[0]
    elsewhere = keras.ops.convert_to_numpy(model(others, training=False))
    np.testing.assert_allclose(batched[:1], alone, atol=1e-5)
    np.testing.assert_allclose(elsewhere[2:3], alone, atol=1e-5)
    assert np.abs(batched[1:] - alone).max() > 1e-6  # other samples do differ


def test_compiled_td_lstm_reloads_in_safe_mode_with_identical_predictions(tmp_path):
    config = tiny_config()
    model = compile_model(build_model(config), config, steps_per_epoch=3)
    cubes = random_cubes(4, seed=8)
    labels = np.array([[1.0], [0.0], [1.0], [0.0]], "float32")
    model.train_on_batch(cubes, labels)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(cubes, verbose=0),
                               model.predict(cubes, verbose=0), atol=1e-6)
    # The custom metrics come back too, with the same values.
    expected = model.evaluate(cubes, labels, return_dict=True, verbose=0)
    received = reloaded.evaluate(cubes, labels, return_dict=True, verbose=0)
    assert set(received) == {"loss", "accuracy", "precision", "recall", "auc", "f1"}
    for name, value in expected.items():
        assert received[name] == pytest.approx(value, abs=1e-6)


def test_epfl2d_reloads_in_safe_mode_with_shared_layer8(epfl_model, tmp_path):
    path = tmp_path / "model.keras"
    epfl_model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    cubes = random_cubes(2, seed=9)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(cubes, training=False)),
        keras.ops.convert_to_numpy(epfl_model(cubes, training=False)), atol=1e-6)
    assert count_parameters(reloaded) == count_parameters(epfl_model)
    assert len(reloaded.get_layer("layer8_conv")._inbound_nodes) == 3


def test_mixed_bfloat16_keeps_the_logit_float32():
    config = tiny_config(precision="mixed_bfloat16")
    try:
        model = build_model(config)
        assert model.get_layer("lstm").compute_dtype == "bfloat16"
        assert model.get_layer("logit").compute_dtype == "float32"
        logits = model(random_cubes(2), training=False)
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        # build_model restores the global policy it found.
        assert keras.config.dtype_policy().name == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


# --------------------------------------------------------------------------- compile
@pytest.mark.parametrize("optimizer, schedule", [
    ("adamw", "cosine"), ("sgd", "exponential"), ("adamw", "plateau"),
    ("sgd", "constant")])
def test_compiled_model_trains_one_step(optimizer, schedule):
    config = tiny_config(optimizer=optimizer, schedule=schedule, learning_rate=1e-2)
    model = compile_model(build_model(config), config, steps_per_epoch=5)
    assert type(model.optimizer).__name__ == {"adamw": "AdamW", "sgd": "SGD"}[optimizer]
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_on_batch(random_cubes(2), np.array([[1.0], [0.0]], "float32"),
                                return_dict=True)
    assert set(logs) == {"loss", "accuracy", "precision", "recall", "auc", "f1"}
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_cosine_schedule_decays_over_the_run():
    config = tiny_config(schedule="cosine", epochs=20, learning_rate=1e-3, warmup_fraction=0.0)
    model = compile_model(build_model(config), config, steps_per_epoch=50)
    schedule = model.optimizer._learning_rate
    first = float(schedule(0))
    last = float(schedule(20 * 50 - 1))
    assert first == pytest.approx(1e-3)
    assert last < 0.001 * first


def test_exponential_schedule_steps_once_per_epoch():
    config = tiny_config(schedule="exponential", exponential_decay_rate=0.5,
                         learning_rate=1e-3)
    model = compile_model(build_model(config), config, steps_per_epoch=10)
    schedule = model.optimizer._learning_rate
    assert float(schedule(9)) == pytest.approx(1e-3)
    assert float(schedule(10)) == pytest.approx(5e-4)
    assert float(schedule(25)) == pytest.approx(2.5e-4)


def test_compile_model_rejects_bad_steps_per_epoch(td_model):
    with pytest.raises(ValueError, match=r"expected `steps_per_epoch` a positive "
                                         r"integer, received 0"):
        compile_model(td_model, tiny_config(), steps_per_epoch=0)


def test_config_rejects_unknown_pooling():
    with pytest.raises(ValueError, match=r"config key `model.pooling`: expected one of "
                                         r"\['flatten', 'avg', 'max', 'avgmax'\], received 'mean'"):
        JetConfig(data=DataConfig(frames=FRAMES, size=SIZE),
                  model=model_preset("tiny", pooling="mean"))


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_global_pooling_gives_last_width_features(pooling):
    config = JetConfig(data=DataConfig(frames=FRAMES, size=SIZE),
                       model=model_preset("tiny", pooling=pooling))
    model = build_model(config)
    assert tuple(model.get_layer("frame_distributed").output.shape) == (None, FRAMES, 8)


# --------------------------------------------------------------------------- runtime
def test_resolve_compute_turns_cudnn_off_under_xla():
    # jetkeras runs on the TensorFlow backend (tf.data pipeline).
    on = resolve_compute(tiny_config().replace(train={"jit": "on"}))
    assert on["backend"] == "tensorflow"
    assert on["jit"] is True and on["use_cudnn"] is False
    off = resolve_compute(tiny_config())
    assert off == {**off, "jit": False, "use_cudnn": "auto", "precision": "float32"}
    automatic = resolve_compute(tiny_config().replace(train={"jit": "auto"}))
    assert automatic["jit"] is automatic["gpu"]  # XLA on TensorFlow only with a GPU
    explicit = resolve_compute(tiny_config().replace(train={"jit": "auto"},
                                                     model={"use_cudnn": "true"}))
    assert explicit["jit"] is False and explicit["use_cudnn"] is True


def test_resolve_compute_refuses_xla_with_explicit_cudnn():
    config = tiny_config().replace(train={"jit": "on"}, model={"use_cudnn": "true"})
    with pytest.raises(ValueError, match=r"config keys `train.jit` and `model.use_cudnn`"
                                         r": expected not both 'on' and 'true'"):
        resolve_compute(config)


def test_resolve_compute_keeps_bfloat16_off_the_cudnn_lstm_of_jax_on_a_gpu(monkeypatch):
    # Seen on an H200: JAX's cuDNN LSTM raised "Unknown output type bfloat16" in epfl2d.
    import jetkeras.models as models

    monkeypatch.setattr(models.keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(models, "_has_gpu", lambda backend: True)
    bfloat16 = tiny_config().replace(train={"precision": "mixed_bfloat16"})
    assert resolve_compute(bfloat16)["use_cudnn"] is False
    assert resolve_compute(tiny_config())["use_cudnn"] == "auto"  # float32 keeps cuDNN
    monkeypatch.setattr(models, "_has_gpu", lambda backend: False)
    assert resolve_compute(bfloat16)["use_cudnn"] == "auto"  # no cuDNN on a CPU anyway
    monkeypatch.setattr(models, "_has_gpu", lambda backend: True)
    with pytest.raises(ValueError, match=r"`train.precision` and `model.use_cudnn`.*"
                                         r"received precision='mixed_bfloat16', "
                                         r"use_cudnn='true'"):
        resolve_compute(bfloat16.replace(model={"use_cudnn": "true"}))


# --------------------------------------------------------------------------- metrics
def test_logit_metrics_match_sklearn_at_probability_one_half():
    generator = np.random.default_rng(9)
    labels = generator.integers(0, 2, size=(40, 1)).astype("float32")
    logits = generator.normal(size=(40, 1)).astype("float32") + labels
    predicted = (logits > 0).astype(int).ravel()
    for metric, reference in [(LogitPrecision(), precision_score),
                              (LogitRecall(), recall_score), (LogitF1Score(), f1_score)]:
        metric.update_state(labels[:25], logits[:25])
        metric.update_state(labels[25:], logits[25:])  # accumulates over batches
        assert float(metric.result()) == pytest.approx(
            reference(labels.ravel().astype(int), predicted), abs=1e-6)


def test_logit_f1_score_rejects_a_threshold_outside_zero_one():
    with pytest.raises(ValueError, match=r"probability threshold in \(0, 1\). "
                                         r"Received: threshold=1.5"):
        LogitF1Score(threshold=1.5)
