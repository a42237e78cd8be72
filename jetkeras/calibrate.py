"""A model's threshold chosen again on your own labelled windows: ``python -m jetkeras.calibrate``.

The bundled model's threshold was chosen on *rendered* validation jets (the highest whose
recall reaches 0.95 there). On real 304 A jets it keeps fewer: 0.76 of the real-jet
validation set (``docs/model_card.md``). Scores rank real jets well (AUC 0.95 against
their motion-removed copies); it is the cut that does not carry over from renders. A solar
physicist with labelled real cutouts should therefore choose the cut on them: fetch and
label JSOC cubes, build records split by HEK event, calibrate on ``val``, and report on
``test``, which the threshold never sees.

Examples
--------
::

    python -m jetkeras.build_records --source npz --npz-root cubes/ --out tfrecords/real
    python -m jetkeras.calibrate --records tfrecords/real --out runs/bundled-real
    python -m jetkeras.evaluate --run runs/bundled-real --records tfrecords/real
    python -m jetkeras.predict cube.npz --model runs/bundled-real

``--model`` defaults to the bundled model; any finished run folder works. The new folder
is a copy of the run in which only ``threshold.json`` is rewritten: the threshold, the
rule, the records and split it rests on (``calibrated_on``: sequences, jets, ROC AUC) and
the threshold it replaces (``previous``). The network and its normalisation are unchanged,
so every probability is the same as before; only the decision moves. The folder appears
whole or not at all.

How many jets to label: a threshold that keeps all but ``m`` of ``n`` validation jets
keeps a fraction ``R`` of new jets with ``1 - R ~ Beta(m + 1, n - m)`` (order statistics;
no assumption on the scores), so its expected recall is ``1 - (m + 1) / (n + 1)``. For
the recall rule, ``calibrated_on.recall_lower_95`` is the recall it exceeds with 95 %
confidence: with 60 jets and a target of 0.95 (m = 3), 0.876; with 200 jets, 0.917.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli
from jetkeras._files import atomic_write_text, staged_folder
from jetkeras.records import SPLITS

__all__ = ["calibrate", "main"]


def _labelled_scores(records: Path, split: str, predictor, batch_size: int):
    """Labels int ``(N,)`` and probabilities float ``(N,)`` of one records split."""
    from tqdm.auto import tqdm

    from jetkeras.predict import predict_records
    from jetkeras.records import read_manifest

    count = read_manifest(records)["splits"].get(split, {}).get("count", 0)
    labels, probabilities = [], []
    with tqdm(total=count, unit="seq", desc="calibrate", leave=False) as bar:
        for record, probability in predict_records(records, split, predictor,
                                                   batch_size=batch_size):
            labels.append(record["label"])
            probabilities.append(probability)
            bar.update()
    return np.asarray(labels, dtype=int), np.asarray(probabilities, dtype=float)


def _recall_lower_bound(misses: int, jets: int, confidence: float = 0.95) -> float:
    """Recall on new jets exceeded with ``confidence``, for a threshold at the score of the
    ``misses + 1``-th lowest of ``jets`` validation jets: ``1 - R ~ Beta(m + 1, n - m)``."""
    from scipy.stats import beta

    return float(1.0 - beta.ppf(confidence, misses + 1, jets - misses))


def calibrate(
    *,
    records: str | os.PathLike,
    out: str | os.PathLike,
    model: str | os.PathLike | None = None,
    split: str = "val",
    metric: str = "recall",
    target_recall: float = 0.95,
    batch_size: int = 16,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Copy a run folder with its threshold chosen on ``split`` of ``records``.

    Parameters
    ----------
    records : path-like
        Records folder (``build_records``) of the model's frame count and size, labelled
        and split by HEK event.
    out : path-like
        The calibrated run folder to create; refused if it exists unless ``overwrite``,
        and never the model's own folder.
    model : path-like or None
        A finished run folder; None: the bundled model. SavedModel exports are refused
        (calibrate their run, then export it).
    split : {"train", "val", "test"}
        Split the threshold is chosen on. Defaults to ``"val"``; report on another one.
    metric : {"recall", "f1"}
        ``recall``: the highest threshold whose recall on the split is at least
        ``target_recall``. ``f1``: the threshold of maximum F1.
    target_recall : float
        In (0, 1]. Defaults to 0.95, the bundled model's rule.
    batch_size : int
        Sequences per forward pass. Defaults to 16.

    Returns
    -------
    dict
        The new ``threshold.json``: ``threshold``, ``rule``, ``f1``, ``precision``,
        ``recall`` and ``count`` on the split, ``calibrated_on`` (``records``, ``split``,
        ``sequences``, ``jets``, ``roc_auc``, ``recall_lower_95``: None for ``f1``) and
        ``previous`` (the replaced content).

    Raises
    ------
    FileNotFoundError, FileExistsError, ValueError
        Missing model or records, existing ``out``, a split without both classes,
        another geometry: one line naming the flag.
    """
    _cli.quiet_tensorflow()
    from sklearn.metrics import roc_auc_score

    from jetkeras import runs
    from jetkeras.metrics import choose_threshold
    from jetkeras.runtime import load_predictor, resolve_model

    if split not in SPLITS:
        raise ValueError(f"--split: expected one of {', '.join(SPLITS)}, received {split!r}")
    if metric not in ("recall", "f1"):
        raise ValueError(f"--metric: expected 'recall' or 'f1', received {metric!r}")
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"--target-recall: expected a value in (0, 1], received "
                         f"{target_recall!r}")
    source, out = resolve_model(model), Path(out)
    folder = runs.read_model_folder(source)
    if folder["kind"] == "saved_model":
        raise ValueError(f"--model {source}: a SavedModel export; calibrate the run folder "
                         f"it was exported from, then export the calibrated run")
    if out.resolve() == source.resolve():
        raise ValueError(f"--out {out}: the model's own folder; choose a new folder, so the "
                         f"model and the threshold it was shipped with stay as they are")
    if out.exists() and not overwrite:
        raise FileExistsError(f"--out {out}: already exists; pass --overwrite to replace it "
                              f"or choose another folder")
    records = Path(records)
    labels, probabilities = _labelled_scores(records, split, load_predictor(source),
                                             batch_size)
    jets = int(labels.sum())
    if jets == 0 or jets == labels.size:
        raise ValueError(f"--records {records}: split {split!r} holds {labels.size} "
                         f"sequences, {jets} of them jets; both jets and jet-free windows "
                         f"are needed to choose a threshold")
    choice = choose_threshold(labels, probabilities, metric=metric,
                              target_recall=target_recall)
    choice["rule"] = choice["rule"].replace("validation", f"{split}-split ({records})")
    misses = int(np.sum(probabilities[labels == 1] < choice["threshold"]))
    content = {
        "format": runs.THRESHOLD_FORMAT, **choice,
        "calibrated_on": {"records": str(records), "split": split,
                          "sequences": int(labels.size), "jets": jets,
                          "roc_auc": float(roc_auc_score(labels, probabilities)),
                          "recall_lower_95": (_recall_lower_bound(misses, jets)
                                              if metric == "recall" else None)},
        "previous": runs.read_threshold(source / runs.THRESHOLD_FILE),
    }
    with staged_folder(out) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        atomic_write_text(staging / runs.THRESHOLD_FILE, json.dumps(content, indent=2))
    return content


