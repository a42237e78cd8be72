"""Pure NumPy transforms of one cube's frames: pooling, resampling, exposure scaling.

Every function takes and returns plain arrays, never tensors, so the same code serves the
FITS reader (:func:`jetkeras.io.read_fits_dir`), ``realcheck`` and the tests.
Frames are float32 ``(T, H, W)`` in DN (or DN/s once exposure-normalised).

- :func:`max_pool` -- the seed's 3x3 max-pooling of the 0.6"/px cutout (500 -> 166 px).
- :func:`resample` -- linear interpolation to another frame count and size, by count:
  ``realcheck`` brings its real windows to a model's geometry with it. ``predict`` places
  frames by their times instead (:mod:`jetkeras.conform`).
- :func:`exposure_normalise` -- DN to DN/s (AIA exposure control varies EXPTIME near flares).
"""

from __future__ import annotations

import numbers

import numpy as np

from jetkeras.cube import check_stack

__all__ = ["exposure_normalise", "max_pool", "resample"]


def _positive_int(value, name: str, function: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{function}: `{name}` expected an integer >= 1, received {value!r}")
    return int(value)


def max_pool(frames: np.ndarray, factor: int) -> np.ndarray:
    """Max-pool every frame over non-overlapping ``factor x factor`` blocks.

    Floor mode, like the seed's ``torch.nn.MaxPool2d(3, stride=3)``: trailing rows and
    columns that do not fill a whole block are dropped (500 px -> 166 px with factor 3).

    Parameters
    ----------
    frames : numpy.ndarray
        Shape ``(T, H, W)``, any real numeric dtype, in DN.
    factor : int
        Block side in pixels, >= 1. ``1`` returns the frames unchanged (as float32).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(T, H // factor, W // factor)``, in the input's unit.

    Raises
    ------
    ValueError
        Wrong rank or dtype, ``factor`` not a positive integer, or frames smaller than one
        block.
    """
    array = check_stack(frames, "max_pool")
    factor = _positive_int(factor, "factor", "max_pool")
    count, height, width = array.shape
    pooled_height, pooled_width = height // factor, width // factor
    if pooled_height == 0 or pooled_width == 0:
        raise ValueError(
            f"max_pool: expected frames of at least {factor}x{factor} pixels, received "
            f"{height}x{width}"
        )
    cropped = array[:, : pooled_height * factor, : pooled_width * factor]
    # Reshape so each block gets its own two axes; max over them is the pooled value.
    blocks = cropped.reshape(count, pooled_height, factor, pooled_width, factor)
    # NaN propagates through max, as in torch: a NaN pixel poisons its block and the
    # reader's nan_policy then decides.
    return np.ascontiguousarray(blocks.max(axis=(2, 4)), dtype=np.float32)


def resample(frames: np.ndarray, *, frames_out: int, size_out: int) -> np.ndarray:
    """Linearly interpolate a cube to ``frames_out`` frames of ``size_out x size_out``.

    Uses :func:`scipy.ndimage.zoom` (order 1, ``grid_mode=False``: the first and last
    frames, rows and columns map onto the first and last of the output), so time and space
    are stretched the same way; it does not invent detail. It ignores the frames' times:
    ``predict`` uses :func:`jetkeras.conform.conform`, which does not.

    Parameters
    ----------
    frames : numpy.ndarray
        Shape ``(T, H, W)``, any real numeric dtype, in DN.
    frames_out : int
        Output frame count, >= 1.
    size_out : int
        Output height and width in pixels, >= 1.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(frames_out, size_out, size_out)``. A cube that already has that
        shape is returned unchanged (as float32).

    Raises
    ------
    ValueError
        Wrong rank or dtype, or non-positive output sizes.
    """
    array = check_stack(frames, "resample")
    frames_out = _positive_int(frames_out, "frames_out", "resample")
    size_out = _positive_int(size_out, "size_out", "resample")
    target = (frames_out, size_out, size_out)
    if array.shape == target:
        return np.ascontiguousarray(array, dtype=np.float32)
    # zoom sizes its output as round(input * factor); target / input rounds back exactly.
    factors = [out / size for out, size in zip(target, array.shape)]
    import scipy.ndimage  # imported here: predict's cold start does not need it

    result = scipy.ndimage.zoom(
        array.astype(np.float32), factors, order=1, mode="nearest", grid_mode=False
    )
    if result.shape != target:  # a guard on scipy's rounding, never expected to fire
        raise ValueError(f"resample: expected output shape {target}, received {result.shape}")
    return np.ascontiguousarray(result, dtype=np.float32)


def exposure_normalise(frame: np.ndarray, exposure_s) -> np.ndarray:
    """Divide DN by the exposure time, giving DN/s.

    Parameters
    ----------
    frame : numpy.ndarray
        One frame ``(H, W)`` or a stack ``(T, H, W)``, real numeric dtype, in DN.
    exposure_s : float or array_like
        Exposure time in seconds (FITS ``EXPTIME``): a scalar, or one value per frame
        (shape ``(T,)``) for a stack.

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``frame``, in DN/s.

    Raises
    ------
    ValueError
        Non-positive or non-finite exposure, or one exposure per frame whose count does
        not match T.
    """
    array = np.asarray(frame)
    if array.dtype.kind not in "fiu":
        raise ValueError(
            f"exposure_normalise: expected a real numeric array, received dtype {array.dtype}"
        )
    exposure = np.asarray(exposure_s, dtype=np.float64)
    if exposure.size == 0 or not np.all(np.isfinite(exposure)) or np.any(exposure <= 0):
        raise ValueError(
            f"exposure_normalise: expected positive finite exposure time(s) in seconds, "
            f"received {exposure_s!r}"
        )
    if exposure.ndim == 1:
        if array.ndim != 3 or exposure.shape[0] != array.shape[0]:
            raise ValueError(
                f"exposure_normalise: expected one exposure per frame of a (T, H, W) stack, "
                f"received {exposure.shape[0]} exposure(s) for shape {array.shape}"
            )
        exposure = exposure[:, None, None]
    elif exposure.ndim != 0:
        raise ValueError(
            f"exposure_normalise: expected a scalar or (T,) exposure, received shape "
            f"{exposure.shape}"
        )
    return (array.astype(np.float64) / exposure).astype(np.float32)
