"""Predict jets in cubes with a trained run or an exported SavedModel: ``python -m jetkeras.predict``.

Examples
--------
One cube, or many (seed ``arr_0`` npz, ``jetkeras-cube/1`` npz, a folder of FITS frames,
or a folder of npz cubes), with a run folder or an exported SavedModel::

    python -m jetkeras.predict cube.npz --model runs/light
    python -m jetkeras.predict cubes/ aia_fits/ --model exports/light --out predictions.csv

Every event of a catalogue, cubes named ``<event_id>.npz`` as ``jetkeras.fetch`` writes
them (or the seed's ``data0/`` ``data1/`` tree), on a Dask LocalCluster of 4 processes::

    python -m jetkeras.predict --catalogue events.csv --cubes jsoc/ --model runs/light \\
        --workers 4 --out catalogue_predictions.csv

or the sequences of a records folder's split::

    python -m jetkeras.predict --records tfrecords/synthetic --split test --model runs/light

A jet timeline: slide the model's window over a longer sequence (one probability per
window start, CSV plus a PNG of probability versus time over a strip of frames)::

    python -m jetkeras.predict --timeline long_cube.npz --model runs/light --stride 2 \\
        --out timeline.csv

The network runs on the LiteRT interpreter when the folder holds ``model.tflite`` (train
and export write it): no TensorFlow import, so a cold start takes about half a second
instead of TensorFlow's import alone (6-12 s here). ``--runtime tensorflow`` runs the
Keras model (run folder) or the SavedModel instead; the two agree to 1e-5.

Frames are normalised exactly as in training (:func:`jetkeras.pipeline.normalise` with the
run's ``normalisation.json``). A cube whose frame count or size differs from the model's
is refused, or interpolated with :func:`jetkeras.preprocess.resample` when ``--resample``
is given.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli
from jetkeras._files import atomic_write_text
from jetkeras.export import LITERT_NAME

__all__ = [
    "Predictor",
    "load_predictor",
    "main",
    "predict_catalogue",
    "predict_cubes",
    "predict_timeline",
    "read_for_model",
    "write_table",
]

EXPORT_METADATA = "jetkeras.json"  # file name in a SavedModel's assets/ folder
RUNTIMES = ("auto", "litert", "tensorflow")
CATALOGUE_COLUMNS = ["sjh_ID", "SOL_event", "event_id", "date", "basepoint_X", "basepoint_Y",
                     "label"]
_META_COLUMNS = ("event_id", "sjh_ID", "SOL_event", "date", "basepoint_X", "basepoint_Y")


def _check_threshold(threshold: float | None, flag: str = "--threshold") -> None:
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= float(threshold) <= 1.0 or math.isnan(float(threshold)):
        raise ValueError(f"{flag}: expected a probability in [0, 1], received {threshold!r}")


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probability of a jet from logits, float64 (stable for large |logit|)."""
    logits = np.asarray(logits, dtype=np.float64).ravel()
    return np.where(logits >= 0, 1.0 / (1.0 + np.exp(-np.abs(logits))),
                    np.exp(-np.abs(logits)) / (1.0 + np.exp(-np.abs(logits))))


