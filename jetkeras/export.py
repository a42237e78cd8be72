"""Export a run as a TensorFlow SavedModel for serving: ``python -m jetkeras.export``.

Examples
--------
::

    python -m jetkeras.export --run runs/light --out exports/light

and then, with TensorFlow alone (no jetkeras, no Keras), on frames in DN::

    import json
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load("exports/light")
    meta = json.load(open("exports/light/assets/jetkeras.json"))  # meta["input"] == "dn"
    cube = np.load("cube.npz")["frames"]                  # (T, H, W) AIA level-1 DN
    frames_dn = cube[None, ..., None].astype("float32")   # (1, T, H, W, 1)
    probability = loaded.serve_proba(tf.constant(frames_dn))  # (1, 1) float32
    is_jet = probability.numpy()[0, 0] >= meta["threshold"]

The same ``frames_dn`` go into ``model.tflite`` on the LiteRT interpreter, which gives
the same probability to 1e-4 (``tests/test_export.py``).

**One input contract, DN in.** The SavedModel's two endpoints and ``model.tflite`` take
frames as the records hold them (AIA level-1 DN, not divided by the exposure time unless
the run's ``config.data.exposure_normalise``), float32 ``(None, T, H, W, 1)`` with T and
H = W fixed to the run's geometry; the trailing channel axis is kept, as the network's
own input has it. The training normalisation is inside the graphs: clip at ``clip_dn``
then ``(x - mean) / std`` (``log1p(max(x, 0))`` standardised with ``log_mean`` and
``log_std`` when ``scaling`` is "log"), the very ops of
:func:`jetkeras.pipeline.normalise`, so no client normalises. The input is named
``frames_dn`` in both graphs, and ``assets/jetkeras.json`` and ``litert.json`` record it
as ``"input": "dn"``. Exports and run folders written before this contract hold graphs
over normalised frames (``input`` absent, or an object in ``jetkeras.json``; no
``litert.json``); :func:`jetkeras.runtime.load_predictor` reads the record and normalises
in NumPy for those only.

``serve``
    the logit, float32 ``(N, 1)``;
``serve_proba``
    the probability of a jet, ``sigmoid(logit)``, float32 ``(N, 1)``.

Next to it, ``model.tflite`` holds the same network for the LiteRT interpreter
(``ai-edge-litert``): BatchNorm folded into the convolutions, the LSTM unrolled over the
frames, builtin ops only, with ``litert.json`` saying what it takes. ``python -m
jetkeras.predict`` prefers it: it starts without importing TensorFlow and runs about 3x
faster on a CPU (``bench/predict.py``). ``train`` writes both into every run folder too.

``assets/jetkeras.json`` carries what a client needs to decide: ``input`` ("dn"),
``input_spec`` (name, shape, dtype, units), ``threshold``, ``normalisation`` (the
constants already applied inside the graphs: ``clip_dn``, ``mean``, ``std``,
``scaling``...), ``frames``, ``size``, the full ``config`` and the jetkeras version.
``python -m jetkeras.predict --model exports/light`` reads it and takes DN frames too.

The network is rebuilt with ``model.use_cudnn = "false"`` and the run's weights copied in
before tracing: a model traced with the cuDNN LSTM kernel (trained on a GPU) cannot be
loaded on a CPU ("No OpKernel ... CudnnRNN", keras-team/keras#18504); the export refuses
a graph that still holds a ``Cudnn*`` op, and reports every op type in the graph
(:func:`graph_ops`). The folder is written to a temporary sibling and renamed when
complete.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from jetkeras import _cli, runs
from jetkeras._files import staged_folder

__all__ = ["DN_INPUT_NAME", "export_run", "graph_ops", "main", "with_dn_input",
           "write_litert"]

DN_INPUT_NAME = "frames_dn"  # the input of every DN-in graph (SavedModel and LiteRT)
_DN_MEANING = ("frames as the records hold them (AIA level-1 DN; DN/s only when "
               "config.data.exposure_normalise), float32; clipped at normalisation.clip_dn "
               "and standardised inside the graph (log1p first when scaling is 'log')")
_NORMALISED_MEANING = ("frames normalised as in normalisation.json (clip_dn, then "
                       "(x - mean) / std; log1p first when scaling is 'log')")


def _graph_normalisation(normalisation: dict[str, Any], scaling: str) -> dict[str, Any]:
    """The constants a DN-in graph applies, as plain floats, with its ``scaling``."""
    keys = ("clip_dn", "log_mean", "log_std") if scaling == "log" else ("clip_dn", "mean",
                                                                        "std")
    return {"scaling": scaling, **{key: float(normalisation[key]) for key in keys}}


def with_dn_input(model, normalisation: dict[str, Any], scaling: str | None = None):
    """``model`` behind the training normalisation: a Keras model over frames in DN.

    The input, named ``frames_dn``, has ``model``'s shape (``(None, T, H, W, 1)``); a
    layer applies :func:`jetkeras.pipeline.normalise` (TensorFlow ops: clip at
    ``clip_dn``, then standardise, or log1p-standardise for "log") and ``model`` reads
    the result, sharing its weights. For tracing and conversion only (TensorFlow
    backend); it is never saved as a ``.keras`` file.

    Parameters
    ----------
    model : keras.Model
        The network over normalised frames.
    normalisation : dict
        The run's ``normalisation.json``.
    scaling : {"clip", "log"}, optional
        Default ``normalisation["scaling"]``, else "clip".
    """
    import keras

    from jetkeras.pipeline import normalise

    scaling = scaling or normalisation.get("scaling", "clip")
    constants = _graph_normalisation(normalisation, scaling)

    class TrainingNormalisation(keras.layers.Layer):
        def call(self, frames):
            return normalise(frames, constants, scaling)

    frames_dn = keras.Input(shape=tuple(model.input_shape[1:]), name=DN_INPUT_NAME,
                            dtype="float32")
    return keras.Model(frames_dn, model(TrainingNormalisation(name="normalise")(frames_dn)),
                       name=f"{model.name}_dn_in")


def write_litert(model, config, path: str | os.PathLike,
                 normalisation: dict[str, Any] | None = None) -> int:
    """Convert a trained model to a LiteRT flatbuffer at ``path``, atomically, and say
    what it takes in ``litert.json`` beside it.

    The network is rebuilt from ``config`` for inference (portable LSTM kernel, float32,
    LSTM unrolled over the static frame axis) and given ``model``'s weights, so the
    converter needs builtin ops only: no TensorFlow at prediction time. The converter
    folds each BatchNorm into its convolution. With ``normalisation`` the graph takes
    frames in DN (input ``frames_dn``, :func:`with_dn_input`: ``litert.json``'s
    ``input`` is "dn"), as ``train``, ``export`` and the bundle write it; without, the
    bare network over normalised frames ("normalised"; benchmarks and layer tests).

    Parameters
    ----------
    model : keras.Model
        The trained network (from :func:`jetkeras.models.build_model`).
    config : JetConfig
        Its configuration.
    path : path-like
        Where to write (``model.tflite``); ``litert.json`` goes in the same folder.
    normalisation : dict, optional
        The run's ``normalisation.json``: put its clip and standardisation in the graph.

    Returns
    -------
    int
        Bytes of the flatbuffer.
    """
    import tensorflow as tf

    from jetkeras._files import atomic_output, atomic_write_text
    from jetkeras.models import build_model
    from jetkeras.runtime import inference_config

    inference = build_model(inference_config(config), unroll=True)
    inference.set_weights(model.get_weights())
    shape = [None, *inference.input_shape[1:]]
    if normalisation is None:
        graph, record = inference, {"input": runs.INPUT_NORMALISED,
                                    "meaning": _NORMALISED_MEANING}
    else:
        scaling = normalisation.get("scaling", config.data.scaling)
        graph = with_dn_input(inference, normalisation, scaling)
        record = {"input": runs.INPUT_DN, "input_name": DN_INPUT_NAME, "meaning": _DN_MEANING,
                  "normalisation": _graph_normalisation(normalisation, scaling)}
    path = Path(path)
    # Keras wants the .tflite suffix. Builtin ops only: a stray TensorFlow op fails here
    # rather than at a user's prediction.
    with atomic_output(path, suffix=".tflite") as temporary:
        graph.export(str(temporary), format="litert", verbose=False,
                     target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    record = {"format": runs.LITERT_FORMAT, **record, "shape": shape, "dtype": "float32"}
    atomic_write_text(path.with_name(runs.LITERT_METADATA_FILE),
                      json.dumps(record, indent=2) + "\n")
    return path.stat().st_size


def export_run(*, run: str | os.PathLike, out: str | os.PathLike,
               overwrite: bool = False) -> dict[str, Any]:
    """Write a run folder's model as a SavedModel with ``serve`` and ``serve_proba``.

    Parameters
    ----------
    run : path-like
        A finished run folder (``python -m jetkeras.train``).
    out : path-like
        The SavedModel folder to create; refused if it exists unless ``overwrite``.
    overwrite : bool
        Replace an existing ``out``. Defaults to False.

    Returns
    -------
    dict
        ``out`` (str), ``bytes`` (size on disk), ``frames``, ``size``, ``threshold``,
        ``input`` ("dn": the endpoints and ``model.tflite`` take frames in DN) and
        ``graph_ops`` (sorted list of every op type in the written graph, as
        :func:`graph_ops` reads it back; never a ``Cudnn*`` one).

    Raises
    ------
    FileNotFoundError, ValueError, FileExistsError
        Missing or corrupt run folder, existing ``out``: one line each.
    """
    _cli.quiet_tensorflow()
    import jetkeras
    from jetkeras.runtime import load_run_model

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; pass --overwrite to replace it "
                              f"or choose another folder")
    loaded = load_run_model(run)  # rebuilt with use_cudnn="false", weights copied in
    model, config = loaded["model"], loaded["config"]
    frames, size = loaded["frames"], loaded["size"]
    normalisation = loaded["normalisation"]
    scaling = normalisation.get("scaling", config.data.scaling)
    metadata = {
        "format": runs.EXPORT_FORMAT,
        "jetkeras_version": jetkeras.__version__,
        "threshold": loaded["threshold"],
        "normalisation": normalisation,
        "frames": frames,
        "size": size,
        "input": runs.INPUT_DN,
        "input_spec": {"name": DN_INPUT_NAME, "shape": [None, frames, size, size, 1],
                       "dtype": "float32", "meaning": _DN_MEANING},
        "endpoints": {"serve": "logit (N, 1)", "serve_proba": "sigmoid(logit) (N, 1)"},
        "config": config.to_dict(),
        "run": str(Path(run).resolve()),
    }

    with staged_folder(out) as staging:
        _write_saved_model(with_dn_input(model, normalisation, scaling), staging, frames,
                           size)
        write_litert(model, config, staging / runs.LITERT_FILE, normalisation)
        assets = staging / runs.ASSETS_FOLDER
        assets.mkdir(exist_ok=True)
        (assets / runs.EXPORT_METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        ops = sorted(graph_ops(staging))
        cudnn = [op for op in ops if op.startswith("Cudnn")]
        if cudnn:  # a guard on the rebuild above; never expected to fire
            raise ValueError(f"{out}: the exported graph holds cuDNN-only ops {cudnn}")
    size_bytes = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return {"out": str(out), "bytes": size_bytes, "frames": frames, "size": size,
            "threshold": loaded["threshold"], "input": runs.INPUT_DN, "graph_ops": ops}


def _write_saved_model(model, directory: Path, frames: int, size: int) -> None:
    """``serve`` and ``serve_proba`` of ``model`` (DN in: :func:`with_dn_input`)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    # A static frame count: a None time axis breaks the export (keras-team/keras#19876).
    signature = [tf.TensorSpec((None, frames, size, size, 1), tf.float32,
                               name=DN_INPUT_NAME)]
    archive.add_endpoint("serve", lambda frames_in: model(frames_in, training=False),
                         input_signature=signature)
    archive.add_endpoint(
        "serve_proba",
        lambda frames_in: tf.sigmoid(tf.cast(model(frames_in, training=False), tf.float32)),
        input_signature=signature)
    archive.write_out(str(directory), verbose=False)


