"""The brightness-feature baseline: how far plain brightness and variance summaries go.

A jet brightens its cutout, so a classifier that only thresholds one number (the mean,
the 99th percentile, the frame-to-frame variability) already beats chance. The trained
model must beat the best such number by a wide margin, otherwise it has learnt brightness,
not jets. :func:`summary_features` computes the numbers for one cube and
:func:`best_feature_auc` reports the best single-feature ROC AUC over a labelled set,
counting a feature that ranks the classes backwards as ``1 - AUC`` (the sign is free).

Examples
--------
>>> import numpy as np
>>> from jetkeras.baseline import best_feature_auc
>>> rng = np.random.default_rng(0)
>>> cubes = [rng.normal(50 + 10 * label, 5, (4, 16, 16)) for label in (0, 1) * 10]
>>> name, auc = best_feature_auc(cubes, [0, 1] * 10)
>>> auc
1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from jetkeras.cube import Cube, check_frames

__all__ = [
    "fit_baselines",
    "held_out_baselines",
    "FEATURE_NAMES",
    "best_feature_auc",
    "feature_aucs",
    "feature_table",
    "split_features",
    "summary_features",
]

FEATURE_NAMES = (
    "mean",  # mean DN over the cube
    "std",  # std DN over the cube
    "median",
    "max",
    "p99",  # 99th percentile DN
    "temporal_std_mean",  # per-pixel std over time, averaged over pixels
    "temporal_std_p99",  # ... its 99th percentile over pixels
    "frame_diff_mean",  # mean |frame[t+1] - frame[t]|
    "frame_diff_max",  # max |frame[t+1] - frame[t]|
    "frame_mean_std",  # std over time of the frame means (light-curve variability)
    "frame_mean_trend",  # last frame mean minus first frame mean
    "centre_mean",  # mean DN of the central third (the catalogue base point lies there)
    "centre_temporal_std",  # per-pixel temporal std averaged over the central third
)


def summary_features(frames) -> dict[str, float]:
    """Brightness and variance summaries of one cube.

    Parameters
    ----------
    frames : numpy.ndarray or Cube
        ``(T, H, W)`` frames in DN (float32 or any real dtype), T >= 1.

    Returns
    -------
    dict of str to float
        One value per name in :data:`FEATURE_NAMES`, in DN (trend and differences in DN
        per frame). With T = 1 the temporal features are 0.
    """
    array = frames.frames if isinstance(frames, Cube) else frames
    array = check_frames(array, "summary_features").astype(np.float64)
    count, height, width = array.shape
    flat = array.reshape(-1)
    temporal_std = array.std(axis=0)  # (H, W)
    frame_means = array.mean(axis=(1, 2))  # (T,)
    if count > 1:
        differences = np.abs(np.diff(array, axis=0))
        frame_diff_mean = float(differences.mean())
        frame_diff_max = float(differences.max())
    else:
        frame_diff_mean = frame_diff_max = 0.0
    rows = slice(height // 3, height - height // 3)
    columns = slice(width // 3, width - width // 3)
    percentiles = np.percentile(flat, [50, 99])
    return {
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "median": float(percentiles[0]),
        "max": float(flat.max()),
        "p99": float(percentiles[1]),
        "temporal_std_mean": float(temporal_std.mean()),
        "temporal_std_p99": float(np.percentile(temporal_std, 99)),
        "frame_diff_mean": frame_diff_mean,
        "frame_diff_max": frame_diff_max,
        "frame_mean_std": float(frame_means.std()),
        "frame_mean_trend": float(frame_means[-1] - frame_means[0]),
        "centre_mean": float(array[:, rows, columns].mean()),
        "centre_temporal_std": float(temporal_std[rows, columns].mean()),
    }


def feature_table(cubes: Iterable[Any]) -> pd.DataFrame:
    """:func:`summary_features` of each cube (Cube or ``(T, H, W)`` array), one row each."""
    return pd.DataFrame([summary_features(cube) for cube in cubes], columns=list(FEATURE_NAMES))


def split_features(records, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`feature_table` and labels of one split of a records folder.

    Records are read one at a time, so memory stays that of one cube: a training split
    of 8 renders per event holds gigabytes of frames (2,688 cubes of 30x128x128 float32
    are 5.3 GB).

    Parameters
    ----------
    records : path
        A folder written by :mod:`jetkeras.build_records`.
    split : {"train", "val", "test"}

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        One row of :data:`FEATURE_NAMES` per sequence, and its label (0 or 1), shape (N,).
    """
    from jetkeras.pipeline import iterate_records

    rows, labels = [], []
    for record in iterate_records(records, split):
        rows.append(summary_features(record["frames"][..., 0]))
        labels.append(int(record["label"]))
    return pd.DataFrame(rows, columns=list(FEATURE_NAMES)), np.asarray(labels)


