"""Bring a cube to the model's input: its time grid, its pixel scale, its field of view.

A model sees ``T`` frames ``cadence_s`` apart (30 frames 24 s apart for the bundled
model) of ``S x S`` pixels at ``field_of_view_arcsec / S`` arcsec per pixel. Real data
come at AIA's 12 s, or at the 24, 36 or 60 s a user asked JSOC for, in cutouts of any
size. :func:`conform` places the frames on the model's grid **from their own times**,
never from their count:

- a grid time with a real frame within ``cadence_tolerance_s`` takes that frame as it
  is (a 12 s folder is *thinned*: every other frame, nothing invented, no warning);
- otherwise the two real frames around it are interpolated linearly in time (36 s and
  60 s folders), when they are at most ``max(native cadence, model cadence) +
  tolerance`` apart; a wider gap (a missing frame at 36 s) cannot be bridged, and the
  windows that would need it are not scored;
- a sequence shorter than the window is refused in one line naming the span it needs,
  except a volunteer subject (``T / 2`` frames, 24-36 s apart) under ``resample``: each
  frame is shown twice, the form the renderer trains on (``synthetic``'s subject mode);
- a longer sequence gives several windows, one per grid step: ``predict`` scores each.

In space, a cube whose pixel scale is known (FITS headers, ``pixel_scale_arcsec``) keeps
it when the model was trained on it (the renderer zooms its field by 0.4-1.6,
``synthetic.ZOOM_RANGE``) and is zoomed isotropically to the model's nominal scale
otherwise (:func:`scipy.ndimage.zoom`, linear). A field narrower than ``S`` is then
enlarged until its short side fills it, as long as the pixel scale stays in that range
(a flat padding is a scene the model never saw), and cropped about its centre to
``S x S``; only a field too small for that is padded with a constant background.
Another size when the scale is unknown is refused unless ``resample`` asks for the zoom
(short side to ``S``, then cropped).

Every change to the data (interpolation in time or space, padding, cropping) is listed
in :attr:`ModelInput.changes` (``predict`` turns it into one warning line per cube) and
raises a quality flag (:mod:`jetkeras.quality`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jetkeras.cube import Cube

__all__ = ["ModelInput", "conform", "offsets_s"]

# A subject's frames are 24 s apart, some 36 s (renderer 4 and the real-jet set).
SUBJECT_CADENCES_S = (24.0, 36.0)


@dataclass
class ModelInput:
    """A cube on the model's grid, and what was done to put it there.

    Attributes
    ----------
    cube : Cube
        The cube as read (its frames in DN, its own times and metadata).
    frames : numpy.ndarray
        float32 ``(K, S, S)``: K >= T frames on the model's time grid, in DN.
    offsets_s : numpy.ndarray
        float64 ``(K,)``: each grid frame's time, seconds from the cube's first frame.
    starts : list of int
        Grid indices where a window of T frames can be scored (no unbridged gap).
    window_flags : list of list of str
        For each start, the time flags of that window (``resampled_time``,
        ``data_gap``), then the space flags of the cube.
    changes : list of str
        What was done to the data, in words, for the one warning line.
    cadence_s : float or None
        The cube's own cadence (median spacing, seconds); None when it has no times.
    to_input : tuple of float
        ``(row_scale, row_offset, col_scale, col_offset)``: a grid pixel ``(r, c)`` is
        the cube's pixel ``(r * row_scale + row_offset, c * col_scale + col_offset)``
        (0-based, as stored), undoing the zooms, crops and padding.
    pixel_scale_arcsec : float or None
        Arcsec per pixel of the grid frames; None when the cube records no scale.
    """

    cube: Cube
    frames: np.ndarray
    offsets_s: np.ndarray
    starts: list[int]
    window_flags: list[list[str]]
    changes: list[str] = field(default_factory=list)
    cadence_s: float | None = None
    to_input: tuple[float, float, float, float] = (1.0, 0.0, 1.0, 0.0)
    pixel_scale_arcsec: float | None = None

    @classmethod
    def of_window(cls, frames: np.ndarray, cadence_s: float, source: str = "") -> ModelInput:
        """One window already on the model's grid (a records sequence): no times, no
        known pixel scale, nothing changed."""
        frames = np.asarray(frames, dtype=np.float32)
        return cls(cube=Cube(frames=frames, source=source), frames=frames,
                   offsets_s=np.arange(frames.shape[0], dtype=np.float64) * cadence_s,
                   starts=[0], window_flags=[[]])

    def window(self, start: int, length: int) -> np.ndarray:
        """The grid frames ``start .. start + length - 1``, float32 ``(T, S, S)``."""
        return self.frames[start:start + length]

    def time_at(self, offset_s: float) -> str:
        """ISO UTC time ``offset_s`` seconds after the cube's first frame ("" unknown)."""
        if not self.cube.times:
            return ""
        first = np.datetime64(_plain_iso(self.cube.times[0]), "ms")
        moment = first + np.timedelta64(int(round(offset_s * 1000)), "ms")
        return str(moment)

    def input_pixel(self, row: float, col: float) -> tuple[float, float]:
        """The cube's own pixel (0-based row, column as stored) of grid pixel ``(row, col)``."""
        row_scale, row_offset, col_scale, col_offset = self.to_input
        return row * row_scale + row_offset, col * col_scale + col_offset


