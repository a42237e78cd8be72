"""Tests of the default ``projection`` model: TemporalProjection's maps, the network, and
LiteRT parity of the conv-headed networks."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from jetkeras.config import DataConfig, JetConfig, TrainConfig, model_preset
from jetkeras.layers import PROJECTION_CHANNELS, MotionChannels, TemporalProjection
from jetkeras.models import build_model, compile_model, count_parameters, estimate_flops

FRAMES, SIZE = 8, 32


def projection_config(frames=FRAMES, members=1, **model):
    return JetConfig(data=DataConfig(frames=frames, size=SIZE),
                     model=model_preset("projection", widths=(4, 8), members=members, **model),
                     train=TrainConfig(jit="off"))


def growing_spire(order=None):
    """A vertical spire in column 16 that grows one row every frame from row 4 (the base).

    Returns float32 ``(1, FRAMES, SIZE, SIZE, 1)`` on a flat background of 1; ``order``
    permutes the frames (a scrambled copy).
    """
    cube = np.ones((FRAMES, SIZE, SIZE), "float32")
    for frame in range(FRAMES):
        cube[frame, 4:4 + 3 * (frame + 1), 15:18] += 5.0
    if order is not None:
        cube = cube[order]
    return cube[None, ..., None]


def maps_of(cube):
    channels = MotionChannels()(cube)
    return keras.ops.convert_to_numpy(TemporalProjection()(channels))[0]


def test_projection_gives_eight_named_maps_per_pixel():
    maps = maps_of(growing_spire())
    assert maps.shape == (SIZE, SIZE, len(PROJECTION_CHANNELS)) == (SIZE, SIZE, 8)
    timing = maps[..., PROJECTION_CHANNELS.index("brightening_time")]
    assert (timing >= 0.0).all() and (timing <= 1.0).all()
    # Off the spire nothing changes: no rise, no fall, no brightening time.
    for name in ("max_base_difference", "max_running_difference", "brightening_time"):
        np.testing.assert_allclose(maps[25:, :10, PROJECTION_CHANNELS.index(name)], 0.0,
                                   atol=1e-3)


def test_brightening_time_rises_along_a_growing_spire_and_not_a_scrambled_one():
    """Row 4 + 3k first brightens in frame k: the map rises up the spire in steps of
    1 / (FRAMES - 1) of the window. Frames out of order break that rise."""
    index = PROJECTION_CHANNELS.index("brightening_time")
    rows = [4 + 3 * step + 1 for step in range(1, FRAMES)]  # frame 0's rows never brighten
    along = maps_of(growing_spire())[rows, 16, index]
    np.testing.assert_allclose(along, np.arange(1, FRAMES) / (FRAMES - 1), atol=1e-3)
    order = np.random.default_rng(0).permutation(FRAMES)
    scrambled = maps_of(growing_spire(order))[rows, 16, index]
    assert not np.all(np.diff(scrambled) > 0)


def test_projection_refuses_inputs_that_are_not_motion_channels():
    with pytest.raises(ValueError, match=r"expected inputs \(B, T, H, W, 3\).*Received: "
                                         r"shape=\(1, 8, 32, 32, 1\)"):
        TemporalProjection()(growing_spire())


def test_projection_model_is_the_default_and_trains_one_step():
    assert JetConfig().model == model_preset("projection")  # two members by default
    assert JetConfig().model.members == 2 and model_preset("light").arch == "td_lstm"
    config = projection_config()
    model = compile_model(build_model(config), config, steps_per_epoch=1)
    assert tuple(model.get_layer("temporal_projection").output.shape) == (None, SIZE, SIZE, 8)
    cubes = np.random.default_rng(3).normal(size=(4, FRAMES, SIZE, SIZE, 1)).astype("float32")
    history = model.fit(cubes, np.array([0, 1, 0, 1], "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_projection_cost_does_not_grow_with_frames():
    """The CNN runs once per sequence: 30 frames cost what 8 do, and the same weights."""
    assert estimate_flops(projection_config(frames=30)) == estimate_flops(projection_config())
    assert count_parameters(build_model(projection_config(frames=30))) == \
        count_parameters(build_model(projection_config()))


def test_projection_model_saves_and_loads_in_safe_mode(tmp_path):
    model = build_model(projection_config(input_pool=2))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    cubes = np.random.default_rng(4).normal(size=(2, FRAMES, SIZE, SIZE, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(cubes)),
                               keras.ops.convert_to_numpy(model(cubes)), atol=1e-5)


LITERT_CASES = {
    "projection": dict(preset="projection", widths=(4, 8), input_pool=2, members=1),
    "projection_two_members": dict(preset="projection", widths=(4, 8), input_pool=2,
                                   members=2),
    "td_lstm_conv_head": dict(preset="tiny", motion="differences", temporal="conv",
                              input_pool=2, input_stem="patch"),
}


@pytest.mark.parametrize("case", sorted(LITERT_CASES))
def test_litert_equals_keras(case, tmp_path):
    from jetkeras.export import write_litert
    from jetkeras.runtime import _litert_logits_function

    settings = dict(LITERT_CASES[case])
    config = JetConfig(data=DataConfig(frames=FRAMES, size=SIZE),
                       model=model_preset(settings.pop("preset"), **settings),
                       train=TrainConfig(jit="off"))
    model = build_model(config)
    write_litert(model, config, tmp_path / "model.tflite")
    cubes = np.random.default_rng(5).normal(size=(3, FRAMES, SIZE, SIZE, 1)).astype("float32")
    ours = np.asarray(_litert_logits_function(tmp_path / "model.tflite")(cubes))
    np.testing.assert_allclose(ours.ravel(), keras.ops.convert_to_numpy(model(cubes)).ravel(),
                               atol=1e-4)
