"""Run folders and exports on disk: their file names, reading them, finishing a run.

A **run folder** (``python -m jetkeras.train``, ``tune``'s ``best_run/``, ``ensemble``)
holds:

==========================  ===========================================================
``config.json``             the full :class:`~jetkeras.config.JetConfig`
``model.keras``             the network (native Keras format)
``model.tflite``            the same network for the LiteRT interpreter (train, export)
``litert.json``             what ``model.tflite`` takes: ``input`` "dn" (frames in DN,
                            clipped and standardised inside the graph) or "normalised";
                            a folder without it (older) holds a normalised-input graph
``normalisation.json``      the records' training-split statistics and encoding
``threshold.json``          the decision threshold chosen on validation; written last,
                            so its presence marks a finished run
``history.json``            per-epoch loss and metrics (``history.csv`` while training)
``training_curves.png``     loss, AUC and F1 per epoch
``logs/``, ``backup/``      TensorBoard; Keras' BackupAndRestore while training
==========================  ===========================================================

An **export** (``python -m jetkeras.export``) is a SavedModel folder
(``saved_model.pb``) with ``model.tflite`` and ``litert.json`` beside it and
``assets/jetkeras.json`` (threshold, normalisation, geometry, config, and ``input``: "dn"
when the endpoints take frames in DN, as every export since the DN-in graphs; an older
export without it takes normalised frames).

Every stored file is read through a checked reader (:func:`read_threshold`,
:func:`read_normalisation`, :func:`read_run_config`, :func:`read_history`,
:func:`read_export`): a value out of range (a threshold outside [0, 1], a standard
deviation of 0, a geometry other than the config's) or an unknown ``format`` version is
one line naming the file, the key, what was expected and received, and what to do. The
writers put a ``format`` key in ``threshold.json``, ``normalisation.json`` and
``assets/jetkeras.json``; a file without one (the bundled model's) is version 1.

This module never imports TensorFlow or Keras: ``predict`` reads a folder's metadata
before it decides what runs the network (:mod:`jetkeras.runtime`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jetkeras._files import Schema, atomic_write_text, read_json_object

__all__ = [
    "ASSETS_FOLDER",
    "BACKUP_FOLDER",
    "BUNDLED_MODEL",
    "CONFIG_FILE",
    "CURVES_FILE",
    "EXPORT_FIX",
    "EXPORT_FORMAT",
    "EXPORT_METADATA_FILE",
    "HISTORY_CSV_FILE",
    "HISTORY_FILE",
    "INPUTS",
    "INPUT_DN",
    "INPUT_NORMALISED",
    "LITERT_FILE",
    "LITERT_FORMAT",
    "LITERT_METADATA_FILE",
    "LOGS_FOLDER",
    "MODEL_FILE",
    "NORMALISATION_FILE",
    "NORMALISATION_FORMAT",
    "RUN_FIX",
    "SAVED_MODEL_FILE",
    "THRESHOLD_FILE",
    "THRESHOLD_FORMAT",
    "finish_run",
    "is_export",
    "prepare_run_folder",
    "read_export",
    "read_history",
    "read_litert",
    "read_model_folder",
    "read_normalisation",
    "read_run",
    "read_run_config",
    "read_threshold",
    "run_normalisation",
    "stored_threshold",
]

# ------------------------------------------------------------------ a run folder
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
LITERT_FILE = "model.tflite"  # in run folders and beside saved_model.pb
LITERT_METADATA_FILE = "litert.json"  # beside model.tflite: what its input is
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
    """A finished run folder's config, normalisation, threshold and geometry, checked.

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
        Files are missing, or one breaks its schema (see :func:`read_threshold`,
        :func:`read_normalisation`, :func:`read_run_config`): one line naming the file,
        the key, what was expected and received, and what to do.
    """
    run = Path(run)
    _check_folder(run)
    needed = [CONFIG_FILE, MODEL_FILE, NORMALISATION_FILE, THRESHOLD_FILE]
    missing = [name for name in needed if not (run / name).is_file()]
    if missing:
        raise ValueError(f"{run}: expected a finished run folder or a SavedModel, missing "
                         f"{missing}")
    config = read_run_config(run / CONFIG_FILE)
    normalisation = read_normalisation(run / NORMALISATION_FILE, config)
    threshold = read_threshold(run / THRESHOLD_FILE)["threshold"]
    return {"config": config, "normalisation": normalisation, "threshold": threshold,
            "frames": normalisation.get("frames", config.data.frames),
            "size": normalisation.get("size", config.data.size), "run": run}


# ------------------------------------------------------------------ checked readers
RUN_FIX = "rerun `python -m jetkeras.train` or fix the file"
EXPORT_FIX = "rerun `python -m jetkeras.export` or fix the file"
THRESHOLD_FORMAT = "jetkeras-threshold/1"  # a threshold.json without "format" is this
NORMALISATION_FORMAT = "jetkeras-normalisation/1"  # likewise for normalisation.json
EXPORT_FORMAT = "jetkeras-savedmodel/1"  # assets/jetkeras.json's "format"
LITERT_FORMAT = "jetkeras-litert/1"  # litert.json's "format"
# What a model.tflite or a SavedModel's endpoints take (litert.json's and
# assets/jetkeras.json's "input"): frames in DN, normalised inside the graph, or frames
# already normalised as in training (every graph written before the DN-in ones).
INPUT_DN, INPUT_NORMALISED = "dn", "normalised"
INPUTS = (INPUT_DN, INPUT_NORMALISED)
SCALINGS = ("clip", "log")


def read_run_config(path: str | os.PathLike, fix: str = RUN_FIX):
    """A run's ``config.json`` as a :class:`~jetkeras.config.JetConfig` (strict: unknown
    keys, wrong types, out-of-range values refused); errors name the file and end ``fix``.
    """
    from jetkeras.config import JetConfig

    path = Path(path)
    content = read_json_object(path, fix)
    try:
        return JetConfig.from_dict(content, source=str(path))
    except ValueError as error:  # range checks name the key only, not the file
        text = str(error) if str(error).startswith(str(path)) else f"{path}: {error}"
        raise ValueError(f"{text}; {fix}") from None


def check_threshold(content: dict, schema: Schema) -> dict[str, Any]:
    """Check a ``threshold.json`` content (see :func:`read_threshold`); return it."""
    schema.version(content.get("format", THRESHOLD_FORMAT), "format", (THRESHOLD_FORMAT,))
    schema.number(schema.get(content, "threshold"), "threshold", unit=True)
    return {**content, "format": THRESHOLD_FORMAT, "threshold": float(content["threshold"])}


def read_threshold(path: str | os.PathLike, fix: str = RUN_FIX) -> dict[str, Any]:
    """A run's ``threshold.json``, checked: ``threshold`` a finite number in [0, 1] and a
    known ``format`` (none: version 1); the other keys (``rule``, ``f1``, ``val_auc``...)
    are reports, not used to decide.

    Raises
    ------
    ValueError
        One line: the file, the key, what was expected and received, and ``fix``.
    """
    return check_threshold(read_json_object(path, fix), Schema(path, fix))


def check_normalisation(content: dict, schema: Schema, config=None,
                        prefix: str = "") -> dict[str, Any]:
    """Check normalisation statistics (see :func:`read_normalisation`); return them."""
    schema.version(content.get("format", NORMALISATION_FORMAT), f"{prefix}format",
                   (NORMALISATION_FORMAT,))
    for key in ("clip_dn", "mean", "std"):
        schema.number(schema.get(content, key, f"{prefix}{key}"), f"{prefix}{key}",
                      positive=key == "std")
    for key in ("log_mean", "log_std"):
        if key in content:
            schema.number(content[key], f"{prefix}{key}", positive=key == "log_std")
    scaling = content.get("scaling", "clip")
    schema.text(scaling, f"{prefix}scaling", SCALINGS)
    if scaling == "log":
        for key in ("log_mean", "log_std"):
            schema.get(content, key, f"{prefix}{key}")
    for key in ("frames", "size"):
        if key in content:
            value = schema.integer(content[key], f"{prefix}{key}", minimum=1)
            wanted = getattr(config.data, key) if config is not None else value
            if value != wanted:
                schema.fail(f"{prefix}{key}", f"{wanted} as config.json's data.{key}", value)
    return {**content, "format": NORMALISATION_FORMAT}


def read_normalisation(path: str | os.PathLike, config=None,
                       fix: str = RUN_FIX) -> dict[str, Any]:
    """A run's ``normalisation.json``, checked: ``clip_dn``, ``mean``, ``std`` finite
    numbers, ``std`` (and ``log_std``) above 0; ``scaling`` "clip" or "log" (log needs
    ``log_mean`` and ``log_std``); ``frames`` and ``size`` positive integers equal to
    ``config``'s when present; a known ``format`` (none: version 1).

    Raises
    ------
    ValueError
        One line: the file, the key, what was expected and received, and ``fix``.
    """
    return check_normalisation(read_json_object(path, fix), Schema(path, fix), config)


def read_history(path: str | os.PathLike, fix: str = RUN_FIX) -> dict[str, list[float]]:
    """A run's ``history.json``, checked: an object of per-epoch lists of numbers (NaN
    allowed: a metric undefined at an epoch), ``loss`` among them, all of one length.

    Raises
    ------
    ValueError
        One line: the file, the key, what was expected and received, and ``fix``.
    """
    schema = Schema(path, fix)
    history = read_json_object(path, fix)
    loss = schema.get(history, "loss")
    epochs = len(loss) if isinstance(loss, list) else -1
    for key, values in history.items():
        if (not isinstance(values, list) or len(values) != epochs
                or any(isinstance(v, bool) or not isinstance(v, (int, float))
                       for v in values)):
            schema.fail(key, "a list of numbers, one per epoch as `loss`",
                        values if not isinstance(values, list) or len(values) == epochs
                        else f"{len(values)} values for {epochs} epochs")
    return history


def read_export(path: str | os.PathLike) -> dict[str, Any]:
    """An exported folder's metadata (``assets/jetkeras.json``), checked, as :func:`read_run`.

    ``format`` known (none: version 1), ``config`` a valid config whose ``data.frames``
    and ``data.size`` are the export's ``frames`` and ``size``, ``threshold`` in [0, 1],
    ``normalisation`` as :func:`read_normalisation`.
    """
    from jetkeras.config import JetConfig

    path = Path(path)
    metadata_path = path / ASSETS_FOLDER / EXPORT_METADATA_FILE
    if not metadata_path.is_file():
        raise ValueError(f"{path}: a SavedModel without {ASSETS_FOLDER}/"
                         f"{EXPORT_METADATA_FILE}; expected one written by python -m "
                         f"jetkeras.export")
    metadata = read_json_object(metadata_path, EXPORT_FIX)
    schema = Schema(metadata_path, EXPORT_FIX)
    schema.version(metadata.get("format", EXPORT_FORMAT), "format", (EXPORT_FORMAT,))
    values = schema.object(schema.get(metadata, "config"), "config")
    try:
        config = JetConfig.from_dict(values, source=f"{metadata_path}: key `config`")
    except ValueError as error:
        text = (str(error) if str(error).startswith(str(metadata_path))
                else f"{metadata_path}: key `config`: {error}")
        raise ValueError(f"{text}; {EXPORT_FIX}") from None
    geometry = {}
    for key in ("frames", "size"):
        geometry[key] = schema.integer(schema.get(metadata, key), key, minimum=1)
        if geometry[key] != getattr(config.data, key):
            schema.fail(key, f"{getattr(config.data, key)} as config.data.{key}",
                        geometry[key])
    threshold = schema.number(schema.get(metadata, "threshold"), "threshold", unit=True)
    normalisation = check_normalisation(
        schema.object(schema.get(metadata, "normalisation"), "normalisation"), schema,
        config, prefix="normalisation.")
    # Exports before the DN-in graphs described their normalised input in an object.
    model_input = metadata.get("input")
    model_input = (schema.text(model_input, "input", INPUTS) if isinstance(model_input, str)
                   else INPUT_NORMALISED)
    return {"config": config, **geometry, "threshold": threshold,
            "normalisation": normalisation, "input": model_input, "run": path}


def read_litert(folder: str | os.PathLike, fix: str = RUN_FIX) -> dict[str, Any]:
    """What a folder's ``model.tflite`` takes, from the ``litert.json`` beside it.

    Returns
    -------
    dict
        ``input``: :data:`INPUT_DN` (frames in DN, float32 ``(N, T, H, W, 1)``, clipped
        and standardised inside the graph) or :data:`INPUT_NORMALISED` (frames normalised
        as in training); a folder without ``litert.json`` (written before the DN-in
        graphs) is the latter. The file's other keys (``input_name``, ``shape``,
        ``normalisation``...) are reports.

    Raises
    ------
    ValueError
        An unreadable file, an unknown ``format`` or ``input``: one line naming the file,
        the key, what was expected and received, and ``fix``.
    """
    path = Path(folder) / LITERT_METADATA_FILE
    if not path.is_file():
        return {"format": LITERT_FORMAT, "input": INPUT_NORMALISED}
    content = read_json_object(path, fix)
    schema = Schema(path, fix)
    schema.version(content.get("format", LITERT_FORMAT), "format", (LITERT_FORMAT,))
    schema.text(schema.get(content, "input"), "input", INPUTS)
    return {**content, "format": LITERT_FORMAT}


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
        "format": NORMALISATION_FORMAT,
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
    choice = {"format": THRESHOLD_FORMAT, **choice}
    atomic_write_text(Path(out) / THRESHOLD_FILE, json.dumps(choice, indent=2))
    return choice
