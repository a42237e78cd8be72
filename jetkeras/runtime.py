"""What runs a trained network: :class:`Predictor` and :func:`load_predictor`.

A *runtime* here is one thing only: the engine that evaluates the network's forward
pass at prediction time. There are three:

``litert``
    the folder's ``model.tflite`` on the LiteRT interpreter (``ai-edge-litert``,
    XNNPACK on every core). TensorFlow is never imported, so a cold start takes about
    half a second instead of TensorFlow's import alone (6-12 s here), and a CPU runs
    about 3x the sequences per second (``bench/predict.py``).
``tensorflow``
    the run folder's Keras model (a traced ``tf.function``, optionally compiled with
    XLA: ``jit``) or the export's SavedModel ``serve`` endpoint.
``auto``
    ``litert`` when the folder holds ``model.tflite``, the package is installed and no
    XLA is asked for; ``tensorflow`` otherwise.

All of them agree to 1e-5 (``tests/test_predict.py``). Whatever runs the network, a
:class:`Predictor` takes frames in DN. A ``model.tflite`` or SavedModel written by
``train``, ``export`` or ``bundle`` since the DN-in graphs normalises inside its graph
(``litert.json`` or ``assets/jetkeras.json``: ``"input": "dn"``); the Keras model, and
graphs written before (no such record), get frames normalised in NumPy by the same ops
(:func:`jetkeras.pipeline.normalise` with the run's ``normalisation.json``).

Reading a folder's files is :mod:`jetkeras.runs`; what to predict on (cubes, a
catalogue, a timeline, a records split) is :mod:`jetkeras.predict`.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli, runs

__all__ = [
    "RUNTIMES",
    "Predictor",
    "check_positive_int",
    "check_threshold",
    "inference_config",
    "load_predictor",
    "load_run_model",
    "resolve_model",
]

RUNTIMES = ("auto", "litert", "tensorflow")


def check_threshold(threshold: float | None, name: str = "threshold") -> None:
    """Refuse a decision threshold outside [0, 1] (None, the stored one, passes).

    ``name`` is what the message calls it: the argument, or a command's flag.
    """
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= float(threshold) <= 1.0 or math.isnan(float(threshold)):
        raise ValueError(f"{name}: expected a probability in [0, 1], received {threshold!r}")


def check_positive_int(value, name: str) -> int:
    """Refuse anything but an integer >= 1 (a bool too), naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, received {value!r}")
    return value


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
    any_channel : bool
        Accept cubes of another wavelength or instrument than the model's
        (:func:`jetkeras.io.match_model_input`); False refuses them.
    despike : bool
        Replace single-frame spikes (cosmic rays) before the network sees the frames
        (:func:`jetkeras.preprocess.despike`); default True.
    """

    def __init__(self, *, logits_function, frames, size, threshold, normalisation, config,
                 source, kind, runtime="tensorflow", any_channel=False, despike=True):
        self._logits_function = logits_function
        self.frames = int(frames)
        self.size = int(size)
        self.threshold = float(threshold)
        self.normalisation = dict(normalisation)
        self.config = config
        self.source = str(source)
        self.kind = kind
        self.runtime = runtime
        self.any_channel = bool(any_channel)
        self.despike = bool(despike)

    def __repr__(self) -> str:
        return (f"Predictor({self.kind} {self.source!r} on {self.runtime}: {self.frames} frames of "
                f"{self.size}x{self.size} px, threshold {self.threshold:.3f})")

    def with_threshold(self, threshold: float | None,
                       any_channel: bool = False) -> Predictor:
        """This predictor deciding at ``threshold`` (kept when None), accepting other
        channels too when ``any_channel``; ``self`` is unchanged.

        The copy shares the loaded network, so it costs nothing.
        """
        if threshold is None and (self.any_channel or not any_channel):
            return self
        check_threshold(threshold)
        changed = copy.copy(self)
        changed.threshold = self.threshold if threshold is None else float(threshold)
        changed.any_channel = self.any_channel or bool(any_channel)
        return changed

    def normalise(self, frames_dn: np.ndarray) -> np.ndarray:
        """DN ``(N, T, H, W)`` -> normalised float32 ``(N, T, H, W, 1)`` as in training.

        What a graph over normalised frames takes (the Keras model; a ``model.tflite`` or
        SavedModel written before the DN-in graphs); a DN-in graph applies the same ops
        itself (:func:`jetkeras.export.with_dn_input`).
        """
        from jetkeras.pipeline import normalise

        scaling = self.normalisation.get("scaling", self.config.data.scaling)
        normalised = normalise(frames_dn, self.normalisation, scaling, numpy=True)
        return np.asarray(normalised, dtype=np.float32)[..., None]

    def predict_logits(self, frames_dn: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
        """Logits ``(N,)`` float64 of frames in DN ``(N, T, H, W)`` float32.

        A runtime whose graph takes DN (its logits function's ``model_input`` is
        ``"dn"``) gets the frames as they are, ``(N, T, H, W, 1)``; any other gets them
        normalised here (:meth:`normalise`). With :attr:`despike` set, each sequence is
        first brought to one brightness level (an exposure jump is not a brightening) and
        its single-frame spikes replaced: no cube the model was trained on held either.
        """
        frames_dn = self._check_batch(frames_dn)
        if self.despike and len(frames_dn):
            frames_dn = np.stack([clean_frames(frames) for frames in frames_dn])
        check_positive_int(batch_size, "batch_size")
        takes_dn = getattr(self._logits_function, "model_input", None) == runs.INPUT_DN
        outputs = []
        for start in range(0, frames_dn.shape[0], batch_size):
            chunk = frames_dn[start:start + batch_size]
            batch = chunk[..., None] if takes_dn else self.normalise(chunk)
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
        if not isinstance(frames_dn, np.ndarray):
            # A MapSequence, a Cube or a path carries a channel, times and a geometry
            # that must be checked first: that is predict_cube's job, not this one's.
            raise ValueError(f"predict_proba: expected a NumPy array of frames in DN, "
                             f"received {type(frames_dn).__name__} (use "
                             f"jetkeras.predict_cube for files, maps and cubes)")
        array = frames_dn
        if array.dtype.kind not in "fiu":
            raise ValueError(f"predict_proba: expected a real numeric array, received "
                             f"dtype {array.dtype}")
        if array.ndim != 4:
            raise ValueError(f"predict_proba: expected frames of shape (n_sequences, "
                             f"n_frames, height, width), received shape {array.shape}")
        if array.shape[1:] != (self.frames, self.size, self.size):
            raise ValueError(
                f"predict_proba: expected sequences of {self.frames} frames of "
                f"{self.size}x{self.size} px, received {array.shape[1]} frames of "
                f"{array.shape[2]}x{array.shape[3]} px")
        array = np.ascontiguousarray(array, dtype=np.float32)
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"predict_proba: expected finite values, received "
                             f"{int(finite.size - finite.sum())} NaN/Inf pixel(s)")
        return array


def clean_frames(frames: np.ndarray) -> np.ndarray:
    """One sequence ``(T, H, W)`` in DN at one brightness level, its single-frame spikes
    replaced (:func:`jetkeras.preprocess.level_normalise`, then
    :func:`~jetkeras.preprocess.despike`): what a :class:`Predictor` feeds its network."""
    from jetkeras.preprocess import despike, level_normalise

    levelled, _ = level_normalise(frames)
    return despike(levelled)[0]


def inference_config(config):
    """The run's config for CPU-safe inference: no cuDNN-only LSTM, float32 compute.

    A model trained on a GPU with ``use_cudnn`` "true" cannot run on a CPU (the cuDNN
    kernel is chosen when the graph is traced; keras-team/keras#18504), and mixed
    precision gives no speed on a CPU; the weights are the same either way.
    """
    return config.replace(model={"use_cudnn": "false"}, train={"precision": "float32"})


def load_run_model(run: str | os.PathLike) -> dict[str, Any]:
    """Rebuild a run folder's network for inference and load its weights.

    Returns
    -------
    dict
        ``model`` (keras.Model rebuilt with ``use_cudnn="false"``), and what
        :func:`jetkeras.runs.read_run` returns: ``config`` (the run's JetConfig,
        unchanged), ``normalisation`` (dict), ``threshold`` (float), ``frames``, ``size``,
        ``run`` (Path).

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`jetkeras.runs.read_run`; ValueError also when ``model.keras`` cannot be
        loaded.
    """
    _cli.quiet_tensorflow()
    loaded = runs.read_run(run)
    from jetkeras.models import build_model

    model = build_model(inference_config(loaded["config"]))
    weights = loaded["run"] / runs.MODEL_FILE
    try:
        model.load_weights(weights)
    except Exception as error:  # a corrupt archive is a user error, whatever Keras raises
        raise ValueError(f"{weights}: cannot load the weights "
                         f"({type(error).__name__}: {_cli.first_line(error)})") from None
    return {"model": model, **loaded}


# ------------------------------------------------------------------------- runtimes
def _litert_logits_function(path: Path, model_input: str = runs.INPUT_NORMALISED):
    """Logits of a batch from a LiteRT ``model.tflite`` (XNNPACK on every core).

    ``model_input`` is what the graph takes, as its ``litert.json`` says
    (:func:`jetkeras.runs.read_litert`): "dn" or "normalised"; the returned function
    carries it as ``model_input``. A graph whose input is named ``frames_dn`` (written
    DN-in) with a record saying otherwise, or the reverse, is refused: the file was
    separated from its record. The interpreter is resized whenever the batch size
    changes; TensorFlow is never imported.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        input_details = interpreter.get_input_details()[0]
        input_index = input_details["index"]
        output_index = interpreter.get_output_details()[0]["index"]
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: not a readable LiteRT model "
                         f"({_cli.first_line(error)})") from None
    named_dn = _DN_INPUT_NAME in str(input_details.get("name", ""))
    if named_dn != (model_input == runs.INPUT_DN):
        raise ValueError(
            f"{path}: its input {input_details.get('name')!r} takes frames "
            f"{'in DN' if named_dn else 'normalised'}, but {runs.LITERT_METADATA_FILE} beside "
            f"it says input {model_input!r} (absent: normalised); rewrite both with "
            f"`python -m jetkeras.export`, or restore the {runs.LITERT_METADATA_FILE} "
            f"that came with it")
    allocated = {"shape": None}

    def logits(batch):
        if batch.shape != allocated["shape"]:
            interpreter.resize_tensor_input(input_index, batch.shape)
            with _cli.native_stderr_silenced():  # XNNPACK announces itself on first use
                interpreter.allocate_tensors()
            allocated["shape"] = batch.shape
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    logits.model_input = model_input
    return logits