def _as_table(cubes_or_feature_table) -> pd.DataFrame:
    if isinstance(cubes_or_feature_table, pd.DataFrame):
        table = cubes_or_feature_table
    elif isinstance(cubes_or_feature_table, Mapping):
        table = pd.DataFrame(dict(cubes_or_feature_table))
    else:
        items = list(cubes_or_feature_table)
        if items and all(isinstance(item, Mapping) for item in items):
            table = pd.DataFrame(items)
        else:
            table = feature_table(items)
    numeric = table.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        raise ValueError(
            f"best_feature_auc: expected cubes or a table of numeric features, "
            f"received columns {list(table.columns)}"
        )
    return numeric


def feature_aucs(cubes_or_feature_table, labels: Sequence[int]) -> dict[str, float]:
    """ROC AUC of every feature alone, as ``max(auc, 1 - auc)`` (0.5 = useless, 1 = perfect).

    Parameters
    ----------
    cubes_or_feature_table : iterable of Cube or array, DataFrame, dict or list of dicts
        Cubes (features are computed) or a ready feature table, one row per cube.
    labels : sequence of int
        0 (no jet) or 1 (jet) per cube; both classes must occur.

    Raises
    ------
    ValueError
        When the labels are not 0/1, hold one class only, or do not match the rows.
    """
    table = _as_table(cubes_or_feature_table)
    label_array = np.asarray(labels)
    if label_array.ndim != 1 or len(label_array) != len(table):
        raise ValueError(
            f"best_feature_auc: expected one label per cube ({len(table)}), "
            f"received {label_array.shape}"
        )
    if not np.isin(label_array, (0, 1)).all():
        raise ValueError(
            f"best_feature_auc: expected labels 0 or 1, received {sorted(set(label_array.tolist()))}"
        )
    if len(np.unique(label_array)) < 2:
        raise ValueError(
            f"best_feature_auc: expected both labels 0 and 1, received only "
            f"{int(label_array[0]) if len(label_array) else 'none'}"
        )
    aucs = {}
    for name in table.columns:
        values = table[name].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"best_feature_auc: feature `{name}` holds NaN or Inf values")
        auc = float(roc_auc_score(label_array, values))
        aucs[str(name)] = max(auc, 1.0 - auc)
    return aucs


def best_feature_auc(cubes_or_feature_table, labels: Sequence[int]) -> tuple[str, float]:
    """The single brightness/variance feature that best separates jets from negatives.

    Parameters and errors as :func:`feature_aucs`.

    Returns
    -------
    (str, float)
        Feature name and its ROC AUC ``max(auc, 1 - auc)`` in [0.5, 1].
    """
    aucs = feature_aucs(cubes_or_feature_table, labels)
    name = max(aucs, key=aucs.get)
    return name, aucs[name]


def fit_baselines(train_cubes, train_labels: Sequence[int], *, seed: int = 0) -> dict[str, Any]:
    """Fit the two brightness-feature classifiers on a training split.

    Parameters
    ----------
    train_cubes : iterable of Cube or (T, H, W) array, or a feature table
        Training sequences in DN (features are computed) or their :func:`feature_table`.
    train_labels : sequence of int
        0 or 1 per sequence.
    seed : int
        Seeds the gradient-boosted trees.

    Returns
    -------
    dict
        ``logistic``: a standardised logistic regression on all features;
        ``boosting``: scikit-learn's ``HistGradientBoostingClassifier`` on the same
        features (non-linear, so it also finds thresholds and interactions). Both are
        fitted scikit-learn estimators with ``predict_proba``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table, labels = _as_table(train_cubes), np.asarray(train_labels)
    feature_aucs(table, labels)  # the same label checks and messages
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    boosting = HistGradientBoostingClassifier(random_state=seed)
    return {name: model.fit(table.to_numpy(), labels)
            for name, model in (("logistic", logistic), ("boosting", boosting))}


def held_out_baselines(train_cubes, train_labels: Sequence[int], test_cubes,
                       test_labels: Sequence[int], *, seed: int = 0) -> dict[str, Any]:
    """Brightness baselines fitted on a training split and scored on a test split.

    Unlike :func:`best_feature_auc` on the test split itself (which picks the luckiest of
    13 features on the very sequences it scores), nothing here sees the test labels
    before scoring.

    Returns
    -------
    dict
        ``feature`` and ``feature_auc``: the single feature (and its sign) that best
        separates the training split, scored on the test split; ``logistic_auc`` and
        ``boosting_auc``: the classifiers of :func:`fit_baselines`; ``best`` and
        ``best_auc``: the strongest of the three on the test split.
    """
    train_table, test_table = _as_table(train_cubes), _as_table(test_cubes)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    aucs = feature_aucs(train_table, train_labels)
    name = max(aucs, key=aucs.get)
    sign = 1.0 if roc_auc_score(train_labels, train_table[name]) >= 0.5 else -1.0
    fitted = fit_baselines(train_table, train_labels, seed=seed)
    scores = {f"{kind}_auc": float(roc_auc_score(
        test_labels, model.predict_proba(test_table.to_numpy())[:, 1]))
        for kind, model in fitted.items()}
    result = {"feature": name,
              "feature_auc": float(roc_auc_score(test_labels, sign * test_table[name])),
              **scores}
    best = max(("feature", "logistic", "boosting"), key=lambda k: result[f"{k}_auc"])
    return {**result, "best": best, "best_auc": result[f"{best}_auc"]}
