"""Train a jet classifier on a records folder: ``python -m jetkeras.train``.

Examples
--------
The default ``projection`` model (motion channels -> per-pixel timing maps -> 2-D CNN,
60 epochs) on CPU-sized records::

    python -m jetkeras.train --records tfrecords/synthetic --out runs/jets

The design card's per-frame CNN + temporal head (``td_lstm``, the ``light`` preset)::

    python -m jetkeras.train --records tfrecords/synthetic --out runs/light --preset light

The seed's network as coded (frames as channels), the seed's optimiser::

    python -m jetkeras.train --records tfrecords/seed --out runs/epfl2d --arch epfl2d \\
        --optimizer adamw --lr 1e-4 --schedule cosine --batch-size 2 --epochs 100

Resume an interrupted run from its last finished epoch::

    python -m jetkeras.train --records tfrecords/synthetic --out runs/jets --resume

The run folder describes itself (``predict`` needs nothing else): ``config.json``,
``model.keras`` (the best epoch on validation AUC, or the last), ``model.tflite``
(TensorFlow backend only), ``normalisation.json``, ``threshold.json`` (chosen on the
validation split, written last), ``history.json``/``.csv``, ``training_curves.png`` and
``logs/``; :mod:`jetkeras.runs` names and reads them. The validation split is scored
after every ``train.validation_every``-th epoch and the last (NaN in the history
between); the threshold is always chosen after training, on the whole split.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli, runs
from jetkeras.config import (JetConfig, atomic_write_text, epochs_for, input_pool_for,
                              model_preset)

__all__ = ["finish_training", "fit_callbacks", "main", "predict_probabilities", "train",
           "train_or_keep"]

# The validation split is kept in memory (float32 DN) when its frames fit in this: 283 MB
# at the demo's 144 sequences of 30x128x128, 880 MB at the seed's full split.
VAL_CACHE_BYTES = 1 << 30


def _learning_rate_logger():
    import keras

    class LearningRateLogger(keras.callbacks.Callback):
        """Put the scheduled learning rate of each epoch's end into the logs."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                    self.model.optimizer.learning_rate))

    return LearningRateLogger()


def fit_callbacks(config: JetConfig, *, monitor: str = "val_auc", mode: str = "max",
                  early_stopping: bool = True) -> list:
    """The callbacks every fit shares (``train`` and each ``tune`` trial).

    Stop on a NaN loss; stop early when ``monitor`` has not improved for
    ``train.early_stopping_patience`` epochs (with ``early_stopping``); and, for the
    ``plateau`` schedule, divide the learning rate by 10 when the validation loss stalls.

    Parameters
    ----------
    config : JetConfig
    monitor, mode : str
        The metric early stopping watches and its direction ("max" or "min").
    early_stopping : bool
        Add early stopping. Defaults to True.
    """
    import keras

    callbacks = [keras.callbacks.TerminateOnNaN()]
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=config.train.early_stopping_patience))
    if config.train.schedule == "plateau":
        # The seed's ReduceLROnPlateau(factor 0.1, patience 10) scaled to short runs.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.1, patience=max(2, config.train.epochs // 10)))
    return callbacks


def _callbacks(out: Path, config: JetConfig):
    import keras

    return [
        _learning_rate_logger(),  # first, so the CSV log and history see it
        # Restores weights, optimiser state and epoch after an interruption. Kept after
        # the last epoch until threshold.json is written, so an interrupt while the
        # threshold is chosen does not send the resume back to epoch 1.
        keras.callbacks.BackupAndRestore(str(out / runs.BACKUP_FOLDER),
                                         delete_checkpoint=False),
        # "last" saves every epoch, so the file holds the final weights.
        keras.callbacks.ModelCheckpoint(str(out / runs.MODEL_FILE), monitor="val_auc",
                                        mode="max",
                                        save_best_only=config.train.checkpoint == "best"),
        keras.callbacks.CSVLogger(str(out / runs.HISTORY_CSV_FILE), append=True),
        keras.callbacks.TensorBoard(str(out / runs.LOGS_FOLDER), write_graph=False),
        # Stopping early only makes sense when the best epoch is the one kept.
        *fit_callbacks(config, early_stopping=config.train.checkpoint == "best"),
    ]


