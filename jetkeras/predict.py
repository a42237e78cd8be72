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
Keras model (run folder) or the SavedModel instead; the two agree to 1e-5. What runs the
network, and how a folder becomes a :class:`~jetkeras.runtime.Predictor`, is
:mod:`jetkeras.runtime`; this module says what to predict on.

Every runtime takes frames in DN and applies the run's training normalisation itself.
Frames reach the model on its time grid, placed from their own times (a 12 s folder is
thinned, a 36 s one interpolated, with one warning), at a pixel scale it was trained on
(:mod:`jetkeras.conform`); every output is one row per cube in one schema,
``jetkeras-row/2`` (:mod:`jetkeras.rows`, ``docs/rows.md``), with quality flags
(:mod:`jetkeras.quality`). :func:`predict_cube` is the same for one cube from Python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli
from jetkeras._files import atomic_write_text, json_default, write_csv
from jetkeras.conform import ModelInput, conform
from jetkeras.io import JetkerasWarning
from jetkeras.localise import measure_window
from jetkeras.quality import VETO_FLAGS, exposure_flags, format_flags, pixel_flags
from jetkeras.rows import COLUMNS, decide, make_row, model_identity, with_event
from jetkeras.runtime import (
    RUNTIMES,
    Predictor,
    check_positive_int,
    check_threshold,
    load_predictor,
    resolve_model,
)

__all__ = [
    "format_row",
    "format_table",
    "main",
    "predict_catalogue",
    "predict_cube",
    "predict_cubes",
    "predict_records",
    "predict_timeline",
    "prepare",
    "read_input",
    "write_table",
]


def _predictor(model, *, threshold: float | None, jit: bool = False,
               runtime: str = "auto", any_channel: bool = False) -> Predictor:
    """``model`` if it is a Predictor (deciding at ``threshold``, the caller's untouched),
    else the one :func:`jetkeras.runtime.load_predictor` loads from that folder."""
    if isinstance(model, Predictor):
        return model.with_threshold(threshold, any_channel=any_channel)
    return load_predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                          any_channel=any_channel)


# ------------------------------------------------------------------------- the cubes
def read_input(source, predictor: Predictor, *, name: str | None = None):
    """Read one cube and check it against the model's channel and unit.

    Parameters
    ----------
    source : path-like, Cube, sunpy.map.MapSequence, list of sunpy Maps or numpy.ndarray
        An ``.npz`` file (seed ``arr_0`` or ``jetkeras-cube/1``), a folder of FITS frames,
        a :class:`~jetkeras.cube.Cube`, sunpy maps (one per frame), or frames in DN
        ``(T, H, W)`` (taken to be at the model's cadence).
    predictor : Predictor
        Gives the reading options (pooling, NaN policy, exposure unit) and the channel.
    name : str, optional
        What messages call the cube; default its file or source.

    Returns
    -------
    Cube
        Frames float32 ``(n, H, W)`` in the model's unit (DN, or DN/s when its config
        says ``exposure_normalise``), with the frame times when known.

    Raises
    ------
    ValueError
        Unreadable input, NaN/Inf under the reject policy, two frames at one time,
        another wavelength or instrument (unless ``predictor.any_channel``), another unit
        without exposure times: one line each.
    """
    from jetkeras.cube import Cube, check_frames
    from jetkeras.io import match_model_input, read_cube, read_maps

    data = predictor.config.data
    options = {"nan_policy": data.nan_policy, "cadence_s": None,
               "cadence_tolerance_s": data.cadence_tolerance_s, "pool": data.pool,
               "exposure_normalise": data.exposure_normalise}
    if isinstance(source, (str, os.PathLike)):
        cube = read_cube(source, **options)
    elif isinstance(source, Cube):
        cube = source
    elif isinstance(source, np.ndarray):
        name = name or "frames"
        cube = Cube(frames=check_frames(source, name, nan_policy=data.nan_policy),
                    source=name)
    else:
        cube = read_maps(source, source=name or "maps", **options)
    return match_model_input(cube, wavelength_angstrom=data.wavelength_angstrom,
                             instrument=data.instrument,
                             exposure_normalise=data.exposure_normalise,
                             any_channel=predictor.any_channel, model=predictor.source)


