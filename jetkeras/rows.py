"""The one row schema of every prediction jetkeras writes (``jetkeras-row/2``).

``predict`` (cubes, a catalogue, a records split, a timeline), ``survey``'s
``predictions.csv`` and ``events.csv``, and ``evaluate``'s ``predictions.csv`` all write
these columns, in this order, with the same meaning; CSV and JSON carry the same fields
(an unknown value is an empty CSV cell, ``null`` in JSON). ``predicted`` is the model's
call and nothing else; ``label`` is only ever the truth (a catalogue's or a records
split's), empty where none exists. ``docs/rows.md`` is this table for readers, and a test
keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from jetkeras import runs

__all__ = ["COLUMNS", "EVENT_COLUMNS", "ROW_SCHEMA", "decide", "make_row", "model_identity",
           "with_event"]

ROW_SCHEMA = "jetkeras-row/2"

# column -> meaning, in output order
COLUMNS: dict[str, str] = {
    "schema": f"the row schema, `{ROW_SCHEMA}`",
    "file": "the cube scored: an .npz file, a FITS folder, or `RECORDS[split]` for a "
            "records split",
    "event_id": "the catalogue's or the records' event id, when known",
    "SOL_event": "the HEK event name (`SOL...`), when known",
    "sjh_ID": "the Solar Jet Hunter id, when known",
    "date": "the catalogue's event date (ISO UTC), when known",
    "basepoint_X": "the catalogue's jet base point, helioprojective x (arcsec), when known",
    "basepoint_Y": "the catalogue's jet base point, helioprojective y (arcsec), when known",
    "window": "which window of the cube this row reports (0-based, on the model's time "
              "grid): the highest-scoring one for a whole-cube row",
    "windows": "how many windows of the model's length the cube holds (1 for a cube of "
               "exactly the window)",
    "start_s": "start of the window, seconds after the cube's first frame",
    "start_time": "time of the window's first frame (ISO UTC), when the frames have times",
    "end_time": "time of the window's last frame (ISO UTC), when the frames have times",
    "cadence_s": "the input's own cadence, seconds (median spacing of its frame times); "
                 "empty when the frames carry no times (then taken to be the model's)",
    "wavelength": "the input's wavelength (angstrom) from its headers or metadata; empty "
                  "when it records none",
    "hpc_x": "helioprojective x of the cutout's centre (arcsec), from the WCS when there "
             "is one",
    "hpc_y": "helioprojective y of the cutout's centre (arcsec), from the WCS when there "
             "is one",
    "probability": "probability of a jet in the window, in [0, 1]",
    "threshold": "the decision threshold used (the model's stored one unless overridden)",
    "predicted": "the model's call: 1 jet, 0 no jet (probability >= threshold, and never "
                 "1 for a `frozen` or `constant` cube)",
    "quality": "quality flags of the window, `;`-separated, empty when none (the table "
               "below)",
    "resampled": "1 when the data were interpolated in time or space before scoring, "
                 "else 0",
    # The measurement (jetkeras.localise): only in rows the model calls a jet.
    "base_row": "the jet's base point: row of the input frame array as stored (0-based, "
                "pixels); empty unless `predicted` is 1, as are all the columns to "
                "`localisation_score`",
    "base_col": "the jet's base point: column of the input frame array as stored "
                "(0-based, pixels)",
    "base_hpc_x": "the base point's helioprojective x (arcsec), from the WCS when there "
                  "is one",
    "base_hpc_y": "the base point's helioprojective y (arcsec), from the WCS when there "
                  "is one",
    "direction_deg": "the direction the jet travels in the input frame array, "
                     "`atan2(d_row, d_col)`, degrees 0-360",
    "onset_frame": "when the front leaves the base, in the model's frames (24 s) from the "
                   "window's first frame; negative when already under way",
    "peak_frame": "when the front first reaches 95 % of its largest length, model frames "
                  "from the window's first frame",
    "onset_time": "`onset_frame` as a time (ISO UTC), when the frames have times",
    "peak_time": "`peak_frame` as a time (ISO UTC), when the frames have times",
    "length_arcsec": "the largest plane-of-sky length of the spire from its base, arcsec",
    "speed_km_s": "the plane-of-sky speed of the front (a line fitted to the "
                  "time-distance diagram while it grows), km/s",
    "width_arcsec": "the spire's width (FWHM across it, median over its middle half), "
                    "arcsec",
    "localisation_score": "how sure the base point is, 0-1: the measurement head's "
                          "base-point probability within 4 px of its peak",
    "model": "the model: its name and a digest of its weights and threshold "
             "(`name@sha256[:12]`)",
    "runtime": "what ran the network: `litert` or `tensorflow`",
    "label": "the truth, 1 jet or 0 no jet, only where a catalogue or records split gives "
             "one; empty otherwise",
}


def make_row(**values: Any) -> dict[str, Any]:
    """A row with every column of :data:`COLUMNS`, in order; None where not given.

    Raises
    ------
    ValueError
        A value for a column the schema does not have (a programming error, named).
    """
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        raise ValueError(f"make_row: expected columns of {ROW_SCHEMA}, received {unknown}")
    row = dict.fromkeys(COLUMNS)
    row.update(values)
    row["schema"] = ROW_SCHEMA
    return row


# What a catalogue knows of an event, copied into the rows of its cube.
EVENT_COLUMNS = ("event_id", "SOL_event", "sjh_ID", "date", "basepoint_X", "basepoint_Y")


def with_event(event: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A cube's row with its catalogue event's fields and truth (``label``) where known.

    Empty values (None, NaN, "") in ``event`` leave the row's own value in place.
    """
    known = {}
    for key in (*EVENT_COLUMNS, "label"):
        value = event.get(key)
        if hasattr(value, "item"):  # a NumPy or pandas scalar
            value = value.item()
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        known[key] = value
    if "label" in known:
        if known["label"] in (0, 1):
            known["label"] = int(known["label"])
        else:
            del known["label"]  # "" or -1: no truth
    return {**row, **known}


