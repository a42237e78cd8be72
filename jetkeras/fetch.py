"""Download AIA cutouts for catalogue events from JSOC and store them as jetkeras cubes.

The query is the seed's (``helper_data_creation.py``): for an event starting at ``date``
with its jet base at ``(basepoint_X, basepoint_Y)`` (helioprojective arcsec, Earth
observer), ask JSOC's ``aia.lev1_euv_12s`` series for ``frames`` images of 304 A sampled
every ``cadence_s`` (30 x 24 s = an 11.6 min window from the start time), cut server-side
to a ``box_arcsec`` square (300") centred on the base point, without tracking::

    Fido.search(a.Time(start, start + (frames - 1) * cadence), a.Wavelength(304 * u.AA),
                a.Sample(24 * u.s), a.jsoc.Series.aia_lev1_euv_12s, a.jsoc.Notify(email),
                a.jsoc.Segment.image, a.jsoc.Cutout(bottom_left, top_right=top_right,
                                                    tracking=False))

Each event's FITS directory (``<out>/fits/<event_id>/``) is then read with
:func:`jetkeras.io.read_fits_dir` (cadence check, 3x3 max-pool) and written with
:func:`jetkeras.io.write_cube` as ``<out>/<event_id>.npz`` (``jetkeras-cube/1``, with
``event_id``, ``label``, ``row`` and the query in its meta). The raw FITS are deleted
unless ``--keep-fits`` (they are kept when the conversion fails, for inspection).

Resuming. ``<out>/fetch_state.json`` (written atomically after every event) records, per
event, ``status`` (``done`` / ``failed``), ``error``, ``attempts`` (cumulative), the cube
file and the time. A rerun skips ``done`` events whose cube exists and retries the
``failed`` ones; the state also pins the query settings, and a rerun with other settings
into the same ``--out`` is refused. JSOC allows one pending export per user
(sunpy/drms#60), so events run strictly one after the other; a failed download is retried
with exponential back-off (``backoff_s * 2**k``). A conversion error (e.g. "expected 30
frames, received 18", the seed's short downloads) is not retried within a run.

Examples::

    export JSOC_EMAIL=you@example.org        # registered at http://jsoc.stanford.edu
    python -m jetkeras.fetch --out data/jsoc --limit 5
    python -m jetkeras.fetch --out data/jsoc_neg --negatives --rows 0 1 2 --keep-fits
    python -m jetkeras.fetch --catalogue events.csv --out data/hek_2017   # jetkeras.hek's table

``--catalogue TABLE`` takes any event table :func:`jetkeras.catalogue.read_table` reads:
``python -m jetkeras.hek``'s CSV, the Solar Jet Hunter CSV as published, or a
jet-free-interval CSV. Without network the search fails at once: the command prints one
line (``JSOC cannot be reached ...``), exits with status 2 and keeps the state.

What was and was not exercised. JSOC cannot be reached from the machine this was written
on. The tests check the query attributes (values, units, cutout centre and size, Earth
observer, obstime), the missing-email error, retries with back-off, the resume logic
(a fake client that fails once then succeeds; a rerun skips done events), the
state-file pinning, and the FITS-to-cube conversion on real AIA frames (sunkit-image's
level-1 cutout, Rice-compressed in HDU 1 as JSOC exports it). The default client
:func:`fido_client` (``Fido.search`` + ``Fido.fetch``) has NOT been run against JSOC.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jetkeras import _cli
from jetkeras._files import Schema, is_disk_full, plain, read_format_json
from jetkeras.config import atomic_write_text
from jetkeras.io import read_fits_dir, write_cube

__all__ = [
    "JSOCUnreachableError",
    "STATE_FILE",
    "STATE_FORMAT",
    "build_query",
    "cutout_corners",
    "fetch_catalogue",
    "fetch_events",
    "fetch_table",
    "fido_client",
    "jsoc_email",
    "main",
]

STATE_FILE = "fetch_state.json"
STATE_FORMAT = "jetkeras-fetch-state/1"
EMAIL_VARIABLE = "JSOC_EMAIL"
EVENT_FIELDS = ("event_id", "label", "row", "date", "basepoint_X", "basepoint_Y")
SAFE_EVENT_ID = re.compile(r"[A-Za-z0-9_.+-]+")

class JSOCUnreachableError(ValueError):
    """JSOC could not be reached at all (no network): the run stops, nothing is retried.

    A ``ValueError`` so that the command prints it as one line and exits with status 2;
    events already fetched stay in the state file, so a rerun continues.
    """


# A client gets the query attributes and an empty folder; it downloads the FITS frames
# there and returns their paths. It raises on failure (the caller retries).
Client = Callable[[list, Path], list]


# --------------------------------------------------------------------------------------
# Query construction
# --------------------------------------------------------------------------------------


def jsoc_email(email: str | None = None) -> str:
    """The JSOC notification address: ``email`` if given, else ``$JSOC_EMAIL``.

    Raises
    ------
    ValueError
        Neither is set, or the value is not an e-mail address.
    """
    value = email if email is not None else os.environ.get(EMAIL_VARIABLE, "")
    value = value.strip()
    if not value:
        raise ValueError(
            f"{EMAIL_VARIABLE}: expected the e-mail address registered with JSOC "
            f"(export {EMAIL_VARIABLE}=you@example.org), received nothing"
        )
    if "@" not in value:
        raise ValueError(f"{EMAIL_VARIABLE}: expected an e-mail address, received {value!r}")
    return value


def _field(event: Mapping, name: str) -> Any:
    try:
        return event[name]
    except KeyError:
        raise ValueError(
            f"event {event.get('event_id', '?')!r}: expected field {name!r}, received fields "
            f"{sorted(map(str, event.keys()))}"
        ) from None


def _start_time(event: Mapping):
    from astropy.time import Time

    date = _field(event, "date")
    try:
        return Time(str(date).strip().rstrip("Z"), scale="utc")
    except ValueError:
        raise ValueError(
            f"event {event.get('event_id', '?')!r}: expected an ISO 8601 UTC date, received "
            f"{date!r}"
        ) from None


def _positive(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` expected a positive number, received {value!r}")
    return float(value)


def cutout_corners(event: Mapping, *, box_arcsec: float = 300.0):
    """Bottom-left and top-right corners of the square cutout centred on the jet base.

    Parameters
    ----------
    event : mapping
        Needs ``date`` (ISO UTC), ``basepoint_X``, ``basepoint_Y`` (helioprojective arcsec).
    box_arcsec : float
        Side of the square, arcsec (the seed: 300").

    Returns
    -------
    (astropy.coordinates.SkyCoord, astropy.coordinates.SkyCoord)
        Helioprojective corners with ``observer="earth"`` and ``obstime`` the event start
        (passed explicitly: newer sunpy requires both).
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import frames  # noqa: F401  registers the helioprojective frame

    half = _positive(box_arcsec, "box_arcsec") / 2.0
    start = _start_time(event)
    x, y = float(_field(event, "basepoint_X")), float(_field(event, "basepoint_Y"))
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(
            f"event {event.get('event_id', '?')!r}: expected a finite base point, received "
            f"({x}, {y})"
        )

    def corner(dx: float, dy: float):
        return SkyCoord((x + dx) * u.arcsec, (y + dy) * u.arcsec, frame="helioprojective",
                        observer="earth", obstime=start)

    return corner(-half, -half), corner(half, half)


def build_query(
    event: Mapping,
    *,
    email: str,
    wavelength_angstrom: float = 304.0,
    frames: int = 30,
    cadence_s: float = 24.0,
    box_arcsec: float = 300.0,
    series: str = "aia.lev1_euv_12s",
) -> list:
    """The list of Fido attributes for one event (the seed's JSOC query).

    Parameters
    ----------
    event : mapping
        A row of :func:`jetkeras.catalogue.load_events` (``date``, ``basepoint_X``,
        ``basepoint_Y``).
    email : str
        Address registered with JSOC (see :func:`jsoc_email`).
    wavelength_angstrom : float
        AIA channel, angstrom (default 304).
    frames : int
        Frames requested; the window is ``(frames - 1) * cadence_s`` long.
    cadence_s : float
        Sampling interval, seconds (``a.Sample``; AIA EUV is 12 s, the seed used 24 s).
    box_arcsec : float
        Side of the square cutout, arcsec.
    series : str
        JSOC series (``aia.lev1_uv_24s`` for 1600/1700 A).

    Returns
    -------
    list
        ``[a.Time, a.Wavelength, a.Sample, a.jsoc.Series, a.jsoc.Notify, a.jsoc.Segment,
        a.jsoc.Cutout]``, to be passed as ``Fido.search(*query)``.
    """
    import astropy.units as u
    from sunpy.net import attrs as a

    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"`frames` expected an integer >= 1, received {frames!r}")
    cadence_s = _positive(cadence_s, "cadence_s")
    wavelength_angstrom = _positive(wavelength_angstrom, "wavelength_angstrom")
    start = _start_time(event)
    end = start + (int(frames) - 1) * cadence_s * u.s
    bottom_left, top_right = cutout_corners(event, box_arcsec=box_arcsec)
    return [
        a.Time(start, end),
        a.Wavelength(wavelength_angstrom * u.angstrom),
        a.Sample(cadence_s * u.s),
        a.jsoc.Series(series),
        a.jsoc.Notify(jsoc_email(email)),
        a.jsoc.Segment("image"),
        a.jsoc.Cutout(bottom_left, top_right=top_right, tracking=False),
    ]