# ------------------------------------------------------------------------- the model
class Predictor:
    """A trained jet classifier behind one interface, from a run folder or a SavedModel.

    Build it with :func:`load_predictor`. ``predict_proba`` takes frames in DN and applies
    the training normalisation itself, so callers never normalise.

    Attributes
    ----------
    frames : int
        Frames per sequence the model expects (T).
    size : int
        Pixels per side the model expects (S).
    threshold : float
        Decision threshold in [0, 1] (the run's, chosen on validation, unless overridden).
    normalisation : dict
        The run's ``normalisation.json`` (``clip_dn``, ``mean``, ``std``, ``scaling``...).
    config : JetConfig
        The run's configuration.
    source : str
        The run folder or SavedModel folder it came from.
    kind : {"run", "saved_model"}
    runtime : {"tensorflow", "litert"}
        What runs the network.
    """

    def __init__(self, *, logits_function, frames, size, threshold, normalisation, config,
                 source, kind, runtime="tensorflow"):
        self._logits_function = logits_function
        self.frames = int(frames)
        self.size = int(size)
        self.threshold = float(threshold)
        self.normalisation = dict(normalisation)
        self.config = config
        self.source = str(source)
        self.kind = kind
        self.runtime = runtime

    def __repr__(self) -> str:
        return (f"Predictor({self.kind} {self.source!r} on {self.runtime}: {self.frames} frames of "
                f"{self.size}x{self.size} px, threshold {self.threshold:.3f})")

    def normalise(self, frames_dn: np.ndarray) -> np.ndarray:
        """DN ``(N, T, H, W)`` -> normalised float32 ``(N, T, H, W, 1)`` as in training."""
        from jetkeras.pipeline import normalise

        scaling = self.normalisation.get("scaling", self.config.data.scaling)
        normalised = normalise(frames_dn, self.normalisation, scaling, numpy=True)
        return np.asarray(normalised, dtype=np.float32)[..., None]

    def predict_logits(self, frames_dn: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
        """Logits ``(N,)`` float64 of frames in DN ``(N, T, H, W)`` float32."""
        frames_dn = self._check_batch(frames_dn)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"--batch-size: expected a positive integer, received "
                             f"{batch_size!r}")
        outputs = []
        for start in range(0, frames_dn.shape[0], batch_size):
            batch = self.normalise(frames_dn[start:start + batch_size])
            outputs.append(np.asarray(self._logits_function(batch), dtype=np.float64).ravel())
        if not outputs:
            return np.zeros(0, dtype=np.float64)
        return np.concatenate(outputs)

    def predict_proba(self, frames_dn: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
        """Probability of a jet, ``(N,)`` float64 in [0, 1].

        Parameters
        ----------
        frames_dn : numpy.ndarray
            float32 ``(N, T, H, W)`` in DN (AIA level-1, as the records hold them), with
            ``T == self.frames`` and ``H == W == self.size``.
        batch_size : int
            Sequences per forward pass. Defaults to 16.
        """
        return _sigmoid(self.predict_logits(frames_dn, batch_size=batch_size))

    def _check_batch(self, frames_dn) -> np.ndarray:
        array = np.asarray(frames_dn)
        if array.ndim != 4:
            raise ValueError(f"predict_proba: expected frames of shape (n_sequences, "
                             f"n_frames, height, width), received shape {array.shape}")
        if array.shape[1:] != (self.frames, self.size, self.size):
            raise ValueError(
                f"predict_proba: expected sequences of {self.frames} frames of "
                f"{self.size}x{self.size} px, received {array.shape[1]} frames of "
                f"{array.shape[2]}x{array.shape[3]} px")
        return np.ascontiguousarray(array, dtype=np.float32)


def _inference_config(config):
    """The run's config for CPU-safe inference: no cuDNN-only LSTM, float32 compute.

    A model trained on a GPU with ``use_cudnn`` "true" cannot run on a CPU (the cuDNN
    kernel is chosen when the graph is traced; keras-team/keras#18504), and mixed
    precision gives no speed on a CPU; the weights are the same either way.
    """
    return config.replace(model={"use_cudnn": "false"}, train={"precision": "float32"})


def _read_run(run: str | os.PathLike) -> dict[str, Any]:
    """A finished run folder's config, normalisation and threshold, without Keras.

    Raises
    ------
    FileNotFoundError
        The folder does not exist.
    ValueError
        Files are missing or corrupt (one line naming the file).
    """
    from jetkeras.config import JetConfig

    finished = "threshold.json"  # jetkeras.train.FINISHED_MARKER, without importing Keras
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"--model {run}: run folder or SavedModel not found")
    if not run.is_dir():
        raise ValueError(f"--model {run}: expected a run folder or a SavedModel folder, "
                         f"received a file")
    needed = ["config.json", "model.keras", "normalisation.json", finished]
    missing = [name for name in needed if not (run / name).is_file()]
    if missing:
        raise ValueError(f"--model {run}: expected a finished run folder or a SavedModel, "
                         f"missing {missing}")
    config = JetConfig.from_json(run / "config.json")
    try:
        normalisation = json.loads((run / "normalisation.json").read_text())
        threshold = float(json.loads((run / finished).read_text())["threshold"])
        for key in ("clip_dn", "mean", "std"):
            float(normalisation[key])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"--model {run}: corrupt normalisation.json or threshold.json "
                         f"({type(error).__name__}: {error})") from None
    return {"config": config, "normalisation": normalisation, "threshold": threshold,
            "run": run}


def load_run_model(run: str | os.PathLike) -> dict[str, Any]:
    """Rebuild a run folder's network for inference and load its weights.

    Returns
    -------
    dict
        ``model`` (keras.Model rebuilt with ``use_cudnn="false"``), ``config`` (the run's
        JetConfig, unchanged), ``normalisation`` (dict), ``threshold`` (float), ``run``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`_read_run`; ValueError also when ``model.keras`` cannot be loaded.
    """
    _cli.quiet_tensorflow()
    loaded = _read_run(run)
    from jetkeras.models import build_model

    model = build_model(_inference_config(loaded["config"]))
    try:
        model.load_weights(loaded["run"] / "model.keras")
    except Exception as error:  # noqa: BLE001 -- a corrupt archive is a user error
        raise ValueError(f"--model {loaded['run'] / 'model.keras'}: cannot load the weights "
                         f"({type(error).__name__}: {_cli.first_line(error)})") from None
    return {"model": model, **loaded}


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: C++ libraries log there, past Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _litert_logits_function(path: Path):
    """Logits of a batch from a LiteRT ``model.tflite`` (XNNPACK on every core).

    The interpreter is resized whenever the batch size changes; TensorFlow is never
    imported.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        input_index = interpreter.get_input_details()[0]["index"]
        output_index = interpreter.get_output_details()[0]["index"]
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"--model {path}: not a readable LiteRT model "
                         f"({_cli.first_line(error)})") from None
    allocated = {"shape": None}

    def logits(batch):
        if batch.shape != allocated["shape"]:
            interpreter.resize_tensor_input(input_index, batch.shape)
            with _native_stderr_silenced():  # XNNPACK announces itself on first use
                interpreter.allocate_tensors()
            allocated["shape"] = batch.shape
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return logits


def _litert_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def _choose_runtime(folder: Path, runtime: str, jit: bool) -> str:
    """``litert`` or ``tensorflow`` for a run or SavedModel folder (see load_predictor)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"--runtime: expected one of {list(RUNTIMES)}, received {runtime!r}")
    has_litert = (folder / LITERT_NAME).is_file()
    if runtime == "litert":
        if jit:
            raise ValueError("--jit: XLA compiles the TensorFlow graph; it needs "
                             "--runtime tensorflow (or auto), received --runtime litert")
        if not has_litert:
            raise ValueError(f"--model {folder}: expected {LITERT_NAME} for --runtime litert "
                             f"(written by train and export), found none")
        if not _litert_available():
            raise ValueError("--runtime litert: the ai-edge-litert package is not installed "
                             "(pip install ai-edge-litert)")
        return "litert"
    if runtime == "auto" and has_litert and not jit and _litert_available():
        return "litert"
    return "tensorflow"


