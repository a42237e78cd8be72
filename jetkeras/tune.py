"""Hyperparameter search with KerasTuner: ``python -m jetkeras.tune``.

A search space is a JSON file in ``tuning/`` whose every name is a dotted
:class:`~jetkeras.config.JetConfig` key (``train.learning_rate``, ``model.widths``,
``data.max_angle_deg``, ...). ``build(hp)`` maps the drawn values onto that ONE config
(:meth:`JetConfig.replace`) and calls :func:`jetkeras.models.build_model` and
:func:`jetkeras.models.compile_model`: the search never defines a second model.

Examples
--------
The seed's 18-point grid (learning rate x optimiser x schedule, epfl2d, batch 2)::

    python -m jetkeras.tune --records tfrecords/seed --space tuning/seed_grid.json \\
        --tuner grid --out tuning/runs/seed_grid

A random search over the td_lstm architecture, 20 trials of at most 15 epochs::

    python -m jetkeras.tune --records tfrecords/synthetic --space tuning/architecture.json \\
        --tuner random --max-trials 20 --epochs 15 --out tuning/runs/arch

Continue an interrupted search (finished trials are kept, the interrupted one reruns)::

    python -m jetkeras.tune ... --out tuning/runs/seed_grid --resume

Distributed on one machine: one chief (serves the oracle, trains nothing) and workers::

    python -m jetkeras.tune ... --role chief  --oracle 127.0.0.1:8000
    python -m jetkeras.tune ... --role worker --oracle 127.0.0.1:8000 --worker-id 0
    python -m jetkeras.tune ... --role worker --oracle 127.0.0.1:8000 --worker-id 1

Space file format::

    {"name": "tiny_grid",
     "fixed": {"model.preset": "tiny", "train.epochs": 1},
     "hyperparameters": [
        {"name": "train.learning_rate", "type": "choice", "values": [1e-3, 1e-2]},
        {"name": "model.dropout", "type": "float", "min": 0.1, "max": 0.5, "step": 0.2},
        {"name": "train.learning_rate", "type": "float", "min": 1e-5, "max": 1e-2,
         "sampling": "log"},
        {"name": "model.lstm_units", "type": "int", "min": 16, "max": 64, "step": 16}]}

``fixed`` values are applied first (``model.preset`` expands to that preset's widths and
units, then the other fixed keys); the drawn hyperparameters come last. List-valued keys
(``model.widths``) are searched as a ``choice`` of lists.

Outputs in ``--out`` (written by the single process or by the chief):

======================  ================================================================
``search.json``         what was searched (space name, file, hash, tuner, objective)
``tuner/``              KerasTuner's project: ``oracle.json``, ``trial_<id>/trial.json``,
                        ``trial_<id>/checkpoint.weights.h5`` (best epoch on the objective)
``trial_starts.jsonl``  one line per trial execution (trial id, tuner id, pid)
``results.csv``, ``.md``  one row per trial, best first: every hyperparameter, the
                        objective, status, epochs run, seconds and the error of failed ones
``objective.png``       the objective of each trial (failed trials marked)
``val_f1_per_epoch.png``  validation F1 per epoch, one line per trial (the seed's Fig. 3)
``best_config.json``    the best trial's full JetConfig (``jetkeras.train --config``)
``best_run/``           a run folder (:mod:`jetkeras.runs`; ``predict``) of the best trial
======================  ================================================================

``best_run/`` holds the best trial's own weights at its best epoch (KerasTuner's
checkpoint), not a retrained model: config, ``normalisation.json`` from the records,
and a threshold chosen on the validation split with
:func:`jetkeras.metrics.choose_threshold`, exactly as :func:`jetkeras.train.train`
chooses it. Retrain with ``python -m jetkeras.train --config best_config.json`` for a
longer or resumable run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from jetkeras import _cli, runs
from jetkeras._files import (atomic_output, read_json, staged_folder, union_columns,
                             write_csv)
from jetkeras.config import JetConfig, atomic_write_text
from jetkeras.space import OBJECTIVES, apply_values, declare, grid_points, load_space

__all__ = ["TUNERS", "main", "read_search_record", "read_trial_record", "tune",
           "write_results"]

TUNERS = ("grid", "random", "bayesian", "hyperband")
PROJECT = "tuner"
SEARCH_FORMAT = "jetkeras-search/1"  # search.json; a file without "format" is version 1


# ============================================================================ distribution
def _wait_for_chief(host: str, port: int, timeout_s: float) -> None:
    """Probe the chief's port until it answers; a ValueError after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=2.0):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"--oracle {host}:{port}: no chief answered within {timeout_s:g} s "
                    f"(--connect-timeout); start the chief first (--role chief)"
                ) from None
            time.sleep(0.5)


