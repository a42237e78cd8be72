"""Read image sequences (cubes) from disk: the seed's npz files, our own npz, AIA FITS.

Every reader returns a :class:`jetkeras.cube.Cube` (frames float32 ``(T, H, W)``) checked
by :func:`jetkeras.cube.check_frames`; every bad input is refused with one line naming the
file, what was expected and what was received.

Formats read
------------
Seed layout (read only)
    ``np.savez_compressed(path, array)``: one key ``arr_0``, shape ``(H, W, T)``, float64,
    AIA 304 A level-1 DN max-pooled 3x3 (the seed's ``(166, 166, 30)``). It is transposed
    to ``(T, H, W)``. The seed keeps them as ``data1/<row>.npz`` (jets) and
    ``data0/<row>.npz`` (jet-free), plus ``*_test`` / ``*_val`` folders, optionally nested
    under ``data separated/``; see :func:`scan_seed_root`.

``jetkeras-cube/1`` (read and written by :func:`write_cube`)
    An ``np.savez_compressed`` archive with exactly these keys, all loadable with
    ``allow_pickle=False``:

    ==============  ========================================================================
    ``format``      0-d unicode array, the literal ``"jetkeras-cube/1"``
    ``frames``      float32 ``(T, H, W)``, DN (DN/s when ``meta["exposure_normalised"]``)
    ``times``       unicode ``(T,)``, ISO 8601 UTC time of each frame; shape ``(0,)`` when
                    the times are unknown
    ``meta_json``   0-d unicode array holding a JSON object (``event_id``, ``label``,
                    ``wavelength_angstrom``, ``exposure_s``, ``wcs``, ...)
    ==============  ========================================================================

    A reader meeting another ``format`` string refuses the file rather than guessing.

AIA FITS directory (read only)
    One cube per directory of ``*.fits`` / ``*.fits.gz`` / ``*.fts`` frames, as JSOC
    exports them (image in HDU 1, Rice-compressed), each opened with ``sunpy.map.Map``;
    see :func:`read_fits_dir`.

sunpy maps (read; written by :func:`to_map_sequence`)
    A `sunpy.map.MapSequence` or a list of Maps, one per frame; see :func:`read_maps`.

Units and channel
    Frames are in DN (level-1 counts) unless ``meta["exposure_normalised"]`` is true
    (DN/s). :func:`match_model_input` refuses a cube of another wavelength or instrument
    than the model's (unless the user passes ``--any-channel``) and converts between DN
    and DN/s with the cube's recorded exposure times when the model wants the other unit.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas

from jetkeras._cli import first_line
from jetkeras._files import atomic_output, json_default
from jetkeras.cube import Cube, check_frames
from jetkeras.preprocess import exposure_normalise as _exposure_normalise
from jetkeras.preprocess import max_pool

__all__ = [
    "CUBE_FORMAT",
    "centre_hpc",
    "pixel_hpc",
    "FITS_SUFFIXES",
    "JetkerasWarning",
    "list_cubes",
    "match_cubes",
    "read_cube",
    "match_model_input",
    "read_fits_dir",
    "read_maps",
    "read_npz",
    "scan_seed_root",
    "to_map_sequence",
    "write_cube",
]

CUBE_FORMAT = "jetkeras-cube/1"
FITS_SUFFIXES = (".fits", ".fits.gz", ".fts")
NAN_POLICIES = ("reject", "fill")
SEED_FOLDER = re.compile(r"^data(?P<label>[01])(?:_(?P<split>test|val))?$")
SEED_NESTED = "data separated"

# Magic numbers of the two files np.load accepts without pickle.
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPY_MAGIC = b"\x93NUMPY"


class JetkerasWarning(UserWarning):
    """A recoverable problem with input data (NaN pixels filled, ...)."""


# --------------------------------------------------------------------------------------
# Shared validation
# --------------------------------------------------------------------------------------


def _check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"nan_policy: expected one of {list(NAN_POLICIES)}, received {nan_policy!r}"
        )


def _validate(
    array: np.ndarray,
    name: str,
    *,
    frames: int | None,
    size: int | None,
    nan_policy: str,
    hint: str = "",
) -> np.ndarray:
    """check_frames, plus a warning when NaN/Inf are filled and a layout hint on errors."""
    _check_nan_policy(nan_policy)
    non_finite = 0
    if nan_policy == "fill" and array.dtype.kind == "f":
        non_finite = int(array.size - np.count_nonzero(np.isfinite(array)))
    try:
        checked = check_frames(
            array, name, frames_expected=frames, size=size, nan_policy=nan_policy
        )
    except ValueError as error:
        raise ValueError(f"{error}{hint}") from None
    if non_finite:
        warnings.warn(
            f"{name}: replaced {non_finite} NaN/Inf pixel(s) by 0 (nan_policy='fill')",
            JetkerasWarning,
            stacklevel=3,
        )
    return checked


# --------------------------------------------------------------------------------------
# npz cubes
# --------------------------------------------------------------------------------------


def _sniff_npz(path: Path) -> None:
    """Refuse files np.load would not open as an npz archive, naming what they are."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: cube file not found (expected an .npz archive)")
    if not path.is_file():
        raise ValueError(f"{path}: expected an .npz archive, received a directory")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        raise ValueError(f"{path}: expected an .npz archive, received an empty file")
    if head.startswith(_NPY_MAGIC):
        raise ValueError(
            f"{path}: expected an .npz archive, received a single .npy array (wrong file type)"
        )
    if not head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        raise ValueError(
            f"{path}: expected an .npz (zip) archive, received a file starting with "
            f"{head[:8]!r} (wrong file type)"
        )