def _keras_logits_function(model, jit: bool = False):
    """A traced forward pass (one trace per batch size: the shapes are static).

    ``jit`` compiles it with XLA: about 0.7 s more at the first batch, about 20 % more
    sequences per second on a CPU (measured in ``bench/predict.py``).
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=bool(jit))
    def forward(frames):
        return model(frames, training=False)

    return lambda batch: forward(tf.constant(batch)).numpy()


def _read_export(path: Path) -> dict[str, Any]:
    """An exported folder's metadata (``assets/jetkeras.json``), without TensorFlow."""
    from jetkeras.config import JetConfig

    metadata_path = path / "assets" / EXPORT_METADATA
    if not metadata_path.is_file():
        raise ValueError(f"--model {path}: a SavedModel without assets/{EXPORT_METADATA}; "
                         f"expected one written by python -m jetkeras.export")
    try:
        metadata = json.loads(metadata_path.read_text())
        return {"config": JetConfig.from_dict(metadata["config"], source=str(metadata_path)),
                "frames": int(metadata["frames"]), "size": int(metadata["size"]),
                "threshold": float(metadata["threshold"]),
                "normalisation": dict(metadata["normalisation"])}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"--model {metadata_path}: corrupt export metadata "
                         f"({type(error).__name__}: {error})") from None


def _saved_model_logits_function(path: Path):
    _cli.quiet_tensorflow()
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        serve = loaded.serve
    except Exception as error:  # noqa: BLE001 -- a corrupt SavedModel is a user error
        raise ValueError(f"--model {path}: cannot load the SavedModel "
                         f"({type(error).__name__}: {_cli.first_line(error)})") from None

    def logits(batch):
        return serve(tf.constant(batch)).numpy()

    logits.keep_alive = loaded  # the endpoint needs its object graph alive
    return logits


_BUNDLED_NOTE_SHOWN = False


def resolve_model(model: str | os.PathLike | None) -> Path:
    """The model folder to load: ``model`` itself, or the bundled default when None.

    The first time the bundled model is chosen in a process, one line on stderr names it,
    says it was trained on synthetic renders only, and where its model card is.

    Raises
    ------
    FileNotFoundError
        ``model`` is None and this installation holds no bundled model.
    """
    global _BUNDLED_NOTE_SHOWN
    if model is not None:
        return Path(model)
    from jetkeras.bundle import BUNDLED_MODEL

    if not (BUNDLED_MODEL / "threshold.json").is_file():
        raise FileNotFoundError(
            f"--model: not given, and this installation has no bundled model at "
            f"{BUNDLED_MODEL}; pass --model RUN_OR_EXPORT or rebuild it with "
            f"`python -m jetkeras.bundle --install`")
    if not _BUNDLED_NOTE_SHOWN:
        _BUNDLED_NOTE_SHOWN = True
        print(f"predict: no --model given: using the bundled model jet304-synthetic "
              f"({BUNDLED_MODEL}), trained on synthetic renders only; read its model card, "
              f"docs/model_card.md, before quoting its probabilities", file=sys.stderr)
    return BUNDLED_MODEL


