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
``best_run/``           a run folder (``load_run`` / ``predict``) of the best trial
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
import dataclasses
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import time
import typing
from pathlib import Path
from typing import Any

from jetkeras import _cli
from jetkeras._files import atomic_output
from jetkeras.config import (
    MODEL_PRESETS,
    DataConfig,
    JetConfig,
    ModelConfig,
    TrainConfig,
    atomic_write_text,
    model_preset,
)

__all__ = [
    "OBJECTIVES",
    "TUNERS",
    "apply_values",
    "config_keys",
    "load_space",
    "main",
    "read_search_record",
    "read_trial_record",
    "tune",
    "write_results",
]

TUNERS = ("grid", "random", "bayesian", "hyperband")
# Objective -> direction. val_loss is minimised, the others maximised.
OBJECTIVES = {"val_auc": "max", "val_f1": "max", "val_loss": "min"}
PROJECT = "tuner"
SEARCH_FORMAT = "jetkeras-search/1"  # search.json; a file without "format" is version 1
TRIAL_FORMAT = "jetkeras-trial/1"  # tuner/trial_<id>/jetkeras.json; likewise
_SAMPLINGS = ("linear", "log", "reverse_log")
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# ============================================================================ space
def config_keys() -> dict[str, Any]:
    """Every dotted JetConfig key and its type hint, e.g. ``{"train.epochs": int, ...}``."""
    keys = {}
    for section, klass in _SECTIONS.items():
        hints = typing.get_type_hints(klass)
        for field_ in dataclasses.fields(klass):
            keys[f"{section}.{field_.name}"] = hints[field_.name]
    return keys


def _is_list_key(hint) -> bool:
    return typing.get_origin(hint) is tuple


def _split_changes(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"train.epochs": 3}`` -> ``{"train": {"epochs": 3}}``."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = key.split(".", 1)
        changes.setdefault(section, {})[name] = value
    return changes


def apply_values(config: JetConfig, values: dict[str, Any], source: str = "space") -> JetConfig:
    """Return ``config`` with dotted-key ``values`` applied (a ``model.preset`` first).

    Parameters
    ----------
    config : JetConfig
    values : dict
        Dotted JetConfig keys to values; list-valued keys take lists (or their JSON text,
        as KerasTuner stores choices of lists).
    source : str
        Named in error messages (the space file).
    """
    values = dict(values)
    keys = config_keys()
    for key, value in values.items():
        if key not in keys:
            raise ValueError(f"{source}: unknown key `{key}`; valid keys are {sorted(keys)}")
        if _is_list_key(keys[key]) and isinstance(value, str):
            values[key] = json.loads(value)
    preset = values.pop("model.preset", None)
    if preset is not None and preset in MODEL_PRESETS:
        expanded = dataclasses.asdict(model_preset(preset, arch=config.model.arch))
        config = config.replace(model=expanded)
    elif preset is not None:
        values["model.preset"] = preset  # a free label such as "custom"
    try:
        return config.replace(**_split_changes(values))
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def _check_number(source, name, spec, field_, integer):
    value = spec.get(field_)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValueError(
            f"{source}: hyperparameter `{name}` expected `{field_}` "
            f"{'an integer' if integer else 'a number'}, received {value!r}"
        )
    return value