def _load_key(archive, key: str, path: Path) -> np.ndarray:
    """One array of an open npz, with corrupt data and pickled objects translated."""
    try:
        return archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error) or "pickled" in str(error):
            raise ValueError(
                f"{path}: expected numeric arrays, received a pickled/object array in key "
                f"{key!r} (refused: data never executes code)"
            ) from None
        raise ValueError(
            f"{path}: expected a readable npz, received a corrupt key {key!r} ({error})"
        ) from None
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        raise ValueError(
            f"{path}: expected a complete npz archive, received a truncated or corrupt "
            f"one ({type(error).__name__}: {error})"
        ) from None


def _as_string(array: np.ndarray, key: str, path: Path) -> str:
    if array.ndim != 0 or array.dtype.kind != "U":
        raise ValueError(
            f"{path}: expected key {key!r} to be a 0-d unicode string, received dtype "
            f"{array.dtype} shape {array.shape}"
        )
    return str(array[()])


def read_npz(
    path: str | os.PathLike,
    *,
    frames: int | None = None,
    size: int | None = None,
    nan_policy: str = "reject",
) -> Cube:
    """Read one cube from the seed's npz layout or from ``jetkeras-cube/1``.

    Parameters
    ----------
    path : path-like
        An ``.npz`` archive (see the module docstring for both layouts).
    frames : int, optional
        Required frame count T; a shorter or longer cube is refused ("expected 30 frames,
        received 18": the seed dropped such downloads silently).
    size : int, optional
        Required height and width in pixels.
    nan_policy : {"reject", "fill"}
        ``reject`` refuses NaN/Inf pixels; ``fill`` replaces them by 0 DN and warns with a
        :class:`JetkerasWarning`.

    Returns
    -------
    Cube
        ``frames`` float32 ``(T, H, W)`` in DN; ``times`` (ISO UTC strings or None);
        ``meta`` (``{"layout": "seed"}`` for seed files, the stored JSON object plus
        ``layout`` otherwise); ``source`` the path.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not an npz, truncated/corrupt, missing keys, pickled objects, wrong dtype, rank,
        size or frame count, NaN/Inf under ``reject``: one line each.
    """
    path = Path(path)
    _check_nan_policy(nan_policy)
    _sniff_npz(path)
    # We open the file ourselves: np.load leaks its handle when a truncated zip fails.
    with open(path, "rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as error:
            raise ValueError(
                f"{path}: expected a complete npz archive, received a truncated or corrupt "
                f"one ({type(error).__name__}: {error})"
            ) from None
        with archive:
            return _read_open_npz(archive, path, frames, size, nan_policy)


def _read_open_npz(archive, path, frames, size, nan_policy) -> Cube:
    if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover - sniffed above
        # A file's content is a user error (one line, exit 2), not a programming error.
        raise ValueError(  # a wrong type inside the file is bad content: a user error
            f"{path}: expected an .npz archive, received {type(archive).__name__}"
        )
    keys = sorted(archive.files)
    if "format" in keys:
        return _read_jetkeras_npz(archive, keys, path, frames, size, nan_policy)
    if "arr_0" in keys:
        array = _load_key(archive, "arr_0", path)
        # The seed stores (H, W, T); only a 3-D array can be put in time order.
        frames_thw = np.moveaxis(array, -1, 0) if array.ndim == 3 else array
        checked = _validate(
            frames_thw,
            f"{path} [arr_0]",
            frames=frames,
            size=size,
            nan_policy=nan_policy,
            hint=" (seed layout: arr_0 of shape (height, width, n_frames), "
            "shown here as (n_frames, height, width))",
        )
        return Cube(frames=checked, source=str(path), times=None, meta={"layout": "seed"})
    raise ValueError(
        f"{path}: expected key 'arr_0' (seed layout) or keys format/frames/times/meta_json "
        f"({CUBE_FORMAT}), found keys {keys}"
    )


def _read_jetkeras_npz(archive, keys, path, frames, size, nan_policy) -> Cube:
    missing = [key for key in ("frames", "times", "meta_json") if key not in keys]
    if missing:
        raise ValueError(
            f"{path}: expected keys format/frames/times/meta_json ({CUBE_FORMAT}), missing "
            f"{missing}, found keys {keys}"
        )
    version = _as_string(_load_key(archive, "format", path), "format", path)
    if version != CUBE_FORMAT:
        raise ValueError(f"{path}: expected format {CUBE_FORMAT!r}, received {version!r}")
    checked = _validate(
        _load_key(archive, "frames", path),
        f"{path} [frames]",
        frames=frames,
        size=size,
        nan_policy=nan_policy,
    )
    times_array = _load_key(archive, "times", path)
    if times_array.ndim != 1 or (times_array.size and times_array.dtype.kind != "U"):
        raise ValueError(
            f"{path}: expected key 'times' to be a (T,) unicode array, received dtype "
            f"{times_array.dtype} shape {times_array.shape}"
        )
    times = [str(value) for value in times_array] if times_array.size else None
    meta_text = _as_string(_load_key(archive, "meta_json", path), "meta_json", path)
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: expected meta_json to hold JSON, received invalid JSON "
                         f"({error})") from None
    if not isinstance(meta, dict):
        raise ValueError(  # bad file content is a user error
            f"{path}: expected meta_json to hold a JSON object, received {type(meta).__name__}"
        )
    meta.setdefault("layout", CUBE_FORMAT)
    return Cube(frames=checked, source=str(path), times=times, meta=meta)