def fido_client(query: list, directory: Path) -> list[Path]:
    """Search JSOC and download into ``directory`` with Fido, one connection.

    NOT exercised against JSOC (no network where this was written; offline, the search
    fails in milliseconds with ``URLError``, turned into :class:`JSOCUnreachableError`).
    Raises ``RuntimeError`` when JSOC returns no record or a download fails, so the
    caller retries.
    """
    from sunpy.net import Fido

    try:
        result = Fido.search(*query)
    except OSError as error:
        # drms opens JSOC with urllib: no network is a URLError (an OSError) at search.
        reason = getattr(error, "reason", error)
        raise JSOCUnreachableError(
            f"JSOC cannot be reached at jsoc.stanford.edu ({type(error).__name__}: {reason}); "
            f"events fetched so far are kept, rerun when online") from None
    if result.file_num == 0:
        raise RuntimeError("JSOC returned no records for this query")
    # max_conn=1: JSOC rate-limits connections (sunpy PR #5714).
    files = Fido.fetch(result, path=str(Path(directory) / "{file}"), overwrite=True,
                       max_conn=1, progress=False)
    if files.errors:
        raise RuntimeError(f"{len(files.errors)} download(s) failed, first: {files.errors[0]}")
    return [Path(file) for file in files]


# --------------------------------------------------------------------------------------
# Execution and state
# --------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip()