def prepare(source, predictor: Predictor, *, resample: bool = False,
            name: str | None = None) -> ModelInput:
    """Read a cube and put it on the model's time grid and field (:mod:`jetkeras.conform`).

    Whenever the data are changed (interpolated in time or space, padded, cropped) one
    :class:`~jetkeras.io.JetkerasWarning` says how, in one line naming the cube; thinning
    a 12 s sequence to the model's 24 s keeps real frames and says nothing.

    Parameters
    ----------
    source, predictor, name
        As :func:`read_input`.
    resample : bool
        Allow zooming to the model's pixel scale, and the volunteer-subject mode for
        half-length sequences (each frame shown twice).

    Returns
    -------
    ModelInput
        The frames on the model's grid, the windows that can be scored, and what was done.
    """
    cube = read_input(source, predictor, name=name)
    data = predictor.config.data
    name = name or cube.source or "cube"
    model_input = conform(cube, frames=predictor.frames, size=predictor.size,
                          cadence_s=data.cadence_s,
                          cadence_tolerance_s=data.cadence_tolerance_s,
                          pixel_scale_arcsec=data.field_of_view_arcsec / predictor.size,
                          resample=resample, name=name)
    if model_input.changes:
        warnings.warn(f"{name}: {'; '.join(model_input.changes)}", JetkerasWarning,
                      stacklevel=2)
    return model_input


def _window_probabilities(inputs: list[ModelInput], predictor: Predictor,
                          batch_size: int) -> list[np.ndarray]:
    """Probability of every scorable window of every input, ``batch_size`` at a time."""
    windows = [(number, start) for number, model_input in enumerate(inputs)
               for start in model_input.starts]
    probabilities = np.empty(len(windows), dtype=np.float64)
    for first in range(0, len(windows), batch_size):
        part = windows[first:first + batch_size]
        stack = np.stack([inputs[number].window(start, predictor.frames)
                          for number, start in part])
        probabilities[first:first + len(part)] = predictor.predict_proba(
            stack, batch_size=batch_size)
    split = np.cumsum([len(model_input.starts) for model_input in inputs])[:-1]
    return np.split(probabilities, split)


def _cube_flags(cube, predictor: Predictor) -> list[str]:
    """Flags of the whole cube: its exposure times, and a channel accepted on request."""
    data = predictor.config.data
    flags = exposure_flags(cube.meta.get("exposure_s"))
    recorded = cube.meta.get("wavelength_angstrom")
    instrument = str(cube.meta.get("instrument") or "")
    if (recorded not in (None, "")
            and abs(float(recorded) - float(data.wavelength_angstrom)) > 0.5) or (
            instrument and not instrument.upper().startswith(data.instrument.upper())):
        flags.append("wrong_channel")
    return flags


def _to_dn(cube, predictor: Predictor) -> float | None:
    """What turns the model's unit into DN for the range checks (None: unknown)."""
    if not predictor.config.data.exposure_normalise:
        return 1.0
    exposures = [e for e in (cube.meta.get("exposure_s") or [])
                 if isinstance(e, (int, float)) and e > 0]
    return float(np.median(exposures)) if exposures else None


def _window_rows(model_input: ModelInput, probabilities: np.ndarray,
                 predictor: Predictor, *, file: str, measure: bool = True
                 ) -> list[dict[str, Any]]:
    """One row per scored window of ``model_input`` (the timeline); each window called a
    jet is measured unless ``measure`` is False."""
    from jetkeras.io import centre_hpc

    cube = model_input.cube
    hpc_x, hpc_y = centre_hpc(cube)
    cube_flags = _cube_flags(cube, predictor)
    to_dn = _to_dn(cube, predictor)
    data = predictor.config.data
    clip_dn = float(predictor.normalisation.get("clip_dn", data.clip_dn))
    common = {
        "file": file, "windows": len(model_input.starts),
        "cadence_s": model_input.cadence_s,
        "wavelength": cube.meta.get("wavelength_angstrom"), "hpc_x": hpc_x, "hpc_y": hpc_y,
        "threshold": predictor.threshold, "model": model_identity(predictor.source),
        "runtime": predictor.runtime,
    }
    common = with_event(cube.meta, common)
    rows = []
    for number, (start, probability, flags) in enumerate(
            zip(model_input.starts, probabilities, model_input.window_flags)):
        frames = model_input.window(start, predictor.frames)
        flags = set(flags) | set(cube_flags) | set(
            pixel_flags(frames, clip_dn=clip_dn, to_dn=to_dn))
        start_s = float(model_input.offsets_s[start])
        end_s = float(model_input.offsets_s[start + predictor.frames - 1])
        predicted = decide(float(probability), predictor.threshold, flags)
        measured = (measure_window(model_input, start, data).columns()
                    if predicted and measure else {})
        rows.append(make_row(
            **common, window=number, start_s=start_s,
            start_time=model_input.time_at(start_s) or None,
            end_time=model_input.time_at(end_s) or None,
            probability=float(probability), predicted=predicted,
            quality=format_flags(flags),
            resampled=int(bool({"resampled_time", "resampled_space"} & flags)),
            **measured))
    return rows