def write_cube(path: str | os.PathLike, cube: Cube) -> Path:
    """Write ``cube`` as a ``jetkeras-cube/1`` npz, atomically.

    Parameters
    ----------
    path : path-like
        Destination; ``.npz`` is appended when missing (as ``np.savez`` would). Parent
        folders are created.
    cube : Cube
        Frames float32 ``(T, H, W)``; ``times`` (or None); ``meta`` must be
        JSON-serialisable (NumPy scalars and arrays are converted).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = check_frames(cube.frames, cube.source or str(path))
    times = np.asarray(list(cube.times) if cube.times is not None else [], dtype=np.str_)
    meta = {key: value for key, value in cube.meta.items() if key != "layout"}
    meta_json = json.dumps(meta, default=json_default, sort_keys=True)
    # The temporary name ends in .npz so np.savez_compressed keeps it as given.
    with atomic_output(path, suffix=".npz") as temporary:
        np.savez_compressed(
            temporary,
            format=np.array(CUBE_FORMAT),
            frames=frames,
            times=times,
            meta_json=np.array(meta_json),
        )
    return path


# --------------------------------------------------------------------------------------
# The seed's folder tree
# --------------------------------------------------------------------------------------


def scan_seed_root(root: str | os.PathLike) -> pandas.DataFrame:
    """Index the seed's npz tree: ``data0/``, ``data1/``, their ``_test`` / ``_val`` twins.

    Both ``root/<folder>/<row>.npz`` and the nested ``root/data separated/<folder>/<row>.npz``
    are recognised (every match is listed; the seed repository holds both). Files other
    than ``*.npz`` are ignored.

    Parameters
    ----------
    root : path-like
        Folder holding the seed's ``dataX`` folders (or ``data separated/``).

    Returns
    -------
    pandas.DataFrame
        One row per file, sorted by ``seed_split`` (train, val, test), ``label``, ``row``,
        ``path``:
        ``path`` (str), ``label`` (int: 1 for ``data1*``, 0 for ``data0*``), ``row`` (int,
        the catalogue CSV row, from the file name), ``seed_split`` (``"train"`` for
        ``data0``/``data1``, ``"val"`` for ``*_val``, ``"test"`` for ``*_test``).

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    ValueError
        ``root`` is not a folder, holds no seed folders or no npz files in them, or a file
        name is not an integer.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: seed data root not found")
    if not root.is_dir():
        raise ValueError(f"{root}: expected a folder of seed data (data0/, data1/, ...), "
                         f"received a file")
    parents = [root] + ([root / SEED_NESTED] if (root / SEED_NESTED).is_dir() else [])
    folders = [
        folder
        for parent in parents
        for folder in sorted(parent.iterdir())
        if folder.is_dir() and SEED_FOLDER.match(folder.name)
    ]
    if not folders:
        raise ValueError(
            f"{root}: expected seed folders data0/, data1/ (or data0_test/, data1_val/, ..., "
            f"or under '{SEED_NESTED}/'), found none"
        )
    records = []
    for folder in folders:
        match = SEED_FOLDER.match(folder.name)
        split = {"test": "test", "val": "val", None: "train"}[match["split"]]
        for file in sorted(folder.glob("*.npz")):
            if not re.fullmatch(r"\d+", file.stem):
                raise ValueError(
                    f"{file}: expected a file named <catalogue row>.npz (an integer), "
                    f"received name {file.name!r}"
                )
            records.append(
                {"path": str(file), "label": int(match["label"]), "row": int(file.stem),
                 "seed_split": split}
            )
    if not records:
        raise ValueError(
            f"{root}: expected <row>.npz files in {[str(f.relative_to(root)) for f in folders]}, "
            f"found none"
        )
    import pandas as pd  # imported here: predict's cold start does not need it

    table = pd.DataFrame.from_records(records, columns=["path", "label", "row", "seed_split"])
    split_order = table["seed_split"].map({"train": 0, "val": 1, "test": 2})
    table = table.assign(_order=split_order).sort_values(
        ["_order", "label", "row", "path"], kind="stable"
    )
    table = table.drop(columns="_order")
    return table.reset_index(drop=True)