def _validate_hyperparameter(source: str, spec: Any, keys: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ValueError(f"{source}: each hyperparameter must be an object, received {spec!r}")
    name = spec.get("name")
    if name not in keys:
        raise ValueError(f"{source}: unknown key `{name}`; valid keys are {sorted(keys)}")
    hint = keys[name]
    kind = spec.get("type")
    allowed = {"choice": {"values"}, "float": {"min", "max", "step", "sampling"},
               "int": {"min", "max", "step", "sampling"}}
    if kind not in allowed:
        raise ValueError(f"{source}: hyperparameter `{name}` expected `type` one of "
                         f"{sorted(allowed)}, received {kind!r}")
    extra = sorted(set(spec) - allowed[kind] - {"name", "type"})
    if extra:
        raise ValueError(f"{source}: hyperparameter `{name}` of type {kind} does not take "
                         f"{extra}; expected keys {sorted(allowed[kind])}")
    spec = dict(spec)
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{source}: hyperparameter `{name}` expected a non-empty list "
                             f"`values`, received {values!r}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ValueError(f"{source}: hyperparameter `{name}` lists a value twice: "
                             f"{values!r}")
        if hint is float:
            values = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                      for v in values]
        spec["values"] = values
        return spec
    if hint not in (int, float) or (kind == "float" and hint is not float) or (
            kind == "int" and hint is not int):
        raise ValueError(f"{source}: hyperparameter `{name}` is a {kind} range but config key "
                         f"`{name}` holds {getattr(hint, '__name__', hint)}; use a `choice`")
    low = _check_number(source, name, spec, "min", kind == "int")
    high = _check_number(source, name, spec, "max", kind == "int")
    if not low < high:
        raise ValueError(f"{source}: hyperparameter `{name}` expected min < max, received "
                         f"min={low!r}, max={high!r}")
    sampling = spec.setdefault("sampling", "linear")
    if sampling not in _SAMPLINGS:
        raise ValueError(f"{source}: hyperparameter `{name}` expected `sampling` one of "
                         f"{list(_SAMPLINGS)}, received {sampling!r}")
    if sampling != "linear" and low <= 0:
        raise ValueError(f"{source}: hyperparameter `{name}` with {sampling} sampling expected "
                         f"min > 0, received min={low!r}")
    if "step" in spec:
        step = _check_number(source, name, spec, "step", kind == "int")
        if step <= 0:
            raise ValueError(f"{source}: hyperparameter `{name}` expected step > 0, received "
                             f"{step!r}")
    return spec