def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "calibrate",
        "Choose a model's decision threshold again on your own labelled windows (one "
        "split of a records folder) and write a copy of the run with that threshold; "
        "the network and every probability stay the same.",
        ["--records tfrecords/real --out runs/bundled-real",
         "--model runs/light --records tfrecords/real --metric f1 --out runs/light-real"])
    parser.add_argument("--model", default=None,
                        help="finished run folder; default the bundled model")
    parser.add_argument("--records", required=True, type=_cli.existing_folder,
                        help="labelled records folder (python -m jetkeras.build_records)")
    parser.add_argument("--split", default="val", choices=SPLITS,
                        help="split the threshold is chosen on; default val")
    parser.add_argument("--metric", default="recall", choices=("recall", "f1"),
                        help="recall: the highest threshold reaching --target-recall; f1: "
                             "maximum F1; default recall")
    parser.add_argument("--target-recall", type=_cli.target_recall, default=0.95,
                        help="recall the threshold must reach on the split; default 0.95")
    parser.add_argument("--out", required=True,
                        help="calibrated run folder to create (refused if it exists, "
                             "unless --overwrite)")
    parser.add_argument("--batch-size", type=_cli.positive_int, default=16,
                        help="sequences per forward pass; default 16")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists; default: refuse")
    return parser


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        content = calibrate(model=args.model, records=args.records, out=args.out,
                            split=args.split, metric=args.metric,
                            target_recall=args.target_recall, batch_size=args.batch_size,
                            overwrite=args.overwrite)
        on = content["calibrated_on"]
        print(f"calibrate: threshold {content['previous']['threshold']:.4f} -> "
              f"{content['threshold']:.4f} ({content['rule']}: recall "
              f"{content['recall']:.3f}, precision {content['precision']:.3f} on "
              f"{on['sequences']} sequences, {on['jets']} jets"
              + (f"; recall on new jets > {on['recall_lower_95']:.3f} with 95 % confidence"
                 if on["recall_lower_95"] is not None else "")
              + f"); run in {args.out}")

    return _cli.run_main(run, "calibrate",
                         kept="nothing written (the run folder appears whole or not at all)")


if __name__ == "__main__":
    raise SystemExit(main())