def _summary_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of a whole cube: its highest-scoring window that no veto flag rules out
    (else its highest-scoring window)."""
    allowed = [row for row in rows if not VETO_FLAGS.intersection(row["quality"].split(";"))]
    return max(allowed or rows, key=lambda row: row["probability"])


def _cube_row(model_input: ModelInput, probabilities: np.ndarray, predictor: Predictor, *,
              file: str) -> dict[str, Any]:
    """The row of a whole cube (:func:`_summary_row`), measured when it is a jet: only
    that window is measured, not every window the cube holds."""
    row = _summary_row(_window_rows(model_input, probabilities, predictor, file=file,
                                    measure=False))
    if row["predicted"]:
        start = model_input.starts[row["window"]]
        row.update(measure_window(model_input, start, predictor.config.data).columns())
    return row


@dataclass(frozen=True)
class Figures:
    """Where to draw each jet's picture (``--figures``), and whether to write its
    per-pixel jet map beside it (``--jet-maps``, FITS)."""

    folder: Path
    jet_maps: bool = False

    def draw(self, model_input: ModelInput, rows: list[dict[str, Any]],
             predictor: Predictor) -> None:
        """A picture (and jet map) per row of ``model_input`` that is called a jet:
        ``<cube>_w<window>.png`` (``_jetmap.fits``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for row in rows:
            if row["predicted"] != 1:
                continue
            measured = measure_window(model_input, model_input.starts[row["window"]],
                                      predictor.config.data)
            name = Path(str(row["file"]).rstrip("/\\")).stem or "cube"
            stem = self.folder / f"{name}_w{row['window']:03d}"
            when = f" {row['start_time']}" if row.get("start_time") else ""
            measured.figure(stem.with_suffix(".png"),
                            title=f"{row['file']} window {row['window']}{when}: "
                                  f"P(jet) {row['probability']:.3f}")
            if self.jet_maps:
                measured.jet_map(stem.with_name(stem.name + "_jetmap.fits"))


def _predict_paths(paths: list[Path], predictor: Predictor, *, batch_size: int,
                   resample: bool, progress: bool, figures: Figures | None = None
                   ) -> list[dict[str, Any]]:
    """Read cubes ``batch_size`` at a time and predict each batch: one row per cube (and
    its picture when ``figures`` says where)."""
    from tqdm.auto import tqdm

    rows = []
    bar = tqdm(total=len(paths), unit="cube", desc="predict", file=sys.stderr,
               disable=not progress or len(paths) < 2)
    with bar:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            inputs = [prepare(path, predictor, resample=resample) for path in chunk]
            probabilities = _window_probabilities(inputs, predictor, batch_size)
            for path, model_input, scores in zip(chunk, inputs, probabilities):
                row = _cube_row(model_input, scores, predictor, file=str(path))
                if figures is not None:
                    figures.draw(model_input, [row], predictor)
                rows.append(row)
            bar.update(len(chunk))
    return rows


def predict_cube(source, *, model: str | os.PathLike | Predictor | None = None,
                 threshold: float | None = None, resample: bool = False,
                 runtime: str = "auto", any_channel: bool = False,
                 figures: str | os.PathLike | None = None) -> dict[str, Any]:
    """The row of one cube: the Python API of ``python -m jetkeras.predict CUBE``.

    The same reading, checks, time grid, flags and row as the command, for a file, a
    FITS folder, a :class:`~jetkeras.cube.Cube`, sunpy maps or an array of frames in DN::

        >>> import sunpy.map, jetkeras                                   # doctest: +SKIP
        >>> maps = sunpy.map.Map("aia304/*.fits", sequence=True)         # doctest: +SKIP
        >>> jetkeras.predict_cube(maps)["probability"]                   # doctest: +SKIP

    Parameters
    ----------
    source : path-like, Cube, sunpy maps or numpy.ndarray
        See :func:`read_input`.
    model : path-like or Predictor, optional
        Run folder, exported SavedModel folder or loaded Predictor; default the bundled
        model.
    threshold : float, optional
        Decision threshold in [0, 1]; default the model's.
    resample : bool
        See :func:`prepare`.
    runtime, any_channel
        See :func:`jetkeras.runtime.load_predictor`.
    figures : path-like, optional
        A folder: when the cube is called a jet, draw its picture there
        (:meth:`jetkeras.localise.WindowMeasurement.figure`).

    Returns
    -------
    dict
        One ``jetkeras-row/2`` row (:mod:`jetkeras.rows`): the cube's highest-scoring
        window, with ``windows`` saying how many it holds, and where it is called a jet,
        the jet's measurement (``base_row`` .. ``localisation_score``).
    """
    check_threshold(threshold)
    predictor = _predictor(resolve_model(model) if not isinstance(model, Predictor)
                           else model, threshold=threshold, runtime=runtime,
                           any_channel=any_channel)
    name = str(source) if isinstance(source, (str, os.PathLike)) else None
    model_input = prepare(source, predictor, resample=resample, name=name)
    [probabilities] = _window_probabilities([model_input], predictor, batch_size=16)
    row = _cube_row(model_input, probabilities, predictor,
                    file=name or model_input.cube.source or "frames")
    if figures is not None:
        Figures(Path(figures)).draw(model_input, [row], predictor)
    return row


def _check_out(out) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"{out}: expected a .csv or .json file name, received suffix "
                         f"{out.suffix!r}")
    if out.is_dir():
        raise ValueError(f"{out}: expected a file name, received a directory")
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
    any_channel: bool = False,
    figures: Figures | None = None,
) -> list[dict[str, Any]]:
    """Probability of a jet for each cube.

    Parameters
    ----------
    cubes : iterable of path-like
        ``.npz`` files, folders of ``.npz`` cubes, folders of FITS frames (see
        :func:`jetkeras.io.list_cubes`).
    model : path-like or Predictor
        Run folder or exported SavedModel folder, or a loaded Predictor (``jit`` and
        ``runtime`` then do not apply).
    threshold : float, optional
        Decision threshold in [0, 1]; default the model's. A Predictor given as
        ``model`` keeps its own threshold: these rows use a copy.
    out : path-like, optional
        ``.csv`` or ``.json`` file to write atomically.
    batch_size : int
        Cubes read and predicted together. Defaults to 16.
    resample : bool
        Interpolate cubes of another frame count or size instead of refusing them.
    jit, runtime, any_channel
        See :func:`jetkeras.runtime.load_predictor`.
    figures : Figures, optional
        Draw each cube called a jet (and its jet map) in this folder.

    Returns
    -------
    list of dict
        One ``jetkeras-row/2`` row per cube (:mod:`jetkeras.rows`, ``docs/rows.md``):
        its highest-scoring window, ``predicted`` the model's call at the threshold,
        ``quality`` its flags, ``label`` the truth only when the cube records one.
    """
    from jetkeras.io import list_cubes

    check_threshold(threshold)
    check_positive_int(batch_size, "batch_size")
    out = _check_out(out)
    cube_list = list(cubes)
    if not cube_list:
        raise ValueError("cubes: expected at least one cube file or folder, received none")
    paths = list_cubes(cube_list)
    predictor = _predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                           any_channel=any_channel)
    rows = _predict_paths(paths, predictor, batch_size=batch_size, resample=resample,
                          progress=progress, figures=figures)
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
        atomic_write_text(out, json.dumps(rows, indent=1, default=json_default) + "\n")
    else:
        write_csv(out, rows)
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: file (or event), probability, the model's call, threshold,
    quality flags and, where one exists, the truth."""
    if not rows:
        return "(no predictions)"
    names = [str(row.get("file") or row.get("event_id") or "") for row in rows]
    name_width = max(4, *(len(name) for name in names))
    truth = any(row.get("label") in (0, 1) for row in rows)
    lines = [f"{'file':<{name_width}}  probability  predicted  threshold  "
             + ("truth   " if truth else "") + "quality"]
    for name, row in zip(names, rows):
        call = "jet" if row["predicted"] == 1 else "no jet"
        known = {1: "jet", 0: "no jet"}.get(row.get("label"), "")
        lines.append(f"{name:<{name_width}}  {row['probability']:11.4f}  {call:<9}  "
                     f"{row['threshold']:9.3f}  " + (f"{known:<6}  " if truth else "")
                     + (row.get("quality") or ""))
    return "\n".join(lines)


def format_row(row: dict[str, Any]) -> str:
    """One row as ``column: value`` lines, the columns with a value only."""
    width = max(len(column) for column in COLUMNS)
    return "\n".join(f"{column:<{width}}  {_shown(row[column])}" for column in COLUMNS
                     if row.get(column) not in (None, ""))


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------- records
def predict_records(records: str | os.PathLike, split: str, predictor: Predictor, *,
                    batch_size: int = 16) -> Iterator[tuple[dict[str, Any], float]]:
    """Predict every sequence of a records split, ``batch_size`` at a time.

    The one inference over records, for :mod:`jetkeras.evaluate` and
    :func:`predict_catalogue`.

    Parameters
    ----------
    records : path-like
        Records folder (``build_records``) of the model's frame count and size.
    split : {"train", "val", "test"}
    predictor : Predictor
    batch_size : int
        Sequences per forward pass.

    Yields
    ------
    record : dict
        ``frames`` float32 ``(T, H, W)`` in DN, ``label`` (int), ``event_id`` (str),
        ``group`` (str), in the records' order.
    probability : float
        Probability of a jet, in [0, 1].

    Raises
    ------
    ValueError
        The records' geometry is not the model's.
    """
    from jetkeras.pipeline import iterate_records

    check_positive_int(batch_size, "batch_size")
    expected = (predictor.frames, predictor.size, predictor.size)
    batch: list[dict[str, Any]] = []

    def flush():
        probabilities = predictor.predict_proba(np.stack([r["frames"] for r in batch]),
                                                batch_size=batch_size)
        done = list(zip(batch, (float(p) for p in probabilities)))
        batch.clear()
        return done

    for record in iterate_records(records, split):
        frames = record["frames"][..., 0]  # (T, H, W) DN
        if frames.shape != expected:
            raise ValueError(
                f"{records}: sequences of {frames.shape[0]} frames of "
                f"{frames.shape[1]}x{frames.shape[2]} px, but the model ({predictor.source}) "
                f"expects {predictor.frames} frames of {predictor.size}x{predictor.size} px")
        batch.append({**record, "frames": frames, "label": int(record["label"])})
        if len(batch) == batch_size:
            yield from flush()
    if batch:
        yield from flush()


# ------------------------------------------------------------------------- catalogue
def _catalogue_items(catalogue, cubes_root) -> list[dict[str, Any]]:
    """Catalogue rows with a cube: ``<event_id>.npz`` files or the seed's tree."""
    from jetkeras.catalogue import read_table
    from jetkeras.io import match_cubes

    items, _ = match_cubes(read_table(catalogue), cubes_root)
    if items.empty:
        raise ValueError(f"{cubes_root}: no cube matches a catalogue event "
                         f"(expected <event_id>.npz files or the seed's data0/data1 tree)")
    return items.to_dict("records")


