"""Search spaces for ``python -m jetkeras.tune``: the file format, its checks, its values.

A search space is a JSON file in ``tuning/`` whose every name is a dotted
:class:`~jetkeras.config.JetConfig` key (``train.learning_rate``, ``model.widths``,
``data.max_angle_deg``, ...); the format is in :mod:`jetkeras.tune`'s docstring.
:func:`load_space` reads and checks one; :func:`apply_values` maps drawn values onto the
one config; :func:`declare` registers a hyperparameter on KerasTuner's ``hp``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from pathlib import Path
from typing import Any

from jetkeras._files import read_json
from jetkeras.config import (
    MODEL_PRESETS,
    DataConfig,
    JetConfig,
    ModelConfig,
    TrainConfig,
    model_preset,
)

__all__ = [
    "OBJECTIVES",
    "apply_values",
    "config_keys",
    "declare",
    "grid_points",
    "load_space",
]

# Objective -> direction. val_loss is minimised, the others maximised.
OBJECTIVES = {"val_auc": "max", "val_f1": "max", "val_loss": "min"}
_SAMPLINGS = ("linear", "log", "reverse_log")
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


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
        expanded = dataclasses.asdict(model_preset(preset))
        config = config.replace(model=expanded)
    elif preset is not None:
        values["model.preset"] = preset  # a free label such as "custom"
    try:
        return config.replace(**_split_changes(values))
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


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
    space = read_json(path, "search space file")
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


def declare(hp, spec: dict[str, Any], keys: dict[str, Any]):
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


def grid_points(space: dict[str, Any]) -> int:
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
    declare(hp, spec, config_keys())
    return list(hp.space[0].values)