_DN_INPUT_NAME = "frames_dn"  # jetkeras.export.DN_INPUT_NAME (not imported: no TensorFlow)


def _litert_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def _choose_runtime(folder: Path, runtime: str, jit: bool) -> str:
    """``litert`` or ``tensorflow`` for a run or SavedModel folder (see load_predictor)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime: expected one of {list(RUNTIMES)}, received {runtime!r}")
    has_litert = (folder / runs.LITERT_FILE).is_file()
    if runtime == "litert":
        if jit:
            raise ValueError("jit: XLA compiles the TensorFlow graph; it needs the "
                             "tensorflow (or auto) runtime, received runtime litert")
        if not has_litert:
            raise ValueError(f"{folder}: expected {runs.LITERT_FILE} for the litert runtime "
                             f"(written by train and export), found none")
        if not _litert_available():
            raise ValueError("runtime litert: the ai-edge-litert package is not installed "
                             "(pip install ai-edge-litert)")
        return "litert"
    if runtime == "auto" and has_litert and not jit and _litert_available():
        return "litert"
    return "tensorflow"


def _keras_logits_function(model, jit: bool = False):
    """A traced forward pass (one trace per batch size: the shapes are static).

    The run's Keras network takes normalised frames (``model_input`` "normalised": the
    :class:`Predictor` normalises in NumPy with the training ops). ``jit`` compiles it
    with XLA: about 0.7 s more at the first batch, about 20 % more sequences per second on
    a CPU (measured in ``bench/predict.py``).
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=bool(jit))
    def forward(frames):
        return model(frames, training=False)

    def logits(batch):
        return forward(tf.constant(batch)).numpy()

    logits.model_input = runs.INPUT_NORMALISED
    return logits