def load_predictor(model: str | os.PathLike | None = None, *,
                   threshold: float | None = None,
                   jit: bool = False, runtime: str = "auto") -> Predictor:
    """A :class:`Predictor` from a run folder (``train``) or a SavedModel (``export``).

    Parameters
    ----------
    model : path-like, optional
        A finished run folder (``model.keras``, ``config.json``, ``normalisation.json``,
        ``threshold.json``) or an exported SavedModel folder (``saved_model.pb`` and
        ``assets/jetkeras.json``). None: the bundled default model (see
        :func:`resolve_model` and ``docs/model_card.md``).
    threshold : float, optional
        Decision threshold in [0, 1]; default the one stored with the model.
    jit : bool
        Compile a run folder's forward pass with XLA (TensorFlow runtime only).
    runtime : {"auto", "litert", "tensorflow"}
        ``litert`` runs the folder's ``model.tflite`` with the LiteRT interpreter: no
        TensorFlow import (a cold start under a second) and about 3x the throughput
        on a CPU. ``tensorflow`` runs the Keras model or the SavedModel. ``auto``: LiteRT
        when the folder has ``model.tflite`` and ai-edge-litert is installed, unless
        ``jit``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or corrupt model, threshold outside [0, 1]: one line each.
    """
    _check_threshold(threshold)
    path = resolve_model(model)
    saved_model = path.is_dir() and (path / "saved_model.pb").is_file()
    if saved_model:
        stored = _read_export(path)
    else:
        stored = _read_run(path)
        frames = stored["normalisation"].get("frames", stored["config"].data.frames)
        stored.update(frames=frames,
                      size=stored["normalisation"].get("size", stored["config"].data.size))
    chosen = _choose_runtime(path, runtime, jit)
    if chosen == "litert":
        logits_function = _litert_logits_function(path / LITERT_NAME)
    elif saved_model:
        logits_function = _saved_model_logits_function(path)
    else:
        logits_function = _keras_logits_function(load_run_model(path)["model"], jit)
    return Predictor(logits_function=logits_function, frames=stored["frames"],
                     size=stored["size"],
                     threshold=stored["threshold"] if threshold is None else threshold,
                     normalisation=stored["normalisation"], config=stored["config"],
                     source=path, kind="saved_model" if saved_model else "run",
                     runtime=chosen)


# ------------------------------------------------------------------------- the cubes
def read_for_model(path: str | os.PathLike, predictor: Predictor, *,
                   resample: bool = False, allow_longer: bool = False):
    """Read one cube and bring it to the model's geometry (or refuse it).

    Parameters
    ----------
    path : path-like
        ``.npz`` (seed ``arr_0`` or ``jetkeras-cube/1``) or a folder of FITS frames.
    predictor : Predictor
        Gives the expected frame count and size, and the FITS reading options.
    resample : bool
        Interpolate a cube of another geometry (:func:`jetkeras.preprocess.resample`)
        instead of refusing it.
    allow_longer : bool
        Accept more frames than the model's window (for the timeline).

    Returns
    -------
    Cube
        Frames float32 ``(T, S, S)`` in DN.
    """
    from jetkeras.cube import Cube
    from jetkeras.io import read_cube
    from jetkeras.preprocess import resample as resample_frames

    data = predictor.config.data
    cube = read_cube(path, nan_policy=data.nan_policy, cadence_s=data.cadence_s,
                     cadence_tolerance_s=data.cadence_tolerance_s, pool=data.pool,
                     exposure_normalise=data.exposure_normalise)
    count, height, width = cube.frames.shape
    frames_ok = count == predictor.frames or (allow_longer and count > predictor.frames)
    size_ok = (height, width) == (predictor.size, predictor.size)
    if frames_ok and size_ok:
        return cube
    if not resample:
        raise ValueError(
            f"{path}: cube of {count} frames of {height}x{width} px, but the model "
            f"({predictor.source}) expects {predictor.frames} frames of "
            f"{predictor.size}x{predictor.size} px (pass --resample to interpolate)")
    frames_out = count if (allow_longer and count > predictor.frames) else predictor.frames
    frames = resample_frames(cube.frames, frames_out=frames_out, size_out=predictor.size)
    meta = {**cube.meta, "resampled_from": [count, height, width]}
    # Resampling in time changes the frame times; keep them only when T is unchanged.
    times = cube.times if frames_out == count else None
    return Cube(frames=frames, source=cube.source, times=times, meta=meta)


def _row(path, cube, probability, predictor) -> dict[str, Any]:
    row: dict[str, Any] = {"file": str(path), "probability": float(probability),
                           "label": int(probability >= predictor.threshold),
                           "threshold": predictor.threshold}
    for key in _META_COLUMNS:
        if key in cube.meta and cube.meta[key] not in (None, ""):
            row[key] = cube.meta[key]
    if cube.meta.get("label") in (0, 1):
        row["true_label"] = int(cube.meta["label"])
    if cube.times:
        row["start_time"] = cube.times[0]
    return row


def _predict_paths(paths: list[Path], predictor: Predictor, *, batch_size: int,
                   resample: bool, progress: bool) -> list[dict[str, Any]]:
    """Read cubes ``batch_size`` at a time and predict each batch."""
    from tqdm.auto import tqdm

    rows = []
    bar = tqdm(total=len(paths), unit="cube", desc="predict", file=sys.stderr,
               disable=not progress or len(paths) < 2)
    with bar:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            cubes = [read_for_model(path, predictor, resample=resample) for path in chunk]
            probabilities = predictor.predict_proba(np.stack([c.frames for c in cubes]),
                                                    batch_size=batch_size)
            rows.extend(_row(path, cube, probability, predictor)
                        for path, cube, probability in zip(chunk, cubes, probabilities))
            bar.update(len(chunk))
    return rows


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size: expected a positive integer, received {batch_size!r}")
    return batch_size


def _check_out(out) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out {out}: expected a .csv or .json file name, received suffix "
                         f"{out.suffix!r}")
    if out.is_dir():
        raise ValueError(f"--out {out}: expected a file name, received a directory")
    return out


