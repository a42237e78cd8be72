"""Tests of the brightness-feature baseline (jetkeras.baseline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jetkeras.baseline import (
    FEATURE_NAMES,
    best_feature_auc,
    feature_aucs,
    feature_table,
    summary_features,
)
from jetkeras.cube import Cube


def test_summary_features_of_a_known_cube():
    frames = np.zeros((3, 6, 6), dtype=np.float32)
    frames[1] = 10.0  # the middle frame flashes
    frames[2, 2:4, 2:4] = 4.0  # a spot in the centre of the last frame
    features = summary_features(frames)
    assert tuple(features) == FEATURE_NAMES
    assert features["mean"] == pytest.approx((36 * 10 + 4 * 4) / 108)
    assert features["max"] == 10.0
    assert features["frame_diff_max"] == 10.0
    assert features["frame_mean_trend"] == pytest.approx(16 / 36)
    assert features["centre_mean"] == pytest.approx((4 * 10 + 4 * 4) / 12)
    expected_std = np.std([0.0, 10.0, 0.0])
    assert features["temporal_std_mean"] == pytest.approx(
        (32 * expected_std + 4 * np.std([0.0, 10.0, 4.0])) / 36)
    assert summary_features(Cube(frames)) == features


def test_single_frame_has_zero_temporal_features():
    features = summary_features(np.full((1, 4, 4), 3.0))
    assert features["frame_diff_max"] == 0.0
    assert features["temporal_std_mean"] == 0.0
    assert features["mean"] == 3.0


def test_best_feature_finds_the_separating_one():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 20)
    # Same brightness, but jets (1) flicker in time: only temporal features separate.
    cubes = []
    for label in labels:
        base = rng.normal(50.0, 5.0, (1, 16, 16))
        flicker = rng.normal(0.0, 8.0 if label else 0.5, (6, 1, 1))
        cubes.append(base + flicker)
    name, auc = best_feature_auc(cubes, labels)
    aucs = feature_aucs(feature_table(cubes), labels)
    assert auc == max(aucs.values()) == aucs[name]
    for temporal in ("frame_mean_std", "temporal_std_mean", "frame_diff_mean"):
        assert aucs[temporal] > 0.95
    assert aucs["mean"] < 0.8
    assert aucs["median"] < 0.8


def test_auc_is_symmetric_in_sign():
    table = pd.DataFrame({"down": np.arange(10.0)[::-1], "noise": [1, 0] * 5})
    labels = [0] * 5 + [1] * 5
    name, auc = best_feature_auc(table, labels)
    assert (name, auc) == ("down", 1.0)
    assert best_feature_auc(table.to_dict("records"), labels) == ("down", 1.0)
    assert best_feature_auc({"down": table["down"].to_numpy()}, labels) == ("down", 1.0)


def test_errors_are_one_clear_line():
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"expected both labels 0 and 1, received only 1"):
        best_feature_auc(table, [1, 1, 1])
    with pytest.raises(ValueError, match=r"expected one label per cube \(3\), received \(2,\)"):
        best_feature_auc(table, [0, 1])
    with pytest.raises(ValueError, match=r"expected labels 0 or 1, received \[0, 1, 2\]"):
        best_feature_auc(table, [0, 1, 2])
    with pytest.raises(ValueError, match=r"feature `a` holds NaN or Inf"):
        best_feature_auc(pd.DataFrame({"a": [1.0, np.nan, 3.0]}), [0, 1, 0])
    with pytest.raises(ValueError, match=r"expected frames of shape \(n_frames, height, width\)"):
        summary_features(np.zeros((4, 4)))


def test_held_out_baselines_fit_on_train_and_score_on_test():
    from jetkeras.baseline import held_out_baselines

    rng = np.random.default_rng(0)

    def cubes(labels):
        # Jets brighten over time: the frame-mean trend separates them (in the train split).
        return [rng.normal(50, 5, (4, 16, 16)) + (np.arange(4)[:, None, None] * 3.0 * label)
                for label in labels]

    train_labels = [0, 1] * 20
    test_labels = [1, 0] * 10
    result = held_out_baselines(cubes(train_labels), train_labels, cubes(test_labels),
                                test_labels)
    assert result["feature_auc"] > 0.9
    assert result["logistic_auc"] > 0.9
    # A sign learnt on train, applied to test: flipping the test labels flips the score.
    flipped = held_out_baselines(cubes(train_labels), train_labels, cubes(test_labels),
                                 [1 - label for label in test_labels])
    assert flipped["feature_auc"] < 0.1


def test_split_features_reads_a_records_split_in_order(tiny_run):
    from jetkeras.baseline import split_features
    from jetkeras.pipeline import iterate_records

    table, labels = split_features(tiny_run["records"], "train")
    records = list(iterate_records(tiny_run["records"], "train"))
    assert table.shape == (len(records), len(FEATURE_NAMES))
    assert labels.tolist() == [record["label"] for record in records]
    assert set(labels.tolist()) == {0, 1}
    expected = feature_table(record["frames"][..., 0] for record in records)
    pd.testing.assert_frame_equal(table, expected)