_WORKER_PREDICTORS: dict[tuple, Predictor] = {}


def _predict_chunk(model_path: str, threshold, paths: list[str], batch_size: int,
                   resample: bool, runtime: str = "auto", jit: bool = False,
                   any_channel: bool = False, figures: Figures | None = None
                   ) -> list[dict[str, Any]]:
    """One Dask task: the rows of a chunk of cubes (the model is loaded once per worker)."""
    key = (model_path, threshold, runtime, jit, any_channel)
    if key not in _WORKER_PREDICTORS:
        _WORKER_PREDICTORS[key] = load_predictor(model_path, threshold=threshold,
                                                 runtime=runtime, jit=jit,
                                                 any_channel=any_channel)
    predictor = _WORKER_PREDICTORS[key]
    return _predict_paths([Path(p) for p in paths], predictor, batch_size=batch_size,
                          resample=resample, progress=False, figures=figures)


def _dask_rows(paths, *, model, threshold, batch_size, resample, workers, scheduler,
               progress, runtime="auto", jit=False, any_channel=False,
               figures=None) -> list[dict]:
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
                                 [str(p) for p in part], batch_size, resample, runtime, jit,
                                 any_channel, figures, pure=False)
                   for part in chunks]
        index = {future.key: number for number, future in enumerate(futures)}
        results: list[list[dict] | None] = [None] * len(futures)
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
    return [row for part in results for row in part]


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
    jit: bool = False,
    runtime: str = "auto",
    any_channel: bool = False,
    figures: Figures | None = None,
) -> list[dict[str, Any]]:
    """One prediction per catalogue event: from cubes on disk or from a records split.

    Parameters
    ----------
    model : path-like
        Run folder or exported SavedModel folder.
    catalogue : path-like, optional
        Any table :func:`jetkeras.catalogue.read_table` reads: an event index
        (``event_id`` column), the published Solar Jet Hunter CSV or jet-free intervals;
        default the bundled catalogue (:func:`jetkeras.catalogue.load_events`).
    cubes : path-like, optional
        Folder of ``<event_id>.npz`` cubes (as :mod:`jetkeras.fetch` writes them) or the
        seed's ``data0``/``data1`` tree (matched on label and row): see
        :func:`jetkeras.io.match_cubes`.
    records : path-like, optional
        Records folder instead of cubes; ``split`` picks the split. Its sequences are
        joined to the catalogue on ``event_id``.
    workers : int
        More than 1: run on a Dask ``LocalCluster`` of that many processes, each task a
        chunk of ``batch_size`` cubes. Defaults to 1 (this process).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    jit, runtime, any_channel
        See :func:`jetkeras.runtime.load_predictor`.
    figures : Figures, optional
        Draw each cube called a jet in this folder (cubes only, not ``records``).

    Returns
    -------
    list of dict
        One ``jetkeras-row/2`` row per event, in catalogue order, with the catalogue's
        fields and truth (``label``) where it has them.
    """
    check_threshold(threshold)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(workers, "workers")
    out = _check_out(out)
    if (cubes is None) == (records is None):
        raise ValueError("predict_catalogue: expected exactly one of cubes (a folder) or "
                         "records (a records folder)")
    if records is not None:
        rows = _records_rows(records, split, model=model, threshold=threshold,
                             batch_size=batch_size, catalogue=catalogue, jit=jit,
                             runtime=runtime, any_channel=any_channel)
    else:
        items = _catalogue_items(catalogue, cubes)
        paths = [Path(item["path"]) for item in items]
        if workers > 1 or scheduler:
            cube_rows = _dask_rows(
                paths, model=model, threshold=threshold, batch_size=batch_size,
                resample=resample, workers=workers, scheduler=scheduler, progress=progress,
                runtime=runtime, jit=jit, any_channel=any_channel, figures=figures)
        else:
            predictor = load_predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                                       any_channel=any_channel)
            cube_rows = _predict_paths(paths, predictor, batch_size=batch_size,
                                       resample=resample, progress=progress, figures=figures)
        rows = [with_event(item, row) for item, row in zip(items, cube_rows)]
    if out is not None:
        write_table(rows, out)
    return rows


