"""Atomic file writes: a temporary file beside the target, then one ``os.replace``.

A reader (or a rerun after a crash) never sees half a file: either the old content or the
new. Used by every stage that writes outputs. Folders are swapped the same way
(:func:`replace_folder`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "atomic_write_text", "replace_folder"]


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