def _banner(config: JetConfig, parameters: int, steps_per_epoch: int,
            compute: dict[str, Any]) -> str:
    """The line ``train`` prints before fitting; ``compute`` is ``resolve_compute``'s."""
    return (f"train: {config.model.arch} ({config.model.preset}), {parameters:,} parameters, "
            f"{steps_per_epoch} steps/epoch, jit={compute['jit']}, "
            f"precision={config.train.precision}")


class _EpochProgress:
    """The epoch under way and the epochs finished, kept by two Keras callbacks.

    :meth:`around` puts one callback first and one last: from the first epoch-end
    callback to the last, Ctrl-C and SIGTERM are held (see
    :func:`jetkeras._cli.hold_interrupts`).
    """

    def __init__(self):
        import keras

        self.epoch: int | None = None  # 0-based epoch under way
        self.finished = 0
        self.holding = False
        progress = self

        class Hold(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                _cli.hold_interrupts()
                progress.holding = True

        class Release(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                progress.epoch, progress.finished = epoch, epoch

            def on_epoch_end(self, epoch, logs=None):
                progress.finished = epoch + 1
                progress.holding = False
                _cli.release_interrupts()

        self._hold, self._release = Hold(), Release()

    def around(self, callbacks: list) -> list:
        """``callbacks`` between the holding callback and the releasing one."""
        return [self._hold, *callbacks, self._release]

    def interrupted(self, out: Path, epochs: int) -> _cli.Interrupted:
        if self.epoch is None:
            where = "before the first epoch"
        elif self.finished > self.epoch:  # between epochs, or while one was being saved
            where = f"after epoch {self.finished} of {epochs}"
        else:
            where = f"at epoch {self.epoch + 1} of {epochs}"
        if (out / runs.BACKUP_FOLDER).is_dir():
            kept = f"{self.finished} finished epoch(s) kept in {out / runs.BACKUP_FOLDER}"
        else:
            kept = f"no epoch finished, nothing to resume from in {out}"
        return _cli.Interrupted(where, kept)


def train(
    *,
    records: str | Path,
    out: str | Path,
    config: JetConfig | None = None,
    overwrite: bool = False,
    resume: bool = False,
    verbose: int = 1,
) -> dict[str, Any]:
    """Fit a model, choose its threshold on validation, and write a run folder.

    Parameters
    ----------
    records : path
        Records folder (``manifest.json`` and shards) with train and val splits whose
        frame count and size match ``config.data``.
    out : path
        Run folder to write.
    config : JetConfig
        Everything else; saved as ``config.json``.
    overwrite, resume : bool
        Replace a finished run; continue an interrupted one from its last epoch.

    Returns
    -------
    dict
        ``threshold`` (the threshold.json content), ``best_val_auc``, ``epochs_run``,
        ``seconds``, ``run`` (the folder).
    """
    _cli.quiet_tensorflow()
    import keras

    from jetkeras.models import build_model, compile_model, resolve_compute
    from jetkeras.pipeline import check_compatible, make_dataset
    from jetkeras.pipeline import steps_per_epoch as epoch_steps
    from jetkeras.plotting import training_curves
    from jetkeras.records import read_manifest

    config = config or JetConfig()
    records, out = Path(records), Path(out)
    manifest = read_manifest(records)
    check_compatible(manifest, config, records)
    steps_per_epoch = epoch_steps(manifest, config.train.batch_size, records)
    if manifest["splits"].get("val", {}).get("count", 0) == 0:
        raise ValueError(f"{records}: the val split is empty; it is needed for the "
                         f"checkpoint and the threshold")
    runs.prepare_run_folder(out, overwrite=overwrite, resume=resume)
    _cli.set_seed(config.train.seed)
    if config.train.deterministic:
        # Multi-threaded CPU/GPU kernels otherwise sum in varying order: runs with one
        # seed then differ in the last bits, and early stopping can amplify that.
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    compute = resolve_compute(config)
    config.to_json(out / runs.CONFIG_FILE)
    atomic_write_text(out / runs.NORMALISATION_FILE,
                      json.dumps(runs.run_normalisation(manifest, config), indent=2))

    # Repeated with a known epoch length: Keras then never guesses the size of epoch 1.
    train_data = make_dataset(records, "train", config).repeat()
    val_data = make_dataset(records, "val", config, training=False)
    val_bytes = 4 * manifest["splits"]["val"]["count"] * manifest["frames"] * manifest["size"] ** 2
    if val_bytes <= VAL_CACHE_BYTES:
        # Read every epoch and never augmented: its batches are the same each time, and
        # parsing them again cost ~8 % of an epoch at the demo's geometry on 2 cores.
        val_data = val_data.cache()
    with _strategy_scope(config):
        model = build_model(config)
        compile_model(model, config, steps_per_epoch=steps_per_epoch)
    if verbose:
        print(_banner(config, model.count_params(), steps_per_epoch, compute),
              file=sys.stderr)
    start = time.perf_counter()
    progress = _EpochProgress()
    # The epoch-end saves (backup, checkpoint, CSV row) happen with Ctrl-C held, so an
    # interrupt never leaves one of them ahead of the others.
    try:
        model.fit(train_data, validation_data=val_data, epochs=config.train.epochs,
                  steps_per_epoch=steps_per_epoch, validation_freq=_validation_epochs(config),
                  callbacks=progress.around(_callbacks(out, config)),
                  shuffle=False, verbose=verbose)  # make_dataset shuffles (seeded)
    except KeyboardInterrupt:
        if progress.holding:
            _cli.release_interrupts(raise_pending=False)
        raise progress.interrupted(out, config.train.epochs) from None
    seconds = time.perf_counter() - start
    history = _history(out)
    if any(not math.isfinite(v) for v in history.get("loss", [])):
        raise ValueError(
            f"{out}: the training loss became NaN at epoch {len(history['loss'])}; lower "
            f"--lr or check the records' normalisation"
        )
    if not (out / runs.MODEL_FILE).is_file():
        raise ValueError(f"{out}: no epoch produced a finite validation AUC; nothing saved")
    atomic_write_text(out / runs.HISTORY_FILE, json.dumps(history, indent=1))
    training_curves(history, out / runs.CURVES_FILE)

    # The threshold comes from validation predictions of the saved checkpoint.
    model = keras.saving.load_model(out / runs.MODEL_FILE, safe_mode=True)
    try:
        choice = finish_training(model, config, out, val_data, train_seconds=seconds)
    except KeyboardInterrupt:
        raise _cli.Interrupted(
            f"after the last of {config.train.epochs} epochs, while choosing the threshold",
            f"the trained epochs are kept in {out / runs.BACKUP_FOLDER}") from None
    # threshold.json now marks the run finished: the backup has done its work.
    shutil.rmtree(out / runs.BACKUP_FOLDER, ignore_errors=True)
    if verbose:
        print(f"train: best val AUC {choice['val_auc']:.3f}; threshold {choice['threshold']:.3f} "
              f"({choice['rule']}: F1 {choice['f1']:.3f}); {seconds:.0f} s; run in {out}",
              file=sys.stderr)
    return {"threshold": choice, "best_val_auc": choice["val_auc"],
            "epochs_run": len(history.get("loss", [])), "seconds": seconds, "run": str(out)}


def train_or_keep(*, records: str | Path, out: str | Path, config: JetConfig,
                  verbose: int = 1) -> dict[str, Any]:
    """Keep a finished run folder, resume an interrupted one, or train a new one.

    For the stages that rerun where they stopped (``demo``, ``bundle``, ``crossval``). A
    run folder without ``backup/`` was stopped before its first epoch ended, or while
    writing its threshold: it starts again.

    Returns
    -------
    dict
        The run's ``threshold.json`` content.
    """
    out = Path(out)
    if not (out / runs.THRESHOLD_FILE).is_file():
        resume = (out / runs.BACKUP_FOLDER).is_dir()  # Keras' BackupAndRestore
        train(records=records, out=out, config=config, resume=resume,
              overwrite=out.exists() and not resume, verbose=verbose)
    return runs.read_threshold(out / runs.THRESHOLD_FILE)


def finish_training(model, config: JetConfig, out: Path, val_data, **extra) -> dict[str, Any]:
    """Write ``model.tflite``, then choose and store the threshold on validation.

    The last step of a trained run folder (``train``, ``ensemble``); the threshold is
    chosen and stored by :func:`jetkeras.runs.finish_run`, which writes the file that
    marks the run finished.

    Parameters
    ----------
    model : keras.Model
        The run's network, already saved as ``out / "model.keras"``.
    config : JetConfig
        Its configuration.
    out : path
        The run folder.
    val_data : tf.data.Dataset
        ``(frames, label)`` batches of the validation split.
    **extra
        More entries for ``threshold.json`` (e.g. ``train_seconds``).

    Returns
    -------
    dict
        The ``threshold.json`` content (see :func:`jetkeras.runs.finish_run`).
    """
    import keras

    from jetkeras.export import write_litert

    probabilities, labels = predict_probabilities(model, val_data)
    if keras.backend.backend() == "tensorflow":  # Keras converts to LiteRT from TF graphs
        # `predict` runs it sans TF; frames in DN: the normalisation is inside the graph.
        normalisation = runs.read_normalisation(Path(out) / runs.NORMALISATION_FILE, config)
        write_litert(model, config, Path(out) / runs.LITERT_FILE, normalisation)
    return runs.finish_run(out, config, labels, probabilities, **extra)


def _strategy_scope(config: JetConfig):
    """``tf.distribute.MirroredStrategy`` over the node's GPUs, or no strategy.

    The batch size stays global: each of N replicas sees batch_size / N sequences.
    """
    import contextlib

    if config.train.distribute == "mirrored":
        import keras
        import tensorflow as tf

        if keras.backend.backend() != "tensorflow":
            raise ValueError("--distribute mirrored: needs the TensorFlow backend; on JAX use "
                             "keras.distribution.DataParallel")
        strategy = tf.distribute.MirroredStrategy()
        print(f"train: MirroredStrategy over {strategy.num_replicas_in_sync} replica(s)",
              file=sys.stderr)
        return strategy.scope()
    return contextlib.nullcontext()


def _validation_epochs(config: JetConfig) -> list[int]:
    """The epochs (1-based) that end with a validation pass: every
    ``train.validation_every``-th and the last."""
    every, epochs = config.train.validation_every, config.train.epochs
    return [epoch for epoch in range(1, epochs + 1) if epoch % every == 0 or epoch == epochs]


def _history(out: Path) -> dict[str, list[float]]:
    """Per-epoch history from the CSV log (complete across resumed sessions); NaN where
    an epoch had no validation pass (the log's "NA")."""
    import csv

    path = out / runs.HISTORY_CSV_FILE
    if not path.is_file():
        return {}
    history: dict[str, list[float]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                history.setdefault(key, []).append(float("nan") if value == "NA"
                                                   else float(value))
    return history


def predict_probabilities(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid of the model's logits over a ``(frames, label)`` dataset, and the labels."""
    probabilities, labels = [], []
    for batch in dataset:
        frames, label = batch[0], batch[1]
        logits = model(frames, training=False)
        probabilities.append(1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64))))
        labels.append(np.asarray(label))
    return np.concatenate(probabilities).ravel(), np.concatenate(labels).ravel()


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "train",
        "Train a jet classifier on a records folder and write a run folder (model.keras, "
        "model.tflite on the TensorFlow backend, the config, the normalisation, the "
        "threshold chosen on validation, the history) that predict, evaluate and export "
        "read. An interrupted run resumes with --resume.",
        ["--records tfrecords/synthetic --out runs/jets",
         "--records tfrecords/synthetic --out runs/light --preset light",
         "--records tfrecords/seed --out runs/epfl2d --arch epfl2d --lr 1e-4 --batch-size 2",
         "--records tfrecords/synthetic --out runs/jets --resume"])
    parser.add_argument("--records", required=True, type=_cli.existing_folder,
                        help="records folder (python -m jetkeras.build_records)")
    parser.add_argument("--out", required=True, help="run folder to write (refused if a "
                        "finished run is there, unless --overwrite)")
    parser.add_argument("--config", type=_cli.existing_file,
                        help="JetConfig JSON (e.g. the best config of a search); default the "
                             "built-in defaults")
    parser.add_argument("--arch", choices=("projection", "td_lstm", "epfl2d"),
                        help="projection: per-pixel timing maps -> 2-D CNN; td_lstm: per-frame "
                             "CNN -> temporal head; epfl2d: the seed's code; default the "
                             "preset's (projection)")
    parser.add_argument("--preset", help="model preset (architecture and widths): projection "
                        "(default), light (td_lstm), seed, tiny")
    parser.add_argument("--epochs", type=_cli.positive_int,
                        help="passes over the training split; default by frame size "
                             "(60 epochs up to 128 px)")
    parser.add_argument("--batch-size", type=_cli.positive_int,
                        help="sequences per step; default the config's (8)")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), help="adamw or sgd (Nesterov momentum 0.9); default the "
                        "config's (adamw)")
    parser.add_argument("--lr", type=_cli.positive_float,
                        help="peak learning rate (after the warm-up), > 0; default the config's "
                             "(2e-3)")
    parser.add_argument("--schedule", choices=("cosine", "exponential", "plateau", "constant"),
                        help="learning-rate schedule over the run; default the config's "
                             "(cosine)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"),
                        help="compute dtype policy (the logit stays float32); default the "
                             "config's (float32)")
    parser.add_argument("--jit", choices=("auto", "on", "off"),
                        help="XLA compilation: auto = on GPU only; default the "
                             "config's (auto)")
    parser.add_argument("--distribute", choices=("none", "mirrored"),
                        help="mirrored: data-parallel over the GPUs of one node; default the "
                             "config's (none)")
    parser.add_argument("--target-recall", type=_cli.target_recall,
                        help="choose the threshold reaching this validation recall, in (0, "
                             "1], instead of max F1; default: max F1")
    parser.add_argument("--deterministic", action="store_true",
                        help="bitwise-reproducible kernels (slower); same seed -> same run; "
                             "default off")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run; default: refuse")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last "
                        "finished epoch; default: start afresh")
    parser.add_argument("--seed", type=_cli.seed_int,
                        help="seed for weights, shuffling, augmentation, in [0, 2**32 - 1]; "
                             "default the config's (0)")
    return parser


