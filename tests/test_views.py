"""Test-time views (``model.views``, jetkeras.layers.DihedralViews / ViewMean): at inference
the score is the mean logit over turned and mirrored copies of the cutout; in training
nothing changes."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from jetkeras.config import DataConfig, JetConfig, TrainConfig, model_preset
from jetkeras.models import build_model

FRAMES, SIZE = 4, 32


def config_with(views, preset="projection", **model):
    settings = dict(widths=(4, 8), members=1, views=views, dropout=0.0)
    if preset == "projection":
        settings["input_pool"] = 2
    return JetConfig(data=DataConfig(frames=FRAMES, size=SIZE),
                     model=model_preset(preset, **settings | model),
                     train=TrainConfig(jit="off"))


def cubes(count=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, FRAMES, SIZE, SIZE, 1)).astype("float32")


def turned(cube, quarter_turns, mirrored=False):
    """``cube`` ``(B, T, H, W, 1)`` rotated by quarter turns, then mirrored left-right."""
    out = np.rot90(cube, quarter_turns, axes=(2, 3))
    return np.ascontiguousarray(out[:, :, :, ::-1] if mirrored else out)


def logits(model, x, training=False):
    return keras.ops.convert_to_numpy(model(x, training=training)).ravel()


def twins(views, preset="projection"):
    """A ``views`` model and a one-view model with the same weights."""
    many, one = build_model(config_with(views, preset)), build_model(config_with(1, preset))
    one.set_weights(many.get_weights())  # views add no weights: the lists line up
    return many, one


@pytest.mark.parametrize("views", [2, 8])
def test_projection_score_is_the_mean_logit_over_the_views(views):
    many, one = twins(views)
    x = cubes()
    symmetries = [(0, False), (2, False), (1, False), (3, False)]
    symmetries += [(turns, True) for turns, _ in symmetries]
    expected = np.mean([logits(one, turned(x, *symmetry))
                        for symmetry in symmetries[:views]], axis=0)
    np.testing.assert_allclose(logits(many, x), expected, atol=1e-5)
    assert not np.allclose(logits(one, x), expected, atol=1e-3)  # the views do differ


def test_eight_views_make_the_score_blind_to_the_cutouts_orientation():
    many, one = twins(8)
    x = cubes(seed=1)
    for symmetry in [(1, False), (2, True), (3, True)]:
        np.testing.assert_allclose(logits(many, turned(x, *symmetry)), logits(many, x),
                                   atol=1e-5)
    assert not np.allclose(logits(one, turned(x, 1)), logits(one, x), atol=1e-3)


def test_training_sees_one_view():
    many, one = twins(8)
    x = cubes(count=4, seed=2)
    np.testing.assert_allclose(logits(many, x, training=True), logits(one, x, training=True),
                               atol=1e-5)


def test_td_lstm_takes_the_views_of_its_frames():
    many, one = twins(2, preset="tiny")
    x = cubes(seed=3)
    expected = (logits(one, x) + logits(one, turned(x, 2))) / 2
    np.testing.assert_allclose(logits(many, x), expected, atol=1e-5)


def test_views_must_be_a_symmetry_count():
    with pytest.raises(ValueError, match=r"config key `model.views`: expected one of "
                                         r"\[1, 2, 4, 8\], received 3"):
        JetConfig.from_dict({"model": {"views": 3}})


def test_a_run_saved_before_views_keeps_scoring_one_view():
    """A run folder's config holds every key; one without ``views`` was trained, and its
    threshold chosen, on one view. A hand-written partial section takes the default."""
    saved = JetConfig().to_dict()
    del saved["model"]["views"]
    assert JetConfig.from_dict(saved).model.views == 1
    assert JetConfig.from_dict({"model": {"dropout": 0.1}}).model.views == 8
    assert JetConfig.from_dict(JetConfig().to_dict()) == JetConfig()