def _load_state(path: Path, settings: dict) -> dict:
    if not path.exists():
        return {"format": STATE_FORMAT, "settings": settings, "events": {}}
    state = read_format_json(path, STATE_FORMAT, "a JSON fetch state")
    if state.get("settings") != settings:
        raise ValueError(
            f"{path}: expected the query settings this folder was fetched with "
            f"{state.get('settings')}, received {settings}; use another --out"
        )
    state.setdefault("events", {})
    _check_events(state["events"], path)
    return state


def _check_events(events: Any, path: Path) -> None:
    """Each ``fetch_state.json`` entry: ``status`` done or failed, ``attempts`` an integer
    >= 0, ``error`` and ``cube`` text or null (a done event names its cube)."""
    schema = Schema(path, "delete the event's entry (or the file) and rerun fetch, or fix "
                          "the file")
    for event_id, entry in schema.object(events, "events").items():
        key = f"events.{event_id}"
        entry = schema.object(entry, key)
        status = schema.text(schema.get(entry, "status", f"{key}.status"), f"{key}.status",
                             ("done", "failed"))
        schema.integer(entry.get("attempts", 0), f"{key}.attempts")
        for name in ("error", "cube"):
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                schema.fail(f"{key}.{name}", "text or null", value)
        if status == "done":
            schema.text(entry.get("cube"), f"{key}.cube")


def _save_state(path: Path, state: dict) -> None:
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n")