def _records_rows(records, split, *, model, threshold, batch_size, catalogue, jit, runtime,
                  any_channel):
    """Predictions over a records split, joined to the catalogue on event_id."""
    from jetkeras.catalogue import read_table

    predictor = load_predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                               any_channel=any_channel)
    events = read_table(catalogue)
    by_id = {str(event["event_id"]): event for event in events.to_dict("records")}
    return [with_event({**by_id.get(record["event_id"], {}),
                            "event_id": record["event_id"], "label": record["label"]}, row)
            for record, row in record_rows(records, split, predictor,
                                           batch_size=batch_size)]


def record_rows(records: str | os.PathLike, split: str, predictor: Predictor, *,
                batch_size: int = 16) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """:func:`predict_records` as ``jetkeras-row/2`` rows: the one row of a records
    sequence, for ``predict --records`` and ``evaluate``.

    Yields
    ------
    record : dict
        As :func:`predict_records`.
    row : dict
        Its row: ``file`` ``RECORDS[split]``, ``event_id``, ``label`` (the records'
        truth), ``probability``, ``predicted``, ``quality`` (pixel flags), and where it is
        called a jet its measurement (the model's nominal pixel scale and cadence).
    """
    clip_dn = float(predictor.normalisation.get("clip_dn", predictor.config.data.clip_dn))
    common = {"file": f"{records}[{split}]", "window": 0, "windows": 1, "start_s": 0.0,
              "threshold": predictor.threshold, "model": model_identity(predictor.source),
              "runtime": predictor.runtime}
    data = predictor.config.data
    for record, probability in predict_records(records, split, predictor,
                                               batch_size=batch_size):
        flags = pixel_flags(record["frames"], clip_dn=clip_dn)
        predicted = decide(probability, predictor.threshold, flags)
        measured = (measure_window(ModelInput.of_window(record["frames"], data.cadence_s),
                                   0, data).columns() if predicted else {})
        yield record, make_row(
            **common, event_id=str(record["event_id"]), probability=probability,
            predicted=predicted, quality=format_flags(flags), resampled=0,
            label=int(record["label"]), **measured)


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
    jit: bool = False,
    runtime: str = "auto",
    any_channel: bool = False,
    figures: Figures | None = None,
) -> list[dict[str, Any]]:
    """Slide the model's window over a longer sequence: probability per window start.

    Parameters
    ----------
    cube : path-like
        One cube with at least the model's frame count (npz or FITS folder).
    model : path-like or Predictor
        As :func:`predict_cubes`.
    stride : int
        Frames between consecutive window starts, >= 1. Defaults to 1.
    threshold : float, optional
        Decision threshold in [0, 1]; default the model's (a Predictor's own).
    out : path-like
        CSV (or JSON) to write; a PNG of probability versus time over a strip of frames
        is written beside it with the same stem.
    jit, runtime, any_channel
        See :func:`jetkeras.runtime.load_predictor`.
    figures : Figures, optional
        Draw every window called a jet in this folder.

    Returns
    -------
    list of dict
        One ``jetkeras-row/2`` row per window (:mod:`jetkeras.rows`), in time order:
        ``window``, ``start_s`` (seconds from the first frame, on the model's time
        grid), ``start_time`` and ``end_time`` (ISO UTC, when the cube has times),
        ``probability``, ``predicted``, ``quality``...
    """
    from jetkeras.figures import timeline_figure

    check_threshold(threshold)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(stride, "stride")
    out = _check_out(out)
    predictor = _predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                           any_channel=any_channel)
    model_input = prepare(cube, predictor, resample=resample)
    # Every stride-th step of the model's time grid (windows across a gap are not there).
    keep = [index for index, start in enumerate(model_input.starts) if start % stride == 0]
    model_input.starts = [model_input.starts[index] for index in keep]
    model_input.window_flags = [model_input.window_flags[index] for index in keep]
    [probabilities] = _window_probabilities([model_input], predictor, batch_size)
    rows = _window_rows(model_input, probabilities, predictor, file=str(cube))
    if figures is not None:
        figures.draw(model_input, rows, predictor)
    timeline_figure(model_input.frames, model_input.offsets_s, rows, out.with_suffix(".png"),
                    frames_per_window=predictor.frames,
                    title=f"{Path(cube).name}: window of {predictor.frames} frames, "
                          f"stride {stride}")
    write_table(rows, out)
    return rows


