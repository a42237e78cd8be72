"""The Solar Jet Hunter catalogue and the jet-free intervals, read exactly.

Two CSV files ship inside the package (``jetkeras/data``), as published with the seed:

``Jet_clusters_3.0_2.0_paperID.csv``
    883 jets from 229 HEK coronal-jet events (Solar Jet Hunter catalogue v1,
    A&A 688, A127, 2024). The header has a space after every comma, the first column
    is literally ``#sjh_ID``, ``flag`` is a 3-character bit string (``001``) and
    ``velocity`` is the literal ``nan`` where it could not be computed.
``No_jet_df.csv``
    883 HEK coronal-jet windows that contain no catalogued jet (label 0), with only a
    date and a base point: no event id.

:func:`load_events` joins both into one event index (a `pandas.DataFrame`) with one row
per sequence and these columns:

=================  ====================================================================
``event_id``       stable id: the ``sjh_ID`` for jets, ``nojet_<row>`` for negatives
``label``          1 for a jet, 0 for a jet-free interval
``row``            row of the source CSV (the seed's npz file name, ``data1/<row>.npz``)
``sjh_ID``         Solar Jet Hunter id (empty for negatives)
``SOL_event``      HEK event name (empty for negatives)
``group``          split key: rows sharing it always land in the same split
``date``           start time, ISO 8601 UTC string (:func:`times` gives astropy Time)
``basepoint_X``    jet base, helioprojective arcsec (``basepoint_Y`` likewise)
``duration``       minutes (jets); NaN for negatives
...                the jet parameters (``max_height``, ``avg_width``, ``velocity``, ...)
=================  ====================================================================

:func:`read_table` reads any supported table and says which it is: an event index
(``event_id`` column, as :func:`load_events` returns and our tables write), the published
Solar Jet Hunter catalogue (``#sjh_ID``), or jet-free intervals (``date``,
``basepoint_X``, ``basepoint_Y``).

Grouping. Jets group by ``SOL_event``. A negative joins the group of any row (jet or
negative) observed on the same UTC day with a base point within ``radius_arcsec``
(default 5"): repeated HEK windows of one region, and jet-free windows cut from a jet's
own HEK event, then never straddle train and test.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "JET_CATALOGUE",
    "NEGATIVES",
    "load_events",
    "load_jets",
    "load_negatives",
    "read_table",
    "times",
]

JET_CATALOGUE = "Jet_clusters_3.0_2.0_paperID.csv"
NEGATIVES = "No_jet_df.csv"

JET_COLUMNS = [
    "sjh_ID", "date", "SOL_event", "duration", "basepoint_X", "std_X", "basepoint_Y",
    "std_Y", "basepoint_X_longitude", "basepoint_Y_latitude", "max_height", "upper_H",
    "lower_H", "avg_width", "std_width", "velocity", "sigma", "flag",
]
NEGATIVE_COLUMNS = ["date", "basepoint_X", "basepoint_Y"]


def _bundled(name: str) -> Path:
    return Path(str(resources.files("jetkeras") / "data" / name))


def _read_csv(path: Path, expected: list[str], **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: catalogue file not found")
    try:
        # skipinitialspace: the jet catalogue's header has a space after every comma.
        frame = pd.read_csv(path, skipinitialspace=True, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from None
    frame.columns = [column.strip().lstrip("#") for column in frame.columns]
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: expected columns {expected}, missing {missing}; "
            f"received {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{path}: expected at least one row, received none")
    return frame


def load_jets(path: str | Path | None = None) -> pd.DataFrame:
    """Read the Solar Jet Hunter catalogue exactly.

    Parameters
    ----------
    path : str or Path, optional
        CSV in the catalogue's layout; defaults to the bundled copy.

    Returns
    -------
    pandas.DataFrame
        883 rows for the bundled file; ``flag`` as a 3-character string, ``velocity``
        float with NaN, ``date`` an ISO UTC string.
    """
    path = Path(path) if path is not None else _bundled(JET_CATALOGUE)
    # Never comment="#": the first header cell is literally "#sjh_ID".
    frame = _read_csv(path, JET_COLUMNS, dtype={"flag": str, "SOL_event": str})
    frame["flag"] = frame["flag"].str.strip().str.zfill(3)
    bad = frame.index[~frame["flag"].str.fullmatch(r"[01]{3}")]
    if len(bad):
        raise ValueError(
            f"{path}: column `flag` expects a 3-character bit string like '010', "
            f"received {frame.loc[bad[0], 'flag']!r} in row {bad[0]}"
        )
    _check_dates(frame, path)
    return frame


def load_negatives(path: str | Path | None = None) -> pd.DataFrame:
    """Read the jet-free intervals (``date, basepoint_X, basepoint_Y``)."""
    path = Path(path) if path is not None else _bundled(NEGATIVES)
    frame = _read_csv(path, NEGATIVE_COLUMNS)
    _check_dates(frame, path)
    return frame


def _check_dates(frame: pd.DataFrame, path: Path) -> None:
    parsed = pd.to_datetime(frame["date"], format="ISO8601", errors="coerce")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise ValueError(
            f"{path}: column `date` expects ISO 8601 UTC times, received "
            f"{frame['date'].iloc[row]!r} in row {row}"
        )


def load_events(
    jets: str | Path | pd.DataFrame | None = None,
    negatives: str | Path | pd.DataFrame | None = None,
    *,
    radius_arcsec: float = 5.0,
) -> pd.DataFrame:
    """One event index over jets (label 1) and jet-free intervals (label 0).

    Parameters
    ----------
    jets, negatives : path or DataFrame, optional
        Catalogues; the bundled ones by default.
    radius_arcsec : float
        Base points closer than this on the same UTC day are one region and share a
        split group.

    Returns
    -------
    pandas.DataFrame
        One row per sequence, jets first, with the columns listed in the module
        docstring. ``group`` never mixes splits: see :func:`jetkeras.records.split_events`.
    """
    jet_frame = jets if isinstance(jets, pd.DataFrame) else load_jets(jets)
    negative_frame = (
        negatives if isinstance(negatives, pd.DataFrame) else load_negatives(negatives)
    )
    jet_rows = jet_frame.copy()
    jet_rows.insert(0, "row", np.arange(len(jet_rows)))
    jet_rows.insert(0, "label", 1)
    jet_rows.insert(0, "event_id", jet_rows["sjh_ID"].astype(str))
    negative_rows = negative_frame[NEGATIVE_COLUMNS].copy()
    negative_rows.insert(0, "row", np.arange(len(negative_rows)))
    negative_rows.insert(0, "label", 0)
    negative_rows.insert(0, "event_id", [f"nojet_{row:04d}" for row in negative_rows["row"]])
    negative_rows["sjh_ID"] = ""
    negative_rows["SOL_event"] = ""
    events = pd.concat([jet_rows, negative_rows], ignore_index=True, sort=False)
    if events["event_id"].duplicated().any():
        duplicate = events.loc[events["event_id"].duplicated(), "event_id"].iloc[0]
        raise ValueError(f"catalogue: event id {duplicate!r} appears twice")
    events["group"] = _group_keys(events, radius_arcsec)
    columns = ["event_id", "label", "row", "sjh_ID", "SOL_event", "group", "date",
               "basepoint_X", "basepoint_Y", "duration"]
    rest = [c for c in events.columns if c not in columns]
    return events[columns + rest]


def read_table(path: str | Path | None = None) -> pd.DataFrame:
    """An event index from any supported table, its format detected from the header.

    Parameters
    ----------
    path : path, optional
        A CSV file: an event index (an ``event_id`` column: our own tables, read as
        they are), the published Solar Jet Hunter catalogue (``#sjh_ID``: joined with the
        bundled jet-free intervals by :func:`load_events`), or jet-free intervals
        (``date``, ``basepoint_X``, ``basepoint_Y``: joined with the bundled jets).
        None: the bundled catalogue, :func:`load_events`.

    Returns
    -------
    pandas.DataFrame
        One row per event with at least ``event_id`` (see the module docstring).

    Raises
    ------
    FileNotFoundError, ValueError
        No such file, not a CSV, or none of the three layouts: one line naming the file.
    """
    if path is None:
        return load_events()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: catalogue CSV file not found")
    try:
        events = pd.read_csv(path, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: expected a CSV file ({type(error).__name__})") from None
    header = {str(column).strip().lstrip("#") for column in events.columns}
    if "event_id" in header:
        return events
    if "sjh_ID" in header:  # the Solar Jet Hunter catalogue, as published
        return load_events(jets=path)
    if set(NEGATIVE_COLUMNS) <= header:  # jet-free intervals
        return load_events(negatives=path)
    raise ValueError(f"{path}: expected an event index (event_id column), a Solar Jet "
                     f"Hunter catalogue (#sjh_ID) or jet-free intervals (date, basepoint_X, "
                     f"basepoint_Y); found {list(events.columns)[:8]}")


def _group_keys(events: pd.DataFrame, radius_arcsec: float) -> list[str]:
    """Union-find over rows: jets by SOL_event, negatives by day and base point."""
    parent = list(range(len(events)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        root_i, root_j = find(i), find(j)
        if root_i != root_j:
            # Keep a jet as the root so the group is named by its SOL_event.
            if events["label"].iat[root_j] == 1 and events["label"].iat[root_i] == 0:
                root_i, root_j = root_j, root_i
            parent[root_j] = root_i

    labels = events["label"].to_numpy()
    for _, indices in events[labels == 1].groupby("SOL_event").indices.items():
        rows = np.flatnonzero(labels == 1)[indices]
        for other in rows[1:]:
            union(int(rows[0]), int(other))
    day = events["date"].str.slice(0, 10).to_numpy()
    x = events["basepoint_X"].to_numpy(float)
    y = events["basepoint_Y"].to_numpy(float)
    for i in np.flatnonzero(labels == 0):
        same_day = np.flatnonzero(day == day[i])
        close = same_day[np.hypot(x[same_day] - x[i], y[same_day] - y[i]) <= radius_arcsec]
        for j in close:
            union(int(i), int(j))
    keys = []
    for i in range(len(events)):
        root = find(i)
        if labels[root] == 1:
            keys.append(str(events["SOL_event"].iat[root]))
        else:
            keys.append(f"NOJET{day[root]}_{x[root]:+.0f}_{y[root]:+.0f}")
    return keys


def times(events: pd.DataFrame):
    """Start times of an event index as an `astropy.time.Time` array (UTC)."""
    from astropy.time import Time

    return Time(list(events["date"]), format="isot", scale="utc")
