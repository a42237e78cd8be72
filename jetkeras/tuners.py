"""The KerasTuner classes of ``python -m jetkeras.tune``, and every patch of its internals.

:mod:`jetkeras.tune` imports this module only when a search starts, so importing
``tune`` (for ``--help``, or to read a space) stays cheap.

KerasTuner 1.4 keeps some of what a resumed or distributed search needs in private
attributes; the fixes below reach into them, and nowhere else in jetkeras does:

- :class:`ResumeSafeOracle`: a finished trial is never rerun after a kill between
  KerasTuner's two writes at the end of a trial;
- :class:`ResumableGridSearchOracle`: the grid's order survives a restart
  (keras-tuner#1055);
- :func:`atomic_save_json`: KerasTuner's state files (``oracle.json``, ``tuner0.json``,
  each ``trial.json``) are written atomically, so a kill never leaves one empty;
- :func:`serve_oracle`: the chief's oracle server polls every 0.5 s, not 20 s;
- :func:`checkpoint_path`: where a trial's best weights are.

These are written for the versions in :data:`SUPPORTED_VERSIONS` (``pyproject.toml``
pins ``keras-tuner`` below the next minor release); :func:`check_version` refuses any
other before a search starts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
from keras_tuner.src.distribute import oracle_chief
from keras_tuner.src.distribute import utils as distribute_utils
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src import utils as keras_tuner_utils
from keras_tuner.src.tuners import gridsearch

from jetkeras._files import atomic_write_text
from jetkeras.config import JetConfig
from jetkeras.space import OBJECTIVES, apply_values, config_keys, declare

__all__ = [
    "SUPPORTED_VERSIONS",
    "TRIAL_FORMAT",
    "TRIAL_RECORD_FILE",
    "JetHyperModel",
    "atomic_save_json",
    "check_version",
    "checkpoint_path",
    "make_oracle",
    "make_tuner",
    "serve_oracle",
]

# Trials that count as done in the progress bar (a resumed search starts from them).
ENDED_STATUSES = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.INVALID,
                  trial_module.TrialStatus.FAILED)
TRIAL_RECORD_FILE = "jetkeras.json"  # in each trial folder: wall time and per-epoch history
TRIAL_FORMAT = "jetkeras-trial/1"  # its version; a record without "format" is version 1

# The KerasTuner releases whose internals the patches below were written and tested for:
# at least the first, below the second.
SUPPORTED_VERSIONS = ((1, 4, 7), (1, 5, 0))


def check_version(version: str | None = None) -> None:
    """Refuse a KerasTuner release outside :data:`SUPPORTED_VERSIONS` (one line).

    Parameters
    ----------
    version : str, optional
        The version to check; default the installed ``keras_tuner.__version__``.
    """
    version = kt.__version__ if version is None else version
    try:
        numbers = tuple(int(part) for part in version.split(".")[:3])
    except ValueError:
        numbers = None
    low, high = SUPPORTED_VERSIONS
    if numbers is None or not low <= numbers < high:
        raise ValueError(
            f"keras-tuner {version}: jetkeras.tune patches KerasTuner internals written "
            f"for versions >= {'.'.join(map(str, low))} and < {'.'.join(map(str, high))}; "
            f"install one (pip install 'keras-tuner>=1.4.7,<1.5')")


# ============================================================================ state files
def atomic_save_json(path, obj) -> str:
    """KerasTuner's ``utils.save_json``, written atomically; returns the JSON text.

    KerasTuner opens its state files for writing (which empties them) and then writes:
    a kill in between left an empty ``trial.json`` or ``oracle.json``, and the resumed
    search died on "Expecting value: line 1 column 1". Here a kill leaves the previous
    content. Every KerasTuner state write goes through ``utils.save_json``.
    """
    text = json.dumps(obj)
    atomic_write_text(path, text)
    return text


# Installed on import: this module is imported only when a search starts.
keras_tuner_utils.save_json = atomic_save_json


# ============================================================================ oracles
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


def make_oracle(tuner: str, *, objective, max_trials, epochs, seed, hyperparameters,
                max_consecutive_failed_trials):
    """The oracle of ``tuner`` (grid, random, bayesian or hyperband), resume-safe."""
    common = {"objective": kt.Objective(objective, OBJECTIVES[objective]), "seed": seed,
              "hyperparameters": hyperparameters, "tune_new_entries": False,
              "allow_new_entries": False,
              "max_consecutive_failed_trials": max_consecutive_failed_trials}
    if tuner == "hyperband":
        return HyperbandOracle(max_epochs=epochs, factor=3, hyperband_iterations=1,
                                    **common)
    oracles = {"grid": ResumableGridSearchOracle, "random": RandomOracle,
               "bayesian": BayesianOracle}
    return oracles[tuner](max_trials=max_trials, **common)


# ============================================================================ hypermodel, tuners
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
        values = {spec["name"]: declare(hp, spec, self.keys)
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
        from jetkeras.train import fit_callbacks

        config = self.config(hp)
        steps = self.steps_per_epoch(config)
        # The batch size comes from hp, so the datasets are made per trial.
        train_data = make_dataset(self.records, "train", config).repeat()
        val_data = make_dataset(self.records, "val", config, training=False)
        callbacks = list(callbacks or []) + fit_callbacks(
            config, monitor=self.objective, mode=OBJECTIVES[self.objective])
        return model.fit(train_data, validation_data=val_data,
                         epochs=config.train.epochs if epochs is None else epochs,
                         initial_epoch=initial_epoch, steps_per_epoch=steps,
                         callbacks=callbacks, shuffle=False,  # make_dataset shuffles
                         verbose=verbose)

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
        atomic_write_text(Path(self.get_trial_dir(trial.trial_id)) / TRIAL_RECORD_FILE,
                          json.dumps({"format": TRIAL_FORMAT,
                                      "seconds": time.perf_counter() - start,
                                      "tuner_id": self.tuner_id, "history": history}))
        return results

    progress = False  # tune sets it: a tqdm bar of trials (k of n, best so far, ETA)
    _bar = None

    def search(self, *args, **kwargs):
        if distribute_utils.is_chief_oracle():
            self.save()
            serve_oracle(self.oracle)
            return
        if distribute_utils.has_chief_oracle():
            # A worker's oracle is a gRPC client without `trials` or `max_trials`: the
            # chief keeps the count, so a worker shows no bar.
            super().search(*args, **kwargs)
            return
        from tqdm.auto import tqdm

        ended = sum(trial.status in ENDED_STATUSES for trial in self.oracle.trials.values())
        # A search runs for hours (the seed's grid): one line per trial, even at verbose 0.
        with tqdm(total=self.oracle.max_trials, initial=ended, unit="trial",
                  desc="tune: trials", disable=not self.progress, file=sys.stderr) as bar:
            self._bar = bar
            try:
                super().search(*args, **kwargs)
            finally:
                self._bar = None

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle scores the trial here
        if self._bar is None:
            return
        best = self.oracle.get_best_trials(1)
        if best and best[0].score is not None:
            name = self.oracle.objective.name
            self._bar.set_postfix_str(f"best {name} {best[0].score:.4f} "
                                      f"(trial {best[0].trial_id})", refresh=False)
        self._bar.update(1)

class JetTuner(JetTunerMixin, kt.Tuner):
    pass

class JetHyperband(JetTunerMixin, kt.tuners.Hyperband):
    def __init__(self, oracle, **kwargs):
        # Hyperband's own __init__ would build its own oracle; ours is given.
        kt.Tuner.__init__(self, oracle=oracle, **kwargs)


def serve_oracle(oracle, poll_s: float = 0.5) -> None:
    """The chief's gRPC oracle server, as keras_tuner's ``start_server``, polling faster.

    KerasTuner 1.4.8 re-checks every 20 s whether the last workers have finished; this
    loop checks every ``poll_s`` seconds so the chief exits promptly.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos

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


def make_tuner(tuner: str, *, oracle, hypermodel, directory, project_name, overwrite):
    """The tuner running ``oracle``'s trials (Hyperband's own for ``hyperband``)."""
    tuner_class = JetHyperband if tuner == "hyperband" else JetTuner
    return tuner_class(oracle=oracle, hypermodel=hypermodel, directory=str(directory),
                       project_name=project_name, overwrite=overwrite)


def checkpoint_path(tuner, trial_id: str) -> str:
    """The weights file of a trial's best epoch (KerasTuner's own checkpoint)."""
    return tuner._get_checkpoint_fname(trial_id)
