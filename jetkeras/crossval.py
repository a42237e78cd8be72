"""Grouped, class-stratified K-fold cross-validation: ``python -m jetkeras.crossval``.

One train/val/test split gives one test figure, and with a few hundred HEK events that
figure moves by several points from one split seed to the next. Cross-validation pools
every sequence of a records folder (all of its splits) and tests each one exactly once:

* the K test folds come from scikit-learn's ``StratifiedGroupKFold`` over the records'
  ``group`` (HEK event group) with the jet / no-jet label as the class, so no group is
  in two test folds and each fold keeps about the overall class balance;
* for fold k, the validation set is one fold of a second ``StratifiedGroupKFold`` of the
  remaining groups into K - 1 parts (3 parts when K < 4, so K = 2 and K = 3 still train
  on more than they validate on), seeded by ``(seed, k)``; the rest is training;
* each fold is written as a records folder of its own (normalisation statistics from
  that fold's training split only), trained with :func:`jetkeras.train.train` (the
  threshold, and by default the checkpoint, chosen on validation) and scored once on its
  test split with :func:`jetkeras.evaluate.evaluate` at that threshold.

Examples
--------
Five folds with the default model::

    python -m jetkeras.crossval --records tfrecords/demo --folds 5 --out reports/crossval

A tuned config, fewer epochs, another fold assignment::

    python -m jetkeras.crossval --records tfrecords/demo --folds 5 --out reports/cv-best \\
        --config tuning/runs/arch/best_config.json --epochs 10 --seed 1

Interrupt it at any time: the same command keeps every finished fold, resumes the
interrupted fold's training from its last epoch and goes on.

Outputs in ``--out``:

=====================  ==============================================================
``crossval.json``      what is cross-validated (records content, K, seed, config);
                       a rerun with other settings is refused
``config.json``        the :class:`~jetkeras.config.JetConfig` of every fold's training
``assignment.csv``     event_id, label, group, source split, then the role (train, val,
                       test) of the sequence in each fold
``fold_<k>/records/``  the fold's records folder (``manifest.json`` and shards)
``fold_<k>/run/``      the fold's run folder (:mod:`jetkeras.train`)
``fold_<k>/report/``   the fold's test report (:mod:`jetkeras.evaluate`)
``fold_<k>/metrics.json``  the fold's row; marks the fold as finished
``folds.csv``          one row per fold: counts, threshold, validation AUC, test ROC AUC,
                       F1, recall, precision, accuracy, average precision, confusion
``summary.json``       mean, standard deviation (ddof = 1), minimum and maximum of each
                       metric over the folds; the pooled confusion matrix of all test
                       folds; K, seed, config
``crossval.png``       per-fold bars of test ROC AUC, F1 and recall, with their means
=====================  ==============================================================
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli
from jetkeras._files import Schema, atomic_write_text, read_json_object

__all__ = ["FORMAT", "METRICS", "assign_folds", "check_assignment", "crossval",
           "format_table", "main", "max_folds", "read_sequences", "summarise"]

FORMAT = "jetkeras-crossval/1"  # bump when the meaning of an output folder changes
ROLES = ("train", "val", "test")
# Per-fold metrics summarised over the folds (test metrics at the fold's threshold).
METRICS = ("roc_auc", "f1", "recall", "precision", "accuracy", "average_precision",
           "val_auc", "threshold")
FINISHED = "metrics.json"  # a fold holding it is kept on rerun


# ------------------------------------------------------------------------ sequences
def read_sequences(records: str | os.PathLike, manifest: dict[str, Any] | None = None):
    """Every sequence of a records folder, all splits pooled, in the order they are read.

    The ids, labels and groups come from the shard sidecars (``<shard>.json``) that
    :func:`jetkeras.records.write_prepared` writes; a folder without them is read
    through its shards.

    Parameters
    ----------
    records : path-like
        Records folder (``build_records``).
    manifest : dict, optional
        Its manifest, when already read.

    Returns
    -------
    pandas.DataFrame
        One row per sequence: ``event_id`` (str), ``label`` (int, 1 jet, 0 no jet),
        ``group`` (str), ``split`` (the source split), in the order of
        :func:`jetkeras.pipeline.iterate_records` over the splits train, val, test.
    """
    import pandas as pd

    from jetkeras.records import SPLITS, read_manifest, read_sidecar

    records = Path(records)
    manifest = manifest or read_manifest(records)
    rows = []
    for split in SPLITS:
        entry = manifest["splits"].get(split)
        if not entry:
            continue
        for shard in entry["shards"]:
            sidecar_path = records / (shard["name"] + ".json")
            if not sidecar_path.is_file():
                return _read_sequences_from_shards(records, manifest)
            sidecar = read_sidecar(records / shard["name"])
            if sidecar.get("sha256") != shard["sha256"]:
                raise ValueError(f"{sidecar_path}: describes another shard than manifest.json "
                                 f"(SHA-256 differs); rebuild the records with build_records")
            rows.extend({"event_id": str(r["event_id"]), "label": int(r["label"]),
                         "group": str(r["group"]), "split": split}
                        for r in sidecar["written"])
    return pd.DataFrame(rows, columns=["event_id", "label", "group", "split"])


def _read_sequences_from_shards(records: Path, manifest: dict[str, Any]):
    import pandas as pd

    from jetkeras.pipeline import iterate_records
    from jetkeras.records import SPLITS

    rows = [{"event_id": r["event_id"], "label": r["label"], "group": r["group"],
             "split": split}
            for split in SPLITS if manifest["splits"].get(split)
            for r in iterate_records(records, split)]
    return pd.DataFrame(rows, columns=["event_id", "label", "group", "split"])


# ------------------------------------------------------------------- fold assignment
def _inner_splits(folds: int) -> int:
    """Parts of the non-test groups; one part is validation (about a test fold's size)."""
    return max(folds - 1, 3)


def max_folds(labels: np.ndarray, groups: np.ndarray) -> tuple[int, str]:
    """The largest usable K: the number of groups holding the rarer class (and its name)."""
    labels, groups = np.asarray(labels).astype(int), np.asarray(groups).astype(str)
    counts = {name: len(np.unique(groups[labels == value]))
              for value, name in ((1, "jets"), (0, "no-jets"))}
    name = min(counts, key=counts.get)
    return counts[name], name


def assign_folds(labels, groups, *, folds: int, seed: int = 0) -> np.ndarray:
    """Roles of every sequence in every fold: grouped, class-stratified K-fold.

    Parameters
    ----------
    labels : array of {0, 1}, shape (N,)
        1 jet, 0 no jet.
    groups : array of str, shape (N,)
        HEK event group of each sequence; a group never has two roles in one fold.
    folds : int
        K >= 2, at most the number of groups holding the rarer class.
    seed : int
        Seeds the outer split and (with the fold index) each inner split.

    Returns
    -------
    numpy.ndarray
        str, shape ``(folds, N)``: ``"train"``, ``"val"`` or ``"test"``. Each sequence is
        ``"test"`` in exactly one fold.

    Raises
    ------
    ValueError
        ``--folds`` out of range, or a fold whose train, val or test part lacks a class
        (one line naming ``--folds``).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels).astype(int).ravel()
    groups = np.asarray(groups).astype(str).ravel()
    if labels.shape != groups.shape:
        raise ValueError(f"crossval: expected one group per label, received {labels.size} "
                         f"labels and {groups.size} groups")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"--folds: expected an integer >= 2, received {folds!r}")
    most, rarer = max_folds(labels, groups)
    if most < 2:
        raise ValueError(f"--folds: expected records with at least 2 event groups of each "
                         f"class, received {most} group(s) of {rarer}")
    if folds > most:
        raise ValueError(f"--folds: expected an integer from 2 to {most} (the event groups "
                         f"holding {rarer}, the rarer class), received {folds}")

    roles = np.full((folds, labels.size), "train", dtype="<U5")
    outer = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    everything = np.zeros((labels.size, 1))
    for fold, (rest, test) in enumerate(outer.split(everything, labels, groups)):
        roles[fold, test] = "test"
        inner_seed = int(np.random.default_rng([seed, fold]).integers(2**31 - 1))
        inner = StratifiedGroupKFold(n_splits=_inner_splits(folds), shuffle=True,
                                     random_state=inner_seed)
        _, val = next(inner.split(everything[rest], labels[rest], groups[rest]))
        roles[fold, rest[val]] = "val"
    check_assignment(roles, labels, groups)
    return roles


def check_assignment(roles: np.ndarray, labels, groups) -> None:
    """Raise a one-line ``ValueError`` unless every fold is grouped and usable.

    Checks that no group has two roles in a fold, that each role of each fold holds
    both classes, and that every sequence is tested in exactly one fold.
    """
    labels = np.asarray(labels).astype(int).ravel()
    groups = np.asarray(groups).astype(str).ravel()
    tested = (roles == "test").sum(axis=0)
    if not (tested == 1).all():
        raise ValueError(f"crossval: expected every sequence in exactly one test fold, "
                         f"received counts {sorted(set(tested.tolist()))}")
    for fold, fold_roles in enumerate(roles):
        members = {role: set(groups[fold_roles == role].tolist()) for role in ROLES}
        for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = members[first] & members[second]
            if shared:
                raise ValueError(f"crossval: fold {fold}: group {sorted(shared)[0]!r} is in "
                                 f"both {first} and {second}; expected disjoint groups")
        for role in ROLES:
            present = set(labels[fold_roles == role].tolist())
            if present != {0, 1}:
                missing = "jets" if 1 not in present else "no-jets"
                raise ValueError(f"--folds: fold {fold}'s {role} part holds no {missing}; "
                                 f"expected both classes in every part, received K = "
                                 f"{len(roles)}: choose fewer --folds or another --seed")


# ------------------------------------------------------------------- fold records
def _write_fold_records(records: Path, manifest: dict[str, Any], sequences, roles,
                        targets: dict[int, Path], config, identity: dict[str, Any],
                        progress: bool) -> None:
    """One pass over the pooled records writes the records folder of every fold in ``targets``.

    Each sequence is read once (DN, as stored), compressed once with
    :func:`jetkeras.records.prepare_examples` and written by
    :func:`jetkeras.records.write_prepared` into the shard of its role in each fold (as
    ``build_records`` writes shards; the stored DN come back exactly), and each fold's
    manifest takes its normalisation statistics from that fold's training split only. Shards fill in the
    order the sequences are read; training shuffles them. Each folder is written under a
    temporary name and renamed when complete.
    """
    from tqdm.auto import tqdm

    from jetkeras.build_records import write_manifest
    from jetkeras.pipeline import iterate_records
    from jetkeras.records import SPLITS, Encoding, prepare_examples, shard_name, write_prepared

    encoding = Encoding(offset_dn=manifest["encoding"]["offset_dn"],
                        clip_dn=manifest["encoding"]["clip_dn"])
    per_shard = manifest["build"]["records_per_shard"]  # checked by read_manifest
    temporaries, state, tasks = {}, {}, {}
    for fold, target in targets.items():
        temporary = target.with_name(f".{target.name}.tmp")
        if temporary.exists():
            shutil.rmtree(temporary)  # an interrupted write: start that folder again
        temporary.mkdir(parents=True)
        temporaries[fold], tasks[fold] = temporary, []
        state[fold] = {role: {"shards": -(-int((roles[fold] == role).sum()) // per_shard),
                              "index": 0, "buffer": []} for role in ROLES}

    def flush(fold: int, role: str) -> None:
        part = state[fold][role]
        path = temporaries[fold] / shard_name(role, part["index"], part["shards"])
        write_prepared(path, part["buffer"])
        tasks[fold].append({"path": str(path), "split": role})
        part["index"] += 1
        part["buffer"] = []

    event_ids = sequences["event_id"].tolist()
    position = 0
    with tqdm(total=len(event_ids), unit="seq", desc="crossval records", disable=not progress,
              file=sys.stderr) as bar:
        for split in SPLITS:
            if not manifest["splits"].get(split):
                continue
            for record in iterate_records(records, split):
                if position >= len(event_ids) or record["event_id"] != event_ids[position]:
                    raise ValueError(f"{records}: the shards disagree with their sidecars at "
                                     f"sequence {position} ({record['event_id']!r}); rebuild "
                                     f"the records with build_records")
                example = (record["event_id"], record["label"], record["group"],
                           record["frames"][..., 0], None)
                entry = prepare_examples([example], log_stats=True, encoding=encoding)[0]
                for fold in targets:
                    role = roles[fold, position]
                    # Statistics are summed over training shards only.
                    kept = entry if role == "train" else {k: v for k, v in entry.items()
                                                          if k != "sums"}
                    state[fold][role]["buffer"].append(kept)
                    if len(state[fold][role]["buffer"]) == per_shard:
                        flush(fold, role)
                position += 1
                bar.update()
    if position != len(event_ids):
        raise ValueError(f"{records}: expected {len(event_ids)} sequences from the sidecars, "
                         f"read {position} from the shards; rebuild the records")
    for fold, target in targets.items():
        for role in ROLES:
            if state[fold][role]["buffer"]:
                flush(fold, role)
        fold_identity = {**manifest.get("build", {}), "split": f"crossval fold {fold}",
                         "variants": 1, "crossval": {**identity, "fold": fold}}
        atomic_write_text(temporaries[fold] / "build.json",
                          json.dumps(fold_identity, indent=2, sort_keys=True))
        ordered = sorted(tasks[fold], key=lambda task: (SPLITS.index(task["split"]),
                                                         task["path"]))
        write_manifest(temporaries[fold], ordered, manifest.get("rejected", []),
                        manifest.get("catalogue_rows_without_cube", 0), config, fold_identity,
                        encoding)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporaries[fold], target)


# ------------------------------------------------------------------------ one fold
@contextlib.contextmanager
def _interrupted_in_fold(fold: int, folds: int, out: Path):
    """Turn Ctrl-C in fold ``fold`` into an :class:`~jetkeras._cli.Interrupted` saying so.

    The folds before it are finished (``metrics.json``) and kept; the fold's own run keeps
    its epochs (train's line is appended).
    """
    try:
        yield
    except KeyboardInterrupt as interrupt:
        inner = interrupt if isinstance(interrupt, _cli.Interrupted) else None
        where = f"in fold {fold} of folds 0-{folds - 1}"
        raise _cli.Interrupted(f"{where}, {inner.where}" if inner and inner.where else where,
                               f"{fold} finished fold(s) kept in {out}"
                               + (f"; {inner.kept}" if inner else "")) from None


def _run_fold(fold: int, fold_dir: Path, config, roles_of_fold, sequences,
              verbose: int) -> dict[str, Any]:
    """Train (or resume, or keep) the fold's run, score its test split, return its row."""
    from jetkeras.evaluate import evaluate
    from jetkeras.runs import HISTORY_FILE, read_history
    from jetkeras.train import train_or_keep

    records, run = fold_dir / "records", fold_dir / "run"
    threshold = train_or_keep(records=records, out=run, config=config,
                              verbose=2 if verbose else 0)
    metrics = evaluate(run=run, records=records, split="test", out=fold_dir / "report",
                       max_gifs=0, overwrite=True)
    history = read_history(run / HISTORY_FILE)
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    row: dict[str, Any] = {"fold": fold}
    labels, groups = sequences["label"].to_numpy(), sequences["group"].to_numpy()
    for role in ROLES:
        chosen = roles_of_fold == role
        row[f"{role}_sequences"] = int(chosen.sum())
        row[f"{role}_jets"] = int(labels[chosen].sum())
        row[f"{role}_groups"] = len(set(groups[chosen]))
    row.update(
        epochs_run=len(history.get("loss", [])),
        train_seconds=float(threshold.get("train_seconds", float("nan"))),
        threshold=float(metrics["threshold"]),
        val_auc=float(threshold["val_auc"]),
        roc_auc=_float(metrics["roc_auc"]),
        f1=float(metrics["f1"]),
        recall=float(metrics["recall"]),
        precision=float(metrics["precision"]),
        accuracy=float(metrics["accuracy"]),
        average_precision=_float(metrics["average_precision"]),
        tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp),
    )
    return row


def read_fold_row(path: Path, fold: int) -> dict[str, Any]:
    """A finished fold's ``metrics.json``, checked: ``fold`` is ``fold``; the metrics are
    numbers in [0, 1] or NaN (undefined on the fold); the confusion counts, epochs and
    role counts non-negative integers.

    Raises
    ------
    ValueError
        One line: the file, the key, what was expected and received, and what to do.
    """
    schema = Schema(path, f"delete {path.parent.name}/{path.name} and rerun crossval to "
                          f"score the fold again, or fix the file")
    row = read_json_object(path, schema.fix)
    if schema.get(row, "fold") != fold or isinstance(row["fold"], bool):
        schema.fail("fold", f"{fold} (the folder's fold)", row["fold"])
    for key in METRICS:
        value = schema.get(row, key)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not (math.isnan(value) or 0 <= value <= 1)):
            schema.fail(key, "a number in [0, 1] or NaN", value)
    counts = ["tn", "fp", "fn", "tp", "epochs_run"] + [
        f"{role}_{what}" for role in ROLES for what in ("sequences", "jets", "groups")]
    for key in counts:
        schema.integer(schema.get(row, key), key)
    return row