def match_cubes(events: pandas.DataFrame, root: str | os.PathLike
                ) -> tuple[pandas.DataFrame, list[dict[str, Any]]]:
    """Match the cubes under ``root`` to catalogue rows.

    Two layouts: ``<event_id>.npz`` files directly in ``root`` (as :mod:`jetkeras.fetch`
    writes them), matched on ``event_id``; or the seed's tree (``data0/``, ``data1/``,
    ...; see :func:`scan_seed_root`), matched on ``label`` and ``row``.

    Parameters
    ----------
    events : pandas.DataFrame
        An event index (:func:`jetkeras.catalogue.read_table`): ``event_id``, and
        ``label`` and ``row`` for the seed's tree.
    root : path-like
        The folder of cubes.

    Returns
    -------
    items : pandas.DataFrame
        The matched catalogue rows, in catalogue order (seed tree: in
        :func:`scan_seed_root` order), with a ``path`` column (str).
    orphans : list of dict
        Cubes no row matches: ``event_id`` (the file name), ``label`` (-1 when unknown)
        and ``reason``.

    Raises
    ------
    FileNotFoundError, ValueError
        ``root`` is not a folder; a seed tree with a catalogue lacking ``label``/``row``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder of cubes not found")
    flat = sorted(root.glob("*.npz"))
    seed_folders = any(path.is_dir() and path.name.startswith("data")
                       for path in root.iterdir())
    if flat and not seed_folders:
        by_id = {path.stem: path for path in flat}
        ids = events["event_id"].astype(str)
        items = events[ids.isin(by_id)].copy()
        items["path"] = ids[ids.isin(by_id)].map(lambda event_id: str(by_id[event_id]))
        orphans = [{"event_id": stem, "label": -1, "reason": "no catalogue row has this id"}
                   for stem in sorted(set(by_id) - set(ids))]
        return items, orphans
    if not {"label", "row"} <= set(events.columns):
        raise ValueError(f"{root}: the seed's data0/data1 tree is matched on label and row; "
                         f"the catalogue lacks those columns")
    found = scan_seed_root(root)
    events = events.assign(label=events["label"].astype(int), row=events["row"].astype(int))
    merged = found.merge(events, on=["label", "row"], how="left", indicator=True)
    orphans = [{"event_id": Path(row["path"]).name, "label": int(row["label"]),
                "reason": f"{row['path']}: row {row['row']} is not in the catalogue"}
               for _, row in merged[merged["_merge"] == "left_only"].iterrows()]
    items = merged[merged["_merge"] == "both"].drop(columns="_merge")
    return items, orphans


# --------------------------------------------------------------------------------------
# FITS directories
# --------------------------------------------------------------------------------------


def _is_fits(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(FITS_SUFFIXES)


def _fits_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if _is_fits(path))


def _read_fits_map(path: Path):
    """The sunpy Map of one FITS frame (the first HDU holding a 2-D image).

    ``sunpy.map.Map`` finds the image HDU itself: HDU 1 of JSOC's Rice-compressed files,
    HDU 0 of plain ones, and builds the instrument's map class (``AIAMap``).
    """
    import sunpy.map
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            # Level-1 headers carry keywords astropy flags as non-standard (BLANK on float
            # data, ...), and sunpy notes missing optional keywords: harmless for pixels.
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            warnings.simplefilter("ignore", UserWarning)
            loaded = sunpy.map.Map(str(path))
    except Exception as error:
        # sunpy raises many types for a bad file (OSError, ValueError, NoMatchError...):
        # each is the same user error, a file that is not a readable FITS image.
        raise ValueError(
            f"{path}: expected a readable FITS file, received an unreadable one "
            f"({type(error).__name__}: {first_line(error)})"
        ) from None
    maps = loaded if isinstance(loaded, list) else [loaded]
    for candidate in maps:
        if candidate.data is not None and candidate.data.ndim == 2:
            return candidate
    shapes = [getattr(candidate.data, "shape", None) for candidate in maps]
    raise ValueError(
        f"{path}: expected an HDU holding a 2-D image, received HDU data shapes {shapes}"
    )


def _map_pixels(smap) -> np.ndarray:
    """A map's pixels as float64 ``(H, W)``; integer ``BLANK`` pixels become NaN."""
    data = np.asarray(smap.data)
    blank = smap.meta.get("BLANK")
    if data.dtype.kind in "iu" and blank is not None:
        # Unscaled integer images keep BLANK as a value: make it NaN so nan_policy decides.
        return np.where(data == blank, np.nan, data.astype(np.float64))
    return data.astype(np.float64)


def _observation_time(header, path):
    from astropy.time import Time

    for key in ("DATE-OBS", "T_OBS"):
        value = header.get(key)
        if value not in (None, ""):
            try:
                # JSOC writes T_OBS with a trailing "Z"; astropy's isot parser refuses it.
                return Time(str(value).strip().rstrip("Z"), scale="utc")
            except ValueError:
                raise ValueError(
                    f"{path}: expected an ISO time in {key}, received {value!r}"
                ) from None
    raise ValueError(f"{path}: expected a DATE-OBS or T_OBS keyword, received neither")


def _exposure_s(smap) -> float | None:
    exposure = smap.exposure_time
    if exposure is None:
        return None
    return float(exposure.to_value("s"))


def _as_map_list(maps, source: str) -> list:
    """``maps`` (a MapSequence, one Map, or a list or tuple of Maps) as a list of Maps."""
    import sunpy.map

    if isinstance(maps, sunpy.map.MapSequence):
        maps = list(maps.maps)
    elif isinstance(maps, sunpy.map.GenericMap):
        maps = [maps]
    elif isinstance(maps, (list, tuple)):
        maps = list(maps)
    else:
        raise ValueError(f"{source}: expected a sunpy.map.MapSequence or a list of sunpy "
                         f"Maps, received {type(maps).__name__}")
    if not maps or not all(isinstance(smap, sunpy.map.GenericMap) for smap in maps):
        kinds = sorted({type(smap).__name__ for smap in maps}) or ["nothing"]
        raise ValueError(f"{source}: expected one or more sunpy Maps, received {kinds}")
    return maps