# ------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    from jetkeras.config import DataConfig

    parser = _cli.make_parser(
        "predict",
        "Give the probability of a coronal jet for each cube (npz cubes, folders of them or "
        "folders of FITS frames), for every event of a catalogue, or along a longer cube as "
        "a timeline, with a trained run, an exported SavedModel or the bundled model.",
        ["cube.npz --model runs/light",
         "cubes/ aia_fits/ --model exports/light --out predictions.csv",
         "--catalogue events.csv --cubes jsoc/ --model runs/light --workers 4 "
         "--out catalogue_predictions.csv",
         "--timeline long_cube.npz --model runs/light --stride 2 --out timeline.csv"])
    parser.add_argument("cubes", nargs="*", metavar="CUBE_OR_DIR",
                        help=".npz cubes (seed arr_0 or jetkeras-cube/1), folders of FITS "
                             "frames at any cadence (placed on the model's time grid from "
                             "their times), or folders of npz cubes and FITS event folders")
    parser.add_argument("--model",
                        help="run folder (python -m jetkeras.train) or exported SavedModel "
                             "folder (python -m jetkeras.export); default the bundled model, "
                             "trained on synthetic renders (docs/model_card.md)")
    parser.add_argument("--threshold", type=_cli.probability,
                        help="decision threshold, probability in [0, 1]; default the one "
                             "stored with the model (chosen on validation)")
    parser.add_argument("--out", help="write the rows (jetkeras-row/2, docs/rows.md) to this "
                                      ".csv or .json file; default: print only (--timeline: "
                                      "timeline.csv in the current folder)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="litert: the folder's model.tflite on the LiteRT interpreter (no "
                             "TensorFlow: fast start, ~3x throughput on a CPU); tensorflow: "
                             "the Keras model or SavedModel; default auto (litert when "
                             "model.tflite is there)")
    parser.add_argument("--jit", action="store_true",
                        help="compile the TensorFlow forward pass with XLA: ~0.7 s more at "
                             "start, ~20 %% faster over many cubes (run folders only); default off")
    parser.add_argument("--batch-size", type=_cli.positive_int, default=16,
                        help="sequences per forward pass (and per Dask task); default 16; "
                             "memory grows with it")
    parser.add_argument("--resample", action="store_true",
                        help="zoom frames of another size whose pixel scale is unknown, and "
                             "show a half-window volunteer subject (15 frames) with each "
                             "frame twice, instead of refusing them; default refuse (times "
                             "and known pixel scales are always followed, with a warning "
                             "when the data change)")
    parser.add_argument("--any-channel", action="store_true",
                        help="accept cubes of another wavelength (angstrom) or instrument "
                             "than the model's (a 171 A folder for a 304 A model); default "
                             "refuse")
    parser.add_argument("--catalogue", help="catalogue CSV (an event index with event_id, "
                                            "the published Solar Jet Hunter CSV or jet-free "
                                            "intervals); predict every event with a cube "
                                            "(--cubes or --records); default none")
    parser.add_argument("--cubes", dest="cubes_root",
                        help="folder of <event_id>.npz cubes or the seed's data0/data1 tree, "
                             "for --catalogue; default none")
    parser.add_argument("--records", help="records folder (python -m jetkeras.build_records) "
                                          "whose --split to predict; default none")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"),
                        help="records split for --records; default test")
    parser.add_argument("--workers", type=_cli.bounded_int(1, _cli.MAX_WORKERS), default=1,
                        help="Dask LocalCluster processes for --catalogue; default 1 "
                             "(no Dask)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler "
                                            "(tcp://host:8786) for --catalogue; default "
                                            "none (local)")
    parser.add_argument("--timeline", metavar="CUBE",
                        help="slide the model's window over this longer cube; writes one "
                             "row per window (CSV or JSON, docs/rows.md) and a PNG beside it; "
                             "default none")
    parser.add_argument("--stride", type=_cli.positive_int, default=1,
                        help=f"grid steps between window starts for --timeline, an integer "
                             f">= 1 (seconds: stride x the model's cadence); default 1 = "
                             f"{DataConfig.cadence_s:g} s at the seed's cadence")
    parser.add_argument("--figures", metavar="DIR",
                        help="draw each cube (--timeline: each window) called a jet in this "
                             "folder: the frame where it is longest with its footprint, base "
                             "point and direction, beside its time-distance diagram with the "
                             "fitted front and speed (<cube>_w<window>.png); default none")
    parser.add_argument("--jet-maps", action="store_true",
                        help="with --figures: also write each jet's per-pixel map as FITS "
                             "(<cube>_w<window>_jetmap.fits: the footprint's largest "
                             "excess, noise levels, with the cube's WCS moved to the "
                             "model's grid); default off")
    parser.add_argument("--quiet", action="store_true", help="no table, no progress bar; default: show "
                        "both")
    return parser