def _plain_iso(text: str) -> str:
    return str(text).strip().rstrip("Z")


def offsets_s(times) -> np.ndarray:
    """Seconds from the first of ISO UTC ``times``, float64 ``(T,)``.

    Raises
    ------
    ValueError
        A time that is not ISO 8601.
    """
    try:
        moments = np.array([_plain_iso(t) for t in times], dtype="datetime64[ms]")
    except ValueError as error:
        raise ValueError(f"times: expected ISO 8601 UTC times, received {error}") from None
    return (moments - moments[0]).astype(np.float64) / 1000.0


def conform(cube: Cube, *, frames: int, size: int, cadence_s: float,
            cadence_tolerance_s: float, pixel_scale_arcsec: float,
            resample: bool = False, name: str | None = None) -> ModelInput:
    """Place a cube's frames on the model's time grid and field (module docstring).

    Parameters
    ----------
    cube : Cube
        Frames float32 ``(n, H, W)`` in DN, with ``times`` when known (without times the
        frames are taken to be ``cadence_s`` apart, as the seed's npz files are).
    frames : int
        The model's window, T frames.
    size : int
        The model's side, S pixels.
    cadence_s : float
        The model's cadence, seconds.
    cadence_tolerance_s : float
        How far, in seconds, a real frame may sit from a grid time and still be taken
        as it is (timing jitter).
    pixel_scale_arcsec : float
        The model's pixel scale, arcsec per pixel.
    resample : bool
        Allow zooming a cube whose pixel scale is unknown, and the subject mode in time.
    name : str, optional
        What to call the cube in messages (default its source).

    Returns
    -------
    ModelInput

    Raises
    ------
    ValueError
        Frame times out of order; a sequence shorter than the window; no window free of
        an unbridgeable gap; another size and no pixel scale without ``resample``. One line
        each, naming the cube, what the model needs and what was received.
    """
    name = name or cube.source or "cube"
    count = cube.frames.shape[0]
    if cube.times:
        offsets = offsets_s(cube.times)
        steps = np.diff(offsets)
        if np.any(steps <= 0):
            where = int(np.argmax(steps <= 0))
            raise ValueError(f"{name}: expected frame times in increasing order, received "
                             f"{cube.times[where]} then {cube.times[where + 1]}")
        native = float(np.median(steps)) if count > 1 else None
    else:
        offsets = np.arange(count, dtype=np.float64) * cadence_s
        native = None
    changes: list[str] = []
    space_flags: list[str] = []
    field_ = _fit_field(cube, size=size, pixel_scale_arcsec=pixel_scale_arcsec,
                        resample=resample, name=name, changes=changes, flags=space_flags)
    pixels = field_.pixels
    where = {"to_input": field_.to_input, "pixel_scale_arcsec": field_.scale}
    span = float(offsets[-1] - offsets[0]) if count else 0.0
    needed = (frames - 1) * cadence_s
    if span < needed - cadence_tolerance_s:
        if _is_subject(count, native, frames, cadence_tolerance_s) and resample:
            doubled = np.repeat(pixels, 2, axis=0)[:frames]
            changes.append(f"{count} frames each shown twice (a volunteer subject, as the "
                           f"model was trained on them)")
            return ModelInput(cube=cube, frames=doubled,
                              offsets_s=np.repeat(offsets, 2)[:frames], starts=[0],
                              window_flags=[["resampled_time", *space_flags]],
                              changes=changes, cadence_s=native, **where)
        low, high = SUBJECT_CADENCES_S
        subject = (f"; or exactly {frames // 2} frames {low:g}-{high:g} s apart with "
                   f"--resample (a volunteer subject, each frame shown twice)"
                   if frames % 2 == 0 else "")
        raise ValueError(
            f"{name}: {count} frame(s) spanning {span:g} s, but the model's window is "
            f"{frames} frames {cadence_s:g} s apart: give at least {needed:g} s of "
            f"frames{subject}")
    grid, interpolated, bridged_gap, valid = _time_grid(
        offsets, cadence_s=cadence_s, tolerance_s=cadence_tolerance_s, native_s=native)
    starts = [start for start in range(len(grid) - frames + 1)
              if valid[start:start + frames].all()]
    if not starts:
        widest = int(np.argmax(np.diff(offsets)))
        raise ValueError(
            f"{name}: no window of {frames} frames {cadence_s:g} s apart free of data gaps: "
            f"{np.diff(offsets)[widest]:g} s between frames {widest} and {widest + 1} "
            f"(at most {max(native or 0.0, cadence_s) + cadence_tolerance_s:g} s can be "
            f"bridged)")
    on_grid = _frames_on_grid(pixels, offsets, grid, interpolated & valid)
    window_flags = []
    for start in starts:
        chosen = slice(start, start + frames)
        flags = (["resampled_time"] if interpolated[chosen].any() else []) + (
            ["data_gap"] if bridged_gap[chosen].any() else [])
        window_flags.append(flags + space_flags)
    if interpolated[starts[0]:starts[-1] + frames].any():
        changes.insert(0, f"frames {native:g} s apart interpolated in time to the model's "
                          f"{cadence_s:g} s")
    return ModelInput(cube=cube, frames=on_grid, offsets_s=grid - grid[0], starts=starts,
                      window_flags=window_flags, changes=changes, cadence_s=native, **where)