def _frame_records(maps: list, names: list[str]) -> list[tuple]:
    """``(time, name, pixels, map)`` per map, sorted by observation time.

    ``time`` is an astropy ``Time`` (``DATE-OBS``, else ``T_OBS``) and ``pixels`` the
    map's float64 ``(H, W)`` image in DN.
    """
    records = []
    for name, smap in zip(names, maps):
        if smap.data.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D image, received shape {smap.data.shape}")
        records.append((_observation_time(smap.meta, name), name, _map_pixels(smap), smap))
    records.sort(key=lambda record: record[0].unix)
    return records


def _check_same_shape_and_wavelength(records: list[tuple], source: str) -> None:
    """Refuse frames whose shape or ``WAVELNTH`` differs from the first frame's."""
    first_name, first_map = records[0][1], records[0][3]
    shape = records[0][2].shape
    for _, name, image, _ in records[1:]:
        if image.shape != shape:
            raise ValueError(
                f"{name}: expected every frame of {source} to be {shape[0]}x{shape[1]} "
                f"pixels (as {Path(first_name).name}), received {image.shape[0]}x{image.shape[1]}"
            )
    wavelength = first_map.meta.get("WAVELNTH")
    for _, name, _, smap in records[1:]:
        if smap.meta.get("WAVELNTH") != wavelength:
            raise ValueError(
                f"{name}: expected every frame of {source} at WAVELNTH {wavelength} (as "
                f"{Path(first_name).name}), received {smap.meta.get('WAVELNTH')}"
            )


def _cadence_gaps(records: list[tuple], source: str, *, cadence_s: float | None,
                  cadence_tolerance_s: float) -> list[float]:
    """The gaps between consecutive frames, seconds; refuses two frames at one time, and
    a gap off ``cadence_s`` (None: any cadence, for :mod:`jetkeras.conform` to place)."""
    gaps = []
    for (time_a, name_a, _, _), (time_b, name_b, _, _) in itertools.pairwise(records):
        gap = float((time_b - time_a).to_value("s"))
        gaps.append(gap)
        if gap <= 0:
            raise ValueError(f"{source}: expected one frame per time, received "
                             f"{Path(name_a).name} and {Path(name_b).name} at the same time")
        if cadence_s is not None and abs(gap - cadence_s) > cadence_tolerance_s:
            raise ValueError(
                f"{source}: expected frames {cadence_s:g} +- {cadence_tolerance_s:g} s apart, "
                f"received a gap of {gap:.1f} s between {Path(name_a).name} and "
                f"{Path(name_b).name}"
            )
    return gaps


def _maps_meta(records: list[tuple], *, exposures: list[float | None], gaps: list[float],
               pool: int, exposure_normalise: bool) -> dict[str, Any]:
    """The cube ``meta`` of :func:`read_maps`, from the first frame's header."""
    first_map = records[0][3]
    header = first_map.meta
    wcs = {
        key: header[key]
        for key in ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRVAL1", "CRVAL2", "CDELT1",
                    "CDELT2", "CRPIX1", "CRPIX2", "CROTA2", "DSUN_OBS", "HGLN_OBS",
                    "HGLT_OBS", "RSUN_REF")
        if key in header and header[key] is not None and not isinstance(header[key], bool)
    }
    wavelength_quantity = first_map.wavelength
    meta: dict[str, Any] = {
        "files": [Path(record[1]).name for record in records],
        "wavelength_angstrom": (float(wavelength_quantity.to_value("angstrom"))
                                if wavelength_quantity is not None else None),
        "instrument": header.get("INSTRUME"),
        "observatory": first_map.observatory or None,
        "telescope": header.get("TELESCOP"),
        "exposure_s": exposures,
        "exposure_normalised": bool(exposure_normalise),
        "pool": int(pool),
        "cadence_s": float(np.median(gaps)) if gaps else None,
        "wcs": wcs,
    }
    if isinstance(header.get("CDELT1"), (int, float)):
        meta["pixel_scale_arcsec"] = float(header["CDELT1"]) * int(pool)
    return meta