def _check_flags(args: argparse.Namespace) -> str:
    """Refuse contradictory flags; return the mode: ``timeline``, ``catalogue`` or ``cubes``."""
    check_threshold(args.threshold, "--threshold")
    if args.jit and args.runtime == "litert":
        raise ValueError("--jit: XLA compiles the TensorFlow graph; it needs --runtime "
                         "tensorflow (or auto), received --runtime litert")
    if args.jet_maps and not args.figures:
        raise ValueError("--jet-maps: expected --figures DIR to write them in, received none")
    if args.figures and args.records:
        raise ValueError("--figures: pictures are drawn from cubes (CUBE, --cubes or "
                         "--timeline), received --records, whose frames carry no pixel "
                         "scale or times")
    catalogue_wide = bool(args.catalogue or args.cubes_root or args.records)
    if args.timeline:
        if args.cubes or catalogue_wide:
            raise ValueError("--timeline: expected one cube and no other CUBE arguments, "
                             "--catalogue, --cubes or --records")
        return "timeline"
    if catalogue_wide:
        if args.cubes:
            raise ValueError("--catalogue: expected --cubes ROOT or --records DIR, not "
                             f"CUBE arguments (received {args.cubes[0]})")
        if (args.cubes_root is None) == (args.records is None):
            raise ValueError("--catalogue: expected exactly one of --cubes ROOT or "
                             "--records DIR")
        return "catalogue"
    if not args.cubes:
        raise ValueError("CUBE: expected at least one cube file or folder, received none")
    return "cubes"


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow(load=False)  # LiteRT needs no TensorFlow
    args = _parser().parse_args(argv)

    def run():
        mode = _check_flags(args)
        common = {"model": resolve_model(args.model), "threshold": args.threshold,
                  "batch_size": args.batch_size, "jit": args.jit, "runtime": args.runtime,
                  "any_channel": args.any_channel,
                  "figures": Figures(Path(args.figures), args.jet_maps) if args.figures
                  else None}
        if mode == "timeline":
            out = args.out or "timeline.csv"
            rows = predict_timeline(cube=args.timeline, stride=args.stride, out=out,
                                    resample=args.resample, **common)
            if not args.quiet:
                best = _summary_row(rows)
                print(f"{len(rows)} windows; highest probability {best['probability']:.4f} "
                      f"in the window starting {best['start_time'] or ''} "
                      f"(+{best['start_s']:g} s); wrote {out}")
            return
        if mode == "catalogue":
            rows = predict_catalogue(catalogue=args.catalogue, cubes=args.cubes_root,
                                     records=args.records, split=args.split, out=args.out,
                                     resample=args.resample, workers=args.workers,
                                     scheduler=args.scheduler, progress=not args.quiet,
                                     **common)
        else:
            rows = predict_cubes(cubes=args.cubes, out=args.out, resample=args.resample,
                                 progress=not args.quiet, **common)
        if not args.quiet:
            print(format_row(rows[0]) if len(rows) == 1 else format_table(rows))

    # Predictions are written once every cube is scored: an interrupt keeps none.
    with _cli.one_line_warnings("predict"):
        return _cli.run_main(run, "predict", resume=_cli.resume_command("predict", argv),
                             kept="nothing written (predictions are written when all "
                                  "cubes are scored)")


if __name__ == "__main__":
    raise SystemExit(main())