def _json_safe(value: Any) -> Any:
    """A catalogue value as cube metadata: plain Python, a NaN or infinity as None."""
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _events_list(events) -> list[dict]:
    if isinstance(events, pd.DataFrame):
        records = events.to_dict(orient="records")
    elif isinstance(events, Mapping):
        records = [dict(events)]
    else:
        records = [dict(event) for event in events]
    for record in records:
        missing = [name for name in EVENT_FIELDS if name not in record]
        if missing:
            raise ValueError(
                f"events: expected fields {list(EVENT_FIELDS)}, missing {missing} "
                f"(event {record.get('event_id', '?')!r})"
            )
        if not SAFE_EVENT_ID.fullmatch(str(record["event_id"])):
            raise ValueError(
                f"events: expected event ids made of letters, digits and _.+-, received "
                f"{record['event_id']!r}"
            )
    return records


def _download(client, query, raw_directory: Path, *, retries: int, backoff_s: float,
              sleep) -> tuple[int, str | None]:
    """Download one event's frames, retrying with doubling waits.

    Returns the number of attempts made and the last error's line (None on success).
    """
    error_text = None
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        # Start from an empty folder: partial files of an interrupted try must not mix in.
        shutil.rmtree(raw_directory, ignore_errors=True)
        raw_directory.mkdir(parents=True)
        try:
            client(query, raw_directory)
        except JSOCUnreachableError:
            # No network: retrying each event after minutes of back-off would only delay
            # the same answer. Stop; the state holds every event done so far.
            shutil.rmtree(raw_directory, ignore_errors=True)
            _remove_if_empty(raw_directory.parent)
            raise
        except Exception as error:
            if is_disk_full(error):
                # A full disk fails every event alike: stop with one line (run_main) and
                # keep the state, instead of recording each event as failed.
                shutil.rmtree(raw_directory, ignore_errors=True)
                _remove_if_empty(raw_directory.parent)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                              str(raw_directory)) from error
            # Any other download failure is retried, then recorded in the state file.
            error_text = _one_line(error)
            continue
        return attempt + 1, None
    return retries + 1, error_text


def _convert(raw_directory: Path, cube_path: Path, record: dict, settings: dict, *,
             cadence_tolerance_s: float) -> str | None:
    """Turn downloaded frames into a ``jetkeras-cube/1`` npz; the error line, or None."""
    try:
        cube = read_fits_dir(raw_directory, frames=settings["frames"],
                             cadence_s=settings["cadence_s"],
                             cadence_tolerance_s=cadence_tolerance_s, pool=settings["pool"])
        cube.meta.update({key: _json_safe(value) for key, value in record.items()})
        cube.meta.update({"query": settings, "fetched": _now()})
        write_cube(cube_path, cube)
    except (ValueError, FileNotFoundError) as error:
        # Deterministic (short sequence, cadence gap): retrying would not help.
        return f"conversion: {_one_line(error)}"
    return None


def _fetch_event(record: dict, query, entry: dict, *, out: Path, client, settings: dict,
                 retries: int, backoff_s: float, sleep, cadence_tolerance_s: float,
                 keep_fits: bool) -> dict:
    """Download and convert one event; its new ``fetch_state.json`` entry.

    ``entry`` is the event's previous entry (empty on its first run): its ``attempts``
    are carried over, so the count is cumulative across reruns.
    """
    event_id = str(record["event_id"])
    cube_path = out / f"{event_id}.npz"
    raw_directory = out / "fits" / event_id
    tries, error_text = _download(client, query, raw_directory, retries=retries,
                                  backoff_s=backoff_s, sleep=sleep)
    downloaded = error_text is None
    if downloaded:
        error_text = _convert(raw_directory, cube_path, record, settings,
                              cadence_tolerance_s=cadence_tolerance_s)
    status = "done" if downloaded and error_text is None else "failed"
    if status == "done" and not keep_fits:
        shutil.rmtree(raw_directory, ignore_errors=True)
    return {"status": status, "error": error_text,
            "attempts": int(entry.get("attempts", 0)) + tries,
            "cube": cube_path.name if status == "done" else None, "updated": _now()}