def read_maps(
    maps,
    *,
    frames: int | None = None,
    size: int | None = None,
    cadence_s: float | None = 24.0,
    cadence_tolerance_s: float = 6.0,
    pool: int = 3,
    exposure_normalise: bool = False,
    nan_policy: str = "reject",
    names: list[str] | None = None,
    source: str = "maps",
) -> Cube:
    """Read a `sunpy.map.MapSequence`, or a list of sunpy Maps, as one cube.

    The maps are sorted by their ``DATE-OBS`` (else ``T_OBS``), checked for a regular
    cadence, one common shape and one wavelength, max-pooled by ``pool`` (floor mode,
    like the seed) and optionally divided by their exposure time.

    Parameters
    ----------
    maps : sunpy.map.MapSequence or sequence of sunpy.map.GenericMap
        One map per frame, e.g. ``sunpy.map.Map(files, sequence=True)``; 2-D data in DN.
    frames : int, optional
        Required frame count T.
    size : int, optional
        Required pooled height and width in pixels.
    cadence_s : float or None
        Expected spacing of consecutive frames, seconds (the seed: 24 s); a gap off it by
        more than the tolerance is refused. None accepts any spacing (``predict`` places
        the frames on the model's grid from their times: :mod:`jetkeras.conform`).
    cadence_tolerance_s : float
        Allowed deviation from ``cadence_s``, seconds.
    pool : int
        Max-pool factor (1 = none; the seed: 3, 500 px -> 166 px).
    exposure_normalise : bool
        Divide each frame by its exposure time (``map.exposure_time``, DN -> DN/s).
    nan_policy : {"reject", "fill"}
        What to do with NaN/Inf (and integer ``BLANK``) pixels.
    names : list of str, optional
        One name per map for messages and ``meta["files"]`` (the file names when read
        from a folder); default ``map 0``, ``map 1``, ...
    source : str
        What the cube came from, for messages and ``Cube.source``.

    Returns
    -------
    Cube
        ``frames`` float32 ``(T, H // pool, W // pool)`` in DN (DN/s when normalised);
        ``times`` ISO UTC of each frame; ``meta`` with ``wavelength_angstrom``
        (``map.wavelength``), ``instrument`` (the ``INSTRUME`` keyword, ``AIA_3``),
        ``observatory``, ``telescope``, ``exposure_s`` (list), ``exposure_normalised``,
        ``pool``, ``cadence_s`` (measured median), ``files`` (the names),
        ``pixel_scale_arcsec`` (after pooling, when CDELT1 is known) and ``wcs`` (the
        first frame's CTYPE/CUNIT/CRVAL/CDELT/CRPIX/CROTA2 keywords, native pixels, and
        its observer: DSUN_OBS/HGLN_OBS/HGLT_OBS/RSUN_REF).

    Raises
    ------
    ValueError
        Not maps, missing time, irregular cadence (naming both frames and the gap), mixed
        shapes or wavelengths, bad exposure, wrong frame count or size, NaN/Inf.
    """
    _check_nan_policy(nan_policy)
    maps = _as_map_list(maps, source)
    names = list(names) if names is not None else [f"map {index}" for index in range(len(maps))]
    if len(names) != len(maps):
        raise ValueError(f"{source}: expected one name per map ({len(maps)}), received "
                         f"{len(names)}")
    records = _frame_records(maps, names)
    _check_same_shape_and_wavelength(records, source)
    gaps = _cadence_gaps(records, source, cadence_s=cadence_s,
                         cadence_tolerance_s=cadence_tolerance_s)

    stack = np.stack([record[2] for record in records])  # (T, H, W) float64, DN
    exposures = [_exposure_s(record[3]) for record in records]
    if exposure_normalise:
        for (_, name, _, _), exposure in zip(records, exposures):
            if exposure is None or not exposure > 0:
                raise ValueError(
                    f"{name}: expected a positive EXPTIME (s) to normalise by, received "
                    f"{exposure!r}"
                )
        stack = _exposure_normalise(stack, np.asarray(exposures, dtype=np.float64))
    pooled = max_pool(stack, pool)  # float32 (T, H // pool, W // pool)
    checked = _validate(pooled, source, frames=frames, size=size, nan_policy=nan_policy)
    meta = _maps_meta(records, exposures=exposures, gaps=gaps, pool=pool,
                      exposure_normalise=exposure_normalise)
    times = [record[0].utc.isot for record in records]
    return Cube(frames=checked, source=source, times=times, meta=meta)


def read_fits_dir(
    directory: str | os.PathLike,
    *,
    frames: int | None = None,
    size: int | None = None,
    cadence_s: float | None = 24.0,
    cadence_tolerance_s: float = 6.0,
    pool: int = 3,
    exposure_normalise: bool = False,
    nan_policy: str = "reject",
) -> Cube:
    """Read a directory of AIA FITS frames (one JSOC export) as one cube.

    Each file is opened with ``sunpy.map.Map`` (which finds the image HDU: HDU 1 of
    JSOC's Rice-compressed files, HDU 0 of plain files) and the maps go through
    :func:`read_maps`: sorted by ``DATE-OBS`` (else ``T_OBS``), checked for a regular
    cadence, one common shape and one wavelength, max-pooled by ``pool`` (floor mode,
    like the seed) and optionally divided by the exposure time.

    Parameters
    ----------
    directory : path-like
        Folder holding ``*.fits``, ``*.fits.gz`` or ``*.fts`` files, one per frame.
    frames, size, cadence_s, cadence_tolerance_s, pool, exposure_normalise, nan_policy
        See :func:`read_maps`.

    Returns
    -------
    Cube
        As :func:`read_maps`, plus ``meta["directory"]``; ``files`` are the file names.

    Raises
    ------
    FileNotFoundError
        The directory does not exist.
    ValueError
        No FITS files, unreadable file, and every refusal of :func:`read_maps`.
    """
    directory = Path(directory)
    _check_nan_policy(nan_policy)
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: FITS directory not found")
    if not directory.is_dir():
        raise ValueError(f"{directory}: expected a directory of FITS frames, received a file")
    files = _fits_files(directory)
    if not files:
        raise ValueError(
            f"{directory}: expected FITS frames ({', '.join('*' + s for s in FITS_SUFFIXES)}), "
            f"found none"
        )
    maps = [_read_fits_map(file) for file in files]
    cube = read_maps(maps, frames=frames, size=size, cadence_s=cadence_s,
                     cadence_tolerance_s=cadence_tolerance_s, pool=pool,
                     exposure_normalise=exposure_normalise, nan_policy=nan_policy,
                     names=[str(file) for file in files], source=str(directory))
    cube.meta = {"directory": str(directory), **cube.meta}
    return cube


