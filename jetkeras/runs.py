"""Run folders and exports on disk: their file names, reading them, finishing a run.

A **run folder** (``python -m jetkeras.train``, ``tune``'s ``best_run/``, ``ensemble``)
holds:

==========================  ===========================================================
``config.json``             the full :class:`~jetkeras.config.JetConfig`
``model.keras``             the network (native Keras format)
``model.tflite``            the same network for the LiteRT interpreter (train, export)
``normalisation.json``      the records' training-split statistics and encoding
``threshold.json``          the decision threshold chosen on validation; written last,
                            so its presence marks a finished run
``history.json``            per-epoch loss and metrics (``history.csv`` while training)
``training_curves.png``     loss, AUC and F1 per epoch
``logs/``, ``backup/``      TensorBoard; Keras' BackupAndRestore while training
==========================  ===========================================================

An **export** (``python -m jetkeras.export``) is a SavedModel folder
(``saved_model.pb``) with ``model.tflite`` beside it and ``assets/jetkeras.json``
(threshold, normalisation, geometry, config).

This module never imports TensorFlow or Keras: ``predict`` reads a folder's metadata
before it decides what runs the network (:mod:`jetkeras.runtime`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jetkeras._files import atomic_write_text

__all__ = [
    "ASSETS_FOLDER",
    "BACKUP_FOLDER",
    "BUNDLED_MODEL",
    "CONFIG_FILE",
    "CURVES_FILE",
    "EXPORT_METADATA_FILE",
    "HISTORY_CSV_FILE",
    "HISTORY_FILE",
    "LITERT_FILE",
    "LOGS_FOLDER",
    "MODEL_FILE",
    "NORMALISATION_FILE",
    "SAVED_MODEL_FILE",
    "THRESHOLD_FILE",
    "finish_run",
    "is_export",
    "prepare_run_folder",
    "read_export",
    "read_model_folder",
    "read_run",
    "run_normalisation",
    "stored_threshold",
]

# ------------------------------------------------------------------ a run folder
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
LITERT_FILE = "model.tflite"  # in run folders and beside saved_model.pb
NORMALISATION_FILE = "normalisation.json"
THRESHOLD_FILE = "threshold.json"  # written last: a run folder holding it is finished
HISTORY_FILE = "history.json"
HISTORY_CSV_FILE = "history.csv"
CURVES_FILE = "training_curves.png"
LOGS_FOLDER = "logs"
BACKUP_FOLDER = "backup"  # Keras' BackupAndRestore: an interrupted run resumes from it

# ------------------------------------------------------------------ an export
SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_FOLDER = "assets"
EXPORT_METADATA_FILE = "jetkeras.json"  # in the export's assets/ folder

# The run folder shipped inside the package (python -m jetkeras.bundle writes it).
BUNDLED_MODEL = Path(__file__).resolve().parent / "bundled"


def is_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an exported SavedModel folder (rather than a run folder)."""
    path = Path(path)
    return path.is_dir() and (path / SAVED_MODEL_FILE).is_file()


def _check_folder(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: run folder or SavedModel not found")
    if not path.is_dir():
        raise ValueError(f"{path}: expected a run folder or a SavedModel folder, received a "
                         f"file")


def read_run(run: str | os.PathLike) -> dict[str, Any]:
    """A finished run folder's config, normalisation, threshold and geometry.

    Parameters
    ----------
    run : path-like
        The run folder.

    Returns
    -------
    dict
        ``config`` (JetConfig), ``normalisation`` (dict: ``clip_dn``, ``mean``, ``std``,
        ``scaling``...), ``threshold`` (float in [0, 1]), ``frames`` and ``size`` (the
        model's input: frames per sequence, pixels per side), ``run`` (Path).

    Raises
    ------
    FileNotFoundError
        The folder does not exist.
    ValueError
        Files are missing or corrupt (one line naming the folder or file).
    """
    from jetkeras.config import JetConfig

    run = Path(run)
    _check_folder(run)
    needed = [CONFIG_FILE, MODEL_FILE, NORMALISATION_FILE, THRESHOLD_FILE]
    missing = [name for name in needed if not (run / name).is_file()]
    if missing:
        raise ValueError(f"{run}: expected a finished run folder or a SavedModel, missing "
                         f"{missing}")
    config = JetConfig.from_json(run / CONFIG_FILE)
    try:
        normalisation = json.loads((run / NORMALISATION_FILE).read_text())
        threshold = float(json.loads((run / THRESHOLD_FILE).read_text())["threshold"])
        for key in ("clip_dn", "mean", "std"):
            float(normalisation[key])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{run}: corrupt {NORMALISATION_FILE} or {THRESHOLD_FILE} "
                         f"({type(error).__name__}: {error})") from None
    return {"config": config, "normalisation": normalisation, "threshold": threshold,
            "frames": int(normalisation.get("frames", config.data.frames)),
            "size": int(normalisation.get("size", config.data.size)), "run": run}