def decide(probability: float, threshold: float, flags) -> int:
    """The model's call: 1 at or above ``threshold`` unless a veto flag says the window
    cannot hold motion (:data:`jetkeras.quality.VETO_FLAGS`)."""
    from jetkeras.quality import VETO_FLAGS

    if VETO_FLAGS.intersection(flags):
        return 0
    return int(probability >= threshold)


_IDENTITIES: dict[tuple[str, float], str] = {}


def model_identity(folder: str | os.PathLike) -> str:
    """``name@digest`` of a run, export or the bundle.

    ``name`` is the bundle's name (``bundle.json``) or the folder's name; ``digest`` the
    first 12 hex digits of a SHA-256 over the files that decide a probability and a
    call: the weights (``model.keras``, ``model.tflite``, the SavedModel's variables and
    graph) and ``threshold.json`` / the export's metadata. Computed once per folder and
    process.
    """
    folder = Path(folder)
    key = (str(folder.resolve()), folder.stat().st_mtime if folder.exists() else 0.0)
    if key in _IDENTITIES:
        return _IDENTITIES[key]
    name = folder.resolve().name
    bundle_file = folder / "bundle.json"
    if bundle_file.is_file():
        name = json.loads(bundle_file.read_text()).get("name", name)
    digest = hashlib.sha256()
    candidates = [runs.MODEL_FILE, runs.LITERT_FILE, runs.LITERT_METADATA_FILE,
                  runs.THRESHOLD_FILE, "saved_model.pb", "assets/jetkeras.json"]
    variables = sorted((folder / "variables").glob("*")) if (folder / "variables").is_dir() \
        else []
    for path in [folder / name_ for name_ in candidates] + variables:
        if path.is_file():
            digest.update(path.name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    identity = f"{name}@{digest.hexdigest()[:12]}"
    _IDENTITIES[key] = identity
    return identity
