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
    exports them (image in HDU 1, Rice-compressed); see :func:`read_fits_dir`.
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

from jetkeras._files import atomic_output, json_default
from jetkeras.cube import Cube, check_frames
from jetkeras.preprocess import exposure_normalise as _exposure_normalise
from jetkeras.preprocess import max_pool

__all__ = [
    "CUBE_FORMAT",
    "FITS_SUFFIXES",
    "JetkerasWarning",
    "list_cubes",
    "match_cubes",
    "read_cube",
    "read_fits_dir",
    "read_npz",
    "scan_seed_root",
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


def _read_fits_frame(path: Path):
    """(image float64 (H, W), header) of the first HDU holding 2-D image data."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            # Level-1 headers carry keywords astropy flags as non-standard (BLANK on float
            # data, ...): harmless for reading pixels.
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                        data = np.asarray(hdu.data)
                        header = hdu.header.copy()
                        blank = header.get("BLANK")
                        if data.dtype.kind in "iu" and blank is not None:
                            # Unscaled integer images keep BLANK as a value: make it NaN
                            # so nan_policy decides.
                            data = np.where(data == blank, np.nan, data.astype(np.float64))
                        return data.astype(np.float64), header
                shapes = [getattr(hdu.data, "shape", None) for hdu in hdul]
    except (OSError, TypeError, ValueError, EOFError, zlib.error) as error:
        raise ValueError(
            f"{path}: expected a readable FITS file, received an unreadable one "
            f"({type(error).__name__}: {error})"
        ) from None
    raise ValueError(
        f"{path}: expected an HDU holding a 2-D image, received HDU data shapes {shapes}"
    )


def _observation_time(header, path: Path):
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


def read_fits_dir(
    directory: str | os.PathLike,
    *,
    frames: int | None = None,
    size: int | None = None,
    cadence_s: float = 24.0,
    cadence_tolerance_s: float = 6.0,
    pool: int = 3,
    exposure_normalise: bool = False,
    nan_policy: str = "reject",
) -> Cube:
    """Read a directory of AIA FITS frames (one JSOC export) as one cube.

    Frames are read with :mod:`astropy.io.fits` (first HDU holding 2-D image data: HDU 1
    of JSOC's Rice-compressed files, HDU 0 of plain files), sorted by ``DATE-OBS`` (else
    ``T_OBS``), checked for a regular cadence and one common shape, max-pooled by
    ``pool`` (floor mode, like the seed) and optionally divided by ``EXPTIME``.

    Parameters
    ----------
    directory : path-like
        Folder holding ``*.fits``, ``*.fits.gz`` or ``*.fts`` files, one per frame.
    frames : int, optional
        Required frame count T.
    size : int, optional
        Required pooled height and width in pixels.
    cadence_s : float
        Expected spacing of consecutive frames, seconds (the seed: 24 s).
    cadence_tolerance_s : float
        Allowed deviation from ``cadence_s``, seconds.
    pool : int
        Max-pool factor (1 = none; the seed: 3, 500 px -> 166 px).
    exposure_normalise : bool
        Divide each frame by its ``EXPTIME`` (DN -> DN/s).
    nan_policy : {"reject", "fill"}
        What to do with NaN/Inf (and integer ``BLANK``) pixels.

    Returns
    -------
    Cube
        ``frames`` float32 ``(T, H // pool, W // pool)`` in DN (DN/s when normalised);
        ``times`` ISO UTC of each frame; ``meta`` with ``wavelength_angstrom``,
        ``exposure_s`` (list), ``instrument``, ``telescope``, ``directory``, ``files``,
        ``pool``, ``exposure_normalised``, ``cadence_s`` (measured median),
        ``pixel_scale_arcsec`` (after pooling, when CDELT is known) and ``wcs`` (the first
        frame's CTYPE/CUNIT/CRVAL/CDELT/CRPIX/CROTA2 keywords, native pixels).

    Raises
    ------
    FileNotFoundError
        The directory does not exist.
    ValueError
        No FITS files, unreadable file, missing time, irregular cadence (naming both files
        and the gap), mixed shapes or wavelengths, bad exposure, wrong frame count or size, NaN/Inf.
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
    records = []
    for file in files:
        image, header = _read_fits_frame(file)
        records.append((_observation_time(header, file), file, image, header))
    records.sort(key=lambda record: record[0].unix)

    shape = records[0][2].shape
    for _, file, image, _ in records[1:]:
        if image.shape != shape:
            raise ValueError(
                f"{file}: expected every frame of {directory} to be {shape[0]}x{shape[1]} "
                f"pixels (as {records[0][1].name}), received {image.shape[0]}x{image.shape[1]}"
            )
    wavelength = records[0][3].get("WAVELNTH")
    for _, file, _, header in records[1:]:
        if header.get("WAVELNTH") != wavelength:
            raise ValueError(
                f"{file}: expected every frame of {directory} at WAVELNTH {wavelength} (as "
                f"{records[0][1].name}), received {header.get('WAVELNTH')}"
            )
    gaps = []
    for (time_a, file_a, _, _), (time_b, file_b, _, _) in itertools.pairwise(records):
        gap = float((time_b - time_a).to_value("s"))
        gaps.append(gap)
        if abs(gap - cadence_s) > cadence_tolerance_s:
            raise ValueError(
                f"{directory}: expected frames {cadence_s:g} +- {cadence_tolerance_s:g} s apart, "
                f"received a gap of {gap:.1f} s between {file_a.name} and {file_b.name}"
            )

    stack = np.stack([record[2] for record in records])  # (T, H, W) float64, DN
    exposures = [records_header.get("EXPTIME") for _, _, _, records_header in records]
    if exposure_normalise:
        for (_, file, _, _), exposure in zip(records, exposures):
            if not isinstance(exposure, (int, float)) or not exposure > 0:
                raise ValueError(
                    f"{file}: expected a positive EXPTIME (s) to normalise by, received "
                    f"{exposure!r}"
                )
        stack = _exposure_normalise(stack, np.asarray(exposures, dtype=np.float64))
    pooled = max_pool(stack, pool)  # float32 (T, H // pool, W // pool)
    checked = _validate(pooled, str(directory), frames=frames, size=size, nan_policy=nan_policy)

    first = records[0][3]
    wcs = {
        key: first[key]
        for key in ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRVAL1", "CRVAL2", "CDELT1",
                    "CDELT2", "CRPIX1", "CRPIX2", "CROTA2")
        if key in first and first[key] is not None and not isinstance(first[key], bool)
    }
    meta: dict[str, Any] = {
        "directory": str(directory),
        "files": [record[1].name for record in records],
        "wavelength_angstrom": first.get("WAVELNTH"),
        "instrument": first.get("INSTRUME"),
        "telescope": first.get("TELESCOP"),
        "exposure_s": [float(value) if isinstance(value, (int, float)) else None
                       for value in exposures],
        "exposure_normalised": bool(exposure_normalise),
        "pool": int(pool),
        "cadence_s": float(np.median(gaps)) if gaps else None,
        "wcs": wcs,
    }
    if isinstance(first.get("CDELT1"), (int, float)):
        meta["pixel_scale_arcsec"] = float(first["CDELT1"]) * int(pool)
    times = [record[0].utc.isot for record in records]
    return Cube(frames=checked, source=str(directory), times=times, meta=meta)


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

    Each argument may be an ``.npz`` file, a directory of ``.npz`` cubes (not searched
    recursively), or a directory holding FITS frames (that directory is ONE cube).
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
            cubes = sorted(child for child in path.iterdir()
                           if child.is_file() and child.suffix.lower() == ".npz")
            if not cubes:
                raise ValueError(
                    f"{path}: expected .npz cubes or FITS frames in this directory, found none"
                )
            found.extend(cubes)
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)
