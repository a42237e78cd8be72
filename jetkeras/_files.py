"""Atomic file writes: a temporary file beside the target, then one ``os.replace``.

A reader (or a rerun after a crash) never sees half a file: either the old content or the
new. Used by every stage that writes outputs. Folders are written in a temporary sibling
and swapped in the same way (:func:`staged_folder`, :func:`replace_folder`). A full disk
inside either is re-raised as an ``OSError`` (ENOSPC) naming the final file or folder, not
the temporary one (:func:`is_disk_full` tells one, TensorFlow's errors included). Tables of
rows go to CSV with :func:`write_csv`; NumPy values go to JSON through
:func:`json_default`.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_output", "atomic_write_text", "is_disk_full", "json_default", "plain",
           "read_format_json", "read_json", "read_json_object", "replace_folder", "Schema",
           "staged_folder", "union_columns", "write_csv"]

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_DISK_FULL_TEXTS = {"no space left on device": errno.ENOSPC,
                    "disk quota exceeded": getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(error: BaseException) -> bool:
    """True for an OSError with errno ENOSPC or EDQUOT, or any error whose message says
    "No space left on device" or "Disk quota exceeded" (TensorFlow's
    ``ResourceExhaustedError``, h5py's errors), told without importing TensorFlow."""
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(error).lower()
    return any(phrase in text for phrase in _DISK_FULL_TEXTS)


@contextlib.contextmanager
def _naming_target_when_disk_full(target: Path) -> Iterator[None]:
    """Re-raise a full disk inside the block as an OSError whose filename is ``target``.

    Writers fail on a temporary file, or name no file at all (Python's ``write`` and
    ``close``); the user needs the output they asked for.
    """
    try:
        yield
    except Exception as error:
        if not is_disk_full(error):
            raise
        number = (error.errno if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS
                  else next((n for phrase, n in _DISK_FULL_TEXTS.items()
                             if phrase in str(error).lower()), errno.ENOSPC))
        raise OSError(number, os.strerror(number), os.fspath(target)) from error


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    Parameters
    ----------
    path : path-like
        Final file.
    suffix : str
        Ending of the temporary name, for writers that pick a format from it (``.png``,
        ``.gif``, ``.npz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        with _naming_target_when_disk_full(path):
            yield temporary
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text)


def replace_folder(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Swap a finished ``staging`` folder into ``target``.

    The old ``target`` is moved aside first and removed only once the new one is in
    place, so an interruption leaves either the old folder or the new one (at worst
    beside a ``.old`` copy), never a half-written one.
    """
    import shutil

    staging, target = Path(staging), Path(target)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target``; swap it in if the block succeeds.

    On an error the temporary folder is removed and ``target`` is left as it was.
    """
    import shutil
    import tempfile

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp",
                                    dir=target.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; outputs are for reading
    try:
        with _naming_target_when_disk_full(target):
            yield staging
            replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def plain(value: Any) -> Any:
    """A NumPy scalar or array, or a path, as the plain Python value JSON and CSV take."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy values and paths; else TypeError."""
    converted = plain(value)
    if converted is value:
        raise TypeError(f"a value of type {type(value).__name__} is not JSON-serialisable")
    return converted


def union_columns(rows: Iterable[dict[str, Any]], first: Iterable[str] = ()) -> list[str]:
    """Every key of ``rows`` in first-seen order (after ``first``), but ``_private`` ones."""
    columns = dict.fromkeys(first)
    for row in rows:
        columns.update(dict.fromkeys(key for key in row if not str(key).startswith("_")))
    return list(columns)


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]],
              columns: list[str] | None = None) -> Path:
    """Write ``rows`` as CSV atomically; columns default to :func:`union_columns`.

    A row without a column leaves its cell empty (None too); keys not in ``columns`` are
    left out.
    """
    import csv
    import io

    columns = union_columns(rows) if columns is None else columns
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: plain(value) for key, value in row.items()} for row in rows)
    atomic_write_text(path, buffer.getvalue())
    return Path(path)


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The JSON content of ``path``; one-line errors name the file and say what it is."""
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def read_format_json(path: str | os.PathLike, expected_format: str, what: str) -> dict:
    """The JSON object in ``path`` whose ``format`` key is ``expected_format``.

    For the state files a command pins and a rerun reads back (``fetch_state.json``,
    ``survey.json``). ``what`` says what the file is in the invalid-JSON error.

    Raises
    ------
    ValueError
        Invalid JSON, not an object, or another ``format``: one line naming the file.
    """
    import json

    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: expected {what}, received invalid JSON ({error})") from None
    if not isinstance(content, dict) or content.get("format") != expected_format:
        found = content.get("format") if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"{path}: expected format {expected_format!r}, received {found!r}")
    return content


class Schema:
    """One stored JSON file's checks: each failure is one line naming the file and key,
    what was expected, what was received, and ``fix`` (what to do)."""

    def __init__(self, path: str | os.PathLike, fix: str):
        self.path, self.fix = Path(path), fix

    def fail(self, key: str, expected: str, received: Any) -> None:
        raise ValueError(f"{self.path}: key `{key}`: expected {expected}, received "
                         f"{received!r}; {self.fix}")

    def get(self, mapping: dict, key: str, dotted: str | None = None) -> Any:
        if key not in mapping:
            raise ValueError(f"{self.path}: key `{dotted or key}`: expected the key, received "
                             f"a file without it; {self.fix}")
        return mapping[key]

    def object(self, value: Any, dotted: str) -> dict:
        if not isinstance(value, dict):
            self.fail(dotted, "a JSON object", type(value).__name__)
        return value

    def text(self, value: Any, dotted: str, choices: tuple[str, ...] = ()) -> str:
        if not isinstance(value, str) or not value or (choices and value not in choices):
            self.fail(dotted, f"one of {list(choices)}" if choices else "a non-empty string",
                      value)
        return value

    def integer(self, value: Any, dotted: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(dotted, f"an integer >= {minimum}", value)
        return value

    def number(self, value: Any, dotted: str, *, positive: bool = False,
               unit: bool = False) -> float:
        """A finite JSON number; ``positive``: above 0; ``unit``: in [0, 1]."""
        finite = (not isinstance(value, bool) and isinstance(value, (int, float))
                  and math.isfinite(value))
        if (not finite or (positive and value <= 0) or (unit and not 0 <= value <= 1)):
            expected = ("a finite number in [0, 1]" if unit else "a finite number > 0"
                        if positive else "a finite number")
            self.fail(dotted, expected, value)
        return float(value)

    def version(self, value: Any, dotted: str, known: tuple[str, ...]) -> str:
        if value not in known:
            self.fail(dotted, f"a known version {list(known)} (files of another version "
                              f"come from another jetkeras)", value)
        return value


def read_json_object(path: str | os.PathLike, fix: str) -> dict:
    """The JSON object in ``path``; invalid JSON or another type is one line ending ``fix``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Invalid JSON, or JSON that is not an object.
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; {fix}")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: expected JSON, received invalid JSON ({error}); "
                         f"{fix}") from None
    return Schema(path, fix).object(content, "(the file)")