def _float(value) -> float:
    return float("nan") if value is None else float(value)


# ------------------------------------------------------------------------- summary
def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, standard deviation (ddof = 1), min and max of each metric; pooled confusion.

    The pooled block adds the folds' confusion matrices (each at its own fold's
    threshold): every sequence counted once, as it was tested.
    """
    metrics = {}
    for name in METRICS:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        metrics[name] = {
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "values": [None if not math.isfinite(v) else float(v) for v in values],
        }
    tn, fp, fn, tp = (sum(row[key] for row in rows) for key in ("tn", "fp", "fn", "tp"))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    pooled = {
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "count": tn + fp + fn + tp,
        "accuracy": (tn + tp) / max(tn + fp + fn + tp, 1),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    return {"metrics": metrics, "pooled": pooled}


def format_table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The per-fold table and the mean ± std line, as aligned text."""
    names = ("roc_auc", "f1", "recall", "precision", "val_auc", "threshold")
    headers = ("AUC", "F1", "recall", "precision", "val AUC", "threshold")
    lines = [f"{'fold':>4} {'test':>6} {'jets':>5} " + " ".join(f"{h:>9}" for h in headers)]
    for row in rows:
        values = " ".join(f"{_text(row[name]):>9}" for name in names)
        lines.append(f"{row['fold']:>4} {row['test_sequences']:>6} {row['test_jets']:>5} "
                     f"{values}")
    stats = summary["metrics"]
    lines.append("mean ± std (ddof 1) over folds: " + ", ".join(
        f"{header} {_text(stats[name]['mean'])} ± {_text(stats[name]['std'])}"
        for name, header in zip(names[:5], headers[:5])))
    pooled = summary["pooled"]
    lines.append(f"pooled test folds ({pooled['count']} sequences, each at its fold's "
                 f"threshold): F1 {pooled['f1']:.3f}, recall {pooled['recall']:.3f}, "
                 f"precision {pooled['precision']:.3f}")
    return "\n".join(lines)