def predict_cubes(
    *,
    cubes: Iterable[str | os.PathLike],
    model: str | os.PathLike | Predictor,
    threshold: float | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 16,
    resample: bool = False,
    progress: bool = True,
    jit: bool = False,
    runtime: str = "auto",
) -> list[dict[str, Any]]:
    """Probability of a jet for each cube.

    Parameters
    ----------
    cubes : iterable of path-like
        ``.npz`` files, folders of ``.npz`` cubes, folders of FITS frames (see
        :func:`jetkeras.io.list_cubes`).
    model : path-like or Predictor
        Run folder or exported SavedModel folder.
    threshold : float, optional
        Decision threshold in [0, 1]; default the model's.
    out : path-like, optional
        ``.csv`` or ``.json`` file to write atomically.
    batch_size : int
        Cubes read and predicted together. Defaults to 16.
    resample : bool
        Interpolate cubes of another frame count or size instead of refusing them.
    jit, runtime
        See :func:`load_predictor`.

    Returns
    -------
    list of dict
        One per cube: ``file``, ``probability`` (float in [0, 1]), ``label`` (0/1 at the
        threshold), ``threshold``, and ``event_id``, ``sjh_ID``, ``SOL_event``, ``date``,
        ``true_label``, ``start_time`` when the cube knows them.
    """
    from jetkeras.io import list_cubes

    _check_threshold(threshold)
    batch_size = _check_batch_size(batch_size)
    out = _check_out(out)
    cube_list = list(cubes)
    if not cube_list:
        raise ValueError("CUBE: expected at least one cube file or folder, received none")
    paths = list_cubes(cube_list)
    predictor = model if isinstance(model, Predictor) else load_predictor(
        model, threshold=threshold, jit=jit, runtime=runtime)
    if isinstance(model, Predictor) and threshold is not None:
        predictor.threshold = float(threshold)
    rows = _predict_paths(paths, predictor, batch_size=batch_size, resample=resample,
                          progress=progress)
    if out is not None:
        write_table(rows, out)
    return rows