def fetch_events(
    events,
    *,
    out: str | os.PathLike,
    client: Client | None = None,
    email: str | None = None,
    wavelength_angstrom: float = 304.0,
    frames: int = 30,
    cadence_s: float = 24.0,
    cadence_tolerance_s: float = 6.0,
    box_arcsec: float = 300.0,
    pool: int = 3,
    series: str = "aia.lev1_euv_12s",
    retries: int = 3,
    backoff_s: float = 60.0,
    sleep: Callable[[float], object] = time.sleep,
    keep_fits: bool = False,
    progress: bool = True,
    on_event: Callable[[dict], object] | None = None,
) -> pd.DataFrame:
    """Fetch every event's cutout sequence, one export at a time, resumably.

    Parameters
    ----------
    events : pandas.DataFrame or iterable of mappings
        Rows of :func:`jetkeras.catalogue.load_events` (``event_id``, ``label``, ``row``,
        ``date``, ``basepoint_X``, ``basepoint_Y``; other columns go into the cube meta).
    out : path-like
        Output folder: ``<event_id>.npz`` cubes, ``fetch_state.json``, ``fits/<event_id>/``.
    client : callable, optional
        ``client(query, directory) -> list of paths``; downloads the FITS frames of one
        query into ``directory`` and raises on failure. Default :func:`fido_client`.
    email : str, optional
        JSOC address; default ``$JSOC_EMAIL``.
    wavelength_angstrom, frames, cadence_s, box_arcsec, series
        The query (see :func:`build_query`); defaults are the seed's.
    cadence_tolerance_s : float
        Allowed deviation of the downloaded frames' spacing, seconds.
    pool : int
        Max-pool factor applied when converting (the seed: 3, 500 -> 166 px).
    retries : int
        Extra download attempts after a failure (0 = try once).
    backoff_s : float
        Wait before the first retry, seconds; doubled at each further retry.
    sleep : callable
        ``sleep(seconds)``; injectable so tests do not wait.
    keep_fits : bool
        Keep the raw FITS after a successful conversion.
    progress : bool
        Show a tqdm progress bar.
    on_event : callable, optional
        ``on_event(row)`` after each event, with its summary row (below); the survey
        drives its one progress display with it.

    Returns
    -------
    pandas.DataFrame
        One row per requested event: ``event_id``, ``status`` (``done`` / ``failed``),
        ``attempts`` (cumulative over runs), ``error`` (None when done), ``cube`` (path
        or None), ``skipped`` (True when it was already done before this run).
    """
    email = jsoc_email(email)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"`retries` expected an integer >= 0, received {retries!r}")
    if not (isinstance(backoff_s, (int, float)) and backoff_s >= 0):
        raise ValueError(f"`backoff_s` expected a number >= 0, received {backoff_s!r}")
    client = client or fido_client
    records = _events_list(events)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "wavelength_angstrom": float(wavelength_angstrom), "frames": int(frames),
        "cadence_s": float(cadence_s), "box_arcsec": float(box_arcsec), "pool": int(pool),
        "series": str(series),
    }
    state_path = out / STATE_FILE
    state = _load_state(state_path, settings)
    # Build every query first: a bad row fails before any export is requested.
    queries = [
        build_query(record, email=email, wavelength_angstrom=wavelength_angstrom,
                    frames=frames, cadence_s=cadence_s, box_arcsec=box_arcsec, series=series)
        for record in records
    ]

    summary: list[dict] = []
    try:
        _fetch_each(records, queries, summary, out=out, state=state, state_path=state_path,
                    settings=settings, client=client, retries=retries, backoff_s=backoff_s,
                    sleep=sleep, cadence_tolerance_s=cadence_tolerance_s,
                    keep_fits=keep_fits, progress=progress, on_event=on_event)
    except KeyboardInterrupt:
        # The state is saved after each event; the event under way is fetched again.
        done = sum(entry.get("status") == "done" for entry in state["events"].values())
        raise _cli.Interrupted(f"after {len(summary)} of {len(records)} events",
                               f"{done} fetched cube(s) and the state are kept in "
                               f"{state_path}") from None
    _remove_if_empty(out / "fits")
    return pd.DataFrame(summary, columns=["event_id", "status", "attempts", "error", "cube",
                                          "skipped"])