def _parse_oracle(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--oracle: expected HOST:PORT (e.g. 127.0.0.1:8000), received "
                         f"{address!r}")
    return host, int(port)


# ============================================================================ search
def _state_error(path: Path, key: str, expected: str, received: Any, fix: str) -> ValueError:
    return ValueError(f"{path}: key `{key}`: expected {expected}, received {received!r}; "
                      f"{fix}")


def _state_version(path: Path, record: Any, known: str, fix: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _state_error(path, "(the file)", "a JSON object", type(record).__name__, fix)
    version = record.get("format", known)  # files from before versions were written
    if version != known:
        raise _state_error(path, "format", f"the known version {known!r} (files of another "
                                           f"version come from another jetkeras)", version, fix)
    return record


def read_search_record(out: str | os.PathLike) -> dict[str, Any]:
    """``search.json`` of a tuning folder (what was searched), checked against its schema.

    Raises
    ------
    FileNotFoundError
        No ``search.json``.
    ValueError
        Invalid JSON, an unknown version, or a key missing or out of range.
    """
    path = Path(out) / "search.json"
    fix = "start the search again without --resume (or in another --out), or fix the file"
    record = _state_version(path, read_json(path, "search record"), SEARCH_FORMAT, fix)
    for key in ("space", "space_file", "records"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise _state_error(path, key, "a non-empty string", record.get(key), fix)
    sha = record.get("space_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise _state_error(path, "space_sha256", "a SHA-256 of 64 hex digits", sha, fix)
    if record.get("tuner") not in TUNERS:
        raise _state_error(path, "tuner", f"one of {list(TUNERS)}", record.get("tuner"), fix)
    if record.get("objective") not in OBJECTIVES:
        raise _state_error(path, "objective", f"one of {sorted(OBJECTIVES)}",
                           record.get("objective"), fix)
    for key, minimum, optional in (("max_trials", 1, False), ("grid_points", 1, True),
                                   ("seed", 0, False)):
        value = record.get(key)
        if optional and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _state_error(path, key, f"an integer >= {minimum}", value, fix)
    try:
        JetConfig.from_dict(record.get("base_config"), source=f"{path}: key `base_config`")
    except ValueError as error:  # range checks name the key only, not the file
        text = (str(error) if str(error).startswith(str(path))
                else f"{path}: key `base_config`: {error}")
        raise ValueError(f"{text}; {fix}") from None
    return record


def read_trial_record(path: str | os.PathLike) -> dict[str, Any]:
    """A trial's ``jetkeras.json`` (wall time and per-epoch history), checked.

    Raises
    ------
    ValueError
        Invalid JSON, an unknown version, a negative or non-finite ``seconds``, or a
        ``history`` that is not lists of numbers per metric.
    """
    from jetkeras.tuners import TRIAL_FORMAT

    path = Path(path)
    fix = f"delete {path.parent.name}/ and rerun the search with --resume, or fix the file"
    record = _state_version(path, read_json(path, "trial record"), TRIAL_FORMAT, fix)
    seconds = record.get("seconds")
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds) or seconds < 0):
        raise _state_error(path, "seconds", "a finite number >= 0", seconds, fix)
    history = record.get("history", {})
    if not isinstance(history, dict):
        raise _state_error(path, "history", "an object of per-epoch lists",
                           type(history).__name__, fix)
    for metric, values in history.items():
        # A diverged trial's loss is NaN (TerminateOnNaN): numbers, not only finite ones.
        if not isinstance(values, list) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise _state_error(path, f"history.{metric}", "a list of numbers", values, fix)
    return record


def _identity(space, tuner, objective) -> dict[str, Any]:
    return {"space": space["name"], "space_file": space["path"], "space_sha256": space["sha256"],
            "tuner": tuner, "objective": objective}


def _check_resume(out: Path, identity: dict[str, Any]) -> None:
    path = out / "search.json"
    if not (out / PROJECT / "oracle.json").is_file() or not path.is_file():
        raise FileNotFoundError(f"{out}: --resume given but no search to resume there "
                                f"(no search.json or {PROJECT}/oracle.json)")
    previous = read_search_record(out)
    if previous.get("space_sha256") != identity["space_sha256"]:
        raise ValueError(
            f"--resume: {out} holds a search of space {previous.get('space')!r} "
            f"({previous.get('space_file')}), received space {identity['space']!r} "
            f"({identity['space_file']}); use another --out or drop --resume"
        )
    for key in ("tuner", "objective"):
        if previous.get(key) != identity[key]:
            raise ValueError(f"--resume: {out} holds a search with --{key} "
                             f"{previous.get(key)}, received --{key} {identity[key]}")


def tune(
    *,
    records: str | os.PathLike,
    space: str | os.PathLike,
    tuner: str,
    out: str | os.PathLike,
    max_trials: int | None = None,
    epochs: int | None = None,
    objective: str = "val_auc",
    seed: int = 0,
    resume: bool = False,
    base_config: JetConfig | None = None,
    precision: str | None = None,
    jit: str | None = None,
    role: str | None = None,
    oracle: str | None = None,
    worker_id: int | None = None,
    connect_timeout_s: float = 60.0,
    max_consecutive_failed_trials: int = 3,
    verbose: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume, or join) a KerasTuner search and write its results.

    Parameters
    ----------
    records : path
        Records folder with train and val splits.
    space : path
        Search-space JSON (see the module docstring).
    tuner : {"grid", "random", "bayesian", "hyperband"}
    out : path
        Output folder (see the module docstring); its KerasTuner project is replaced
        unless ``resume``.
    max_trials : int, optional
        Trials at most; default the grid size for ``grid``, 10 otherwise (Hyperband
        ignores it: ``epochs`` fixes its brackets).
    epochs : int, optional
        Epochs per trial (Hyperband: the most any trial gets); default the config's.
    objective : {"val_auc", "val_f1", "val_loss"}
        Maximised (AUC, F1) or minimised (loss) on the validation split.
    seed : int
        Seeds the tuner's draws and ``train.seed`` (weights, shuffling, augmentation).
    resume : bool
        Continue the search in ``out``: finished trials are kept, an interrupted trial
        reruns from its start.
    base_config : JetConfig, optional
        Config the space's fixed values and the drawn values apply to.
    precision, jit : str, optional
        Override ``train.precision`` / ``train.jit`` of every trial.
    role : {None, "chief", "worker"}
        Distributed search: the chief serves the oracle at ``oracle`` and writes the
        results; each worker (``worker_id`` 0, 1, ...) runs trials.
    oracle : str
        ``HOST:PORT`` of the chief (required with ``role``).
    connect_timeout_s : float
        A worker gives up (ValueError) when no chief answers within this many seconds.
    max_consecutive_failed_trials : int
        KerasTuner stops the search after this many failed trials in a row.
    verbose : {0, 1, 2}
        Keras ``fit`` verbosity inside each trial.
    progress : bool
        A progress bar of trials on stderr (trial k of n, best objective so far, ETA),
        whatever ``verbose`` is.

    Returns
    -------
    dict
        ``trials`` (list of row dicts, best first), ``best_config`` (JetConfig or None),
        ``best_run`` (path or None), ``out``; a worker returns ``trials`` empty.
    """
    _cli.quiet_tensorflow()
    _check_arguments(tuner=tuner, objective=objective, max_trials=max_trials, epochs=epochs,
                     role=role, oracle=oracle, worker_id=worker_id)
    from jetkeras.pipeline import check_compatible
    from jetkeras.records import read_manifest

    records, out = Path(records), Path(out)
    manifest = read_manifest(records)
    config = base_config or JetConfig()
    config = config.replace(data={"frames": manifest["frames"], "size": manifest["size"]})
    space_spec = load_space(space, base=config)
    config = apply_values(config, space_spec["fixed"], space_spec["path"])
    overrides = {"seed": seed}
    for key, value in (("epochs", epochs), ("precision", precision), ("jit", jit)):
        if value is not None:
            overrides[key] = value
    config = config.replace(train=overrides)
    check_compatible(manifest, config, records)
    for split in ("train", "val"):
        if manifest["splits"].get(split, {}).get("count", 0) == 0:
            raise ValueError(f"{records}: the {split} split is empty; a search needs both "
                             f"train and val")
    points = grid_points(space_spec) if tuner == "grid" else None
    if max_trials is None:
        max_trials = points if tuner == "grid" else 10
    identity = _identity(space_spec, tuner, objective)

    environment = {}
    if role is not None:
        host, port = _parse_oracle(oracle)
        environment = {"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port),
                       "KERASTUNER_TUNER_ID": "chief" if role == "chief"
                       else f"tuner{worker_id}"}
        if role == "worker":
            # Also keeps workers from touching the folder before the chief has reset it.
            _wait_for_chief(host, port, connect_timeout_s)
    with _environment(environment):
        return _search(records=records, out=out, manifest=manifest, config=config,
                       space_spec=space_spec, tuner=tuner, objective=objective,
                       identity=identity, grid_points=points, max_trials=max_trials,
                       seed=seed, resume=resume, is_worker=role == "worker",
                       max_consecutive_failed_trials=max_consecutive_failed_trials,
                       verbose=verbose, progress=progress)


def _check_arguments(*, tuner, objective, max_trials, epochs, role, oracle, worker_id) -> None:
    """Refuse bad values of :func:`tune`'s plain arguments, one line each."""
    if tuner not in TUNERS:
        raise ValueError(f"--tuner: expected one of {list(TUNERS)}, received {tuner!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"--objective: expected one of {sorted(OBJECTIVES)}, received "
                         f"{objective!r}")
    if max_trials is not None and max_trials < 1:
        raise ValueError(f"--max-trials: expected a positive integer, received {max_trials}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs: expected a positive integer, received {epochs}")
    if role not in (None, "chief", "worker"):
        raise ValueError(f"--role: expected chief or worker, received {role!r}")
    if role is not None and oracle is None:
        raise ValueError(f"--role {role}: expected --oracle HOST:PORT of the chief")
    if role == "worker" and (worker_id is None or worker_id < 0):
        raise ValueError(f"--role worker: expected --worker-id 0, 1, ..., received "
                         f"{worker_id!r}")


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set KerasTuner's distribution variables for one search, then restore them."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _search(*, records, out, manifest, config, space_spec, tuner, objective, identity,
            grid_points, max_trials, seed, resume, is_worker, max_consecutive_failed_trials,
            verbose, progress):
    """The body of :func:`tune` once its inputs are checked (under the role's variables)."""
    if resume and not is_worker:
        _check_resume(out, identity)
    if not resume and not is_worker:
        for name in ("results.csv", "results.md", "objective.png", "val_f1_per_epoch.png",
                     "best_config.json", "trial_starts.jsonl"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "best_run", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    if not is_worker:
        atomic_write_text(out / "search.json", json.dumps(
            {"format": SEARCH_FORMAT, **identity, "grid_points": grid_points,
             "max_trials": max_trials, "seed": seed, "records": str(records),
             "base_config": config.to_dict()},
            indent=2))

    _cli.set_seed(seed)
    import keras_tuner

    from jetkeras import tuners  # KerasTuner and its patches: only when a search starts

    tuners.check_version()
    hypermodel = tuners.JetHyperModel(space=space_spec, base_config=config, records=records,
                                      objective=objective, manifest=manifest)
    hyperparameters = keras_tuner.HyperParameters()
    for spec in space_spec["hyperparameters"]:
        declare(hyperparameters, spec, hypermodel.keys)
    oracle_object = tuners.make_oracle(
        tuner, objective=objective, max_trials=max_trials, epochs=config.train.epochs,
        seed=seed, hyperparameters=hyperparameters,
        max_consecutive_failed_trials=max_consecutive_failed_trials)
    search_tuner = tuners.make_tuner(tuner, oracle=oracle_object, hypermodel=hypermodel,
                                     directory=out, project_name=PROJECT,
                                     # Workers never reset the shared folder; the chief does.
                                     overwrite=not resume and not is_worker)
    search_tuner.progress = progress
    stopped_by_failures = None
    try:
        search_tuner.search(verbose=verbose)
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        stopped_by_failures = str(error).splitlines()[0]
    except KeyboardInterrupt:
        from jetkeras.tuners import TRIAL_RECORD_FILE

        # KerasTuner saves the oracle after each trial; the one under way reruns.
        finished = len(list((out / PROJECT).glob(f"trial_*/{TRIAL_RECORD_FILE}")))
        raise _cli.Interrupted(f"after {finished} finished trial execution(s)",
                               f"the search state is kept in {out / PROJECT}") from None
    if is_worker:
        return {"trials": [], "best_config": None, "best_run": None, "out": str(out)}
    result = write_results(out=out, tuner=search_tuner, hypermodel=hypermodel,
                           space=space_spec, objective=objective, records=records,
                           manifest=manifest)
    if stopped_by_failures:
        errors = [row["error"] for row in result["trials"] if row["error"]]
        raise ValueError(f"{out}: search stopped, {stopped_by_failures.lower().rstrip('.')} "
                         f"(last error: {errors[-1] if errors else 'unknown'}); results so "
                         f"far in {out / 'results.md'}")
    return result


# ============================================================================ results
def _error_line(message: str | None) -> str:
    """The exception line of a KerasTuner trial message (a formatted traceback)."""
    if not message:
        return ""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~", "Traceback", "During handling",
                                "The above exception")) and ":" in line:
            return line
    return lines[-1] if lines else ""


