"""Query the HEK for coronal-jet events and write them as a jetkeras event table.

The query is sunpy's: ``Fido.search(a.Time(start, end), a.hek.EventType("CJ"))``. We build
its parameters with sunpy's own HEK attribute walker (``sunpy.net.hek.attrs.walker``, the
``HEKClient`` defaults: JSON, full disk, helioprojective) and page through the results as
``HEKClient._download`` does (``page=1, 2, ...`` while the answer says ``"overmax":
true``), but we keep every raw page: ``Fido`` hands back only the parsed table, so it
could neither resume a long query nor answer a rerun from disk.

Long ranges are cut into windows of ``window_days`` (default 30). Every raw page is
written, atomically, to ``<cache>/<event_type>_<start>_<end>_<hash>/page_0001.json`` as
HEK sent it; a window whose last page (``"overmax": false``) is cached is never queried
again, and an interrupted window resumes at its first missing page. Delete the cache
folder to ask the HEK again (recent windows can still gain events).

The event table
---------------
One CSV, one row per HEK event, the schema that ``fetch --catalogue``,
``predict --catalogue``, ``survey`` and, once every ``label`` is filled in (events checked
by eye), ``build_records --catalogue`` read (:func:`jetkeras.catalogue.read_table`):

===================  =================================================================
``event_id``         file-safe HEK id: ``SOL_standard`` without its colons
                     (``SOL2017-01-03T101100L125C072``); names the cube ``<event_id>.npz``
``label``            empty: not classified (1 jet / 0 no jet in the bundled catalogue)
``row``              row number in this table, from 0
``SOL_event``        HEK ``SOL_standard``, unchanged (``SOL2017-01-03T10:11:00L125C072``)
``group``            split key, the ``SOL_event``
``date``             ``event_starttime``, ISO 8601 UTC; the cutout window starts here
``end_date``         ``event_endtime``, ISO 8601 UTC
``basepoint_X``      ``hpc_x``, helioprojective arcsec (the cutout centre)
``basepoint_Y``      ``hpc_y``, helioprojective arcsec
``duration``         end minus start, minutes
``event_type``       HEK event type (``CJ``)
``frm_name``         the reporting method (feature recognition method) of the first report
``obs_observatory``  ``obs_observatory`` of the first report (``SDO``)
``obs_channelid``    every channel reported, joined by ``;`` (``304;171``)
===================  =================================================================

The HEK returns one row per reported channel, so one event can come several times: rows
are merged on ``SOL_standard`` (the 2011-2017 CJ query gives 1,863 rows). Rows without a
``SOL_standard``, a start time or a finite ``hpc_x``/``hpc_y`` cannot be cut out and are
dropped with one warning that counts them.

Examples::

    python -m jetkeras.hek --start 2017-01-01 --end 2017-02-01 --out events.csv
    python -m jetkeras.hek --start 2012-01-01 --end 2013-01-01 --event-type CJ \\
        --cache hek_cache --out cj_2012.csv

With no network the command prints one line (``HEK cannot be reached ...``) and exits
with status 2; the pages already cached are kept, so a rerun continues.

What was and was not exercised. The HEK cannot be reached from the machine this was
written on. The tests run the query parameters through sunpy's walker, page through
recorded JSON pages modelled on the HEK's answer (``{"result": [...], "overmax": ...}``),
check the cache (a rerun opens no URL), resume after an interrupted window, merge the
per-channel rows, and check the one-line error when the URL cannot be opened (a real
``urllib`` call fails on name resolution here). The live HEK answer has NOT been seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from jetkeras import _cli
from jetkeras._files import atomic_write_text

__all__ = [
    "EVENT_TABLE_COLUMNS",
    "HEK_URL",
    "HEKUnreachableError",
    "check_event_type",
    "events_from_rows",
    "hek_parameters",
    "main",
    "query_hek",
    "query_windows",
    "read_pages",
]

HEK_URL = "https://www.lmsal.com/hek/her?"
EVENT_TABLE_COLUMNS = [
    "event_id", "label", "row", "SOL_event", "group", "date", "end_date", "basepoint_X",
    "basepoint_Y", "duration", "event_type", "frm_name", "obs_observatory", "obs_channelid",
]
EVENT_TYPE = re.compile(r"[A-Za-z]{2}")
UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9_.+-]")
PAGE_LIMIT = 1000  # a window needing more pages than this is refused (a runaway answer)
TIMEOUT_S = 60.0  # seconds before one HEK page request gives up

# An opener takes a URL and returns the body's bytes; it raises OSError when the server
# cannot be reached (urllib's URLError is one).
Opener = Callable[[str], bytes]


class HEKUnreachableError(ValueError):
    """The HEK could not be reached; the pages cached so far are kept.

    A ``ValueError`` so that every command prints it as one line and exits with status 2.
    """


# --------------------------------------------------------------------------------------
# The query
# --------------------------------------------------------------------------------------


def _time(value, flag: str):
    from astropy.time import Time

    try:
        return Time(str(value).strip().rstrip("Z"), scale="utc")
    except ValueError:
        raise ValueError(f"{flag}: expected an ISO 8601 UTC time such as 2017-01-01 or "
                         f"2017-01-01T12:00:00, received {value!r}") from None


def check_event_type(event_type: str) -> str:
    """A two-letter HEK event type in upper case (``cj`` -> ``CJ``), else ``ValueError``."""
    if not isinstance(event_type, str) or not EVENT_TYPE.fullmatch(event_type):
        raise ValueError(f"--event-type: expected a two-letter HEK event type such as CJ "
                         f"(coronal jet) or FL (flare), received {event_type!r}")
    return event_type.upper()


def hek_parameters(start, end, *, event_type: str = "CJ") -> dict[str, Any]:
    """The HEK URL parameters of ``Fido.search(a.Time(start, end), a.hek.EventType(type))``.

    Built by sunpy's HEK attribute walker on top of ``HEKClient.default`` (JSON answer,
    full-disk search box in helioprojective arcsec), exactly as ``HEKClient.search``
    builds them; only ``page`` is added later, per request.

    Parameters
    ----------
    start, end : str or astropy.time.Time
        The time range, UTC.
    event_type : str
        Two-letter HEK event type; default ``CJ`` (coronal jet).

    Returns
    -------
    dict
        ``cosec``, ``cmd``, ``type``, ``event_type``, ``event_starttime``,
        ``event_endtime``, ``event_coordsys``, ``x1``, ``x2``, ``y1``, ``y2``.
    """
    from sunpy.net import attr
    from sunpy.net import attrs as a
    from sunpy.net.hek import HEKClient
    from sunpy.net.hek import attrs as hek_attrs

    query = attr.and_(a.Time(start, end), a.hek.EventType(check_event_type(event_type)))
    (walked,) = hek_attrs.walker.create(query, {})
    parameters = dict(HEKClient.default)
    parameters.update(walked)
    return parameters


def query_windows(start, end, *, window_days: float = 30.0) -> list[tuple[str, str]]:
    """Cut ``[start, end)`` into consecutive windows of at most ``window_days``.

    Returns
    -------
    list of (str, str)
        ISO UTC start and end of each window (``YYYY-MM-DDTHH:MM:SS``).
    """
    import astropy.units as u

    start_time, end_time = _time(start, "--start"), _time(end, "--end")
    if not end_time > start_time:
        raise ValueError(f"--end: expected a time after --start ({start_time.isot}), "
                         f"received {end_time.isot}")
    if not (isinstance(window_days, (int, float)) and math.isfinite(window_days)
            and window_days > 0):
        raise ValueError(f"--window-days: expected a positive number of days, received "
                         f"{window_days!r}")
    windows = []
    current = start_time
    while current < end_time:
        stop = min(current + window_days * u.day, end_time)
        windows.append((current.strftime("%Y-%m-%dT%H:%M:%S"),
                        stop.strftime("%Y-%m-%dT%H:%M:%S")))
        current = stop
    return windows


# --------------------------------------------------------------------------------------
# Pages and their cache
# --------------------------------------------------------------------------------------


def _urlopen(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return response.read()


def _window_folder(cache: Path, parameters: dict) -> Path:
    digest = hashlib.sha1(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:12]
    start = parameters["event_starttime"].replace(":", "")
    end = parameters["event_endtime"].replace(":", "")
    return cache / f"{parameters['event_type']}_{start}_{end}_{digest}"


def _check_page(page: Any, where: str) -> dict:
    if (not isinstance(page, dict) or not isinstance(page.get("result"), list)
            or not isinstance(page.get("overmax"), bool)):
        found = sorted(page) if isinstance(page, dict) else type(page).__name__
        raise ValueError(f"{where}: expected a HEK JSON page {{\"result\": [...], "
                         f"\"overmax\": true|false}}, received {found}")
    return page


def _read_cached(path: Path) -> dict:
    try:
        return _check_page(json.loads(path.read_text()), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: expected a cached HEK JSON page, received invalid JSON "
                         f"({error}); delete it to query again") from None


def read_pages(
    parameters: dict[str, Any],
    *,
    cache: str | os.PathLike,
    opener: Opener | None = None,
    url: str = HEK_URL,
) -> tuple[list[dict], int]:
    """Every page of one HEK query, from the cache where present, else from the HEK.

    Parameters
    ----------
    parameters : dict
        From :func:`hek_parameters`.
    cache : path-like
        Cache root; this query's pages go to one sub-folder named by its parameters.
    opener : callable, optional
        ``opener(url) -> bytes``; default ``urllib.request.urlopen`` with a 60 s timeout.
    url : str
        HEK endpoint.

    Returns
    -------
    (list of dict, int)
        The raw pages in order (each ``{"result": [...], "overmax": bool, ...}``) and the
        number of pages requested from the HEK this time (0 when all were cached).

    Raises
    ------
    HEKUnreachableError
        The HEK could not be reached (pages already written stay cached).
    ValueError
        A page that is not HEK JSON.
    """
    opener = opener or _urlopen
    folder = _window_folder(Path(cache), parameters)
    pages, requested = [], 0
    for number in range(1, PAGE_LIMIT + 1):
        path = folder / f"page_{number:04d}.json"
        if path.is_file():
            page = _read_cached(path)
        else:
            request = {**parameters, "page": number}
            # HEKClient renames operatorN to opN before sending; do the same.
            request = {(f"op{key.split('operator')[-1]}" if "operator" in key else key): value
                       for key, value in request.items()}
            page_url = url + urllib.parse.urlencode(request)
            try:
                body = opener(page_url)
            except (OSError, urllib.error.URLError) as error:
                reason = getattr(error, "reason", error)
                raise HEKUnreachableError(
                    f"HEK cannot be reached at {url.rstrip('?')} ({type(error).__name__}: "
                    f"{reason}); {_count_cached(Path(cache))} page(s) cached in {cache} are "
                    f"kept, rerun when online") from None
            requested += 1
            try:
                page = json.loads(body.decode("utf-8", errors="replace"))
            except json.JSONDecodeError:
                raise ValueError(f"HEK page {number} of {parameters['event_starttime']} to "
                                 f"{parameters['event_endtime']}: expected JSON, received "
                                 f"{body[:60]!r}") from None
            _check_page(page, f"HEK page {number} of {parameters['event_starttime']}")
            atomic_write_text(path, json.dumps(page) + "\n")
        pages.append(page)
        if not page["overmax"]:
            return pages, requested
    raise ValueError(f"HEK query {parameters['event_starttime']} to "
                     f"{parameters['event_endtime']}: expected fewer than {PAGE_LIMIT} pages; "
                     f"use a smaller --window-days")


def _count_cached(cache: Path) -> int:
    return len(list(cache.glob("*/page_*.json"))) if cache.is_dir() else 0


# --------------------------------------------------------------------------------------
# Rows -> event table
# --------------------------------------------------------------------------------------


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _iso(value) -> str | None:
    if value in (None, ""):
        return None
    try:
        return _time(value, "event time").isot
    except ValueError:
        return None


def events_from_rows(rows: list[dict]) -> pd.DataFrame:
    """Merge HEK rows (one per channel) into one event table row per ``SOL_standard``.

    Parameters
    ----------
    rows : list of dict
        Raw HEK result rows (``SOL_standard``, ``event_starttime``, ``event_endtime``,
        ``hpc_x``, ``hpc_y``, ``frm_name``, ``event_type``, ``obs_observatory``,
        ``obs_channelid``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_TABLE_COLUMNS` (see the module docstring), sorted by start
        time then ``event_id``; ``row`` numbers the sorted rows from 0.
    """
    merged: dict[str, dict[str, Any]] = {}
    dropped = 0
    for row in rows:
        sol = str(row.get("SOL_standard") or "").strip()
        start, end = _iso(row.get("event_starttime")), _iso(row.get("event_endtime"))
        x, y = _finite(row.get("hpc_x")), _finite(row.get("hpc_y"))
        if not sol or start is None or x is None or y is None:
            dropped += 1
            continue
        channel = str(row.get("obs_channelid") or "").strip()
        if sol in merged:
            channels = merged[sol]["obs_channelid"].split(";")
            if channel and channel not in channels:
                merged[sol]["obs_channelid"] = ";".join([*filter(None, channels), channel])
            continue
        end = end or start
        duration = (_time(end, "event_endtime") - _time(start, "event_starttime")).to_value("min")
        merged[sol] = {
            "event_id": UNSAFE_ID_CHARACTERS.sub("", sol), "label": "", "row": 0,
            "SOL_event": sol, "group": sol, "date": start, "end_date": end,
            "basepoint_X": x, "basepoint_Y": y, "duration": round(float(duration), 3),
            "event_type": str(row.get("event_type") or ""),
            "frm_name": str(row.get("frm_name") or ""),
            "obs_observatory": str(row.get("obs_observatory") or ""),
            "obs_channelid": channel,
        }
    if dropped:
        warnings.warn(f"HEK: dropped {dropped} row(s) without SOL_standard, start time or a "
                      f"finite hpc_x/hpc_y (they cannot be cut out)", UserWarning, stacklevel=2)
    table = pd.DataFrame(list(merged.values()), columns=EVENT_TABLE_COLUMNS)
    table = table.sort_values(["date", "event_id"], kind="stable").reset_index(drop=True)
    # Stripping the colons could, in principle, make two ids equal: number the repeats.
    repeats = table.groupby("event_id").cumcount()
    table.loc[repeats > 0, "event_id"] = (table["event_id"] + "_"
                                          + (repeats + 1).astype(str))[repeats > 0]
    table["row"] = range(len(table))
    return table


# --------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------


def query_hek(
    *,
    start,
    end,
    out: str | os.PathLike | None = None,
    event_type: str = "CJ",
    cache: str | os.PathLike | None = None,
    window_days: float = 30.0,
    opener: Opener | None = None,
    url: str = HEK_URL,
    progress: bool = True,
    on_window: Callable[[int, int], object] | None = None,
) -> pd.DataFrame:
    """Query the HEK over ``[start, end)``, window by window, and return the event table.

    Parameters
    ----------
    start, end : str or astropy.time.Time
        Time range, UTC (``2017-01-01``).
    out : path-like, optional
        CSV to write the event table to, atomically.
    event_type : str
        Two-letter HEK event type; default ``CJ``.
    cache : path-like, optional
        Folder for the raw pages; default ``hek_cache/`` beside ``out`` (or in the
        current folder without ``out``).
    window_days : float
        Longest window per query, days; default 30.
    opener : callable, optional
        ``opener(url) -> bytes``; injectable so tests run on recorded pages.
    url : str
        HEK endpoint.
    progress : bool
        Show a tqdm bar over the windows.
    on_window : callable, optional
        ``on_window(done, total)`` after each window (the survey's progress display).

    Returns
    -------
    pandas.DataFrame
        The event table (module docstring); ``attrs["pages_requested"]`` counts the pages
        asked of the HEK this time, ``attrs["hek_rows"]`` the raw rows.
    """
    from tqdm.auto import tqdm

    event_type = check_event_type(event_type)
    if out is not None:
        out = Path(out)
        if out.suffix.lower() != ".csv":
            raise ValueError(f"--out {out}: expected a .csv file name, received suffix "
                             f"{out.suffix!r}")
    cache = Path(cache) if cache is not None else (
        (out.parent if out is not None else Path(".")) / "hek_cache")
    windows = query_windows(start, end, window_days=window_days)
    rows: list[dict] = []
    requested = 0
    for number, (window_start, window_end) in enumerate(
            tqdm(windows, desc="hek", unit="window", file=sys.stderr,
                 disable=not progress or len(windows) < 2), start=1):
        parameters = hek_parameters(window_start, window_end, event_type=event_type)
        pages, asked = read_pages(parameters, cache=cache, opener=opener, url=url)
        requested += asked
        for page in pages:
            rows.extend(page["result"])
        if on_window is not None:
            on_window(number, len(windows))
    table = events_from_rows(rows)
    # The HEK answers events that overlap a window, so an event can start before the
    # range (or come twice, across a window boundary: merged above). Keep those that
    # start inside [start, end), so that two adjacent ranges never share an event.
    first, last = windows[0][0], windows[-1][1]
    starts = table["date"].str.slice(0, 19)
    table = table[(starts >= first) & (starts < last)].reset_index(drop=True)
    table["row"] = range(len(table))
    table.attrs.update(pages_requested=requested, hek_rows=len(rows))
    if out is not None:
        atomic_write_text(out, table.to_csv(index=False))
    return table


def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "hek",
        "Query the HEK for events (coronal jets by default) between two UTC\n"
        "times and write one event table (CSV) that fetch, predict and survey\n"
        "read. Raw pages are cached: a rerun does not query again.",
        ["--start 2017-01-01 --end 2017-02-01 --out events.csv"])
    parser.add_argument("--start", required=True, help="start time, ISO 8601 UTC (2017-01-01); required")
    parser.add_argument("--end", required=True, help="end time, ISO 8601 UTC, exclusive; required")
    parser.add_argument("--out", required=True, help="event table to write (.csv)")
    parser.add_argument("--event-type", default="CJ",
                        help="two-letter HEK event type; default CJ (coronal jet)")
    parser.add_argument("--cache", default=None,
                        help="folder for the raw HEK pages; default hek_cache/ beside --out")
    parser.add_argument("--window-days", type=_cli.positive_float, default=30.0,
                        help="longest time window per HEK query, days; default 30")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar; default shown")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m jetkeras.hek``: write the HEK events of a time range as an event table."""
    args = _parser().parse_args(argv)

    def run():
        table = query_hek(start=args.start, end=args.end, out=args.out,
                          event_type=args.event_type, cache=args.cache,
                          window_days=args.window_days, progress=not args.no_progress)
        print(f"hek: {len(table)} event(s) from {table.attrs['hek_rows']} HEK row(s); "
              f"{table.attrs['pages_requested']} page(s) asked of the HEK, the rest from "
              f"the cache; wrote {args.out}")

    return _cli.run_main(run, "python -m jetkeras.hek")


if __name__ == "__main__":
    raise SystemExit(main())