def to_map_sequence(cube: Cube):
    """The frames of a cube as a `sunpy.map.MapSequence`, one map per frame.

    Each map's header is rebuilt from ``cube.meta`` (``wcs`` scaled to the pooled
    pixels, ``wavelength_angstrom``, ``instrument``, ``telescope``, ``exposure_s``) and
    ``cube.times``, so :func:`read_maps` with ``pool=1`` gives the cube back.

    Parameters
    ----------
    cube : Cube
        Frames ``(T, H, W)`` with ``times`` (required: a map needs its date) and, for a
        world coordinate system, ``meta["wcs"]`` and ``meta["pool"]``.

    Returns
    -------
    sunpy.map.MapSequence
    """
    import sunpy.map

    if not cube.times:
        raise ValueError(f"{cube.source}: expected frame times to build maps, received none")
    pool = int(cube.meta.get("pool") or 1)
    header_wcs = dict(cube.meta.get("wcs") or {})
    for axis in ("1", "2"):
        # Pooling by p merges p native pixels: the pixel is p times larger and native
        # pixel centre c (1-based) lies at (c - 0.5) / p + 0.5 in pooled pixels.
        if f"CDELT{axis}" in header_wcs:
            header_wcs[f"CDELT{axis}"] = float(header_wcs[f"CDELT{axis}"]) * pool
        if f"CRPIX{axis}" in header_wcs:
            header_wcs[f"CRPIX{axis}"] = (float(header_wcs[f"CRPIX{axis}"]) - 0.5) / pool + 0.5
    exposures = cube.meta.get("exposure_s") or [None] * cube.frames.shape[0]
    maps = []
    for index, frame in enumerate(cube.frames):
        header = {**header_wcs, "DATE-OBS": cube.times[index], "NAXIS": 2,
                  "NAXIS1": frame.shape[1], "NAXIS2": frame.shape[0]}
        if cube.meta.get("wavelength_angstrom") is not None:
            header.update(WAVELNTH=float(cube.meta["wavelength_angstrom"]),
                          WAVEUNIT="angstrom")
        for key, name in (("INSTRUME", "instrument"), ("TELESCOP", "telescope")):
            if cube.meta.get(name):
                header[key] = cube.meta[name]
        if exposures[index] is not None:
            header["EXPTIME"] = float(exposures[index])
        maps.append(sunpy.map.Map(np.asarray(frame, dtype=np.float32), header))
    return sunpy.map.Map(maps, sequence=True)


# --------------------------------------------------------------------------------------
# The model's input
# --------------------------------------------------------------------------------------


def centre_hpc(cube: Cube) -> tuple[float | None, float | None]:
    """Helioprojective x, y (arcsec) of the centre of the cube's field of view.

    :func:`pixel_hpc` at the centre of the kept pooled pixels (floor pooling drops the
    trailing rows and columns). ``(None, None)`` when the cube has no helioprojective
    WCS (the seed's npz files).
    """
    _, height, width = cube.frames.shape
    return pixel_hpc(cube, (height - 1) / 2, (width - 1) / 2)


def pixel_hpc(cube: Cube, row: float, col: float) -> tuple[float | None, float | None]:
    """Helioprojective x, y (arcsec) of the cube's pixel ``(row, col)`` (0-based, as
    stored, fractional allowed).

    From the WCS keywords that :func:`read_maps` keeps in ``meta["wcs"]`` (native
    pixels) through :class:`astropy.wcs.WCS`; a pooled pixel ``p`` covers native pixels
    ``p * pool .. p * pool + pool - 1`` (``meta["pool"]``), so its centre is native
    ``p * pool + (pool - 1) / 2``. ``(None, None)`` when the cube has no helioprojective
    WCS.
    """
    header = cube.meta.get("wcs") or {}
    if not str(header.get("CTYPE1", "")).startswith("HPLN"):
        return None, None
    from astropy.wcs import WCS, FITSFixedWarning

    pool = int(cube.meta.get("pool") or 1)
    with warnings.catch_warnings():
        # CROTA2 is translated to a PC matrix, and astropy says so: expected, harmless.
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            world = WCS(dict(header))
            x_deg, y_deg = world.pixel_to_world_values(col * pool + (pool - 1) / 2,
                                                       row * pool + (pool - 1) / 2)
        except (ValueError, KeyError, TypeError):
            return None, None
    return float(x_deg) * 3600.0, float(y_deg) * 3600.0


def _instrument_name(value) -> str:
    """``AIA_3`` / ``AIA 4`` / ``aia`` -> ``AIA``: the instrument without its telescope."""
    return re.split(r"[\s_]", str(value).strip())[0].upper() if value else ""