def _saved_model_logits_function(path: Path, model_input: str = runs.INPUT_NORMALISED):
    """Logits of a batch from an export's ``serve`` endpoint.

    ``model_input`` is what the endpoints take, as ``assets/jetkeras.json`` says
    (:func:`jetkeras.runs.read_export`): "dn" for every export since the DN-in graphs,
    "normalised" for older ones; the returned function carries it as ``model_input``.
    """
    _cli.quiet_tensorflow()
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        serve = loaded.serve
    except Exception as error:  # a corrupt SavedModel is a user error, whatever TF raises
        raise ValueError(f"{path}: cannot load the SavedModel "
                         f"({type(error).__name__}: {_cli.first_line(error)})") from None

    def logits(batch):
        return serve(tf.constant(batch)).numpy()

    logits.keep_alive = loaded  # the endpoint needs its object graph alive
    logits.model_input = model_input
    return logits


# ------------------------------------------------------------------------- loading
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
    bundled = runs.BUNDLED_MODEL
    if not (bundled / runs.THRESHOLD_FILE).is_file():
        raise FileNotFoundError(
            f"model: not given, and this installation has no bundled model at "
            f"{bundled}; give a run or export folder or rebuild it with "
            f"`python -m jetkeras.bundle --install`")
    if not _BUNDLED_NOTE_SHOWN:
        _BUNDLED_NOTE_SHOWN = True
        print(f"jetkeras: no model given: using the bundled model jet304-synthetic "
              f"({bundled}), trained on synthetic renders only; read its model card, "
              f"docs/model_card.md, before quoting its probabilities", file=sys.stderr)
    return bundled


