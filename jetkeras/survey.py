"""Survey the HEK: query -> fetch -> predict, then a table, a timeline, a gallery, a report.

``python -m jetkeras.survey`` runs the three stages the seed left to the user by hand, in
one resumable command over one output folder::

    <out>/survey.json         the settings this folder was made with (pinned, see below)
    <out>/hek_events.csv      the HEK events (jetkeras.hek's event table)
    <out>/hek_cache/          the raw HEK pages (a rerun asks the HEK nothing)
    <out>/cubes/              <event_id>.npz cubes and fetch_state.json (jetkeras.fetch)
    <out>/predictions.csv     one jetkeras-row/2 row per event (docs/rows.md), chunk by chunk
    <out>/events.csv          every HEK event with its fetch status and its row's columns
                              (probability, predicted, quality, times, centre, model, and
                              for a jet its base point, direction, timing, length, speed)
    <out>/timeline.png        probability against the event's start date
    <out>/gallery/            contact sheets and GIFs of the top candidates and of the
                              borderline events (closest to the threshold), and each jet's
                              measured picture (<event_id>_w<window>.png)
    <out>/report.md           which model and threshold, counts, the two lists, the images

Each stage resumes: HEK pages are cached per page, ``fetch`` keeps its per-event state
(one JSOC export at a time, retries with back-off, ``JSOC_EMAIL``), predictions are
written after every chunk of ``chunk`` events. Interrupt it (Ctrl-C) at any point and run
the same command again: nothing done is lost or done twice. One progress bar covers the
whole run (HEK windows, then events fetched, then events predicted, then the gallery).

The cutouts are fetched in the model's geometry: its frame count, cadence, field of view
and pooling (``config.json``), at its channel (304 A for the bundled model), so every cube
fits the model. Without ``--model`` the bundled model (``jetkeras/bundled/``, trained on
synthetic renders only: read ``docs/model_card.md``) is used, as ``predict`` does.
Catalogue-wide prediction runs on a local Dask cluster with ``--workers N`` (or a running
one with ``--scheduler``), as ``predict --catalogue`` does.

Examples::

    export JSOC_EMAIL=you@example.org
    python -m jetkeras.survey --start 2017-01-01 --end 2017-02-01 --out survey_2017_01
    python -m jetkeras.survey --start 2017-01-01 --end 2018-01-01 --model runs/light \\
        --workers 4 --top 20 --out survey_2017

Nothing here is random: the same HEK answer, cubes and model give the same folder.

What was and was not exercised. Neither the HEK nor JSOC can be reached from the machine
this was written on: the tests run the whole survey on recorded HEK pages and a fake JSOC
client that writes real AIA frames, with a tiny model, including an interruption in the
fetch stage and in the predict stage and the resumed run; without network the survey
stops in one line at the HEK (or, with the HEK cached, at JSOC).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from jetkeras import _cli
from jetkeras._files import atomic_write_text, read_format_json
from jetkeras.rows import COLUMNS, ROW_SCHEMA, with_event

__all__ = ["SURVEY_FORMAT", "main", "survey"]

SURVEY_FORMAT = "jetkeras-survey/1"
SETTINGS_FILE = "survey.json"
PREDICTIONS_FILE = "predictions.csv"
# predictions.csv holds one jetkeras-row/2 row per event; a folder written before the
# schema (these four columns only) is read with the other columns empty.
PREDICTION_COLUMNS = list(COLUMNS)
_LEGACY_COLUMNS = ["event_id", "probability", "predicted", "threshold"]


# --------------------------------------------------------------------------------------
# Settings and state
# --------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pin_settings(out: Path, settings: dict) -> None:
    """Write ``survey.json`` on the first run; refuse a rerun with other settings."""
    path = out / SETTINGS_FILE
    if path.is_file():
        stored = read_format_json(path, SURVEY_FORMAT, "the survey's settings (JSON)")
        if stored.get("settings") != settings:
            changed = sorted(key for key in settings
                             if stored.get("settings", {}).get(key) != settings[key])
            raise ValueError(
                f"{path}: this folder was surveyed with other settings ({', '.join(changed)}: "
                f"{[stored.get('settings', {}).get(k) for k in changed]}, received "
                f"{[settings[k] for k in changed]}); use another --out")
        return
    atomic_write_text(path, json.dumps({"format": SURVEY_FORMAT, "settings": settings,
                                        "created": _now()}, indent=1) + "\n")


def _read_predictions(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    try:
        table = pd.read_csv(path, dtype={"event_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: expected the survey's predictions CSV, received an "
                         f"unreadable file ({type(error).__name__}); delete it to predict "
                         f"again") from None
    missing = [column for column in _LEGACY_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: expected the columns of {ROW_SCHEMA} (docs/rows.md), "
                         f"missing {missing}")
    return table.reindex(columns=PREDICTION_COLUMNS)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


def _model_description(predictor, model_given) -> dict[str, Any]:
    """Name, source, threshold rule and geometry of the model, for report.md."""
    source = Path(predictor.source)
    description = {"source": str(source), "bundled": model_given is None,
                   "runtime": predictor.runtime, "frames": predictor.frames,
                   "size": predictor.size, "threshold": predictor.threshold,
                   "exposure_normalise": bool(predictor.config.data.exposure_normalise),
                   "wavelength_angstrom": _model_wavelength(predictor)}
    for name in ("bundle.json", "threshold.json"):
        path = source / name
        if path.is_file():
            try:
                description[name] = json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
    return description


def _model_wavelength(predictor) -> float:
    # Configs written before the channel was recorded load it as the default, 304 A.
    return float(predictor.config.data.wavelength_angstrom)


# --------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------


def _predict_in_chunks(events, *, out, predictor, model_path, threshold, chunk, batch_size,
                       resample, workers, scheduler, advance):
    """Predict every fetched event not yet in predictions.csv, ``chunk`` events at a time.

    After each chunk the whole table is rewritten atomically, so an interruption loses at
    most the chunk in flight and never writes an event twice. With ``workers > 1`` one
    Dask LocalCluster serves every chunk (``predict_catalogue`` on its scheduler).
    """
    path = out / PREDICTIONS_FILE
    done = _read_predictions(path)
    known = set(done["event_id"])
    todo = [event for event in events if event["event_id"] not in known]
    advance(len(events) - len(todo))
    with contextlib.ExitStack() as stack:
        if todo and workers > 1 and not scheduler:
            # One local cluster for every chunk: each worker loads the model once.
            from dask.distributed import LocalCluster

            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None))
            scheduler = cluster.scheduler_address
        return _predict_todo(todo, done, path=path, out=out, predictor=predictor,
                             model_path=model_path, threshold=threshold, chunk=chunk,
                             batch_size=batch_size, resample=resample, scheduler=scheduler,
                             advance=advance)


def _predict_todo(todo, done, *, path, out, predictor, model_path, threshold, chunk,
                  batch_size, resample, scheduler, advance):
    from jetkeras.predict import predict_catalogue, predict_cubes

    tables = [done]
    predicted_now = 0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        if scheduler:
            catalogue = out / ".predict_chunk.csv"
            atomic_write_text(catalogue, pd.DataFrame(part).to_csv(index=False))
            try:
                rows = predict_catalogue(model=model_path, catalogue=catalogue,
                                         cubes=out / "cubes", threshold=threshold,
                                         batch_size=batch_size, resample=resample,
                                         scheduler=scheduler, progress=False)
            finally:
                catalogue.unlink(missing_ok=True)
            new = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
        else:
            rows = predict_cubes(cubes=[event["cube"] for event in part], model=predictor,
                                 batch_size=batch_size, resample=resample, progress=False)
            new = pd.DataFrame([with_event(event, row) for event, row in zip(part, rows)],
                               columns=PREDICTION_COLUMNS)
        tables.append(new)
        table = pd.concat([t for t in tables if len(t)], ignore_index=True)
        atomic_write_text(path, table.to_csv(index=False))
        predicted_now += len(new)
        advance(len(part))
    final = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(
        len(t) for t in tables) else pd.DataFrame(columns=PREDICTION_COLUMNS)
    return final, predicted_now


def _events_table(events: pd.DataFrame, fetched: pd.DataFrame,
                  predictions: pd.DataFrame) -> pd.DataFrame:
    """Every HEK event with its fetch status, probability and predicted label."""
    table = events.drop(columns=["label"], errors="ignore").copy()
    status = fetched.set_index("event_id")
    table["fetch_status"] = table["event_id"].map(status["status"]).fillna("not fetched")
    table["fetch_error"] = table["event_id"].map(status["error"]).fillna("")
    by_id = predictions.drop_duplicates("event_id").set_index("event_id")
    # The row's columns the event table lacks (its own catalogue columns win; no label:
    # a HEK event list holds no truth).
    for column in PREDICTION_COLUMNS:
        if column not in table.columns and column not in ("event_id", "label"):
            table[column] = table["event_id"].map(by_id[column])
    table["predicted"] = table["predicted"].map(lambda v: "" if pd.isna(v) else int(v))
    return table


def _select(table: pd.DataFrame, *, top: int, borderline: int, threshold: float):
    """The top candidates (highest probability) and the borderline events (closest to
    the threshold, not already among the top), each sorted for reading."""
    scored = table[table["probability"].notna()]
    best = scored.sort_values(["probability", "event_id"], ascending=[False, True],
                              kind="stable").head(top)
    rest = scored[~scored["event_id"].isin(best["event_id"])]
    distance = (rest["probability"] - threshold).abs()
    near = rest.assign(_distance=distance).sort_values(["_distance", "event_id"],
                                                       kind="stable").head(borderline)
    near = near.drop(columns="_distance").sort_values("probability", ascending=False,
                                                      kind="stable")
    return best, near


def _gallery(selection: pd.DataFrame, *, out: Path, name: str, title: str,
             advance: Callable[[int], object], predictor, resample: bool) -> dict[str, Any]:
    """One contact sheet and one GIF per event of ``selection``, and the measured
    picture of each event called a jet; returns their paths."""
    folder = out / "gallery" / name
    folder.mkdir(parents=True, exist_ok=True)
    # matplotlib logs one INFO line per GIF saved, which would break the one progress bar.
    animation_log = logging.getLogger("matplotlib.animation")
    level = animation_log.level
    animation_log.setLevel(logging.WARNING)
    try:
        return _draw_gallery(selection, out=out, folder=folder, name=name, title=title,
                             advance=advance, predictor=predictor, resample=resample)
    finally:
        animation_log.setLevel(level)


def _draw_gallery(selection, *, out, folder, name, title, advance, predictor,
                  resample) -> dict[str, Any]:
    import warnings

    from jetkeras.figures import sequence_gif
    from jetkeras.io import read_npz
    from jetkeras.plotting import contact_sheets
    from jetkeras.predict import Figures, prepare

    wanted = set()
    gifs, pictures = {}, {}
    cubes, titles = [], []
    for rank, event in enumerate(selection.to_dict("records"), start=1):
        cube = read_npz(out / "cubes" / f"{event['event_id']}.npz")
        caption = (f"#{rank} {event['event_id']}  P={event['probability']:.3f} "
                   f"({'jet' if event['predicted'] == 1 else 'no jet'})")
        gif = folder / f"{rank:02d}_{event['event_id']}.gif"
        sequence_gif(cube.frames, gif, title=caption, times=cube.times)
        wanted.add(gif.name)
        gifs[event["event_id"]] = gif.relative_to(out).as_posix()
        if event["predicted"] == 1:
            # Where, which way and how fast, as predict --figures draws it; the
            # resampling was reported when the event was predicted.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model_input = prepare(cube, predictor, resample=resample)
            row = {**event, "file": event["event_id"]}
            Figures(folder).draw(model_input, [row], predictor)
            picture = folder / f"{event['event_id']}_w{int(event['window']):03d}.png"
            wanted.add(picture.name)
            pictures[event["event_id"]] = picture.relative_to(out).as_posix()
        cubes.append(cube)
        titles.append(caption)
        advance(1)
    # GIFs of an earlier run whose ranks changed (more events predicted since) go.
    for stale in [*folder.glob("*.gif"), *folder.glob("*.png")]:
        if stale.name not in wanted:
            stale.unlink()
    sheet = out / "gallery" / f"{name}.png"
    if cubes:
        contact_sheets(cubes, sheet, titles=titles, title=title, max_frames=8)
    elif sheet.exists():
        sheet.unlink()
    return {"sheet": sheet.relative_to(out).as_posix() if cubes else None, "gifs": gifs,
            "pictures": pictures}


def _measured(event: dict, picture: str | None) -> str:
    """The report's cell for a jet's measurement: base point, speed, length, picture."""
    if not picture:
        return ""
    parts = []
    if pd.notna(event.get("base_hpc_x")):
        parts.append(f"base ({event['base_hpc_x']:.0f}, {event['base_hpc_y']:.0f})\"")
    if pd.notna(event.get("speed_km_s")):
        parts.append(f"{event['speed_km_s']:.0f} km/s")
    if pd.notna(event.get("length_arcsec")):
        parts.append(f"{event['length_arcsec']:.0f}\"")
    return f"[{', '.join(parts) or 'picture'}]({picture})"


def _markdown_table(selection: pd.DataFrame, gallery: dict[str, Any]) -> str:
    if selection.empty:
        return "(none)\n"
    gifs, pictures = gallery["gifs"], gallery["pictures"]
    lines = ["| # | event | start (UTC) | base point (arcsec) | P(jet) | label | measured | "
             "GIF |",
             "|---|---|---|---|---|---|---|---|"]
    for rank, event in enumerate(selection.to_dict("records"), start=1):
        lines.append(
            f"| {rank} | {event['SOL_event'] or event['event_id']} | {event['date'][:19]} | "
            f"({event['basepoint_X']:.0f}, {event['basepoint_Y']:.0f}) | "
            f"{event['probability']:.3f} | {'jet' if event['predicted'] == 1 else 'no jet'} | "
            f"{_measured(event, pictures.get(event['event_id']))} | "
            f"[gif]({gifs.get(event['event_id'], '')}) |")
    return "\n".join(lines) + "\n"


def _report(*, out, settings, model, table, best, near, galleries, hek_rows) -> str:
    fetched = int((table["fetch_status"] == "done").sum())
    failed = int((table["fetch_status"] == "failed").sum())
    scored = table["probability"].notna()
    jets = int((table["predicted"] == 1).sum())
    threshold = model["threshold"]
    rule = model.get("threshold.json", {}).get("rule")
    if settings["threshold"] is not None:
        threshold_text = f"{threshold:.4f}, given with `--threshold`"
    else:
        threshold_text = (f"{threshold:.4f}, stored with the model"
                          + (f" (rule: {rule})" if rule else ""))
    name = model.get("bundle.json", {}).get("name")
    model_line = (f"the bundled model **{name or 'jet304-synthetic'}** (`jetkeras/bundled/` "
                  f"in the installed package), "
                  f"trained on synthetic renders only: read `docs/model_card.md` before "
                  f"quoting these probabilities" if model["bundled"]
                  else f"`{model['source']}`")
    units = ("DN/s (each frame divided by its exposure time)" if model["exposure_normalise"]
             else "DN (level-1 counts, not divided by the exposure time), as the model was "
                  "trained")
    sheets = []
    for key, heading in (("top", "Top candidates"), ("borderline", "Borderline events")):
        if galleries[key]["sheet"]:
            sheets.append(f"### {heading}\n\n![{heading}]({galleries[key]['sheet']})\n")
    return "\n".join([
        f"# HEK survey {settings['start']} to {settings['end']}",
        "",
        f"- **Model:** {model_line}; {model['frames']} frames of {model['size']}x"
        f"{model['size']} px, {model['wavelength_angstrom']:g} A, run on {model['runtime']}.",
        f"- **Threshold:** {threshold_text}. An event is labelled *jet* when its "
        f"probability is at or above it.",
        f"- **Input units:** {units}.",
        f"- **HEK:** event type {settings['event_type']}, {hek_rows} row(s) merged into "
        f"{len(table)} event(s) (`hek_events.csv`).",
        f"- **Fetched:** {fetched} of {len(table)} (failed {failed}; the errors are in "
        f"`events.csv`, column `fetch_error`).",
        f"- **Predicted:** {int(scored.sum())}; labelled jet: {jets}.",
        f"- Written {_now()} by `python -m jetkeras.survey`.",
        "",
        "![Probability against date](timeline.png)",
        "",
        f"## Top {len(best)} candidates",
        "",
        _markdown_table(best, galleries["top"]),
        f"## {len(near)} borderline events (closest to the threshold)",
        "",
        _markdown_table(near, galleries["borderline"]),
        "## Contact sheets",
        "",
        *sheets,
        "Every event, with its fetch status, probability and label: `events.csv`.",
        "",
    ])


# --------------------------------------------------------------------------------------
# The survey
# --------------------------------------------------------------------------------------


def _check_arguments(*, top, borderline, chunk, workers, limit, threshold) -> None:
    """Refuse a bad count or threshold before any query, naming its flag."""
    for name, value, least in (("--top", top, 0), ("--borderline", borderline, 0),
                               ("--chunk", chunk, 1), ("--workers", workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: expected a whole number >= {least}, received "
                             f"{value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"--limit: expected an integer >= 1, received {limit!r}")
    if threshold is not None and not (isinstance(threshold, (int, float))
                                      and 0.0 <= float(threshold) <= 1.0):
        raise ValueError(f"--threshold: expected a probability in [0, 1], received "
                         f"{threshold!r}")


def _fetch_stage(selected: pd.DataFrame, *, out: Path, predictor, client, email: str,
                 retries: int, backoff_s: float, sleep, advance) -> tuple[pd.DataFrame, int]:
    """Fetch the selected events into ``out/cubes`` in the model's geometry and channel.

    Returns :func:`jetkeras.fetch.fetch_events`'s summary and the number of events
    downloaded in this run (not those done before); ``advance()`` once per event.
    """
    from jetkeras.fetch import fetch_events

    if not len(selected):
        return pd.DataFrame(columns=["event_id", "status", "error", "cube"]), 0
    fetched_now = 0

    def on_fetched(row):
        nonlocal fetched_now
        fetched_now += 0 if row["skipped"] or row["status"] != "done" else 1
        advance()

    data = predictor.config.data
    fetched = fetch_events(
        selected, out=out / "cubes", client=client, email=email,
        wavelength_angstrom=_model_wavelength(predictor), frames=predictor.frames,
        cadence_s=data.cadence_s, cadence_tolerance_s=data.cadence_tolerance_s,
        box_arcsec=data.field_of_view_arcsec, pool=data.pool, retries=retries,
        backoff_s=backoff_s, sleep=sleep, progress=False, on_event=on_fetched)
    return fetched, fetched_now


def _fetched_events(selected: pd.DataFrame, fetched: pd.DataFrame) -> list[dict]:
    """The events whose cube was fetched, each with its ``cube`` path, in fetch order."""
    done = fetched[fetched["status"] == "done"]
    events = (selected.set_index("event_id").loc[done["event_id"]].reset_index()
              .to_dict("records"))
    return [{**event, "cube": cube} for event, cube in zip(events, done["cube"])]


def _timeline(table: pd.DataFrame, best: pd.DataFrame, *, out: Path, threshold: float,
              settings: dict) -> None:
    """Draw ``timeline.png``: probability against date, the top candidates numbered.

    Events without a probability (not fetched) are marked along the date axis; nothing
    is drawn when no event was predicted.
    """
    from jetkeras.figures import survey_timeline_figure

    scored = table[table["probability"].notna()]
    if not len(scored):
        return
    names = {event_id: f"#{rank}" for rank, event_id in enumerate(best["event_id"], start=1)}
    survey_timeline_figure(
        scored["date"].tolist(), scored["probability"].tolist(), out / "timeline.png",
        threshold=threshold,
        labels=[names.get(event_id, "") for event_id in scored["event_id"]],
        missing_dates=table.loc[table["probability"].isna(), "date"].tolist(),
        title=f"HEK {settings['event_type']} events {settings['start'][:10]} to "
              f"{settings['end'][:10]}: probability of a jet")


def _open_survey(out: Path, *, model, threshold, windows, event_type) -> tuple:
    """Load the model and pin the survey's settings in ``out/survey.json``.

    Returns the model's path, its ``Predictor`` and the settings dict.
    """
    from jetkeras.runtime import load_predictor, resolve_model

    model_path = resolve_model(model)
    predictor = load_predictor(model_path, threshold=threshold)
    # The bundled model is pinned by name: a reinstall moves its folder, not its weights.
    settings = {"start": windows[0][0], "end": windows[-1][1], "event_type": event_type,
                "model": "bundled" if model is None else str(Path(model_path).resolve()),
                "threshold": threshold}
    _pin_settings(out, settings)
    return model_path, predictor, settings


def _write_findings(table: pd.DataFrame, *, out: Path, predictor, model, settings: dict,
                    top: int, borderline: int, hek_rows: int, bar, resample: bool) -> None:
    """Write ``events.csv``, ``timeline.png``, the two galleries and ``report.md``.

    ``bar`` is the survey's tqdm bar: it advances once per gallery event.
    """
    bar.set_description("gallery")
    atomic_write_text(out / "events.csv", table.to_csv(index=False))
    best, near = _select(table, top=top, borderline=borderline, threshold=predictor.threshold)
    bar.total = bar.n + len(best) + len(near)
    bar.refresh()
    _timeline(table, best, out=out, threshold=predictor.threshold, settings=settings)
    galleries = {
        "top": _gallery(best, out=out, name="top", advance=bar.update,
                        title=f"Top {len(best)} candidates", predictor=predictor,
                        resample=resample),
        "borderline": _gallery(near, out=out, name="borderline", advance=bar.update,
                               predictor=predictor, resample=resample,
                               title=f"{len(near)} events closest to the threshold "
                                     f"{predictor.threshold:.3f}"),
    }
    description = _model_description(predictor, model)
    report = _report(out=out, settings=settings, model=description, table=table,
                     best=best, near=near, galleries=galleries, hek_rows=hek_rows)
    atomic_write_text(out / "report.md", report)


def survey(
    *,
    start,
    end,
    out: str | os.PathLike,
    model: str | os.PathLike | None = None,
    event_type: str = "CJ",
    threshold: float | None = None,
    top: int = 12,
    borderline: int = 12,
    limit: int | None = None,
    window_days: float = 30.0,
    workers: int = 1,
    scheduler: str | None = None,
    chunk: int = 64,
    batch_size: int = 16,
    resample: bool = False,
    email: str | None = None,
    retries: int = 3,
    backoff_s: float = 60.0,
    hek_opener=None,
    jsoc_client=None,
    sleep: Callable[[float], object] = time.sleep,
    progress: bool = True,
) -> dict[str, Any]:
    """Run hek -> fetch -> predict over ``[start, end)`` and write the survey folder.

    Parameters
    ----------
    start, end : str
        Time range, ISO 8601 UTC (``2017-01-01``).
    out : path-like
        Survey folder (module docstring); rerun with the same settings to resume.
    model : path-like, optional
        Run folder or SavedModel; default the bundled model.
    event_type : str
        HEK event type; default ``CJ``.
    threshold : float, optional
        Decision threshold in [0, 1]; default the model's.
    top, borderline : int
        Events in the gallery's top list and borderline list; default 12 each.
    limit : int, optional
        Fetch and predict only the first ``limit`` events (by start time).
    window_days : float
        Longest HEK query window, days.
    workers, scheduler
        Dask for the predict stage (see :func:`jetkeras.predict.predict_catalogue`).
    chunk : int
        Events predicted between two writes of ``predictions.csv``.
    batch_size : int
        Sequences per forward pass.
    resample : bool
        Interpolate cubes of another geometry to the model's instead of refusing them.
    email : str, optional
        JSOC address; default ``$JSOC_EMAIL``.
    retries, backoff_s, sleep
        Download retries (see :func:`jetkeras.fetch.fetch_events`).
    hek_opener, jsoc_client : callable, optional
        Injectable HEK page opener and JSOC client (tests; default the network).
    progress : bool
        Show the one progress bar.

    Returns
    -------
    dict
        ``events`` (the events.csv table), ``report`` (path), ``fetched_now`` (events
        downloaded in this run), ``predicted_now`` (events predicted in this run).
    """
    from tqdm.auto import tqdm

    from jetkeras.fetch import jsoc_email
    from jetkeras.hek import check_event_type, query_hek, query_windows

    _check_arguments(top=top, borderline=borderline, chunk=chunk, workers=workers,
                     limit=limit, threshold=threshold)
    email = jsoc_email(email)  # before anything: JSOC is the long stage
    event_type = check_event_type(event_type)
    windows = query_windows(start, end, window_days=window_days)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_path, predictor, settings = _open_survey(out, model=model, threshold=threshold,
                                                   windows=windows, event_type=event_type)
    bar = tqdm(total=len(windows), desc="hek", unit="step", file=sys.stderr,
               disable=not progress)
    advance = bar.update  # advance(n=1): n more steps done
    with bar:
        # 1. HEK: cached page by page.
        events = query_hek(start=start, end=end, out=out / "hek_events.csv",
                           event_type=event_type, cache=out / "hek_cache",
                           window_days=window_days, opener=hek_opener, progress=False,
                           on_window=lambda done, total: advance())
        hek_rows = events.attrs.get("hek_rows", 0)
        selected = events.head(limit) if limit is not None else events
        bar.total = len(windows) + 2 * len(selected) + top + borderline
        bar.set_description("fetch")
        bar.refresh()

        # 2. JSOC, one export at a time, in the model's geometry and channel.
        fetched, fetched_now = _fetch_stage(selected, out=out, predictor=predictor,
                                            client=jsoc_client, email=email, retries=retries,
                                            backoff_s=backoff_s, sleep=sleep, advance=advance)

        # 3. Predict, chunk by chunk.
        bar.set_description("predict")
        to_predict = _fetched_events(selected, fetched)
        advance(len(selected) - len(to_predict))
        predictions, predicted_now = _predict_in_chunks(
            to_predict, out=out, predictor=predictor, model_path=model_path,
            threshold=threshold, chunk=chunk, batch_size=batch_size, resample=resample,
            workers=workers, scheduler=scheduler, advance=advance)

        # 4. What a physicist looks at.
        table = _events_table(selected, fetched, predictions)
        _write_findings(table, out=out, predictor=predictor, model=model, settings=settings,
                        top=top, borderline=borderline, hek_rows=hek_rows, bar=bar,
                        resample=resample)
    return {"events": table, "report": out / "report.md", "fetched_now": fetched_now,
            "predicted_now": predicted_now}


def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "survey",
        "Survey the HEK: query the HEK for events between two UTC times, fetch\n"
        "their AIA cutouts from JSOC (needs JSOC_EMAIL), predict a jet probability\n"
        "for each, and write events.csv, timeline.png, a gallery and report.md\n"
        "into --out. Resumable: rerun the same command.",
        ["--start 2017-01-01 --end 2017-02-01 --out survey_2017_01",
         "--start 2017-01-01 --end 2017-02-01 --out survey_2017_01 --limit 20 --workers 4"])
    parser.add_argument("--start", required=True, help="start time, ISO 8601 UTC (2017-01-01); required")
    parser.add_argument("--end", required=True, help="end time, ISO 8601 UTC, exclusive; required")
    parser.add_argument("--out", required=True, help="survey folder (created; rerun to resume)")
    parser.add_argument("--model", default=None,
                        help="run folder or exported SavedModel; default the bundled model "
                             "(trained on synthetic renders, docs/model_card.md)")
    parser.add_argument("--event-type", default="CJ",
                        help="two-letter HEK event type; default CJ (coronal jet)")
    parser.add_argument("--threshold", type=_cli.probability, default=None,
                        help="decision threshold, probability in [0, 1]; default the model's")
    parser.add_argument("--top", type=_cli.non_negative_int, default=12,
                        help="events in the gallery of top candidates; default 12")
    parser.add_argument("--borderline", type=_cli.non_negative_int, default=12,
                        help="events closest to the threshold in the gallery; default 12")
    parser.add_argument("--limit", type=_cli.positive_int, default=None,
                        help="fetch and predict only the first N events by start time; "
                             "default all")
    parser.add_argument("--window-days", type=_cli.positive_float, default=30.0,
                        help="longest HEK query window, days; default 30")
    parser.add_argument("--workers", type=_cli.positive_int, default=1,
                        help="Dask LocalCluster processes for the predict stage; default 1 "
                             "(no Dask)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler (tcp://host:8786); default "
                             "none (local)")
    parser.add_argument("--resample", action="store_true",
                        help="interpolate cubes of another frame count or size (px) to the "
                             "model's; default refuse them")
    parser.add_argument("--retries", type=_cli.non_negative_int, default=3,
                        help="extra download attempts per event; default 3")
    parser.add_argument("--backoff", type=_cli.non_negative_float, default=60.0,
                        help="seconds before the first download retry, doubled each time; "
                             "default 60")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar; default shown")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m jetkeras.survey``: HEK -> JSOC -> predictions -> report."""
    _cli.quiet_tensorflow(load=False)  # LiteRT needs no TensorFlow
    args = _parser().parse_args(argv)

    def run():
        result = survey(start=args.start, end=args.end, out=args.out, model=args.model,
                        event_type=args.event_type, threshold=args.threshold, top=args.top,
                        borderline=args.borderline, limit=args.limit,
                        window_days=args.window_days, workers=args.workers,
                        scheduler=args.scheduler, resample=args.resample,
                        retries=args.retries, backoff_s=args.backoff,
                        progress=not args.no_progress)
        table = result["events"]
        scored = table["probability"].notna()
        print(f"survey: {len(table)} event(s), {int(scored.sum())} predicted, "
              f"{int((table['predicted'] == 1).sum())} labelled jet; report in "
              f"{result['report']}")

    with _cli.one_line_warnings("survey"):
        return _cli.run_main(run, "python -m jetkeras.survey", out=args.out)


if __name__ == "__main__":
    raise SystemExit(main())