def _fetch_each(records, queries, summary, *, out, state, state_path, settings, client,
                retries, backoff_s, sleep, cadence_tolerance_s, keep_fits, progress,
                on_event) -> None:
    """The loop of :func:`fetch_events`: one row of ``summary`` per event handled."""
    from tqdm.auto import tqdm

    for record, query in tqdm(list(zip(records, queries)), desc="fetch", unit="event",
                              disable=not progress):
        event_id = str(record["event_id"])
        entry = state["events"].get(event_id, {})
        cube_path = out / f"{event_id}.npz"
        skipped = entry.get("status") == "done" and cube_path.exists()
        if not skipped:
            entry = _fetch_event(record, query, entry, out=out, client=client,
                                 settings=settings, retries=retries, backoff_s=backoff_s,
                                 sleep=sleep, cadence_tolerance_s=cadence_tolerance_s,
                                 keep_fits=keep_fits)
            state["events"][event_id] = entry
            _save_state(state_path, state)
        done = entry["status"] == "done"
        summary.append({"event_id": event_id, "status": entry["status"],
                        "attempts": entry.get("attempts", 0),
                        "error": None if done else entry["error"],
                        "cube": str(cube_path) if done else None, "skipped": skipped})
        if on_event is not None:
            on_event(summary[-1])


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _select_rows(events: pd.DataFrame, *, rows: Iterable[int] | None, limit: int | None,
                 source: str) -> pd.DataFrame:
    """The events whose ``row`` is in ``rows`` (default all), then the first ``limit``.

    ``source`` names the table in the ``--rows`` error (``the jet catalogue``, a path).
    """
    if rows is not None:
        rows = [int(row) for row in rows]
        unknown = sorted(set(rows) - set(events["row"].astype(int)))
        if unknown:
            raise ValueError(f"--rows: expected rows 0..{int(events['row'].max())} of "
                             f"{source}, received {unknown}")
        events = events[events["row"].astype(int).isin(rows)]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit: expected an integer >= 1, received {limit}")
        events = events.head(limit)
    return events


def fetch_catalogue(
    *,
    out: str | os.PathLike,
    negatives: bool = False,
    rows: Iterable[int] | None = None,
    limit: int | None = None,
    **fetch_options,
) -> pd.DataFrame:
    """Fetch the jets (or the jet-free intervals) of the bundled catalogue.

    Parameters
    ----------
    out : path-like
        Output folder (see :func:`fetch_events`).
    negatives : bool
        Fetch the jet-free intervals (label 0) instead of the jets.
    rows : iterable of int, optional
        Catalogue CSV rows to fetch (the seed's file names); default all.
    limit : int, optional
        Fetch at most this many events (after ``rows``).
    **fetch_options
        Passed to :func:`fetch_events`.
    """
    from jetkeras.catalogue import load_events

    events = load_events()
    label = 0 if negatives else 1
    selected = _select_rows(events[events["label"] == label], rows=rows, limit=limit,
                            source=f"the {'negatives' if negatives else 'jet'} catalogue")
    summary = fetch_events(selected, out=out, **fetch_options)
    done = int((summary["status"] == "done").sum())
    print(f"fetch: {done} of {len(summary)} event(s) done, "
          f"{int((summary['status'] == 'failed').sum())} failed; state in "
          f"{Path(out) / STATE_FILE}")
    return summary