def _text(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


# ------------------------------------------------------------------------- output folder
def _identity(records: Path, manifest: dict[str, Any], folds: int, seed: int,
              config) -> dict[str, Any]:
    """What a crossval folder holds; a rerun must ask for the same."""
    shards = sorted(shard["sha256"] for entry in manifest["splits"].values()
                    for shard in entry["shards"])
    return {
        "format": FORMAT,
        "records": str(records),
        "records_shards_sha256": hashlib.sha256("".join(shards).encode()).hexdigest(),
        "sequences": int(manifest["count"]),
        "folds": int(folds),
        "inner_splits": _inner_splits(folds),
        "seed": int(seed),
        "config": config.to_dict(),
    }


def _claim_out(out: Path, identity: dict[str, Any], *, overwrite: bool) -> None:
    """Create ``out``, or reuse it for the same cross-validation, or replace it (overwrite)."""
    from jetkeras.config import JetConfig

    marker = out / "crossval.json"
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: expected a folder, found a file")
    if out.is_dir() and any(out.iterdir()) and not marker.is_file():
        raise FileExistsError(f"--out {out}: exists and is not a crossval folder (no "
                              f"crossval.json); choose another --out")
    if marker.is_file() and overwrite:
        shutil.rmtree(out)
    elif marker.is_file():
        fix = "pass --overwrite or choose another --out"
        previous = read_json_object(marker, fix)
        Schema(marker, fix).object(Schema(marker, fix).get(previous, "config"), "config")
        for key in ("format", "records_shards_sha256", "folds", "inner_splits", "seed"):
            if previous.get(key) != identity[key]:
                raise ValueError(f"--out {out}: holds a cross-validation with {key}="
                                 f"{previous.get(key)!r}, this one asks {key}="
                                 f"{identity[key]!r}; pass --overwrite or choose another --out")
        try:  # through JetConfig: keys added since then compare at their defaults
            before = JetConfig.from_dict(previous["config"]).to_dict()
        except ValueError as error:
            raise ValueError(f"--out {out}: crossval.json holds a config this version cannot "
                             f"read ({_cli.first_line(error)}); pass --overwrite or choose "
                             f"another --out") from None
        now = identity["config"]
        for section, values in now.items():
            for key, value in values.items():
                if before[section].get(key) != value:
                    raise ValueError(
                        f"--out {out}: holds a cross-validation with config key "
                        f"`{section}.{key}`={before[section].get(key)!r}, this one asks "
                        f"{value!r}; pass --overwrite or choose another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps(identity, indent=2, sort_keys=True))


# ------------------------------------------------------------------------------ main
def crossval(
    *,
    records: str | os.PathLike,
    out: str | os.PathLike,
    folds: int = 5,
    config=None,
    seed: int = 0,
    overwrite: bool = False,
    verbose: int = 1,
) -> dict[str, Any]:
    """Grouped, class-stratified K-fold cross-validation over a records folder.

    Parameters
    ----------
    records : path-like
        Records folder (``build_records``); its train, val and test splits are pooled.
    out : path-like
        Output folder (see the module docstring); an unfinished one with the same
        settings is resumed.
    folds : int
        K >= 2, at most the number of event groups holding the rarer class.
        Defaults to 5.
    config : JetConfig, optional
        Training config of every fold; its frame count and size must match the records.
        Defaults to :class:`~jetkeras.config.JetConfig` at the records' geometry.
    seed : int
        Seeds the fold assignment (training is seeded by ``config.train.seed``).
        Defaults to 0.
    overwrite : bool
        Replace an existing cross-validation folder. Defaults to False.
    verbose : int
        0 silent; otherwise progress bars, one line per epoch and per fold, and the
        final table. Defaults to 1.

    Returns
    -------
    dict
        The ``summary.json`` content (``metrics``: mean, std, min, max and values of each
        of :data:`METRICS`; ``pooled``; ``folds``, ``seed``, ``config``, ``records``)
        plus ``rows`` (the ``folds.csv`` rows).

    Raises
    ------
    FileNotFoundError, FileExistsError, ValueError
        Missing records, a foreign ``--out``, ``--folds`` out of range, records of
        another geometry than ``config``: one line each.
    """
    _cli.quiet_tensorflow()
    from tqdm.auto import tqdm

    from jetkeras.config import JetConfig
    from jetkeras.figures import crossval_figure
    from jetkeras.pipeline import check_compatible
    from jetkeras.records import read_manifest

    records, out = Path(records), Path(out)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"--folds: expected an integer >= 2, received {folds!r}")
    if not records.is_dir():
        raise FileNotFoundError(f"--records {records}: records folder not found")
    manifest = read_manifest(records)
    if config is None:
        config = JetConfig().replace(data={"frames": manifest["frames"],
                                           "size": manifest["size"]})
    check_compatible(manifest, config, records)
    variants = int(manifest["splits"].get("train", {}).get("variants", 1))
    if variants > 1:  # build_records --variants: several renders of each training event
        raise ValueError(f"--records {records}: expected one render per event, received "
                         f"records built with --variants {variants}; rebuild them with "
                         f"--variants 1 for cross-validation")
    sequences = read_sequences(records, manifest)
    if sequences["event_id"].duplicated().any():
        duplicate = sequences.loc[sequences["event_id"].duplicated(), "event_id"].iloc[0]
        raise ValueError(f"{records}: event id {duplicate!r} is written twice; expected "
                         f"each sequence once")
    labels, groups = sequences["label"].to_numpy(), sequences["group"].to_numpy()
    roles = assign_folds(labels, groups, folds=int(folds), seed=seed)
    identity = _identity(records, manifest, int(folds), seed, config)
    _claim_out(out, identity, overwrite=overwrite)
    config.to_json(out / "config.json")
    assignment = sequences.assign(**{f"fold_{k}": roles[k] for k in range(folds)})
    atomic_write_text(out / "assignment.csv", assignment.to_csv(index=False))

    fold_dirs = [out / f"fold_{k}" for k in range(folds)]
    missing = {k: fold_dirs[k] / "records" for k in range(folds)
               if not (fold_dirs[k] / FINISHED).is_file()
               and not (fold_dirs[k] / "records" / "manifest.json").is_file()}
    if missing:
        _write_fold_records(records, manifest, sequences, roles, missing, config,
                            {key: identity[key] for key in ("format", "records", "folds",
                                                            "seed")},
                            progress=verbose > 0)
    rows = []
    for k in tqdm(range(folds), desc="crossval", unit="fold", disable=not verbose,
                  file=sys.stderr):
        finished = fold_dirs[k] / FINISHED
        if finished.is_file():
            row = read_fold_row(finished, k)
        else:
            with _interrupted_in_fold(k, folds, out):
                row = _run_fold(k, fold_dirs[k], config, roles[k], sequences, verbose)
            atomic_write_text(finished, json.dumps(row, indent=2))
        rows.append(row)
        if verbose:
            tqdm.write(f"crossval: fold {k}: test AUC {_text(row['roc_auc'])}, F1 "
                       f"{_text(row['f1'])}, recall {_text(row['recall'])} at threshold "
                       f"{row['threshold']:.3f} ({row['test_sequences']} sequences)",
                       file=sys.stderr)

    summary = {**summarise(rows), "folds": int(folds), "seed": int(seed),
               "inner_splits": _inner_splits(folds), "records": str(records),
               "sequences": len(sequences), "config": config.to_dict()}
    _write_csv(out / "folds.csv", rows, list(rows[0]))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    crossval_figure(rows, out / "crossval.png",
                    title=f"{folds}-fold grouped cross-validation, {len(sequences)} sequences")
    if verbose:
        print(format_table(rows, summary))
    return {**summary, "rows": rows}


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "crossval",
        "Grouped, class-stratified K-fold cross-validation: pool every split of a records "
        "folder, train one model per fold and test each sequence exactly once, no HEK "
        "event group in two test folds. Interrupt it at any time: the same command resumes.",
        ["--records tfrecords/demo --folds 5 --out reports/crossval",
         "--records tfrecords/demo --folds 5 --out reports/cv-best "
         "--config tuning/runs/arch/best_config.json --epochs 10 --seed 1"])
    parser.add_argument("--records", required=True, type=_cli.existing_folder,
                        help="records folder (python -m jetkeras.build_records); all of its "
                             "splits are pooled")
    parser.add_argument("--folds", type=_cli.bounded_int(2), default=5,
                        help="K, the number of test folds (>= 2, at most the event groups of "
                             "the rarer class); default 5")
    parser.add_argument("--out", required=True, help="cross-validation folder to write")
    parser.add_argument("--config", type=_cli.existing_file,
                        help="JetConfig JSON of every fold's training (e.g. the "
                             "best config of a search); default the built-in defaults")
    parser.add_argument("--preset", help="model preset (architecture and widths): projection "
                        "(default), light (td_lstm), seed, tiny")
    parser.add_argument("--epochs", type=_cli.positive_int,
                        help="passes over each fold's training split; default by frame size "
                             "(60 epochs up to 128 px)")
    parser.add_argument("--seed", type=_cli.seed_int,
                        help="seed of the fold assignment and of training; default the "
                             "config's train.seed (0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing cross-validation folder; default: resume it")
    return parser


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        from jetkeras.train import config_from_args

        config = config_from_args(args, records=args.records)
        crossval(records=args.records, out=args.out, folds=args.folds, config=config,
                 seed=config.train.seed, overwrite=args.overwrite)

    # A rerun keeps the finished folds and resumes the interrupted fold's training;
    # --overwrite would throw them away.
    return _cli.run_main(run, "crossval", out=args.out,
                         resume=_cli.resume_command("crossval", argv, drop=["--overwrite"]))


if __name__ == "__main__":
    raise SystemExit(main())