def load_predictor(model: str | os.PathLike | None = None, *,
                   threshold: float | None = None,
                   jit: bool = False, runtime: str = "auto",
                   any_channel: bool = False, despike: bool = True) -> Predictor:
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
        What runs the network (see the module docstring). ``auto``: LiteRT when the
        folder has ``model.tflite`` and ai-edge-litert is installed, unless ``jit``.
    any_channel : bool
        Accept cubes of another wavelength or instrument than the model's (the
        ``--any-channel`` flag); default False refuses them with one line.
    despike : bool
        Replace single-frame spikes before the network (:class:`Predictor`); default True.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or corrupt model, threshold outside [0, 1]: one line each.
    """
    check_threshold(threshold)
    path = resolve_model(model)
    stored = runs.read_model_folder(path)
    chosen = _choose_runtime(path, runtime, jit)
    # What each graph takes is recorded beside it (litert.json, assets/jetkeras.json):
    # "dn" (normalised inside the graph), or "normalised" for graphs written before that
    # and for the Keras model, which the Predictor then feeds frames normalised in NumPy.
    if chosen == "litert":
        fix = runs.EXPORT_FIX if stored["kind"] == "saved_model" else runs.RUN_FIX
        logits_function = _litert_logits_function(path / runs.LITERT_FILE,
                                                  runs.read_litert(path, fix)["input"])
    elif stored["kind"] == "saved_model":
        logits_function = _saved_model_logits_function(path, stored["input"])
    else:
        logits_function = _keras_logits_function(load_run_model(path)["model"], jit)
    return Predictor(logits_function=logits_function, frames=stored["frames"],
                     size=stored["size"],
                     threshold=stored["threshold"] if threshold is None else threshold,
                     normalisation=stored["normalisation"], config=stored["config"],
                     source=path, kind=stored["kind"], runtime=chosen,
                     any_channel=any_channel, despike=despike)