def _is_subject(count, native, frames, tolerance_s) -> bool:
    """A volunteer subject: half the window's frames, 24-36 s apart (or no times)."""
    if frames % 2 or count != frames // 2:
        return False
    low, high = SUBJECT_CADENCES_S
    return native is None or low - tolerance_s <= native <= high + tolerance_s


def _time_grid(offsets, *, cadence_s, tolerance_s, native_s):
    """The model's grid over ``offsets`` and, per grid time, how it is filled.

    Returns
    -------
    grid : float64 ``(K,)``, seconds from the first frame.
    interpolated : bool ``(K,)``, no real frame within the tolerance: interpolated.
    bridged_gap : bool ``(K,)``, interpolated across a gap wider than the cadence.
    valid : bool ``(K,)``, the grid time can be filled at all.
    """
    span = float(offsets[-1] - offsets[0])
    count = int(math.floor((span + tolerance_s) / cadence_s)) + 1
    grid = offsets[0] + np.arange(count, dtype=np.float64) * cadence_s
    after = np.clip(np.searchsorted(offsets, grid), 0, len(offsets) - 1)
    before = np.clip(after - 1, 0, len(offsets) - 1)
    nearest = np.minimum(np.abs(offsets[after] - grid), np.abs(offsets[before] - grid))
    interpolated = nearest > tolerance_s
    bracket = offsets[after] - offsets[before]
    bridge_limit = max(native_s or cadence_s, cadence_s) + tolerance_s
    valid = ~interpolated | (bracket <= bridge_limit)
    gap_limit = (native_s or cadence_s) + tolerance_s
    bridged_gap = interpolated & valid & (bracket > gap_limit)
    return grid, interpolated, bridged_gap, valid


def _frames_on_grid(pixels, offsets, grid, interpolated) -> np.ndarray:
    """``pixels`` ``(n, S, S)`` at the ``grid`` times: the nearest real frame where one is
    within the tolerance, else linear interpolation between the frames around it."""
    out = np.empty((len(grid),) + pixels.shape[1:], dtype=np.float32)
    for index, moment in enumerate(grid):
        after = int(np.clip(np.searchsorted(offsets, moment), 0, len(offsets) - 1))
        before = max(after - 1, 0)
        if not interpolated[index]:
            nearest = after if abs(offsets[after] - moment) <= abs(offsets[before] - moment) \
                else before
            out[index] = pixels[nearest]
            continue
        weight = np.float32((moment - offsets[before]) / (offsets[after] - offsets[before]))
        out[index] = (1 - weight) * pixels[before] + weight * pixels[after]
    return out


@dataclass
class _Field:
    """Frames being fitted to the model's field, and where their pixels came from."""

    pixels: np.ndarray
    scale: float | None  # arcsec per pixel, None unknown
    to_input: tuple[float, float, float, float] = (1.0, 0.0, 1.0, 0.0)

    def zoom(self, zoom: float) -> None:
        """Zoom isotropically (linear, ``grid_mode=False``: corner pixels stay corners)."""
        from scipy import ndimage

        before = self.pixels.shape[1:]
        self.pixels = ndimage.zoom(self.pixels, (1.0, zoom, zoom), order=1, grid_mode=False,
                                   mode="nearest").astype(np.float32)
        after = self.pixels.shape[1:]
        # output index o reads input index o * (n_in - 1) / (n_out - 1)
        steps = [(b - 1) / (a - 1) if a > 1 else 1.0 for b, a in zip(before, after)]
        row_scale, row_offset, col_scale, col_offset = self.to_input
        self.to_input = (row_scale * steps[0], row_offset, col_scale * steps[1], col_offset)
        if self.scale is not None:
            self.scale = self.scale / zoom

    def shift(self, rows: int, cols: int) -> None:
        """Grid pixel 0 is now the old pixel ``(rows, cols)`` (a crop; negative: a pad)."""
        row_scale, row_offset, col_scale, col_offset = self.to_input
        self.to_input = (row_scale, row_offset + rows * row_scale,
                         col_scale, col_offset + cols * col_scale)


