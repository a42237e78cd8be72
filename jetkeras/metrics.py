"""Classification metrics and threshold choice, from scikit-learn.

The seed picked its threshold (0.1) by hand after looking at validation F1, and also
computed test F1 for every grid point. Here the threshold is chosen on the validation
split by a stated rule and stored with the run; the test split only ever sees it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["choose_threshold", "classification_metrics"]


def choose_threshold(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    metric: str = "f1",
    target_recall: float = 0.95,
) -> dict[str, Any]:
    """Pick the decision threshold on validation predictions.

    Parameters
    ----------
    labels : array of {0, 1}, shape (N,)
    probabilities : array of float in [0, 1], shape (N,)
    metric : {"f1", "recall"}
        ``f1``: the threshold of maximum F1. ``recall``: the highest threshold whose
        recall is at least ``target_recall`` (ESA's priority in the seed: few misses).

    Returns
    -------
    dict
        ``threshold``, ``rule``, and ``f1``, ``precision``, ``recall`` at it.
    """
    from sklearn.metrics import precision_recall_curve

    labels = np.asarray(labels).astype(int).ravel()
    probabilities = np.asarray(probabilities, dtype=float).ravel()
    if labels.size == 0:
        raise ValueError("threshold: expected validation predictions, received none")
    if labels.min() == labels.max():
        raise ValueError(
            f"threshold: the validation split holds only class {labels[0]}; both classes "
            f"are needed to choose a threshold"
        )
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros_like(precision), where=(precision + recall) > 0)
    if metric == "f1":
        index = int(np.argmax(f1))
        rule = "max F1 on validation"
    elif metric == "recall":
        eligible = np.flatnonzero(recall >= target_recall)
        index = int(eligible[-1]) if eligible.size else 0
        rule = f"highest threshold with validation recall >= {target_recall:g}"
    else:
        raise ValueError(f"threshold metric: expected 'f1' or 'recall', received {metric!r}")
    return {
        "threshold": float(thresholds[index]),
        "rule": rule,
        "f1": float(f1[index]),
        "precision": float(precision[index]),
        "recall": float(recall[index]),
        "count": int(labels.size),
    }


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC, average precision and the confusion matrix.

    ``confusion_matrix`` is ``[[tn, fp], [fn, tp]]`` (rows: true no-jet, jet).
    ROC AUC and average precision are ``None`` when only one class is present.
    """
    from sklearn import metrics

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"--threshold: expected a value in [0, 1], received {threshold}")
    labels = np.asarray(labels).astype(int).ravel()
    probabilities = np.asarray(probabilities, dtype=float).ravel()
    predicted = (probabilities >= threshold).astype(int)
    both = labels.min() != labels.max() if labels.size else False
    return {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both else None,
        "average_precision": (float(metrics.average_precision_score(labels, probabilities))
                              if both else None),
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "threshold": float(threshold),
        "count": int(labels.size),
    }