# ------------------------------------------------------------------------- outputs
def write_table(rows: list[dict[str, Any]], out: str | os.PathLike) -> Path:
    """Write rows as CSV (union of the keys as columns, in first-seen order) or JSON.

    The format follows the suffix (``.csv`` or ``.json``); the file is written
    atomically (temporary file, then :func:`os.replace`).
    """
    out = _check_out(out)
    if out.suffix.lower() == ".json":
        text = json.dumps(rows, indent=1, default=_json_default) + "\n"
    else:
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    atomic_write_text(out, text)
    return out


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: file, probability, label at threshold, threshold."""
    if not rows:
        return "(no predictions)"
    name_width = max(4, *(len(str(row.get("file", row.get("event_id", "")))) for row in rows))
    lines = [f"{'file':<{name_width}}  probability  label  threshold"]
    for row in rows:
        name = str(row.get("file", row.get("event_id", "")))
        label = "jet" if row["label"] == 1 else "no jet"
        lines.append(f"{name:<{name_width}}  {row['probability']:11.4f}  {label:<6} "
                     f"{row['threshold']:9.3f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------- catalogue
def _catalogue_items(catalogue, cubes_root: Path) -> list[dict[str, Any]]:
    """Catalogue rows with a cube: ``<event_id>.npz`` files or the seed's tree."""
    import pandas as pd

    from jetkeras.catalogue import load_events
    from jetkeras.io import scan_seed_root

    if catalogue is None:
        events = load_events()
    else:
        catalogue = Path(catalogue)
        if not catalogue.is_file():
            raise FileNotFoundError(f"--catalogue {catalogue}: CSV file not found")
        try:
            events = pd.read_csv(catalogue, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
            raise ValueError(f"--catalogue {catalogue}: expected a CSV file "
                             f"({type(error).__name__})") from None
        header = {str(column).strip().lstrip("#") for column in events.columns}
        if "event_id" in header:
            pass
        elif "sjh_ID" in header:  # a Solar Jet Hunter catalogue, as published
            events = load_events(jets=catalogue)
        elif {"date", "basepoint_X", "basepoint_Y"} <= header:  # jet-free intervals
            events = load_events(negatives=catalogue)
        else:
            raise ValueError(f"--catalogue {catalogue}: expected an event index (event_id "
                             f"column), a Solar Jet Hunter catalogue (#sjh_ID) or jet-free "
                             f"intervals (date, basepoint_X, basepoint_Y); found "
                             f"{list(events.columns)[:8]}")
    if not cubes_root.is_dir():
        raise FileNotFoundError(f"--cubes {cubes_root}: folder not found")
    by_id = {path.stem: path for path in sorted(cubes_root.glob("*.npz"))}
    items = []
    if by_id:
        for record in events.to_dict("records"):
            if str(record["event_id"]) in by_id:
                items.append({**record, "path": str(by_id[str(record["event_id"])])})
    else:
        if not {"label", "row"} <= set(events.columns):
            raise ValueError("--catalogue: the seed layout is matched by label and row; the "
                             "catalogue lacks those columns")
        found = scan_seed_root(cubes_root)
        events = events.assign(label=events["label"].astype(int), row=events["row"].astype(int))
        merged = found.merge(events, on=["label", "row"], how="inner")
        items = merged.to_dict("records")
    if not items:
        raise ValueError(f"--cubes {cubes_root}: no cube matches a catalogue event "
                         f"(expected <event_id>.npz files or the seed's data0/data1 tree)")
    return items


def _catalogue_row(item: dict[str, Any], probability: float, threshold: float):
    row = {}
    for key in CATALOGUE_COLUMNS:
        value = item.get(key, "")
        if isinstance(value, float) and math.isnan(value):
            value = ""
        row[key] = value.item() if isinstance(value, np.generic) else value
    row["probability"] = float(probability)
    row["predicted"] = int(probability >= threshold)
    row["threshold"] = float(threshold)
    return row


_WORKER_PREDICTORS: dict[tuple, Predictor] = {}


def _predict_chunk(model_path: str, threshold, paths: list[str], batch_size: int,
                   resample: bool, runtime: str = "auto") -> list[float]:
    """One Dask task: probabilities of a chunk of cubes (the model is loaded once per worker)."""
    key = (model_path, threshold, runtime)
    if key not in _WORKER_PREDICTORS:
        _WORKER_PREDICTORS[key] = load_predictor(model_path, threshold=threshold,
                                                 runtime=runtime)
    predictor = _WORKER_PREDICTORS[key]
    rows = _predict_paths([Path(p) for p in paths], predictor, batch_size=batch_size,
                          resample=resample, progress=False)
    return [row["probability"] for row in rows]


def _dask_probabilities(paths, *, model, threshold, batch_size, resample, workers,
                        scheduler, progress, runtime="auto") -> list[float]:
    """Predict chunks of cubes on a Dask cluster (a LocalCluster of ``workers`` processes)."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    chunk = max(1, batch_size)
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(_predict_chunk, str(model), threshold,
                                 [str(p) for p in part], batch_size, resample, runtime,
                                 pure=False)
                   for part in chunks]
        index = {future.key: number for number, future in enumerate(futures)}
        results: list[list[float] | None] = [None] * len(futures)
        with tqdm(total=len(paths), unit="cube", desc="predict", file=sys.stderr,
                  disable=not progress) as bar:
            for future in as_completed(futures):
                part = future.result()  # a worker's ValueError is re-raised here
                results[index[future.key]] = part
                bar.update(len(part))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [probability for part in results for probability in part]


def predict_catalogue(
    *,
    model: str | os.PathLike,
    catalogue: str | os.PathLike | None = None,
    cubes: str | os.PathLike | None = None,
    records: str | os.PathLike | None = None,
    split: str = "test",
    threshold: float | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 16,
    resample: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    runtime: str = "auto",
) -> list[dict[str, Any]]:
    """One prediction per catalogue event: from cubes on disk or from a records split.

    Parameters
    ----------
    model : path-like
        Run folder or exported SavedModel folder.
    catalogue : path-like, optional
        CSV with an ``event_id`` column (and ``sjh_ID``, ``SOL_event``, ``date``,
        ``basepoint_X``, ``basepoint_Y``, ``label``, ``row`` when known); default the
        bundled catalogue (:func:`jetkeras.catalogue.load_events`).
    cubes : path-like, optional
        Folder of ``<event_id>.npz`` cubes (as :mod:`jetkeras.fetch` writes them) or the
        seed's ``data0``/``data1`` tree (matched on label and row).
    records : path-like, optional
        Records folder instead of cubes; ``split`` picks the split.
    workers : int
        More than 1: run on a Dask ``LocalCluster`` of that many processes, each task a
        chunk of ``batch_size`` cubes. Defaults to 1 (this process).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    runtime : {"auto", "litert", "tensorflow"}
        See :func:`load_predictor`.

    Returns
    -------
    list of dict
        ``sjh_ID``, ``SOL_event``, ``event_id``, ``date``, ``basepoint_X``,
        ``basepoint_Y``, ``label`` (catalogue truth, "" if unknown), ``probability``,
        ``predicted`` (0/1 at the threshold), ``threshold``; in catalogue order.
    """
    _check_threshold(threshold)
    batch_size = _check_batch_size(batch_size)
    out = _check_out(out)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers: expected a positive integer, received {workers!r}")
    if (cubes is None) == (records is None):
        raise ValueError("--catalogue: expected exactly one of --cubes ROOT or --records DIR")
    if records is not None:
        rows = _records_rows(records, split, model=model, threshold=threshold,
                             batch_size=batch_size, catalogue=catalogue, runtime=runtime)
    else:
        items = _catalogue_items(catalogue, Path(cubes))
        paths = [Path(item["path"]) for item in items]
        if workers > 1 or scheduler:
            probabilities = _dask_probabilities(
                paths, model=model, threshold=threshold, batch_size=batch_size,
                resample=resample, workers=workers, scheduler=scheduler, progress=progress,
                runtime=runtime)
            predictor_threshold = _stored_threshold(model) if threshold is None else threshold
        else:
            predictor = load_predictor(model, threshold=threshold, runtime=runtime)
            probabilities = [row["probability"] for row in _predict_paths(
                paths, predictor, batch_size=batch_size, resample=resample,
                progress=progress)]
            predictor_threshold = predictor.threshold
        rows = [_catalogue_row(item, probability, predictor_threshold)
                for item, probability in zip(items, probabilities)]
    if out is not None:
        write_table(rows, out)
    return rows


def _stored_threshold(model) -> float:
    """The threshold stored with a run or an export, read without loading the network."""
    path = Path(model)
    try:
        if (path / "saved_model.pb").is_file():
            return float(json.loads((path / "assets" / EXPORT_METADATA).read_text())["threshold"])
        return float(json.loads((path / "threshold.json").read_text())["threshold"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"--model {path}: cannot read its threshold ({error})") from None


def _records_rows(records, split, *, model, threshold, batch_size, catalogue, runtime):
    """Predictions over a records split, joined to the catalogue on event_id."""
    import pandas as pd

    from jetkeras.catalogue import load_events
    from jetkeras.pipeline import iterate_records

    predictor = load_predictor(model, threshold=threshold, runtime=runtime)
    events = (load_events() if catalogue is None
              else pd.read_csv(catalogue, keep_default_na=False))
    by_id = {str(record["event_id"]): record for record in events.to_dict("records")}
    rows, batch, metas = [], [], []

    def flush():
        if batch:
            probabilities = predictor.predict_proba(np.stack(batch), batch_size=batch_size)
            rows.extend(_catalogue_row(meta, p, predictor.threshold)
                        for meta, p in zip(metas, probabilities))
            batch.clear()
            metas.clear()

    for record in iterate_records(records, split):
        if record["frames"].shape[:3] != (predictor.frames, predictor.size, predictor.size):
            raise ValueError(
                f"--records {records}: sequences of {record['frames'].shape[0]} frames of "
                f"{record['frames'].shape[1]}x{record['frames'].shape[2]} px, but the model "
                f"({predictor.source}) expects {predictor.frames} frames of "
                f"{predictor.size}x{predictor.size} px")
        batch.append(record["frames"][..., 0])
        metas.append({**by_id.get(record["event_id"], {}), "event_id": record["event_id"],
                      "label": record["label"]})
        if len(batch) == batch_size:
            flush()
    flush()
    return rows


# ------------------------------------------------------------------------- timeline
def predict_timeline(
    *,
    cube: str | os.PathLike,
    model: str | os.PathLike | Predictor,
    stride: int = 1,
    threshold: float | None = None,
    out: str | os.PathLike = "timeline.csv",
    batch_size: int = 16,
    resample: bool = False,
    runtime: str = "auto",
) -> list[dict[str, Any]]:
    """Slide the model's window over a longer sequence: probability per window start.

    Parameters
    ----------
    cube : path-like
        One cube with at least the model's frame count (npz or FITS folder).
    stride : int
        Frames between consecutive window starts, >= 1. Defaults to 1.
    out : path-like
        CSV (or JSON) to write; a PNG of probability versus time over a strip of frames
        is written beside it with the same stem.

    Returns
    -------
    list of dict
        ``window``, ``start_frame``, ``end_frame`` (inclusive), ``start_time`` and
        ``end_time`` (ISO UTC, when the cube has times), ``start_s`` (seconds from the
        first frame: measured, or ``start_frame * cadence_s``), ``probability``,
        ``label``, ``threshold``.
    """
    from jetkeras.figures import timeline_figure

    _check_threshold(threshold)
    batch_size = _check_batch_size(batch_size)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"--stride: expected a positive integer (frames), received {stride!r}")
    out = _check_out(out)
    predictor = model if isinstance(model, Predictor) else load_predictor(
        model, threshold=threshold, runtime=runtime)
    sequence = read_for_model(cube, predictor, resample=resample, allow_longer=True)
    count = sequence.frames.shape[0]
    starts = list(range(0, count - predictor.frames + 1, stride))
    windows = np.stack([sequence.frames[s:s + predictor.frames] for s in starts])
    probabilities = predictor.predict_proba(windows, batch_size=batch_size)
    offsets = _offsets_s(sequence, predictor.config.data.cadence_s)
    rows = []
    for number, (start, probability) in enumerate(zip(starts, probabilities)):
        end = start + predictor.frames - 1
        rows.append({
            "window": number, "start_frame": start, "end_frame": end,
            "start_time": sequence.times[start] if sequence.times else "",
            "end_time": sequence.times[end] if sequence.times else "",
            "start_s": float(offsets[start]), "probability": float(probability),
            "label": int(probability >= predictor.threshold),
            "threshold": predictor.threshold,
        })
    figure_path = out.with_suffix(".png")
    timeline_figure(sequence.frames, offsets, rows, figure_path,
                    frames_per_window=predictor.frames,
                    title=f"{Path(cube).name}: window of {predictor.frames} frames, "
                          f"stride {stride}")
    write_table(rows, out)
    return rows


def _offsets_s(cube, cadence_s: float) -> np.ndarray:
    """Seconds from the first frame: from the frame times, else frame index x cadence."""
    if cube.times:
        from datetime import datetime

        try:
            moments = [datetime.fromisoformat(str(t).rstrip("Z")) for t in cube.times]
            return np.array([(m - moments[0]).total_seconds() for m in moments])
        except ValueError:
            pass
    return np.arange(cube.frames.shape[0]) * float(cadence_s)


# ------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jetkeras.predict",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("cubes", nargs="*", metavar="CUBE_OR_DIR",
                        help=".npz cubes (seed arr_0 or jetkeras-cube/1), folders of npz "
                             "cubes, or folders of FITS frames")
    parser.add_argument("--model",
                        help="run folder (python -m jetkeras.train) or exported SavedModel "
                             "folder (python -m jetkeras.export); default the bundled model, "
                             "trained on synthetic renders (docs/model_card.md)")
    parser.add_argument("--threshold", type=_cli.probability,
                        help="decision threshold, probability in [0, 1]; default the one "
                             "stored with the model (chosen on validation)")
    parser.add_argument("--out", help="write predictions to this .csv or .json file; "
                                      "default: print only (timeline: timeline.csv)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="litert: the folder's model.tflite on the LiteRT interpreter (no "
                             "TensorFlow: fast start, ~3x throughput on a CPU); tensorflow: "
                             "the Keras model or SavedModel; default auto (litert when "
                             "model.tflite is there)")
    parser.add_argument("--jit", action="store_true",
                        help="compile the TensorFlow forward pass with XLA: ~0.7 s more at "
                             "start, ~20 %% faster over many cubes (run folders only)")
    parser.add_argument("--batch-size", type=_cli.positive_int, default=16,
                        help="sequences per forward pass (and per Dask task); default 16")
    parser.add_argument("--resample", action="store_true",
                        help="interpolate cubes of another frame count or size to the "
                             "model's instead of refusing them")
    parser.add_argument("--catalogue", type=_cli.existing_file,
                        help="catalogue CSV with an event_id column; predict "
                             "every event with a cube (--cubes or --records)")
    parser.add_argument("--cubes", dest="cubes_root", type=_cli.existing_folder,
                        help="folder of <event_id>.npz cubes or the seed's "
                             "data0/data1 tree, for --catalogue")
    parser.add_argument("--records", type=_cli.existing_folder,
                        help="records folder, for catalogue-wide inference")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"),
                        help="records split for --records; default test")
    parser.add_argument("--workers", type=_cli.bounded_int(1, _cli.MAX_WORKERS), default=1,
                        help="Dask LocalCluster processes for --catalogue; default 1 "
                             "(no Dask)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler "
                                            "(tcp://host:8786) for --catalogue")
    parser.add_argument("--timeline", metavar="CUBE",
                        help="slide the model's window over this longer cube; writes "
                             "probability per window (CSV) and a PNG beside it")
    parser.add_argument("--stride", type=_cli.positive_int, default=1,
                        help="frames between window starts for --timeline; default 1")
    parser.add_argument("--quiet", action="store_true", help="no table, no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        _check_threshold(args.threshold)
        model = resolve_model(args.model)
        if args.timeline:
            if args.cubes or args.catalogue or args.cubes_root_given:
                raise ValueError("--timeline: expected one cube and no other CUBE arguments, "
                                 "--catalogue, --cubes or --records")
            rows = predict_timeline(cube=args.timeline, model=model, stride=args.stride,
                                    threshold=args.threshold,
                                    out=args.out or "timeline.csv",
                                    batch_size=args.batch_size, resample=args.resample,
                                    runtime=args.runtime)
            if not args.quiet:
                best = max(rows, key=lambda row: row["probability"])
                print(f"{len(rows)} windows; highest probability {best['probability']:.4f} at "
                      f"frame {best['start_frame']}; wrote {args.out or 'timeline.csv'}")
            return
        if args.catalogue or args.cubes_root_given:
            if args.cubes:
                raise ValueError("--catalogue: expected --cubes ROOT or --records DIR, not "
                                 f"CUBE arguments (received {args.cubes[0]})")
            rows = predict_catalogue(model=model, catalogue=args.catalogue,
                                     cubes=args.cubes_root, records=args.records,
                                     split=args.split, threshold=args.threshold, out=args.out,
                                     batch_size=args.batch_size, resample=args.resample,
                                     workers=args.workers, scheduler=args.scheduler,
                                     progress=not args.quiet, runtime=args.runtime)
        else:
            rows = predict_cubes(cubes=args.cubes, model=model, threshold=args.threshold,
                                 out=args.out, batch_size=args.batch_size,
                                 resample=args.resample, progress=not args.quiet,
                                 jit=args.jit, runtime=args.runtime)
        if not args.quiet:
            print(format_table(rows))

    # --cubes ROOT and --records DIR (catalogue-wide) are not the positional CUBEs.
    args.cubes_root_given = bool(args.cubes_root or args.records)
    # Predictions are written once every cube is scored: an interrupt keeps none.
    return _cli.run_main(run, "predict", resume=_cli.resume_command("predict", argv),
                         kept="nothing written (predictions are written when all cubes "
                              "are scored)")


if __name__ == "__main__":
    raise SystemExit(main())