def read_export(path: str | os.PathLike) -> dict[str, Any]:
    """An exported folder's metadata (``assets/jetkeras.json``), as :func:`read_run`."""
    from jetkeras.config import JetConfig

    path = Path(path)
    metadata_path = path / ASSETS_FOLDER / EXPORT_METADATA_FILE
    if not metadata_path.is_file():
        raise ValueError(f"{path}: a SavedModel without {ASSETS_FOLDER}/"
                         f"{EXPORT_METADATA_FILE}; expected one written by python -m "
                         f"jetkeras.export")
    try:
        metadata = json.loads(metadata_path.read_text())
        return {"config": JetConfig.from_dict(metadata["config"], source=str(metadata_path)),
                "frames": int(metadata["frames"]), "size": int(metadata["size"]),
                "threshold": float(metadata["threshold"]),
                "normalisation": dict(metadata["normalisation"]), "run": path}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{metadata_path}: corrupt export metadata "
                         f"({type(error).__name__}: {error})") from None


def read_model_folder(path: str | os.PathLike) -> dict[str, Any]:
    """:func:`read_export` for a SavedModel folder, :func:`read_run` for anything else.

    The result also says ``kind``: ``"saved_model"`` or ``"run"``.
    """
    path = Path(path)
    if is_export(path):
        return {**read_export(path), "kind": "saved_model"}
    return {**read_run(path), "kind": "run"}


def stored_threshold(path: str | os.PathLike) -> float:
    """The threshold stored with a run or an export, read without loading the network."""
    return read_model_folder(path)["threshold"]


def prepare_run_folder(out: str | os.PathLike, *, overwrite: bool, resume: bool) -> Path:
    """Make ``out`` ready for a new run, or for resuming an interrupted one.

    A finished run (``threshold.json``) is replaced only with ``overwrite``; an
    interrupted one (``backup/``) is continued with ``resume`` or replaced with
    ``overwrite``.

    Raises
    ------
    FileExistsError, FileNotFoundError
        A run would be lost, or there is nothing to resume: one line each.
    """
    import shutil

    out = Path(out)
    backup = out / BACKUP_FOLDER
    if (out / THRESHOLD_FILE).is_file():
        if not overwrite:
            raise FileExistsError(
                f"{out}: holds a finished run ({THRESHOLD_FILE}); pass --overwrite to replace "
                f"it or choose another --out"
            )
        shutil.rmtree(out)
    elif backup.is_dir() and not resume and not overwrite:
        raise FileExistsError(
            f"{out}: holds an interrupted run; pass --resume to continue it or --overwrite "
            f"to start again"
        )
    elif overwrite and out.exists():
        shutil.rmtree(out)
    if resume and not backup.is_dir():
        raise FileNotFoundError(f"{out}: --resume given but no interrupted run to resume "
                                f"(no {BACKUP_FOLDER}/ folder)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_normalisation(manifest: dict[str, Any], config) -> dict[str, Any]:
    """The ``normalisation.json`` of a run trained on records with this ``manifest``."""
    return {
        **manifest["normalisation"],
        "scaling": config.data.scaling,
        "frames": manifest["frames"],
        "size": manifest["size"],
        "encoding": manifest["encoding"],
        "records_source": manifest["source"],
    }


def finish_run(out: str | os.PathLike, config, labels, probabilities,
               **extra) -> dict[str, Any]:
    """Choose the decision threshold on validation and store it as ``threshold.json``.

    The last write of every run folder (``train``, ``tune``'s ``best_run/``,
    ``ensemble``): its presence marks a finished run, so everything else must be in the
    folder already.

    Parameters
    ----------
    out : path-like
        The run folder.
    config : JetConfig
        Its configuration (``train.threshold_metric``, ``train.target_recall``).
    labels : array-like
        int ``(N,)`` 0/1 truth of the validation split.
    probabilities : array-like
        float ``(N,)`` probability of a jet for the same sequences.
    **extra
        More entries for ``threshold.json`` (``train_seconds``, ``trial_id``, ...).

    Returns
    -------
    dict
        The ``threshold.json`` content: ``threshold``, ``rule``, ``f1``, ``precision``,
        ``recall``, ``val_auc`` and ``extra``.
    """
    from sklearn.metrics import roc_auc_score

    from jetkeras.metrics import choose_threshold

    choice = choose_threshold(labels, probabilities, metric=config.train.threshold_metric,
                              target_recall=config.train.target_recall)
    choice["val_auc"] = float(roc_auc_score(labels, probabilities))
    choice.update(extra)
    atomic_write_text(Path(out) / THRESHOLD_FILE, json.dumps(choice, indent=2))
    return choice