def _fit_field(cube: Cube, *, size, pixel_scale_arcsec, resample, name, changes,
               flags) -> _Field:
    """The cube's frames at a pixel scale the model knows, ``size x size`` (or refused)."""

    from jetkeras.synthetic import ZOOM_RANGE

    _, height, width = cube.frames.shape
    scale = cube.meta.get("pixel_scale_arcsec")
    scale = float(scale) if isinstance(scale, (int, float)) and scale > 0 else None
    fitted = _Field(cube.frames, scale)
    low, high = (pixel_scale_arcsec * factor for factor in ZOOM_RANGE)
    if scale is not None:
        # The renders vary their field of view (ZOOM_RANGE): a scale inside that range is
        # one the model was trained on and stays as it is; outside it is zoomed.
        if not low <= scale <= high:
            zoom = scale / pixel_scale_arcsec
            fitted.zoom(zoom)
            changes.append(f"zoomed by {zoom:.3g} from {scale:.3g} to "
                           f"{pixel_scale_arcsec:.3g} arcsec per pixel (the model was "
                           f"trained on {low:.3g}-{high:.3g})")
            flags.append("resampled_space")
            scale = fitted.scale = pixel_scale_arcsec  # exactly, not up to rounding
        # A field narrower than the model's is enlarged until its short side fills it,
        # while the pixel scale stays one the renders covered: a flat padding is a scene
        # the model never saw, and it pulled a real limb scene's score from 0.89 to 0.06.
        short = min(fitted.pixels.shape[1:])
        if short < size and scale * short / size >= low:
            zoom = size / short
            fitted.zoom(zoom)
            changes.append(f"zoomed by {zoom:.3g} to fill the field ({scale:.3g} to "
                           f"{scale / zoom:.3g} arcsec per pixel)")
            flags.append("resampled_space")
    elif (height, width) != (size, size):
        if not resample:
            raise ValueError(
                f"{name}: frames of {height}x{width} px with no pixel scale recorded, but "
                f"the model expects {size}x{size} px (pass --resample to zoom them)")
        zoom = size / min(height, width)
        fitted.zoom(zoom)
        changes.append(f"zoomed by {zoom:.3g} from {height}x{width} px (pixel scale "
                       f"unknown)")
        flags.append("resampled_space")
    _pad_or_crop(fitted, size, changes, flags)
    return fitted


def _pad_or_crop(fitted: _Field, size, changes, flags) -> None:
    """Centre ``fitted.pixels`` ``(n, H, W)`` in ``size x size``: crop each long side, pad
    each short one with the cube's 1st-percentile level (dark sky or quiet corona, the
    same in every frame, so the padding never moves)."""
    pixels = fitted.pixels
    _, height, width = pixels.shape
    if (height, width) == (size, size):
        return
    before = pixels.shape[1:]
    crop = [0, 0]
    for axis, length in ((1, height), (2, width)):
        if length > size:
            start = (length - size) // 2
            crop[axis - 1] = start
            pixels = np.take(pixels, np.arange(start, start + size), axis=axis)
    fitted.shift(*crop)
    if "cropped" not in flags and (height > size or width > size):
        flags.append("cropped")
    pad_rows, pad_columns = size - pixels.shape[1], size - pixels.shape[2]
    if pad_rows > 0 or pad_columns > 0:
        background = float(np.percentile(pixels, 1))
        pixels = np.pad(pixels, ((0, 0), (pad_rows // 2, pad_rows - pad_rows // 2),
                                 (pad_columns // 2, pad_columns - pad_columns // 2)),
                        constant_values=background)
        fitted.shift(-(pad_rows // 2), -(pad_columns // 2))
        flags.append("padded")
    verb = " and ".join(word for word, flag in (("cropped", "cropped"), ("padded", "padded"))
                        if flag in flags)
    changes.append(f"{verb} from {before[0]}x{before[1]} to {size}x{size} px about the "
                   f"centre")
    fitted.pixels = np.ascontiguousarray(pixels, dtype=np.float32)