def _trial_rows(oracle, space, objective, out: Path) -> list[dict[str, Any]]:
    from jetkeras.tuners import TRIAL_RECORD_FILE

    names = [spec["name"] for spec in space["hyperparameters"]]
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        values = trial.hyperparameters.values
        record_path = out / PROJECT / f"trial_{trial_id}" / TRIAL_RECORD_FILE
        record = read_trial_record(record_path) if record_path.is_file() else {}
        seconds, history = record.get("seconds"), record.get("history", {})
        score = trial.score if trial.status == "COMPLETED" else None
        row = {"trial_id": trial_id, "status": trial.status,
               objective: None if score is None or not math.isfinite(score) else float(score),
               # best_step counts from this fit's first epoch (Hyperband continues runs).
               "best_epoch": None if trial.best_step is None or score is None
               else int(trial.best_step) + 1 + int(values.get("tuner/initial_epoch", 0)),
               "epochs_run": len(history.get("val_loss", [])),
               "seconds": None if seconds is None else round(seconds, 2)}
        for name in names:
            row[name] = values.get(name)
        for name, value in values.items():
            if name.startswith("tuner/"):
                row[name] = value
        row["error"] = _error_line(trial.message) if trial.status != "COMPLETED" else ""
        row["_history"] = history
        rows.append(row)
    sign = -1.0 if OBJECTIVES[objective] == "max" else 1.0
    rows.sort(key=lambda r: (r[objective] is None,
                             sign * r[objective] if r[objective] is not None else 0.0,
                             r["trial_id"]))
    return rows


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _write_tables(out: Path, rows: list[dict[str, Any]]) -> None:
    # The union of the keys, in first-seen order: Hyperband adds tuner/* to some rows.
    columns = union_columns(rows, first=["trial_id"])
    write_csv(out / "results.csv", rows, columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(row.get(key)) for key in columns) + " |"
              for row in rows]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")