def match_model_input(
    cube: Cube,
    *,
    wavelength_angstrom: float,
    instrument: str,
    exposure_normalise: bool,
    any_channel: bool = False,
    model: str = "the model",
) -> Cube:
    """Check a cube's channel against the model's and bring it to the model's unit.

    Parameters
    ----------
    cube : Cube
        As read (``meta`` may carry ``wavelength_angstrom``, ``instrument``,
        ``exposure_normalised`` and ``exposure_s``; the seed's npz files carry none).
    wavelength_angstrom : float
        The model's channel, angstrom (304 for the bundled model).
    instrument : str
        The model's instrument (``AIA``).
    exposure_normalise : bool
        Whether the model takes DN/s (True) or DN (False).
    any_channel : bool
        Accept another wavelength or instrument (the user says they mean it).
    model : str
        The model's name, for messages.

    Returns
    -------
    Cube
        The cube, with frames converted between DN and DN/s by its recorded exposure
        times when the units differ (``meta["exposure_normalised"]`` then matches).

    Raises
    ------
    ValueError
        Another channel or instrument without ``any_channel``, or a unit difference
        the cube's exposure times cannot undo.
    """
    meta = cube.meta
    recorded = meta.get("wavelength_angstrom")
    if not any_channel and recorded not in (None, ""):
        if abs(float(recorded) - float(wavelength_angstrom)) > 0.5:
            raise ValueError(
                f"{cube.source}: expected {float(wavelength_angstrom):g} A frames, as {model} "
                f"was trained on, received {float(recorded):g} A (pass --any-channel if you "
                f"mean it)")
    name = _instrument_name(meta.get("instrument"))
    if not any_channel and name and name != _instrument_name(instrument):
        raise ValueError(
            f"{cube.source}: expected frames from {instrument}, as {model} was trained on, "
            f"received {meta.get('instrument')} (pass --any-channel if you mean it)")
    normalised = bool(meta.get("exposure_normalised", False))
    if normalised == bool(exposure_normalise):
        return cube
    exposures = meta.get("exposure_s")
    if not exposures or len(exposures) != cube.frames.shape[0] or any(
            not isinstance(value, (int, float)) or not value > 0 for value in exposures):
        want, have = ("DN/s", "DN") if exposure_normalise else ("DN", "DN/s")
        raise ValueError(
            f"{cube.source}: expected frames in {want}, as {model} takes them, received "
            f"{have} without one exposure time per frame to convert them")
    scale = np.asarray(exposures, dtype=np.float32)[:, None, None]
    frames = cube.frames / scale if exposure_normalise else cube.frames * scale
    return Cube(frames=frames.astype(np.float32), source=cube.source, times=cube.times,
                meta={**meta, "exposure_normalised": bool(exposure_normalise)})


# --------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------


def _has_fits(directory: Path) -> bool:
    return any(_is_fits(path) for path in directory.iterdir())


def read_cube(path: str | os.PathLike, **kwargs) -> Cube:
    """Read one cube: an ``.npz`` file (:func:`read_npz`) or a FITS directory
    (:func:`read_fits_dir`).

    Keyword arguments are passed on to whichever reader is used; FITS-only keywords
    (``cadence_s``, ``pool``, ...) are ignored for npz files, so a caller can pass one set
    of options for both kinds. A keyword neither reader knows is a ``TypeError``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is neither an ``.npz`` file nor a directory, or the reader refuses it.
    """
    path = Path(path)
    npz_keywords = set(inspect.signature(read_npz).parameters) - {"path"}
    fits_keywords = set(inspect.signature(read_fits_dir).parameters) - {"directory"}
    unknown = sorted(set(kwargs) - npz_keywords - fits_keywords)
    if unknown:
        raise TypeError(f"read_cube: unexpected keyword argument(s) {unknown}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: cube not found")
    if path.is_dir():
        return read_fits_dir(path, **kwargs)
    if path.is_file() and path.suffix.lower() == ".npz":
        return read_npz(path, **{key: kwargs[key] for key in kwargs if key in npz_keywords})
    received = f"a {''.join(path.suffixes)!r} file" if path.suffixes else "a file without suffix"
    raise ValueError(
        f"{path}: expected a .npz cube or a directory of FITS frames, received {received}"
    )


def list_cubes(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand command-line arguments into cube paths, for ``predict``.

    Each argument may be an ``.npz`` file, a directory holding FITS frames (that
    directory is ONE cube), or a directory of cubes: ``.npz`` files and folders of FITS
    frames (one event each), not searched deeper.
    Duplicates are dropped, the order is kept (npz files of a directory sorted by name).

    Returns
    -------
    list of pathlib.Path
        ``.npz`` files and FITS directories.

    Raises
    ------
    FileNotFoundError
        An argument does not exist.
    ValueError
        A file that is not ``.npz``, or a directory holding no cube.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for argument in paths:
        path = Path(argument)
        if not path.exists():
            raise FileNotFoundError(f"{path}: cube not found")
        if path.is_file():
            if path.suffix.lower() != ".npz":
                raise ValueError(
                    f"{path}: expected a .npz cube or a directory of FITS frames, received a "
                    f"{''.join(path.suffixes) or 'suffix-less'} file"
                )
            found.append(path)
        elif _has_fits(path):
            found.append(path)
        else:
            # A folder of cubes: .npz files, and FITS event folders (one cube each, as
            # ``build_records --fits-root`` reads them), in name order.
            cubes = sorted(child for child in path.iterdir()
                           if (child.is_file() and child.suffix.lower() == ".npz")
                           or (child.is_dir() and _has_fits(child)))
            if not cubes:
                raise ValueError(
                    f"{path}: expected .npz cubes, FITS frames or folders of FITS frames "
                    f"in this directory, found none"
                )
            found.extend(cubes)
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)
