"""Tests of the motion-aware td_lstm: MotionChannels, input pooling, pooling and heads."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from jetkeras.config import DataConfig, JetConfig, TrainConfig, model_preset
from jetkeras.layers import MotionChannels
from jetkeras.models import build_model, compile_model, estimate_flops

FRAMES, SIZE = 4, 32


def motion_config(**model):
    return JetConfig(data=DataConfig(frames=FRAMES, size=SIZE),
                     model=model_preset("tiny", **model), train=TrainConfig(jit="off"))


def test_motion_channels_are_standardised_frame_and_differences():
    generator = np.random.default_rng(0)
    cubes = (50.0 + 20.0 * generator.normal(size=(2, FRAMES, 8, 8, 1))).astype("float32")
    out = keras.ops.convert_to_numpy(MotionChannels()(cubes))
    assert out.shape == (2, FRAMES, 8, 8, 3)
    for index, cube in enumerate(cubes):
        standard = (cube - cube.mean()) / (cube.std() + 1e-3)
        np.testing.assert_allclose(out[index, ..., 0:1], standard, atol=1e-4)
        np.testing.assert_allclose(out[index, 1:, ..., 1:2], standard[1:] - standard[:-1],
                                   atol=1e-4)
        np.testing.assert_allclose(out[index, 0, ..., 1], 0.0)
        np.testing.assert_allclose(out[index, ..., 2:3], standard - standard[:1], atol=1e-4)


def test_motion_channels_ignore_exposure_and_offset():
    generator = np.random.default_rng(1)
    cube = generator.gamma(2.0, 25.0, size=(1, FRAMES, 8, 8, 1)).astype("float32")
    layer = MotionChannels()
    dim = keras.ops.convert_to_numpy(layer(0.3 * cube + 7.0))
    bright = keras.ops.convert_to_numpy(layer(cube))
    np.testing.assert_allclose(dim, bright, atol=2e-3)


def test_motion_channels_config_round_trip_and_bad_names():
    layer = MotionChannels(channels=("base_difference",), standardise=False, name="m")
    rebuilt = MotionChannels.from_config(layer.get_config())
    assert rebuilt.channels == ("base_difference",) and rebuilt.standardise is False
    assert rebuilt.compute_output_shape((None, FRAMES, 8, 8, 1)) == (None, FRAMES, 8, 8, 1)
    with pytest.raises(ValueError, match=r"channel names out of .*Received: channels="
                                         r"\['speed'\]"):
        MotionChannels(channels=("speed",))


@pytest.mark.parametrize("pooling,features", [("avgmax", 16), ("avg", 8), ("flatten", 512)])
def test_motion_model_shapes_and_frame_features(pooling, features):
    model = build_model(motion_config(motion="differences", pooling=pooling))
    assert tuple(model.get_layer("motion_channels").output.shape) == (None, FRAMES, SIZE,
                                                                      SIZE, 3)
    assert tuple(model.get_layer("frame_distributed").output.shape) == (None, FRAMES,
                                                                        features)
    logits = keras.ops.convert_to_numpy(model(np.zeros((2, FRAMES, SIZE, SIZE, 1),
                                                       "float32") + 1.0))
    assert logits.shape == (2, 1) and np.isfinite(logits).all()


def test_motion_model_sees_motion_a_still_copy_does_not_give():
    """A still sequence and a moving one give different logits; the still one's
    difference channels are exactly zero, so only the frame channel reaches the CNN."""
    model = build_model(motion_config(motion="differences", pooling="avgmax"))
    still = np.repeat(np.random.default_rng(2).normal(size=(1, 1, SIZE, SIZE, 1)), FRAMES,
                      axis=1).astype("float32")
    moving = still.copy()
    moving[0, 2:, 10:14, 10:30] += 3.0
    channels = keras.ops.convert_to_numpy(
        model.get_layer("motion_channels")(still))
    np.testing.assert_allclose(channels[..., 1:], 0.0, atol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(model(still)),
                           keras.ops.convert_to_numpy(model(moving)))


def test_input_pool_halves_the_frames_before_the_stem():
    model = build_model(motion_config(motion="differences", input_pool=2,
                                      input_stem="average"))
    encoder = model.get_layer("frame_distributed").layer
    assert tuple(encoder.get_layer("input_pool").output.shape) == (None, SIZE // 2,
                                                                   SIZE // 2, 3)
    assert estimate_flops(motion_config(motion="differences", input_pool=2,
                                        input_stem="average")) < \
        estimate_flops(motion_config(motion="differences"))


def test_patch_stem_is_a_learned_stride_k_convolution():
    config = motion_config(motion="differences", input_pool=2, input_stem="patch")
    encoder = build_model(config).get_layer("frame_distributed").layer
    patch = encoder.get_layer("input_patch")
    assert tuple(patch.output.shape) == (None, SIZE // 2, SIZE // 2, config.model.widths[0])
    assert patch.strides == (2, 2) and patch.kernel_size == (2, 2)
    # FLOPs: the patch conv (2x2 kernel, 3 -> widths[0]) plus a first conv on widths[0]
    # channels instead of 3.
    average = motion_config(motion="differences", input_pool=2, input_stem="average")
    side, width = SIZE // 2, config.model.widths[0]
    first_side = side // config.model.stem_stride
    first = config.model.kernel_size ** 2 * width * (width - 3) * first_side ** 2
    extra = 2 * FRAMES * (side * side * width * 4 * 3 + first)
    assert estimate_flops(config) - estimate_flops(average) == pytest.approx(extra)
    with pytest.raises(ValueError, match=r"`model.input_stem`: expected one of"):
        motion_config(input_stem="fourier")


def test_temporal_conv_head_builds_and_trains_one_step():
    config = motion_config(motion="differences", temporal="conv")
    model = compile_model(build_model(config), config, steps_per_epoch=1)
    assert model.get_layer("temporal_max").output.shape[-1] == config.model.lstm_units
    cubes = np.random.default_rng(3).normal(size=(4, FRAMES, SIZE, SIZE, 1)).astype("float32")
    history = model.fit(cubes, np.array([0, 1, 0, 1], "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_motion_model_saves_and_loads_in_safe_mode(tmp_path):
    model = build_model(motion_config(motion="differences", pooling="avgmax"))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    cubes = np.random.default_rng(4).normal(size=(2, FRAMES, SIZE, SIZE, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(cubes)),
                               keras.ops.convert_to_numpy(model(cubes)), atol=1e-5)


def test_warmup_rises_then_cosine_decays_to_zero():
    from jetkeras.models import _learning_rate

    config = motion_config().replace(train={"epochs": 4, "warmup_fraction": 0.25,
                                            "learning_rate": 1e-3})
    schedule = _learning_rate(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert rates[0] == pytest.approx(0.0, abs=1e-9)
    assert rates[1] == pytest.approx(5e-4, rel=1e-3)
    assert rates[2] == pytest.approx(1e-3, rel=1e-3)
    assert rates[2] > rates[3] > rates[4]
    assert rates[4] == pytest.approx(0.0, abs=1e-9)


def test_warmup_of_the_whole_run_is_refused():
    with pytest.raises(ValueError, match=r"`train.warmup_fraction`: expected a value in "
                                         r"\[0, 1\), received 1.0"):
        motion_config().replace(train={"epochs": 3, "warmup_fraction": 1.0})