def graph_ops(saved_model: str | os.PathLike) -> set[str]:
    """Every op type in a SavedModel's graph and function library.

    Used to check that no ``CudnnRNN*`` op (GPU-only) was traced into an export.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(saved_model) / runs.SAVED_MODEL_FILE
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as error:  # OSError, or protobuf's DecodeError (no public class)
        raise ValueError(f"{path}: not a readable SavedModel ({type(error).__name__})") \
            from None
    ops = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "export",
        "Export a finished run as a TensorFlow SavedModel for serving (endpoints serve and "
        "serve_proba over frames in DN, float32 (N, T, H, W, 1): the training clip and "
        "standardisation are inside the graph), with model.tflite (the same DN input) for "
        "the LiteRT interpreter and assets/jetkeras.json holding the threshold and "
        "input contract.",
        ["--run runs/light --out exports/light"])
    parser.add_argument("--run", required=True, help="finished run folder (python -m jetkeras.train)")
    parser.add_argument("--out", required=True, help="SavedModel folder to create (refused if it "
                        "exists, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists; default: refuse")
    return parser


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        result = export_run(run=args.run, out=args.out, overwrite=args.overwrite)
        print(f"export: wrote {result['out']} ({result['bytes'] / 1e6:.2f} MB; input "
              f"(None, {result['frames']}, {result['size']}, {result['size']}, 1) in DN; "
              f"endpoints "
              f"serve, serve_proba; threshold {result['threshold']:.3f})")

    return _cli.run_main(run, "export", resume=_cli.resume_command("export", argv),
                         kept="nothing written (the export folder appears whole or not at all)")


if __name__ == "__main__":
    raise SystemExit(main())
