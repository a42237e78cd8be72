"""Pure NumPy transforms of one cube's frames: pooling, resampling, exposure scaling.

Every function takes and returns plain arrays, never tensors, so the same code serves the
FITS reader (:func:`jetkeras.io.read_fits_dir`), ``realcheck`` and the tests.
Frames are float32 ``(T, H, W)`` in DN (or DN/s once exposure-normalised).

- :func:`max_pool` -- the seed's 3x3 max-pooling of the 0.6"/px cutout (500 -> 166 px).
- :func:`resample` -- linear interpolation to another frame count and size, by count:
  ``realcheck`` brings its real windows to a model's geometry with it. ``predict`` places
  frames by their times instead (:mod:`jetkeras.conform`).
- :func:`exposure_normalise` -- DN to DN/s (AIA exposure control varies EXPTIME near flares).
- :func:`level_normalise` -- each frame brought to the window's brightness level, so an
  exposure jump (automatic exposure control) is not a brightening.
- :func:`despike` -- single-frame spikes (cosmic rays, energetic-particle snow) replaced
  by their neighbours in time, before any model sees the frames.
"""

from __future__ import annotations

import numbers

import numpy as np

from jetkeras.cube import check_stack

__all__ = ["despike", "exposure_normalise", "level_normalise", "max_pool", "resample"]

SPIKE_SIGMA = 8.0  # a spike stands this many noise levels above both neighbours in time
SPIKE_SHARPNESS = 3.0  # ... and this many times its 8 neighbours' mean excess in space
SPIKE_RELATIVE = 2.0  # ... and adds twice the pixel's level (or the window's median)


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


def despike(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace single-frame spikes by the mean of their neighbours in time.

    A particle hit on the CCD lights one or two pixels in one frame only, and sharper than
    the telescope's point-spread function; anything on the Sun that brightens lasts more
    than a frame, or, moving fast enough to light a pixel for one frame (a blob at
    300 km/s crosses 5 pooled pixels between frames), is spread over its neighbours. So a
    pixel is a spike when, in one frame, its excess over the brighter of its two
    neighbours in time (the one neighbour, at either end) is above SPIKE_SIGMA noise
    levels, more than SPIKE_RELATIVE times that neighbour's own level or the window's
    median level, whichever is higher (a hit triples a pixel of the 304 A disk; dithering,
    display quantisation and most compact flashes at a jet's base do not) *and* above
    SPIKE_SHARPNESS times the mean excess of its eight neighbours in space.
    The noise level is each pixel's robust spread of frame-to-frame differences (repeated
    frames left out), floored at the cube's median one.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` float in DN (any unit: the test is relative), ``T >= 3``.

    Returns
    -------
    (numpy.ndarray, int)
        The frames, float32, with spikes replaced (a copy only when there were any), and
        how many pixels were replaced.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[0] < 3:
        return frames, 0
    neighbour = np.empty_like(frames)
    neighbour[1:-1] = np.maximum(frames[:-2], frames[2:])
    neighbour[0], neighbour[-1] = frames[1], frames[-2]
    excess = frames - neighbour
    # Cheapest test first (the rest is done on the few pixels that pass): dark sky is
    # quantised (1 DN -> 3 DN triples a pixel), so the level a hit must beat is at least
    # the window's typical brightness.
    step = max(1, min(frames.shape[1:]) // 40)  # 166 px: every 4th pixel each way
    typical = abs(float(np.median(frames[:, ::step, ::step])))
    where = np.nonzero(excess > SPIKE_RELATIVE * np.maximum(np.abs(neighbour), typical))
    if where[0].size == 0:
        return frames, 0
    times, rows, cols = where
    # Sharper than the PSF: the mean excess of the 8 neighbours in space (none beyond
    # the frame's edge, not a copy of the edge pixel's own).
    padded = np.pad(np.clip(excess, 0.0, None), ((0, 0), (1, 1), (1, 1)))
    block = sum(padded[times, rows + dr, cols + dc] for dr in range(3) for dc in range(3))
    around = (block - padded[times, rows + 1, cols + 1]) / 8.0
    value = excess[where]
    sharp = value > SPIKE_SHARPNESS * around
    # Above the noise: each pixel's robust spread of frame-to-frame differences, repeated
    # frames left out (a stuck frame or a subject shown twice differs by exactly 0 and
    # says nothing of the noise), floored at the window's median spread.
    differences = np.diff(frames, axis=0)
    moving = np.any(differences.reshape(differences.shape[0], -1) != 0, axis=1)
    if moving.sum() >= 2:
        differences = differences[moving]

    def spread(series):  # (N, ...) -> robust spread along the first axis
        return 1.4826 * np.median(np.abs(series - np.median(series, axis=0)), axis=0)

    floor = max(float(np.median(spread(differences[:, ::step, ::step]))), 1e-6)
    noise = np.maximum(spread(differences[:, rows, cols]), floor)
    spikes = sharp & (value > SPIKE_SIGMA * noise)
    count = int(spikes.sum())
    if count == 0:
        return frames, 0
    # Replaced by the mean of the neighbours in time (the one neighbour at either end):
    # the brighter one alone would leave every replaced pixel a little bright.
    times, rows, cols = times[spikes], rows[spikes], cols[spikes]
    out = frames.copy()
    inner = (times > 0) & (times < frames.shape[0] - 1)
    out[times, rows, cols] = neighbour[times, rows, cols]
    out[times[inner], rows[inner], cols[inner]] = 0.5 * (
        frames[times[inner] - 1, rows[inner], cols[inner]]
        + frames[times[inner] + 1, rows[inner], cols[inner]])
    return out, count


def level_normalise(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each frame by its brightness level relative to the window.

    An exposure change scales every pixel of a frame alike; a jet, a loop or a flare
    brightens a part of it. So a frame's level is the median, over the window's brighter
    half of pixels (where the ratio is well measured; at 166 px, every other one), of the
    ratio of the frame to the pixel's median over time: a brightening that covers less than half of those pixels
    leaves it near 1, while a frame taken at 0.4 times the exposure has level 0.4.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` float in DN.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The frames divided by their levels (float32), and the levels ``(T,)`` (1 where
        the window has no positive pixels to measure them on).
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        return frames, np.ones(frames.shape[0], dtype=np.float32)
    step = max(1, min(frames.shape[1:]) // 80)  # 166 px: every other pixel each way
    sample = frames[:, ::step, ::step]
    typical = np.median(sample, axis=0)
    bright = typical > max(float(np.median(typical)), 0.0)
    if not bright.any():
        return frames, np.ones(frames.shape[0], dtype=np.float32)
    levels = np.median(sample[:, bright] / typical[bright][None], axis=1).astype(np.float32)
    levels = np.where(levels > 0, levels, 1.0).astype(np.float32)
    return (frames / levels[:, None, None]).astype(np.float32), levels
