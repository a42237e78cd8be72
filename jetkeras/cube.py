"""The in-memory unit every stage passes around: one image sequence (a *cube*).

A :class:`Cube` holds frames as float32 ``(T, H, W)`` in AIA level-1 DN (or DN/s when
exposure-normalised), the ISO UTC time of each frame when known, and a flat metadata
dictionary (``event_id``, ``label``, ``source``, ...). Readers in :mod:`jetkeras.io`
return it, the renderer in :mod:`jetkeras.synthetic` produces it, the records writer
stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Cube", "check_frames", "check_stack"]


@dataclass
class Cube:
    """One image sequence.

    Attributes
    ----------
    frames : numpy.ndarray
        float32, shape ``(T, H, W)``: T frames in time order, H rows, W columns, in DN.
    source : str
        Where it came from (a file, a directory, ``synthetic:<event_id>``).
    times : list of str, optional
        ISO 8601 UTC time of each frame (``len(times) == T``), when known.
    meta : dict
        Free metadata: ``event_id``, ``label``, ``group``, ``exposure_s``, ...
    """

    frames: np.ndarray
    source: str = ""
    times: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.frames = check_frames(self.frames, self.source or "cube")
        if self.times is not None and len(self.times) != self.frames.shape[0]:
            raise ValueError(
                f"{self.source or 'cube'}: expected one time per frame "
                f"({self.frames.shape[0]}), received {len(self.times)}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, H, W)``."""
        return tuple(self.frames.shape)


def check_stack(frames, name: str) -> np.ndarray:
    """``frames`` as an array, refused unless real numeric of shape ``(T, H, W)``.

    The dtype is kept; :func:`check_frames` checks more and converts to float32.
    """
    array = np.asarray(frames)
    if array.dtype.kind not in "fiu":
        raise ValueError(
            f"{name}: expected a real numeric array, received dtype {array.dtype}"
        )
    if array.ndim != 3:
        raise ValueError(
            f"{name}: expected frames of shape (n_frames, height, width), received "
            f"shape {array.shape}"
        )
    return array


def check_frames(
    frames: np.ndarray,
    name: str,
    *,
    frames_expected: int | None = None,
    size: int | None = None,
    nan_policy: str = "reject",
) -> np.ndarray:
    """Validate a frame stack and return it as C-contiguous float32 ``(T, H, W)``.

    Parameters
    ----------
    frames : array_like
        Candidate frames, shape ``(T, H, W)``, any real numeric dtype.
    name : str
        File or source named in error messages.
    frames_expected : int, optional
        Required T. A shorter or longer cube is refused (the seed dropped 5-22 frame
        downloads silently; we say so).
    size : int, optional
        Required H and W.
    nan_policy : {"reject", "fill"}
        ``reject`` refuses NaN/Inf; ``fill`` replaces them by 0 DN.

    Raises
    ------
    ValueError
        One line naming ``name``, what was expected and what was received.
    """
    array = check_stack(frames, name)
    if frames_expected is not None and array.shape[0] != frames_expected:
        raise ValueError(
            f"{name}: expected {frames_expected} frames, received {array.shape[0]}"
        )
    if size is not None and array.shape[1:] != (size, size):
        raise ValueError(
            f"{name}: expected frames of {size}x{size} pixels, received "
            f"{array.shape[1]}x{array.shape[2]}"
        )
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        count = int(array.size - finite.sum())
        if nan_policy == "reject":
            raise ValueError(
                f"{name}: expected finite values, received {count} NaN/Inf pixel(s) "
                f"(set data.nan_policy='fill' to replace them by 0)"
            )
        array = np.where(finite, array, np.float32(0.0))
    return array