def config_from_args(args: argparse.Namespace, records: str | Path | None = None) -> JetConfig:
    """The config file (or defaults), the records' geometry, then the flags on top."""
    from jetkeras.records import read_manifest

    config = JetConfig.from_json(args.config) if args.config else JetConfig()
    if records is not None:
        manifest = read_manifest(records)
        config = config.replace(data={"frames": manifest["frames"], "size": manifest["size"]})
    if getattr(args, "preset", None):
        preset = model_preset(args.preset)
        config = config.replace(model={k: v for k, v in preset.__dict__.items()})
    model, train_changes = {}, {}
    if records is not None and not args.config:  # a config file's own recipe wins
        model["input_pool"] = input_pool_for(config.data.size)
        train_changes["epochs"] = epochs_for(config.data.size)
    if getattr(args, "arch", None):
        model["arch"] = args.arch
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"),
                      ("optimizer", "optimizer"), ("lr", "learning_rate"),
                      ("schedule", "schedule"), ("precision", "precision"), ("jit", "jit"),
                      ("distribute", "distribute"), ("seed", "seed")):
        value = getattr(args, flag, None)
        if value is not None:
            train_changes[key] = value
    if getattr(args, "deterministic", False):
        train_changes["deterministic"] = True
    if getattr(args, "target_recall", None) is not None:
        if not 0.0 < args.target_recall <= 1.0:
            raise ValueError(f"--target-recall: expected a value in (0, 1], received "
                             f"{args.target_recall}")
        train_changes.update(threshold_metric="recall", target_recall=args.target_recall)
    return config.replace(model=model, train=train_changes)


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        config = config_from_args(args, records=args.records)
        train(records=args.records, out=args.out, config=config, overwrite=args.overwrite,
              resume=args.resume)

    def resume() -> str:
        # --overwrite would throw away what the interrupted run kept.
        kept = (Path(args.out) / runs.BACKUP_FOLDER).is_dir()
        return _cli.resume_command("train", argv, add=["--resume"] if kept else [],
                                   drop=["--overwrite"] if kept else ["--resume"])

    return _cli.run_main(run, "train", resume=resume, out=args.out)


if __name__ == "__main__":
    raise SystemExit(main())