def _plot(out: Path, rows: list[dict[str, Any]], objective: str, space_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(rows, key=lambda r: r["trial_id"])
    figure, axis = plt.subplots(figsize=(7, 3.5))
    done = [(i, r[objective]) for i, r in enumerate(ordered) if r[objective] is not None]
    failed = [i for i, r in enumerate(ordered) if r[objective] is None]
    if done:
        axis.plot([i for i, _ in done], [v for _, v in done], "o", label="completed")
    if failed:
        bottom = min([v for _, v in done], default=0.0)
        axis.plot(failed, [bottom] * len(failed), "x", color="red", label="failed")
    axis.set_xticks(range(len(ordered)), [r["trial_id"] for r in ordered], rotation=90,
                    fontsize=7)
    axis.set_xlabel("trial")
    axis.set_ylabel(f"best {objective}")
    axis.set_title(f"{space_name}: {objective} per trial")
    axis.legend(fontsize=7)
    figure.tight_layout()
    _save_figure(figure, out / "objective.png")

    figure, axis = plt.subplots(figsize=(7, 4))
    for row in ordered:
        f1 = row["_history"].get("val_f1", [])
        if f1:
            axis.plot(range(1, len(f1) + 1), f1, marker=".", label=f"trial {row['trial_id']}")
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation F1 (threshold 0.5)")
    axis.set_title(f"{space_name}: validation F1 per epoch")
    if axis.lines and len(ordered) <= 20:
        axis.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    _save_figure(figure, out / "val_f1_per_epoch.png")
    plt.close("all")


def _save_figure(figure, path: Path) -> None:
    with atomic_output(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110)


def _write_best_run(out: Path, trial, config: JetConfig, records: Path, manifest,
                    history: dict[str, list[float]], tuner) -> Path:
    """A run folder of the best trial's checkpoint (see the module docstring)."""
    import keras

    from jetkeras.models import build_model, compile_model
    from jetkeras.pipeline import make_dataset
    from jetkeras.train import predict_probabilities
    from jetkeras.tuners import checkpoint_path

    keras.backend.clear_session()
    model = build_model(config)
    steps = max(1, manifest["splits"]["train"]["count"] // config.train.batch_size)
    compile_model(model, config, steps_per_epoch=steps)
    # Build the optimiser's slots first so the checkpoint's optimizer state loads too.
    model.optimizer.build(model.trainable_variables)
    model.load_weights(checkpoint_path(tuner, trial.trial_id))
    run = out / "best_run"
    with staged_folder(run) as staging:
        config.to_json(staging / runs.CONFIG_FILE)
        atomic_write_text(staging / runs.NORMALISATION_FILE,
                          json.dumps(runs.run_normalisation(manifest, config), indent=2))
        model.save(staging / runs.MODEL_FILE)
        atomic_write_text(staging / runs.HISTORY_FILE, json.dumps(history, indent=1))
        val_data = make_dataset(records, "val", config, training=False)
        probabilities, labels = predict_probabilities(model, val_data)
        runs.finish_run(staging, config, labels, probabilities, trial_id=trial.trial_id)
    return run


def write_results(*, out, tuner, hypermodel, space, objective, records, manifest):
    """Write results.csv/.md, the two figures, best_config.json and best_run/."""
    rows = _trial_rows(tuner.oracle, space, objective, out)
    _write_tables(out, rows)
    if rows:
        _plot(out, rows, objective, space["name"])
    best = [row for row in rows if row["status"] == "COMPLETED" and row[objective] is not None]
    best_config = best_run = None
    if best:
        trial = tuner.oracle.trials[best[0]["trial_id"]]
        best_config = hypermodel.config(trial.hyperparameters.copy())
        best_config.to_json(out / "best_config.json")
        best_run = _write_best_run(out, trial, best_config, Path(records), manifest,
                                   best[0]["_history"], tuner)
    public = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    return {"trials": public, "best_config": best_config,
            "best_run": None if best_run is None else str(best_run), "out": str(out)}


# ============================================================================ CLI
def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "tune",
        "Search hyperparameters with KerasTuner (grid, random, Bayesian or Hyperband) over a "
        "search-space JSON of JetConfig keys; write every trial, results.md and the best "
        "config as best_config.json. An interrupted search continues with --resume.",
        ["--records tfrecords/seed --space tuning/seed_grid.json --tuner grid "
         "--out tuning/runs/seed_grid",
         "--records tfrecords/synthetic --space tuning/architecture.json --tuner random "
         "--max-trials 20 --epochs 15 --out tuning/runs/arch"])
    parser.add_argument("--records", required=True, type=_cli.existing_folder,
                        help="records folder (python -m jetkeras."
                             "build_records); its train and val splits are used")
    parser.add_argument("--space", required=True, type=_cli.existing_file,
                        help="search-space JSON, e.g. "
                             "tuning/seed_grid.json")
    parser.add_argument("--tuner", required=True, choices=TUNERS, help="search algorithm; required")
    parser.add_argument("--out", required=True, help="output folder, e.g. tuning/runs/<name>")
    parser.add_argument("--max-trials", type=_cli.positive_int,
                        help="trials at most; default: the grid "
                             "size for grid, 10 for random/bayesian (hyperband: set by --epochs)")
    parser.add_argument("--epochs", type=_cli.positive_int,
                        help="epochs per trial (hyperband: the most "
                             "per trial); default the space's train.epochs")
    parser.add_argument("--objective", default="val_auc", choices=sorted(OBJECTIVES),
                        help="validation metric to optimise (loss minimised, AUC/F1 "
                             "maximised); default val_auc")
    _cli.add_seed_flag(parser)
    parser.add_argument("--resume", action="store_true", help="continue the search in --out "
                        "(finished trials kept); default: start it again")
    parser.add_argument("--base-config", type=_cli.existing_file,
                        help="JetConfig JSON the space applies to; default "
                             "the built-in defaults")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"),
                        help="compute dtype of every trial; default the space's or float32")
    parser.add_argument("--jit", choices=("auto", "on", "off"),
                        help="XLA for every trial (auto = on GPU only); default the space's")
    parser.add_argument("--role", choices=("chief", "worker"),
                        help="distributed search: chief serves the oracle, workers train; "
                             "default: one process does both")
    parser.add_argument("--oracle", help="HOST:PORT of the chief's oracle (with --role), "
                        "e.g. 127.0.0.1:8000; required with --role")
    parser.add_argument("--worker-id", type=_cli.non_negative_int,
                        help="this worker's number 0, 1, ... "
                             "(KERASTUNER_TUNER_ID tuner<N>); required with --role worker")
    parser.add_argument("--connect-timeout", type=_cli.positive_float, default=60.0,
                        help="seconds a worker waits for the chief before failing; default 60")
    parser.add_argument("--max-failures", type=_cli.positive_int, default=3,
                        help="stop after this many failed trials in a row; default 3")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="Keras fit verbosity; default 0")
    return parser


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        base = JetConfig.from_json(args.base_config) if args.base_config else None
        result = tune(records=args.records, space=args.space, tuner=args.tuner, out=args.out,
                      max_trials=args.max_trials, epochs=args.epochs,
                      objective=args.objective, seed=args.seed, resume=args.resume,
                      base_config=base, precision=args.precision, jit=args.jit,
                      role=args.role, oracle=args.oracle, worker_id=args.worker_id,
                      connect_timeout_s=args.connect_timeout,
                      max_consecutive_failed_trials=args.max_failures,
                      verbose=args.verbose)
        if result["trials"]:
            done = sum(row["status"] == "COMPLETED" for row in result["trials"])
            print(f"tune: {done}/{len(result['trials'])} trials completed; results in "
                  f"{Path(args.out) / 'results.md'}; best run {result['best_run']}",
                  file=sys.stderr)

    def resume() -> str:
        out = Path(args.out)
        saved = (out / "search.json").is_file() and (out / PROJECT / "oracle.json").is_file()
        if args.role == "worker" or not saved:  # a worker rejoins with the same command
            return _cli.resume_command("tune", argv)
        return _cli.resume_command("tune", argv, add=["--resume"])

    return _cli.run_main(run, "tune", resume=resume, out=args.out)


if __name__ == "__main__":
    raise SystemExit(main())