def load_space(path: str | os.PathLike, *, base: JetConfig | None = None) -> dict[str, Any]:
    """Read and validate a search-space JSON file.

    Every name must be a dotted JetConfig key; every fixed value and every choice value
    is checked by building a JetConfig with it, so a value the config would refuse is
    refused here, naming the file and the key.

    Parameters
    ----------
    path : path
        The space file (``tuning/<name>.json``).
    base : JetConfig, optional
        The config the values apply to (default ``JetConfig()``).

    Returns
    -------
    dict
        ``name``, ``fixed`` (dict), ``hyperparameters`` (list of dicts with ``name``,
        ``type`` and ``values`` or ``min``/``max``/``step``/``sampling``), ``path`` and
        ``sha256`` (of the file's bytes).
    """
    path = Path(path)
    space = _read_json(path, "search space file")
    source = str(path)
    if not isinstance(space, dict):
        raise ValueError(f"{source}: expected a JSON object with `name`, `fixed` and "
                         f"`hyperparameters`, received {type(space).__name__}")
    unknown = sorted(set(space) - {"name", "description", "fixed", "hyperparameters"})
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {unknown}; expected name, "
                         f"description, fixed, hyperparameters")
    if not isinstance(space.get("name"), str) or not space["name"]:
        raise ValueError(f"{source}: expected a non-empty string `name`, received "
                         f"{space.get('name')!r}")
    fixed = space.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ValueError(f"{source}: `fixed` must be an object of dotted config keys, "
                         f"received {type(fixed).__name__}")
    hyperparameters = space.get("hyperparameters")
    if not isinstance(hyperparameters, list) or not hyperparameters:
        raise ValueError(f"{source}: expected a non-empty list `hyperparameters`, received "
                         f"{hyperparameters!r}")
    keys = config_keys()
    base = base or JetConfig()
    configured = apply_values(base, fixed, source)  # also names unknown fixed keys
    specs, seen = [], set()
    for spec in hyperparameters:
        spec = _validate_hyperparameter(source, spec, keys)
        name = spec["name"]
        if name in seen:
            raise ValueError(f"{source}: hyperparameter `{name}` is listed twice")
        if name in fixed:
            raise ValueError(f"{source}: key `{name}` is both fixed and searched")
        seen.add(name)
        # Each choice value, and each end of a range, must make a valid config.
        probes = spec["values"] if spec["type"] == "choice" else [spec["min"], spec["max"]]
        for value in probes:
            apply_values(configured, {name: value}, source)
        specs.append(spec)
    return {"name": space["name"], "fixed": fixed, "hyperparameters": specs,
            "path": source, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _declare(hp, spec: dict[str, Any], keys: dict[str, Any]):
    """Register one hyperparameter on ``hp`` (KerasTuner) and return its current value."""
    name = spec["name"]
    if spec["type"] == "choice":
        values = spec["values"]
        if _is_list_key(keys[name]):
            # KerasTuner choices hold scalars only: a list is carried as its JSON text.
            values = [json.dumps(list(v)) for v in values]
        return hp.Choice(name, values)
    if spec["type"] == "int":
        return hp.Int(name, spec["min"], spec["max"], step=spec.get("step"),
                      sampling=spec["sampling"])
    return hp.Float(name, float(spec["min"]), float(spec["max"]), step=spec.get("step"),
                    sampling=spec["sampling"])


def _grid_check(space: dict[str, Any]) -> int:
    """Refuse a grid over continuous ranges; return the number of grid points."""
    points = 1
    for spec in space["hyperparameters"]:
        if spec["type"] == "choice":
            points *= len(spec["values"])
            continue
        if "step" not in spec:
            raise ValueError(
                f"--tuner grid: hyperparameter `{spec['name']}` in {space['path']} is a "
                f"continuous {spec['type']} range without `step`; give it a `step`, make it "
                f"a `choice`, or use --tuner random, bayesian or hyperband"
            )
        points *= len(_hyperparameters_values(spec))
    return points


def _hyperparameters():
    import keras_tuner

    return keras_tuner.HyperParameters()


def _hyperparameters_values(spec: dict[str, Any]) -> list:
    hp = _hyperparameters()
    _declare(hp, spec, config_keys())
    return list(hp.space[0].values)


# ============================================================================ KerasTuner
def _keras_tuner_classes():
    """The KerasTuner subclasses, defined lazily so importing jetkeras.tune stays cheap."""
    import keras
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module
    from keras_tuner.src.tuners import gridsearch

    class ResumeSafeOracle:
        """Mixin: on reload, never retry a trial whose own file says it already ended.

        KerasTuner writes ``trial.json`` before ``oracle.json`` at the end of a trial, so a
        kill between the two left the finished trial listed as ongoing, and the reload
        queued it for a rerun.
        """

        def reload(self):
            super().reload()
            ended = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)
            self._retry_queue = [trial_id for trial_id in self._retry_queue
                                 if self.trials[trial_id].status not in ended]
            for trial_id in list(self.trials):
                if self.trials[trial_id].status in ended and trial_id not in self.end_order:
                    self.end_order.append(trial_id)

    class ResumableGridSearchOracle(ResumeSafeOracle, kt.oracles.GridSearchOracle):
        """GridSearchOracle whose grid order survives a restart (keras-tuner#1055).

        KerasTuner 1.4.8 keeps the grid order (``_ordered_ids``, a linked list of trial
        ids) and the trials to continue from (``_populate_next``) in memory only; a
        reloaded grid has neither and stops or fails. Both are saved in ``oracle.json``.
        """

        def get_state(self):
            state = super().get_state()
            order, index = [], self._ordered_ids._next_index[None]
            while index is not None:  # the head is the successor of None
                order.append(self._ordered_ids._memory[index])
                index = self._ordered_ids._next_index[index]
            state["grid_order"] = order
            state["grid_populate_next"] = list(self._populate_next)
            return state

        def set_state(self, state):
            super().set_state(state)
            self._ordered_ids = gridsearch.LinkedList()
            for trial_id in state.get("grid_order", []):
                self._ordered_ids.insert(trial_id)
            self._populate_next = list(state.get("grid_populate_next", []))

        @kt.synchronized
        def end_trial(self, trial):
            super().end_trial(trial)
            # The parent appends to _populate_next after its save: save again so a kill
            # now does not lose where the grid continues.
            self.save()

    class RandomOracle(ResumeSafeOracle, kt.oracles.RandomSearchOracle):
        pass

    class BayesianOracle(ResumeSafeOracle, kt.oracles.BayesianOptimizationOracle):
        pass

    class HyperbandOracle(ResumeSafeOracle, kt.oracles.HyperbandOracle):
        pass

    class JetHyperModel(kt.HyperModel):
        """Maps ``hp`` onto the one JetConfig and builds with jetkeras.models."""

        def __init__(self, *, space, base_config, records, objective, manifest):
            super().__init__(name=space["name"], tunable=True)
            self.space = space
            self.base_config = base_config
            self.records = Path(records)
            self.objective = objective
            self.manifest = manifest
            self.keys = config_keys()

        def config(self, hp) -> JetConfig:
            values = {spec["name"]: _declare(hp, spec, self.keys)
                      for spec in self.space["hyperparameters"]}
            return apply_values(self.base_config, values, self.space["path"])

        def steps_per_epoch(self, config: JetConfig) -> int:
            from jetkeras.pipeline import steps_per_epoch

            return steps_per_epoch(self.manifest, config.train.batch_size, self.records,
                                   flag="train.batch_size")

        def build(self, hp):
            from jetkeras.models import build_model, compile_model

            # Without this every trial's graph stays alive (keras-tuner#395).
            keras.backend.clear_session()
            config = self.config(hp)
            steps = self.steps_per_epoch(config)  # fails before the (costly) build
            return compile_model(build_model(config), config, steps_per_epoch=steps)

        def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0,
                verbose=0, **kwargs):
            from jetkeras.pipeline import make_dataset

            config = self.config(hp)
            steps = self.steps_per_epoch(config)
            # The batch size comes from hp, so the datasets are made per trial.
            train_data = make_dataset(self.records, "train", config).repeat()
            val_data = make_dataset(self.records, "val", config, training=False)
            callbacks = list(callbacks or []) + [
                keras.callbacks.EarlyStopping(
                    monitor=self.objective, mode=OBJECTIVES[self.objective],
                    patience=config.train.early_stopping_patience),
                keras.callbacks.TerminateOnNaN(),
            ]
            if config.train.schedule == "plateau":
                callbacks.append(keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=0.1,
                    patience=max(2, config.train.epochs // 10)))
            return model.fit(train_data, validation_data=val_data,
                             epochs=config.train.epochs if epochs is None else epochs,
                             initial_epoch=initial_epoch, steps_per_epoch=steps,
                             callbacks=callbacks, verbose=verbose)

    class JetTunerMixin:
        """Logs each trial execution and its wall time; no space-probing model build."""

        def _populate_initial_space(self):
            # The oracle is given the whole space up front and the spaces have no
            # conditional entries, so KerasTuner's probing builds are not needed.
            hp = self.oracle.get_space()
            self.hypermodel.declare_hyperparameters(hp)
            self.oracle.update_space(hp)

        def run_trial(self, trial, *args, **kwargs):
            out = Path(self.directory)
            line = json.dumps({"trial_id": trial.trial_id, "tuner_id": self.tuner_id,
                               "pid": os.getpid(), "time": time.time()})
            with open(out / "trial_starts.jsonl", "a") as handle:
                handle.write(line + "\n")
            start = time.perf_counter()
            results = super().run_trial(trial, *args, **kwargs)
            # KerasTuner keeps only the best epoch's metrics; the per-epoch history (for
            # the F1-per-epoch figure and best_run/history.json) is kept here.
            last = results[-1] if isinstance(results, list) and results else results
            history = getattr(last, "history", {}) or {}
            history = {key: [float(value) for value in values]
                       for key, values in history.items()}
            atomic_write_text(Path(self.get_trial_dir(trial.trial_id)) / "jetkeras.json",
                              json.dumps({"format": TRIAL_FORMAT,
                                          "seconds": time.perf_counter() - start,
                                          "tuner_id": self.tuner_id, "history": history}))
            return results

        def search(self, *args, **kwargs):
            from keras_tuner.src.distribute import utils as distribute_utils

            if distribute_utils.is_chief_oracle():
                self.save()
                _serve_oracle(self.oracle)
                return
            super().search(*args, **kwargs)

    class JetTuner(JetTunerMixin, kt.Tuner):
        pass

    class JetHyperband(JetTunerMixin, kt.tuners.Hyperband):
        def __init__(self, oracle, **kwargs):
            # Hyperband's own __init__ would build its own oracle; ours is given.
            kt.Tuner.__init__(self, oracle=oracle, **kwargs)

    return {"grid": ResumableGridSearchOracle, "random": RandomOracle,
            "bayesian": BayesianOracle, "hyperband": HyperbandOracle,
            "hypermodel": JetHyperModel, "tuner": JetTuner, "hyperband_tuner": JetHyperband}


def _serve_oracle(oracle, poll_s: float = 0.5) -> None:
    """The chief's gRPC oracle server, as keras_tuner's ``start_server``, polling faster.

    KerasTuner 1.4.8 re-checks every 20 s whether the last workers have finished; this
    loop checks every ``poll_s`` seconds so the chief exits promptly.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    if server.add_insecure_port(address) == 0:
        raise ValueError(f"--oracle {address}: cannot listen there (port in use?)")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_s)
    finally:
        server.stop(grace=2.0)


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
    record = _state_version(path, _read_json(path, "search record"), SEARCH_FORMAT, fix)
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
    path = Path(path)
    fix = f"delete {path.parent.name}/ and rerun the search with --resume, or fix the file"
    record = _state_version(path, _read_json(path, "trial record"), TRIAL_FORMAT, fix)
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


def _make_oracle(classes, tuner, *, objective, max_trials, epochs, seed, hyperparameters,
                 max_consecutive_failed_trials):
    import keras_tuner as kt

    common = {"objective": kt.Objective(objective, OBJECTIVES[objective]), "seed": seed,
              "hyperparameters": hyperparameters, "tune_new_entries": False,
              "allow_new_entries": False,
              "max_consecutive_failed_trials": max_consecutive_failed_trials}
    if tuner == "hyperband":
        return classes["hyperband"](max_epochs=epochs, factor=3, hyperband_iterations=1,
                                    **common)
    return classes[tuner](max_trials=max_trials, **common)


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

    Returns
    -------
    dict
        ``trials`` (list of row dicts, best first), ``best_config`` (JetConfig or None),
        ``best_run`` (path or None), ``out``; a worker returns ``trials`` empty.
    """
    _cli.quiet_tensorflow()
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
    grid_points = _grid_check(space_spec) if tuner == "grid" else None
    if max_trials is None:
        max_trials = grid_points if tuner == "grid" else 10
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
                       identity=identity, grid_points=grid_points, max_trials=max_trials,
                       seed=seed, resume=resume, is_worker=role == "worker",
                       max_consecutive_failed_trials=max_consecutive_failed_trials,
                       verbose=verbose)


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
            verbose):
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
             "max_trials": max_trials,
             "seed": seed, "records": str(records), "base_config": config.to_dict()},
            indent=2))

    _cli.set_seed(seed)
    classes = _keras_tuner_classes()
    hypermodel = classes["hypermodel"](space=space_spec, base_config=config, records=records,
                                       objective=objective, manifest=manifest)
    hyperparameters = _hyperparameters()
    for spec in space_spec["hyperparameters"]:
        _declare(hyperparameters, spec, hypermodel.keys)
    oracle_object = _make_oracle(classes, tuner, objective=objective, max_trials=max_trials,
                                 epochs=config.train.epochs, seed=seed,
                                 hyperparameters=hyperparameters,
                                 max_consecutive_failed_trials=max_consecutive_failed_trials)
    tuner_class = classes["hyperband_tuner" if tuner == "hyperband" else "tuner"]
    search_tuner = tuner_class(oracle=oracle_object, hypermodel=hypermodel,
                               directory=str(out), project_name=PROJECT,
                               # Workers never reset the shared folder; the chief does.
                               overwrite=not resume and not is_worker)
    stopped_by_failures = None
    try:
        search_tuner.search(verbose=verbose)
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        stopped_by_failures = str(error).splitlines()[0]
    except KeyboardInterrupt:
        # KerasTuner saves the oracle after each trial; the one under way reruns.
        finished = len(list((out / PROJECT).glob("trial_*/jetkeras.json")))
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
    names = [spec["name"] for spec in space["hyperparameters"]]
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        values = trial.hyperparameters.values
        record_path = out / PROJECT / f"trial_{trial_id}" / "jetkeras.json"
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
    import csv
    import io

    columns = ["trial_id"]
    for row in rows:  # the union, in first-seen order (Hyperband adds tuner/* to some)
        columns += [key for key in row if key not in columns and not key.startswith("_")]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    atomic_write_text(out / "results.csv", buffer.getvalue())
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
    from sklearn.metrics import roc_auc_score

    from jetkeras.metrics import choose_threshold
    from jetkeras.models import build_model, compile_model
    from jetkeras.pipeline import make_dataset
    from jetkeras.train import FINISHED_MARKER, predict_probabilities, run_normalisation

    run = out / "best_run"
    staging = out / f".best_run.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    keras.backend.clear_session()
    model = build_model(config)
    steps = max(1, manifest["splits"]["train"]["count"] // config.train.batch_size)
    compile_model(model, config, steps_per_epoch=steps)
    # Build the optimiser's slots first so the checkpoint's optimizer state loads too.
    model.optimizer.build(model.trainable_variables)
    model.load_weights(tuner._get_checkpoint_fname(trial.trial_id))
    config.to_json(staging / "config.json")
    atomic_write_text(staging / "normalisation.json",
                      json.dumps(run_normalisation(manifest, config), indent=2))
    model.save(staging / "model.keras")
    atomic_write_text(staging / "history.json", json.dumps(history, indent=1))
    val_data = make_dataset(records, "val", config, training=False)
    probabilities, labels = predict_probabilities(model, val_data)
    choice = choose_threshold(labels, probabilities, metric=config.train.threshold_metric,
                              target_recall=config.train.target_recall)
    choice["val_auc"] = float(roc_auc_score(labels, probabilities))
    choice["trial_id"] = trial.trial_id
    atomic_write_text(staging / FINISHED_MARKER, json.dumps(choice, indent=2))
    shutil.rmtree(run, ignore_errors=True)
    os.replace(staging, run)
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
    parser = argparse.ArgumentParser(prog="python -m jetkeras.tune",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", required=True, type=_cli.existing_folder,
                        help="records folder (train and val)")
    parser.add_argument("--space", required=True, type=_cli.existing_file,
                        help="search-space JSON, e.g. "
                             "tuning/seed_grid.json")
    parser.add_argument("--tuner", required=True, choices=TUNERS, help="search algorithm")
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
                        "(default: start it again)")
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
                        "e.g. 127.0.0.1:8000")
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

    return _cli.run_main(run, "tune", resume=resume)


if __name__ == "__main__":
    raise SystemExit(main())
