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

Frames are normalised exactly as in training (:func:`jetkeras.pipeline.normalise` with the
run's ``normalisation.json``). A cube whose frame count or size differs from the model's
is refused, or interpolated with :func:`jetkeras.preprocess.resample` when ``--resample``
is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli
from jetkeras._files import atomic_write_text, json_default, plain, write_csv
from jetkeras.runtime import (
    RUNTIMES,
    Predictor,
    check_positive_int,
    check_threshold,
    load_predictor,
    resolve_model,
)

__all__ = [
    "CATALOGUE_COLUMNS",
    "format_table",
    "main",
    "predict_catalogue",
    "predict_cubes",
    "predict_records",
    "predict_timeline",
    "read_for_model",
    "write_table",
]

CATALOGUE_COLUMNS = ["sjh_ID", "SOL_event", "event_id", "date", "basepoint_X", "basepoint_Y",
                     "label"]
_META_COLUMNS = ("event_id", "sjh_ID", "SOL_event", "date", "basepoint_X", "basepoint_Y")


def _predictor(model, *, threshold: float | None, jit: bool = False,
               runtime: str = "auto", any_channel: bool = False) -> Predictor:
    """``model`` if it is a Predictor (deciding at ``threshold``, the caller's untouched),
    else the one :func:`jetkeras.runtime.load_predictor` loads from that folder."""
    if isinstance(model, Predictor):
        return model.with_threshold(threshold, any_channel=any_channel)
    return load_predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                          any_channel=any_channel)


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
        Frames float32 ``(T, S, S)`` in the model's unit: DN, or DN/s when its config
        says ``exposure_normalise``.

    Raises
    ------
    ValueError
        Another wavelength or instrument than the model's (unless
        ``predictor.any_channel``), another unit without exposure times, another geometry
        without ``resample``.
    """
    from jetkeras.cube import Cube
    from jetkeras.io import match_model_input, read_cube
    from jetkeras.preprocess import resample as resample_frames

    data = predictor.config.data
    cube = read_cube(path, nan_policy=data.nan_policy, cadence_s=data.cadence_s,
                     cadence_tolerance_s=data.cadence_tolerance_s, pool=data.pool,
                     exposure_normalise=data.exposure_normalise)
    cube = match_model_input(cube, wavelength_angstrom=data.wavelength_angstrom,
                             instrument=data.instrument,
                             exposure_normalise=data.exposure_normalise,
                             any_channel=predictor.any_channel, model=predictor.source)
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

    Returns
    -------
    list of dict
        One per cube: ``file``, ``probability`` (float in [0, 1]), ``label`` (0/1 at the
        threshold), ``threshold``, and ``event_id``, ``sjh_ID``, ``SOL_event``, ``date``,
        ``true_label``, ``start_time`` when the cube knows them.
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
        atomic_write_text(out, json.dumps(rows, indent=1, default=json_default) + "\n")
    else:
        write_csv(out, rows)
    return out


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


def _catalogue_row(item: dict[str, Any], probability: float, threshold: float):
    row = {}
    for key in CATALOGUE_COLUMNS:
        value = item.get(key, "")
        if isinstance(value, float) and math.isnan(value):
            value = ""
        row[key] = plain(value)
    row["probability"] = float(probability)
    row["predicted"] = int(probability >= threshold)
    row["threshold"] = float(threshold)
    return row


_WORKER_PREDICTORS: dict[tuple, Predictor] = {}


def _predict_chunk(model_path: str, threshold, paths: list[str], batch_size: int,
                   resample: bool, runtime: str = "auto", jit: bool = False,
                   any_channel: bool = False) -> list[float]:
    """One Dask task: probabilities of a chunk of cubes (the model is loaded once per worker)."""
    key = (model_path, threshold, runtime, jit, any_channel)
    if key not in _WORKER_PREDICTORS:
        _WORKER_PREDICTORS[key] = load_predictor(model_path, threshold=threshold,
                                                 runtime=runtime, jit=jit,
                                                 any_channel=any_channel)
    predictor = _WORKER_PREDICTORS[key]
    rows = _predict_paths([Path(p) for p in paths], predictor, batch_size=batch_size,
                          resample=resample, progress=False)
    return [row["probability"] for row in rows]


def _dask_probabilities(paths, *, model, threshold, batch_size, resample, workers,
                        scheduler, progress, runtime="auto", jit=False,
                        any_channel=False) -> list[float]:
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
                                 any_channel, pure=False)
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
    jit: bool = False,
    runtime: str = "auto",
    any_channel: bool = False,
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

    Returns
    -------
    list of dict
        ``sjh_ID``, ``SOL_event``, ``event_id``, ``date``, ``basepoint_X``,
        ``basepoint_Y``, ``label`` (catalogue truth, "" if unknown), ``probability``,
        ``predicted`` (0/1 at the threshold), ``threshold``; in catalogue order.
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
            probabilities = _dask_probabilities(
                paths, model=model, threshold=threshold, batch_size=batch_size,
                resample=resample, workers=workers, scheduler=scheduler, progress=progress,
                runtime=runtime, jit=jit, any_channel=any_channel)
            from jetkeras.runs import stored_threshold

            decided_at = stored_threshold(model) if threshold is None else threshold
        else:
            predictor = load_predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                           any_channel=any_channel)
            probabilities = [row["probability"] for row in _predict_paths(
                paths, predictor, batch_size=batch_size, resample=resample,
                progress=progress)]
            decided_at = predictor.threshold
        rows = [_catalogue_row(item, probability, decided_at)
                for item, probability in zip(items, probabilities)]
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
    return [_catalogue_row({**by_id.get(record["event_id"], {}),
                            "event_id": record["event_id"], "label": record["label"]},
                           probability, predictor.threshold)
            for record, probability in predict_records(records, split, predictor,
                                                       batch_size=batch_size)]


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

    Returns
    -------
    list of dict
        ``window``, ``start_frame``, ``end_frame`` (inclusive), ``start_time`` and
        ``end_time`` (ISO UTC, when the cube has times), ``start_s`` (seconds from the
        first frame: measured, or ``start_frame * cadence_s``), ``probability``,
        ``label``, ``threshold``.
    """
    from jetkeras.figures import timeline_figure

    check_threshold(threshold)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(stride, "stride")
    out = _check_out(out)
    predictor = _predictor(model, threshold=threshold, jit=jit, runtime=runtime,
                           any_channel=any_channel)
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
                                      "default: print only (--timeline: timeline.csv "
                                      "in the current folder)")
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
                        help="interpolate cubes of another frame count or size (px) to the "
                             "model's instead of refusing them; default refuse")
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
                        help="slide the model's window over this longer cube; writes "
                             "probability per window start (CSV, times in seconds) and a PNG "
                             "beside the CSV; default none")
    parser.add_argument("--stride", type=_cli.positive_int, default=1,
                        help=f"frames between window starts for --timeline, an integer >= 1 "
                             f"(seconds: stride x the model's cadence); default 1 frame = "
                             f"{DataConfig.cadence_s:g} s at the seed's cadence")
    parser.add_argument("--quiet", action="store_true", help="no table, no progress bar; default: show "
                        "both")
    return parser


def _check_flags(args: argparse.Namespace) -> str:
    """Refuse contradictory flags; return the mode: ``timeline``, ``catalogue`` or ``cubes``."""
    check_threshold(args.threshold, "--threshold")
    if args.jit and args.runtime == "litert":
        raise ValueError("--jit: XLA compiles the TensorFlow graph; it needs --runtime "
                         "tensorflow (or auto), received --runtime litert")
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
                  "any_channel": args.any_channel}
        if mode == "timeline":
            out = args.out or "timeline.csv"
            rows = predict_timeline(cube=args.timeline, stride=args.stride, out=out,
                                    resample=args.resample, **common)
            if not args.quiet:
                best = max(rows, key=lambda row: row["probability"])
                print(f"{len(rows)} windows; highest probability {best['probability']:.4f} at "
                      f"frame {best['start_frame']}; wrote {out}")
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
            print(format_table(rows))

    # Predictions are written once every cube is scored: an interrupt keeps none.
    return _cli.run_main(run, "predict", resume=_cli.resume_command("predict", argv),
                         kept="nothing written (predictions are written when all cubes "
                              "are scored)")


if __name__ == "__main__":
    raise SystemExit(main())