def fetch_table(
    table: str | os.PathLike,
    *,
    out: str | os.PathLike,
    rows: Iterable[int] | None = None,
    limit: int | None = None,
    **fetch_options,
) -> pd.DataFrame:
    """Fetch the events of an event table: ``jetkeras.hek``'s, the SJH CSV or jet-free CSV.

    Parameters
    ----------
    table : path-like
        Any layout :func:`jetkeras.catalogue.read_table` reads: an event table with an
        ``event_id`` column (``python -m jetkeras.hek``), the Solar Jet Hunter catalogue as
        published (``#sjh_ID``), or jet-free intervals (``date, basepoint_X,
        basepoint_Y``).
    out : path-like
        Output folder (see :func:`fetch_events`).
    rows : iterable of int, optional
        Table rows (the ``row`` column) to fetch; default all.
    limit : int, optional
        Fetch at most this many events (after ``rows``).
    **fetch_options
        Passed to :func:`fetch_events`.
    """
    from jetkeras.catalogue import read_table

    events = _select_rows(read_table(table), rows=rows, limit=limit, source=str(table))
    summary = fetch_events(events, out=out, **fetch_options)
    print(f"fetch: {int((summary['status'] == 'done').sum())} of {len(summary)} event(s) "
          f"of {table} done, {int((summary['status'] == 'failed').sum())} failed; state in "
          f"{Path(out) / STATE_FILE}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m jetkeras.fetch``: fetch catalogue events from JSOC into cube npz files."""
    parser = _cli.make_parser(
        "fetch",
        "Download AIA cutouts of catalogue events from JSOC (needs JSOC_EMAIL set to an "
        "address registered with JSOC) and store each as <out>/<event_id>.npz. Resumable: "
        "rerun the same command to continue.",
        ["--out jsoc/ --limit 10",
         "--catalogue events.csv --out jsoc/ --wavelength 171"])
    parser.add_argument("--out", required=True, help="output folder (cubes, fetch_state.json); created if missing")
    parser.add_argument("--catalogue", metavar="TABLE", default=None,
                        help="event table to fetch: python -m jetkeras.hek's CSV, the Solar "
                             "Jet Hunter CSV as published, or a jet-free-interval CSV; "
                             "default the bundled catalogue")
    parser.add_argument("--negatives", action="store_true",
                        help="bundled catalogue only: fetch the jet-free intervals instead "
                             "of the jets; default off")
    parser.add_argument("--rows", type=_cli.non_negative_int, nargs="+", default=None,
                        help="catalogue CSV rows to fetch (the row column of --catalogue); "
                             "default all")
    parser.add_argument("--limit", type=_cli.positive_int, default=None,
                        help="fetch at most this many events; default no limit")
    parser.add_argument("--wavelength", type=_cli.positive_float, default=304.0,
                        help="AIA channel in angstrom; default 304")
    parser.add_argument("--frames", type=_cli.bounded_int(2, _cli.MAX_FRAMES), default=30,
                        help="frames per sequence; default 30")
    parser.add_argument("--cadence", type=_cli.positive_float, default=24.0,
                        help="seconds between frames; default 24")
    parser.add_argument("--cadence-tolerance", type=_cli.non_negative_float, default=6.0,
                        help="allowed deviation of frame spacing in seconds; default 6")
    parser.add_argument("--box", type=_cli.positive_float, default=300.0,
                        help="side of the square cutout in arcsec; default 300")
    parser.add_argument("--pool", type=_cli.positive_int, default=3,
                        help="max-pool factor when converting to a cube (3 = 3x3 px into one); "
                             "default 3")
    parser.add_argument("--series", default="aia.lev1_euv_12s",
                        help="JSOC series; default aia.lev1_euv_12s")
    parser.add_argument("--retries", type=_cli.non_negative_int, default=3,
                        help="extra download attempts per event; default 3")
    parser.add_argument("--backoff", type=_cli.non_negative_float, default=60.0,
                        help="seconds before the first retry, doubled each time; default 60")
    parser.add_argument("--keep-fits", action="store_true",
                        help="keep the raw FITS under <out>/fits/; default delete after conversion")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar; default "
                        "shown")
    args = parser.parse_args(argv)
    options = dict(
        wavelength_angstrom=args.wavelength, frames=args.frames, cadence_s=args.cadence,
        cadence_tolerance_s=args.cadence_tolerance, box_arcsec=args.box, pool=args.pool,
        series=args.series, retries=args.retries, backoff_s=args.backoff,
        keep_fits=args.keep_fits, progress=not args.no_progress,
    )

    def run():
        if args.catalogue is None:
            return fetch_catalogue(out=args.out, negatives=args.negatives, rows=args.rows,
                                   limit=args.limit, **options)
        if args.negatives:
            raise ValueError("--negatives: selects the bundled catalogue's jet-free "
                             "intervals; with --catalogue pass the jet-free CSV itself")
        return fetch_table(args.catalogue, out=args.out, rows=args.rows, limit=args.limit,
                           **options)

    return _cli.run_main(run, prog="python -m jetkeras.fetch",
                         resume=_cli.resume_command("fetch", argv), out=args.out)


if __name__ == "__main__":
    raise SystemExit(main())
