"""Where, when and how fast: measure a jet in one window from its pixels.

The classical way a solar physicist measures a jet, made automatic and reproducible
(the same steps as JeAn's ``find_candidates``: difference images, a connected region,
its aspect ratio, a time-distance diagram; Raouafi et al. 2016 for the quantities):

1. **Excess brightness.** Each pixel's background is its 20th percentile over the window
   (a jet lights a pixel for part of the window only); the excess ``E(t, y, x)`` is
   frame minus background, smoothed by one pixel and divided by a robust noise level
   (the median absolute deviation of the excess), so the threshold is in sigmas
   whatever the exposure.
2. **The region.** Pixels whose peak excess exceeds ``PEAK_SIGMA`` form connected
   regions (:func:`scipy.ndimage.label`); the one with the largest summed excess whose
   brightening times grow along its length is the jet's.
3. **The spire's axis** is the region's principal axis (excess-weighted second moments).
   Its **base** is the end that brightens first (each pixel's brightening time is when
   its excess first passes ``RISE_SIGMA``): the excess-weighted centroid of the region's
   first tenth along the axis. The **direction** points from there along the axis.
4. **Time-distance diagram.** The excess is sampled along the axis from the base
   (:func:`scipy.ndimage.map_coordinates`, averaged over a strip ``STRIP_PX`` wide). The
   **front** at each frame is the farthest distance reached by excess above
   ``FRONT_SIGMA`` without a break; the **length** is its largest value, the **peak**
   frame when it is reached, and a straight-line fit to the front while it grows gives
   the **speed** (plane of the sky) and, where the line meets distance zero, the
   **onset** (negative when the jet was already under way at the first frame).
5. **Width**: the full width at half maximum of the peak excess across the axis,
   the median over the spire's middle half (:func:`front_along`: of the excess in the
   peak frame, unsmoothed).

:func:`measure`'s ``localisation_score`` (0-1) is the R^2 of the front's straight-line
fit times the region's elongation (1 - minor / major axis, from the moments): a bright
blob that does not grow outward scores near 0. The shipped measurement's is the head's
base-point heat-map mass near its peak.

What ships (:class:`Localiser`, :func:`measure_window`, every row ``predict`` calls a
jet): the learned head below for the base point and direction, and the classical front of
step 4 along its axis (:func:`front_along`) for onset, peak, length, speed and width.
The classical pipeline alone (:func:`measure`) is kept as the baseline it beat: on
held-out renders it misses the base point by a median 21.8 +- 3.0 px, where the cutout's
centre misses by 19.2 +- 3.4 px (its running-difference region often holds only the
spire's upper part, or a confuser).

**The learned head** (:func:`build_head`, weights from ``bench/localise_head.py``,
shipped as ``jetkeras/bundled/measure.tflite``): a small U-Net on per-pixel temporal
summaries (:func:`head_features`) giving base-point and spire-point heat maps (the
direction points from one to the other) and timing regressions (poor: peak 4.9 frames;
not used). Held out by event (catalogue jets split by ``SOL_event`` group, 80/20; trained
on 1,200 renders of training events, 12 epochs; 3 training x 3 evaluation seeds): base
2.35 +- 0.43 px, direction 6.9 +- 1.2 degrees; with :func:`front_along`, onset 1.24 +-
0.36 frames, peak 2.24 +- 0.40, length 0.23 +- 0.06 and speed 0.21 +- 0.03 relative,
width 0.65 +- 0.06 (``bench/results/localise_head_by_event.json``). Renders only carry a
truth; on real jets see ``bench/localise_real.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Evidence", "Localiser", "Measurement", "MEASUREMENT_COLUMNS", "WindowMeasurement",
           "build_head", "front_along", "head_features", "km_per_arcsec", "measure",
           "measure_learned", "measure_window", "write_head_litert"]

LAG = 2  # frames between the two images of a running difference
PEAK_SIGMA = 6.0  # a region must hold a pixel whose largest running rise passes this
GROW_SIGMA = 3.0  # ... and is grown over the pixels whose largest rise passes this
RISE_SIGMA = 3.0  # a pixel's brightening time: its excess first passes this
FRONT_SIGMA = 3.0  # the time-distance front: excess above this, unbroken from the base
STRIP_PX = 3  # pixels across the axis averaged in the time-distance diagram
MIN_REGION_PX = 6  # smaller regions are noise
RIDGE_SIDE_PX = 6.0  # the ridge is compared with strips this far to either side
RIDGE_SIGMA = 3.0  # ... and must stand this far above them
RIDGE_GAP_PX = 3  # gaps along the ridge bridged while following it
ORDER_CORRELATION = 0.3  # rise times this correlated with distance say where the base is


@dataclass
class Measurement:
    """One jet measured in one window (pixels of the window as given to :func:`measure`).

    Attributes
    ----------
    base_row, base_col : float
        The base point, 0-based row and column of the frame array.
    direction_deg : float
        Direction of travel in the frame array, ``atan2(d_row, d_col)`` in degrees, 0-360.
    onset_frame, peak_frame : float
        When the front leaves the base (fitted; negative when already under way) and when
        it is longest, in frames from the window's first frame.
    length_px, width_px : float
        Largest length of the spire from its base, and its width (FWHM), pixels.
    speed_px_per_frame : float
        Plane-of-sky speed of the front, pixels per frame.
    localisation_score : float
        0-1: R^2 of the front's fit times the region's elongation.
    """

    base_row: float
    base_col: float
    direction_deg: float
    onset_frame: float
    peak_frame: float
    length_px: float
    width_px: float
    speed_px_per_frame: float
    localisation_score: float

    def as_row(self, *, pixel_scale_arcsec: float, cadence_s: float,
               km_per_arcsec_value: float) -> dict[str, float | None]:
        """The row's measurement columns, in arcsec, km/s, frames (rounded; None where
        not measured, e.g. the timing of a front that never leaves the base)."""
        speed_arcsec_s = self.speed_px_per_frame * pixel_scale_arcsec / cadence_s
        return {
            "base_row": _rounded(self.base_row, 2), "base_col": _rounded(self.base_col, 2),
            "direction_deg": _rounded(self.direction_deg, 1),
            "onset_frame": _rounded(self.onset_frame, 2),
            "peak_frame": _rounded(self.peak_frame, 2),
            "length_arcsec": _rounded(self.length_px * pixel_scale_arcsec, 2),
            "speed_km_s": _rounded(speed_arcsec_s * km_per_arcsec_value, 1),
            "width_arcsec": _rounded(self.width_px * pixel_scale_arcsec, 2),
            "localisation_score": _rounded(self.localisation_score, 3),
        }


def _rounded(value: float, digits: int) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


MEASUREMENT_COLUMNS = ("base_row", "base_col", "direction_deg", "onset_frame", "peak_frame",
                       "length_arcsec", "speed_km_s", "width_arcsec", "localisation_score")


def km_per_arcsec(observer_distance_m: float | None = None) -> float:
    """Kilometres on the Sun per arcsec of sky, seen from ``observer_distance_m`` (the
    header's ``DSUN_OBS``; default 1 au), at the Sun's centre distance."""
    import astropy.units as u
    from astropy.constants import au

    distance = (observer_distance_m * u.m) if observer_distance_m else au
    return float((distance * (1 * u.arcsec).to_value(u.rad)).to_value(u.km))


def measure(frames: np.ndarray) -> Measurement | None:
    """Measure the jet in one window, or None when no region grows outward.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(T, H, W)`` in DN, the window as the model saw it (on its time grid).

    Returns
    -------
    Measurement or None
    """
    from scipy import ndimage

    frames = np.asarray(frames, dtype=np.float32)
    count = frames.shape[0]
    if count < 3:
        return None
    # Exposure changes between frames (automatic exposure control) scale the whole
    # frame: divide each by its median's ratio to the window's, so they do not brighten.
    levels = np.median(frames.reshape(count, -1), axis=1)
    if np.all(levels > 0):
        frames = frames * (np.median(levels) / levels)[:, None, None].astype(np.float32)
    smooth = ndimage.uniform_filter(frames, size=(1, 3, 3))
    # Running differences over LAG frames: a jet's front lights a pixel within a frame or
    # two, while the background's slow evolution adds up only over many.
    running = smooth[LAG:] - smooth[:-LAG]
    noise = _pixel_noise(running)
    rise = running / noise[None]  # (T - LAG, H, W), sigmas
    peak = rise.max(axis=0)
    rise_time = np.argmax(rise, axis=0).astype(float)  # when each pixel brightens most
    # Hysteresis: regions above GROW_SIGMA that hold a pixel above PEAK_SIGMA, so that a
    # spire whose lower part brightens more slowly than its front stays one region.
    labels, regions = ndimage.label(peak > GROW_SIGMA)
    if regions == 0:
        return None
    seeded = ndimage.maximum(peak, labels, range(1, regions + 1)) > PEAK_SIGMA
    sizes = ndimage.sum(np.ones_like(peak), labels, range(1, regions + 1))
    totals = ndimage.sum(peak, labels, range(1, regions + 1))
    totals[(sizes < MIN_REGION_PX) | ~seeded] = 0.0
    if not totals.max() > 0:
        return None
    region = labels == int(np.argmax(totals)) + 1
    # The time-distance diagram: excess over each pixel's 20th percentile in the window.
    background = np.percentile(smooth, 20, axis=0)
    excess = (smooth - background[None]) / _pixel_noise(np.diff(smooth, axis=0))[None]
    return _measure_region(excess, peak, rise_time, region)


def _pixel_noise(differences) -> np.ndarray:
    """Each pixel's noise in ``differences`` ``(N, H, W)``: the robust spread over time,
    smoothed over a few pixels and floored at the image's median (a dark corner or a
    quantised frame must not turn every flicker into a detection)."""
    from scipy import ndimage

    centred = differences - np.median(differences, axis=0)[None]
    noise = ndimage.uniform_filter(1.4826 * np.median(np.abs(centred), axis=0), 5)
    floor = max(float(np.median(noise)), 1e-6)
    return np.maximum(noise, floor).astype(np.float32)


def _measure_region(excess, peak, rise_time, region) -> Measurement | None:
    """Axis, base, time-distance front and width of one region (module docstring)."""
    rows, cols = np.nonzero(region)
    weights = peak[rows, cols]
    centre = np.array([np.average(rows, weights=weights), np.average(cols, weights=weights)])
    offsets = np.stack([rows, cols], axis=1) - centre
    covariance = np.cov(offsets.T, aweights=weights)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    axis = eigenvectors[:, 1]  # (d_row, d_col) of the major axis
    elongation = 1.0 - math.sqrt(max(eigenvalues[0], 0.0) / max(eigenvalues[1], 1e-9))
    along = offsets @ axis
    if _base_is_at_the_far_end(along, rise_time[rows, cols], weights):
        axis, along = -axis, -along
    # The moving front lights the region; the spire's lower part often brightens slowly
    # with the whole jet (or was lit before the window), so follow the ridge of the
    # excess along the axis, backwards and forwards, for the spire's true ends.
    start, stop = _ridge_ends(excess.mean(axis=0) * math.sqrt(excess.shape[0]), centre, axis,
                              along.min(), along.max())
    base = centre + axis * start
    extent = stop - start + 4.0
    distances, diagram = _time_distance(excess, base, axis, extent)
    front = _front(diagram, distances)
    length = float(front.max())
    if length <= 0:
        return None
    peak_frame = float(np.argmax(front >= 0.95 * length))
    speed, onset, r_squared = _front_fit(front, int(peak_frame))
    width = _width(peak, base, axis, length)
    direction = math.degrees(math.atan2(axis[0], axis[1])) % 360.0
    return Measurement(base_row=float(base[0]), base_col=float(base[1]),
                       direction_deg=direction, onset_frame=onset, peak_frame=peak_frame,
                       length_px=length, width_px=width, speed_px_per_frame=speed,
                       localisation_score=max(0.0, r_squared) * max(0.0, elongation))


def _ridge_ends(peak_excess, centre, axis, low, high) -> tuple[float, float]:
    """Where the spire's ridge starts and ends along the axis, px from ``centre``.

    The ridge is the peak excess on the axis (a strip STRIP_PX wide) above that of two
    strips RIDGE_SIDE_PX to either side by RIDGE_SIGMA: a narrow bright feature, not
    the slow brightening of a whole area. It is followed out from the region's own
    extent (``low`` .. ``high``) across gaps of at most RIDGE_GAP_PX.
    """
    from scipy import ndimage

    size = max(peak_excess.shape)
    steps = np.arange(-float(size), float(size), 1.0)
    normal = np.array([-axis[1], axis[0]])

    def strip(offset):
        points = [centre[:, None] + axis[:, None] * steps[None] + normal[:, None] * (offset + d)
                  for d in (-1.0, 0.0, 1.0)]
        return np.mean([ndimage.map_coordinates(peak_excess, p, order=1, mode="constant",
                                                cval=np.nan) for p in points], axis=0)

    ridge = strip(0.0) - 0.5 * (strip(-RIDGE_SIDE_PX) + strip(RIDGE_SIDE_PX))
    lit = np.nan_to_num(ridge, nan=-np.inf) > RIDGE_SIGMA
    inside = (steps >= low) & (steps <= high)
    lit |= inside
    first, last = int(np.flatnonzero(inside)[0]), int(np.flatnonzero(inside)[-1])
    while first > 0 and lit[max(0, first - RIDGE_GAP_PX - 1):first].any():
        first -= 1
    while last < steps.size - 1 and lit[last + 1:last + RIDGE_GAP_PX + 2].any():
        last += 1
    return float(steps[first]), float(steps[last])


def _base_is_at_the_far_end(along, rise_time, weights) -> bool:
    """Which end of the region is the base: the one that brightens first when the front
    visibly travels (rise times correlate with distance along the axis), else the
    brighter end (a spire fades with height; its base holds a bright footpoint)."""
    if np.ptp(rise_time) > 0 and np.ptp(along) > 0:
        correlation = float(np.corrcoef(along, rise_time)[0, 1])
        if abs(correlation) >= ORDER_CORRELATION:
            return correlation < 0
    low, high = np.percentile(along, [25, 75])
    near, far = weights[along <= low].mean(), weights[along >= high].mean()
    return bool(far > near)


def _time_distance(excess, base, axis, extent):
    """Excess along the axis from the base: ``(T, D)`` at 0.5 px steps, strip-averaged."""
    from scipy import ndimage

    distances = np.arange(0.0, extent, 0.5)
    normal = np.array([-axis[1], axis[0]])
    across = np.arange(STRIP_PX) - (STRIP_PX - 1) / 2.0
    points = (base[:, None, None] + axis[:, None, None] * distances[None, :, None]
              + normal[:, None, None] * across[None, None, :])  # (2, D, S)
    diagram = np.stack([
        ndimage.map_coordinates(frame, points.reshape(2, -1), order=1, mode="constant",
                                cval=0.0).reshape(points.shape[1:]).mean(axis=1)
        for frame in excess])
    return distances, diagram


def _front(diagram, distances) -> np.ndarray:
    """Per frame, the farthest distance the excess reaches above FRONT_SIGMA unbroken
    from the base (one half-pixel gap allowed)."""
    above = diagram > FRONT_SIGMA
    fronts = np.zeros(diagram.shape[0])
    for index, row in enumerate(above):
        if not row[:4].any():
            continue
        gaps = np.flatnonzero(~row[1:] & ~row[:-1])  # two samples below in a row: a break
        stop = gaps[0] if gaps.size else row.size - 1
        lit = np.flatnonzero(row[:stop + 1])
        fronts[index] = distances[lit[-1]] if lit.size else 0.0
    return fronts


def _front_fit(front, peak_frame):
    """Speed (px/frame), onset (frame where the line meets 0) and R^2 of the rising front."""
    frames = np.arange(front.size, dtype=float)
    rising = (frames <= peak_frame) & (front > 0)
    if rising.sum() < 2:
        return 0.0, float(peak_frame), 0.0
    slope, intercept = np.polyfit(frames[rising], front[rising], 1)
    fitted = slope * frames[rising] + intercept
    residual = float(np.sum((front[rising] - fitted) ** 2))
    spread = float(np.sum((front[rising] - front[rising].mean()) ** 2))
    r_squared = 1.0 - residual / spread if spread > 0 else 0.0
    onset = -intercept / slope if slope > 0 else float(np.flatnonzero(rising)[0])
    return float(max(slope, 0.0)), float(onset), float(r_squared)


def _width(peak, base, axis, length) -> float:
    """FWHM (px) of the peak excess across the axis, median over the middle half."""
    from scipy import ndimage

    normal = np.array([-axis[1], axis[0]])
    across = np.arange(-10.0, 10.5, 0.5)
    widths = []
    for distance in np.linspace(0.25 * length, 0.75 * length, 7):
        centre = base + axis * distance
        points = centre[:, None] + normal[:, None] * across[None]
        profile = ndimage.map_coordinates(peak, points, order=1, mode="constant")
        top = profile.max()
        if top <= 0:
            continue
        widths.append(0.5 * float(np.sum(profile >= 0.5 * top)))
    return float(np.median(widths)) if widths else 0.0


def as_dict(measurement: Measurement | None) -> dict:
    """The measurement's fields (None when there is none)."""
    return asdict(measurement) if measurement is not None else {}


# --- The learned measurement head (issue 27) -------------------------------------------
# Cheap per-pixel temporal summaries of the window at half resolution feed a small
# convolutional network (trained by ``bench/localise_head.py`` on renders with the
# renderer's truth): a base-point heat map (soft-argmax) and direction/timing/length
# regressions. ``measure_learned`` applies saved weights.

FEATURE_CHANNELS = ("mean", "range", "rise_time", "first_excess_time", "running_std",
                    "peak_rise")


def head_features(frames: np.ndarray, pool: int = 2) -> np.ndarray:
    """Per-pixel temporal summaries of one window, ``(H // pool, W // pool, 6)`` float32.

    Channels (:data:`FEATURE_CHANNELS`), after averaging ``pool`` x ``pool`` pixels and
    dividing out exposure changes between frames: the mean over time; the maximum minus
    the 20th percentile; when the running rise (LAG frames) is largest, and when the
    excess over the 20th percentile first passes RISE_SIGMA noise levels (fractions of
    the window, 1 when never); the spread of the running differences; the largest
    running rise in noise levels. Intensity channels are robustly normalised per cube
    (median subtracted, divided by 1.4826 x the median absolute deviation).
    """
    frames = np.asarray(frames, dtype=np.float32)
    count, height, width = frames.shape
    levels = np.median(frames.reshape(count, -1), axis=1)
    if np.all(levels > 0):
        frames = frames * (np.median(levels) / levels)[:, None, None].astype(np.float32)
    rows, cols = height // pool, width // pool
    frames = frames[:, :rows * pool, :cols * pool].reshape(count, rows, pool, cols, pool)
    frames = frames.mean(axis=(2, 4))
    lag = min(LAG, count - 1)
    running = frames[lag:] - frames[:-lag]
    noise = _pixel_noise(running) if running.shape[0] > 1 else np.ones((rows, cols),
                                                                          np.float32)
    rise = running / noise[None]
    background = np.percentile(frames, 20, axis=0)
    excess = (frames - background[None]) / noise[None]
    above = excess > RISE_SIGMA
    first = np.where(above.any(axis=0), np.argmax(above, axis=0), count) / float(count)
    channels = [frames.mean(axis=0), frames.max(axis=0) - background,
                (np.argmax(rise, axis=0) + lag) / float(count), first,
                running.std(axis=0), rise.max(axis=0)]
    out = []
    for index, channel in enumerate(channels):
        channel = channel.astype(np.float32)
        if index not in (2, 3):
            centre = float(np.median(channel))
            scale = 1.4826 * float(np.median(np.abs(channel - centre)))
            channel = (channel - centre) / max(scale, 1e-6)
            channel = np.clip(channel, -20.0, 50.0)
        out.append(channel)
    return np.stack(out, axis=-1).astype(np.float32)


HEAD_GRID = 83  # the head's feature grid (166 px frames pooled by 2)
SPIRE_GRID_PX = 8.0  # the spire point's distance from the base, grid pixels
WIDTHS = (8, 16, 32, 48)  # the U-Net's filters per level (full, 1/2, 1/4, 1/8 resolution)


def build_head(size: int = HEAD_GRID, channels: int = len(FEATURE_CHANNELS)):
    """The measurement head: a small U-Net on :func:`head_features`.

    Outputs (a dict): ``heat`` the base point's heat map, a softmax over the ``size`` x
    ``size`` grid (flattened); ``base`` its soft-argmax ``(row, col)`` in grid pixels;
    ``dir`` the unit ``(cos, sin)`` of the direction; ``reg`` ``(onset / 10, peak / 10,
    log(1 + length_px), log(speed_px_per_frame))`` in frames and pixels of the window.
    """
    import keras
    from keras import layers, ops

    padded = int(math.ceil(size / 8.0) * 8)
    inputs = keras.Input((size, size, channels), name="features")
    x = layers.ZeroPadding2D(((0, padded - size), (0, padded - size)))(inputs)

    def block(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return layers.Conv2D(filters, 3, padding="same", activation="relu")(x)

    skips = []
    for filters in WIDTHS[:3]:
        x = block(x, filters)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    bottom = block(x, WIDTHS[3])
    x = bottom
    for filters, skip in zip(WIDTHS[2::-1], reversed(skips)):
        x = layers.UpSampling2D()(x)
        x = layers.Concatenate()([x, skip])
        x = block(x, filters)
    x = layers.Cropping2D(((0, padded - size), (0, padded - size)))(x)
    maps = layers.Conv2D(2, 1)(x)
    heat = layers.Softmax(name="heat")(layers.Flatten()(maps[..., 0]))
    spire = layers.Softmax(name="spire")(layers.Flatten()(maps[..., 1]))
    grid = np.arange(size, dtype=np.float32)
    rows = np.repeat(grid, size)[None]
    cols = np.tile(grid, size)[None]

    def soft_argmax(name):
        return layers.Lambda(lambda h: ops.stack([ops.sum(h * rows, axis=1),
                                                  ops.sum(h * cols, axis=1)], axis=1),
                             name=name)

    base = soft_argmax("base")(heat)
    spire_point = soft_argmax("spire_point")(spire)
    # direction: from the base towards the spire point, (cos, sin) = (d_col, d_row)
    direction = layers.UnitNormalization(name="dir")(layers.Lambda(
        lambda t: ops.stack([t[1][:, 1] - t[0][:, 1], t[1][:, 0] - t[0][:, 0]], axis=1)
        + 1e-6)([base, spire_point]))
    local = layers.Lambda(lambda t: ops.sum(t[0][:, :, None] * ops.reshape(
        t[1], (-1, size * size, WIDTHS[0])), axis=1))([heat, x])  # features at the base
    pooled = layers.Concatenate()([local, layers.GlobalAveragePooling2D()(bottom),
                                   layers.GlobalMaxPooling2D()(bottom)])
    hidden = layers.Dense(64, activation="relu")(pooled)
    regression = layers.Dense(4, name="reg")(hidden)
    return keras.Model(inputs, {"heat": heat, "base": base, "spire": spire, "dir": direction,
                                "reg": regression}, name="jet_measurement_head")


_HEADS: dict = {}


def measure_learned(frames: np.ndarray, weights_path, *, timing: str = "head"
                    ) -> Measurement:
    """Measure the jet in one window with the learned head's Keras weights (saved by
    ``bench/localise_head.py``), in the units of :func:`measure`.

    The frames are reduced to :func:`head_features` (half resolution); the base point
    is mapped back to the window's pixels. ``localisation_score`` is the heat map's mass
    within 2 grid pixels of its peak. ``timing="head"`` keeps the head's own timing
    regressions (``width_px`` NaN); ``timing="front"`` takes onset, peak, length, speed
    and width from the time-distance front along the head's base and direction
    (:func:`front_along`), as :class:`Localiser` does with the bundled head.
    """
    frames = np.asarray(frames, dtype=np.float32)
    features = head_features(frames)
    size = features.shape[0]
    key = (str(weights_path), size)
    if key not in _HEADS:
        head = build_head(size)
        head.load_weights(str(weights_path))
        _HEADS[key] = head
    out = _HEADS[key].predict_on_batch(features[None])
    found = _measurement_from_head({name: np.asarray(value)[0] for name, value in out.items()},
                                   size, pool=HEAD_POOL, frames=frames.shape[0])
    if timing == "front":
        found, _ = front_along(frames, found)
    return found


HEAD_POOL = 2  # the head sees frames averaged over 2 x 2 pixels
HEAD_LITERT_FILE = "measure.tflite"  # the bundled head (jetkeras/bundled/)
HEAD_RECORD_FILE = "measure.json"  # ... and where it came from, with its figures


def write_head_litert(weights_path, path, *, size: int = HEAD_GRID,
                      record: dict | None = None) -> int:
    """Convert the head's Keras weights to a LiteRT flatbuffer at ``path`` (atomically),
    so that predicting never imports TensorFlow; ``record`` (provenance, figures) goes to
    ``measure.json`` beside it.

    The graph takes :func:`head_features` ``(1, size, size, 6)`` and returns one vector:
    the base-point heat map (``size * size``), the base point ``(row, col)`` in grid
    pixels and the direction ``(cos, sin)``. Returns the flatbuffer's bytes.
    """
    import json
    from pathlib import Path

    import keras
    import tensorflow as tf

    from jetkeras._files import atomic_output, atomic_write_text

    head = build_head(size)
    head.load_weights(str(weights_path))
    flat = keras.Model(head.input, keras.layers.Concatenate(name="measurement")(
        [head.output["heat"], head.output["base"], head.output["dir"]]))
    path = Path(path)
    with atomic_output(path, suffix=".tflite") as temporary:
        flat.export(str(temporary), format="litert", verbose=False,
                    target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    atomic_write_text(path.with_name(HEAD_RECORD_FILE), json.dumps(
        {"grid": size, "pool": HEAD_POOL, "features": list(FEATURE_CHANNELS),
         **(record or {})}, indent=1) + "\n")
    return path.stat().st_size


class Localiser:
    """The bundled measurement head (LiteRT) and the time-distance front along it.

    ``Localiser()`` loads ``jetkeras/bundled/measure.tflite``; :meth:`measure` gives a
    window's :class:`Measurement` and the :class:`Evidence` behind it. TensorFlow is
    never imported.
    """

    def __init__(self, path=None):
        from pathlib import Path

        from ai_edge_litert.interpreter import Interpreter

        from jetkeras import runs

        self.path = Path(path) if path else runs.BUNDLED_MODEL / HEAD_LITERT_FILE
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: expected the measurement head "
                                    f"({HEAD_LITERT_FILE}), received no such file")
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.size = int(self._input["shape"][1])

    def measure(self, frames: np.ndarray) -> tuple[Measurement, Evidence]:
        """Measure the jet in one window.

        Parameters
        ----------
        frames : numpy.ndarray
            ``(T, S, S)`` in DN, the window as the model saw it (its time grid, its
            field). The head sees ``2 * grid`` px square (166): other sides are zoomed
            to that for the base point and direction only (the model's field of view
            is the seed's whatever its pixel count); the front is traced on ``frames``.

        Returns
        -------
        (Measurement, Evidence)
            In pixels and frames of ``frames``.
        """
        frames = np.asarray(frames, dtype=np.float32)
        side = self.size * HEAD_POOL
        if frames.ndim != 3 or frames.shape[1] != frames.shape[2]:
            raise ValueError(f"{self.path}: expected square frames (T, S, S), received "
                             f"shape {frames.shape}")
        zoom = side / frames.shape[1]
        seen = frames
        if frames.shape[1] != side:
            from scipy import ndimage

            seen = ndimage.zoom(frames, (1.0, zoom, zoom), order=1, grid_mode=False,
                                mode="nearest").astype(np.float32)
        features = head_features(seen, pool=HEAD_POOL)
        self._interpreter.set_tensor(self._input["index"], features[None])
        self._interpreter.invoke()
        vector = self._interpreter.get_tensor(self._output)[0]
        cells = self.size * self.size
        found = _measurement_from_head({"heat": vector[:cells], "base": vector[cells:cells + 2],
                                        "dir": vector[cells + 2:cells + 4],
                                        "reg": np.full(4, np.nan)},
                                       self.size, pool=HEAD_POOL, frames=frames.shape[0])
        if zoom != 1.0:
            # grid_mode=False: zoomed pixel z reads pixel z * (S - 1) / (side - 1)
            step = (frames.shape[1] - 1) / (side - 1)
            found = Measurement(**{**asdict(found), "base_row": found.base_row * step,
                                   "base_col": found.base_col * step})
        return front_along(frames, found)


@dataclass
class Evidence:
    """What a measurement rests on: its picture and per-pixel jet map are drawn from it.

    Attributes
    ----------
    distances : numpy.ndarray
        ``(D,)`` pixels along the spire from the base point (0.5 px steps).
    diagram : numpy.ndarray
        ``(T, D)`` the time-distance diagram: excess brightness along the spire, in noise
        levels (a strip STRIP_PX wide).
    front : numpy.ndarray
        ``(T,)`` the front's distance from the base in each frame, pixels.
    peak_excess : numpy.ndarray
        ``(H, W)`` each pixel's largest excess over the window, noise levels.
    footprint : numpy.ndarray
        ``(H, W)`` bool: the spire's pixels (within a width of the segment from the base
        to the longest front, and above FRONT_SIGMA).
    """

    distances: np.ndarray
    diagram: np.ndarray
    front: np.ndarray
    peak_excess: np.ndarray
    footprint: np.ndarray


# Chosen on renders of training events by bench/localise_timing.py (its rule: the lowest
# sum of the four median errors over their goals, among the sigmas that trace no spire
# in pure noise; bench/results/localise_timing.json).
FRONT_ALONG_SIGMA = 1.5  # the front along the head's axis: excess above this
GROWTH_BAND = (0.1, 0.95)  # ... fitted where it sets a new record within these fractions
PEAK_FRACTION = 0.95  # the peak: the first frame the front reaches this of its length


def front_along(frames: np.ndarray, found: Measurement) -> tuple[Measurement, Evidence]:
    """Onset, peak, length, speed and width from the classical time-distance front
    (step 4 of :func:`measure`), sampled along ``found``'s base point and direction.

    Two changes from :func:`measure`'s front, chosen on renders of training events only
    (``bench/localise_timing.py``): the front is traced down to FRONT_ALONG_SIGMA (the
    head's axis, not a noisy region, says where to look), and the straight line is fitted
    only to the frames where the front grows, i.e. sets a new record between the
    GROWTH_BAND fractions of its length (a jet fading in, a stalled or draining front and
    repeated frames no longer flatten the fit). The peak is the first frame the front
    reaches PEAK_FRACTION of its length. A front that never leaves the base keeps
    ``found``'s timing and gives length 0."""
    from scipy import ndimage

    count = frames.shape[0]
    levels = np.median(frames.reshape(count, -1), axis=1)
    if np.all(levels > 0):
        frames = frames * (np.median(levels) / levels)[:, None, None].astype(np.float32)
    smooth = ndimage.uniform_filter(frames, size=(1, 3, 3))
    background = np.percentile(smooth, 20, axis=0)
    excess = (smooth - background[None]) / _pixel_noise(np.diff(smooth, axis=0))[None]
    angle = math.radians(found.direction_deg)
    axis = np.array([math.sin(angle), math.cos(angle)])
    base = np.array([found.base_row, found.base_col])
    distances, diagram = _time_distance(excess, base, axis, float(max(frames.shape[1:])))
    front = _front(diagram * (FRONT_SIGMA / FRONT_ALONG_SIGMA), distances)
    peak_excess = excess.max(axis=0)
    length = float(front.max())
    if length <= 0:
        found = Measurement(**{**asdict(found), "length_px": 0.0, "width_px": 0.0,
                               "speed_px_per_frame": 0.0})
        return found, Evidence(distances, diagram, front, peak_excess,
                               np.zeros(peak_excess.shape, dtype=bool))
    peak_frame = float(np.argmax(front >= PEAK_FRACTION * length))
    speed, onset = _growth_fit(front, int(peak_frame))
    # The width in the peak frame, unsmoothed: the largest excess over the window would
    # add the spire's sway, and the 3-px smoothing its own width.
    raw = ((frames[int(peak_frame)] - np.percentile(frames, 20, axis=0))
           / _pixel_noise(np.diff(frames, axis=0)))
    width = _width(raw, base, axis, length)
    measured = Measurement(base_row=found.base_row, base_col=found.base_col,
                           direction_deg=found.direction_deg, onset_frame=onset,
                           peak_frame=peak_frame, length_px=length, width_px=width,
                           speed_px_per_frame=speed,
                           localisation_score=found.localisation_score)
    return measured, Evidence(distances, diagram, front, peak_excess,
                              _footprint(peak_excess, base, axis, length, width))


def _footprint(peak_excess, base, axis, length, width) -> np.ndarray:
    """The spire's pixels: near the segment from the base along ``axis`` for ``length``
    (within max(width, 2 px) of it), lit above FRONT_SIGMA at some time."""
    rows, cols = np.indices(peak_excess.shape, dtype=np.float64)
    d_row, d_col = rows - base[0], cols - base[1]
    along = d_row * axis[0] + d_col * axis[1]
    across = np.abs(-d_row * axis[1] + d_col * axis[0])
    reach = max(width, 2.0)
    return ((along >= -reach) & (along <= length + reach) & (across <= reach)
            & (peak_excess > FRONT_SIGMA))


def _growth_fit(front: np.ndarray, peak_frame: int) -> tuple[float, float]:
    """Speed (px/frame) and onset (frame where the line meets 0) of a straight line
    through the frames up to ``peak_frame`` where the front sets a new record within the
    GROWTH_BAND of its length; :func:`_front_fit` on every rising frame when fewer than
    two such frames or a slope that is not positive."""
    length = float(front.max())
    best = np.maximum.accumulate(front)
    grows = np.zeros(front.size, dtype=bool)
    grows[0] = front[0] > 0
    grows[1:] = front[1:] > best[:-1]
    frames = np.arange(front.size)
    chosen = (grows & (frames <= peak_frame) & (front >= GROWTH_BAND[0] * length)
              & (front <= GROWTH_BAND[1] * length))
    if chosen.sum() >= 2:
        slope, intercept = np.polyfit(frames[chosen].astype(float), front[chosen], 1)
        if slope > 0:
            return float(slope), float(-intercept / slope)
    speed, onset, _ = _front_fit(front, peak_frame)
    return speed, onset


def _measurement_from_head(out: dict, size: int, pool: int, frames: int) -> Measurement:
    heat = out["heat"].reshape(size, size)
    peak_row, peak_col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    near = heat[max(0, peak_row - 2):peak_row + 3, max(0, peak_col - 2):peak_col + 3]
    row, col = (float(v) * pool + (pool - 1) / 2.0 for v in out["base"])
    onset, peak, log_length, log_speed = (float(v) for v in out["reg"])
    return Measurement(base_row=row, base_col=col,
                       direction_deg=math.degrees(math.atan2(out["dir"][1], out["dir"][0]))
                       % 360.0,
                       onset_frame=10.0 * onset, peak_frame=10.0 * peak,
                       length_px=max(0.0, math.expm1(log_length)),
                       width_px=float("nan"), speed_px_per_frame=math.exp(log_speed),
                       localisation_score=float(near.sum()))


_LOCALISERS: dict = {}  # the bundled head, loaded once per process on first use


@dataclass
class WindowMeasurement:
    """A window of a cube measured, and what turns its pixels and frames into the
    row's units.

    Attributes
    ----------
    model_input : jetkeras.conform.ModelInput
        The cube on the model's grid (where its pixels and times came from).
    start : int
        The window's first grid frame.
    frames : numpy.ndarray
        float32 ``(T, S, S)``: the window in DN, as the model saw it.
    measurement : Measurement
        In grid pixels and frames of ``frames``.
    evidence : Evidence
        What the measurement rests on (grid pixels).
    seconds_per_frame : float
        The window's own time step: the model's cadence, or less for a volunteer
        subject (each frame shown twice).
    pixel_scale_arcsec : float
        The grid's scale: the cube's (after any zoom), else the model's nominal one.
    km_per_arcsec : float
        At the observer's distance (``DSUN_OBS``), else 1 au.
    """

    model_input: object
    start: int
    frames: np.ndarray
    measurement: Measurement
    evidence: Evidence
    seconds_per_frame: float
    pixel_scale_arcsec: float
    km_per_arcsec: float

    def columns(self) -> dict:
        """``base_row`` .. ``localisation_score`` of :data:`jetkeras.rows.COLUMNS`: the
        base point in the input's pixels as stored and in helioprojective arcsec, the
        direction in the input's frame array, model frames from the window's start and
        their UTC times, arcsec, km/s."""
        from jetkeras.io import pixel_hpc

        found, model_input = self.measurement, self.model_input
        columns = found.as_row(pixel_scale_arcsec=self.pixel_scale_arcsec,
                               cadence_s=self.seconds_per_frame,
                               km_per_arcsec_value=self.km_per_arcsec)
        base_row, base_col = model_input.input_pixel(found.base_row, found.base_col)
        row_scale, _, col_scale, _ = model_input.to_input
        # Directions survive the isotropic zooms; a slightly anisotropic one tilts them.
        angle = math.atan2(math.sin(math.radians(found.direction_deg)) * row_scale,
                           math.cos(math.radians(found.direction_deg)) * col_scale)
        start_s = float(model_input.offsets_s[self.start])
        hpc_x, hpc_y = pixel_hpc(model_input.cube, base_row, base_col)

        def when(frame: float) -> str | None:
            if not math.isfinite(frame):
                return None
            return model_input.time_at(start_s + frame * self.seconds_per_frame) or None

        columns.update(
            base_row=round(base_row, 2), base_col=round(base_col, 2),
            base_hpc_x=None if hpc_x is None else round(hpc_x, 1),
            base_hpc_y=None if hpc_y is None else round(hpc_y, 1),
            direction_deg=round(math.degrees(angle) % 360.0, 1),
            onset_time=when(found.onset_frame), peak_time=when(found.peak_frame))
        return columns

    def figure(self, path, *, title: str = ""):
        """The jet's picture (:func:`jetkeras.figures.jet_figure`) at ``path``."""
        from jetkeras.figures import jet_figure

        return jet_figure(self.frames, self.measurement, self.evidence, path,
                          seconds_per_frame=self.seconds_per_frame,
                          pixel_scale_arcsec=self.pixel_scale_arcsec,
                          km_per_arcsec=self.km_per_arcsec, title=title)

    def jet_map(self, path):
        """Write the per-pixel jet map as FITS at ``path`` (atomically): each footprint
        pixel's largest excess over the window (noise levels), 0 elsewhere, on the
        model's grid; with the cube's helioprojective WCS carried over to that grid
        when it has one. Returns the path."""
        from pathlib import Path

        from astropy.io import fits

        from jetkeras._files import atomic_output

        jet = np.where(self.evidence.footprint, self.evidence.peak_excess, 0.0)
        header = fits.Header()
        header.update(_grid_wcs(self.model_input))
        header["BUNIT"] = ("sigma", "largest excess over the window, noise levels")
        header["DATE-OBS"] = self.model_input.time_at(
            float(self.model_input.offsets_s[self.start])) or ""
        header["COMMENT"] = "jetkeras jet map: footprint of the measured jet (localise.py)"
        path = Path(path)
        with atomic_output(path, suffix=".fits") as temporary:
            fits.PrimaryHDU(jet.astype(np.float32), header).writeto(temporary)
        return path


def measure_window(model_input, start: int, data, *, localiser: Localiser | None = None
                   ) -> WindowMeasurement:
    """Measure the jet in one window of a cube on the model's grid.

    Parameters
    ----------
    model_input : jetkeras.conform.ModelInput
        The cube on the model's grid.
    start : int
        The window's first grid frame.
    data : jetkeras.config.DataConfig
        The model's data config: its frames per window, cadence and field of view.
    localiser : Localiser, optional
        Default the bundled head, loaded once per process.

    Returns
    -------
    WindowMeasurement
    """
    if localiser is None:
        if "bundled" not in _LOCALISERS:
            _LOCALISERS["bundled"] = Localiser()
        localiser = _LOCALISERS["bundled"]
    frames = model_input.window(start, data.frames)
    found, evidence = localiser.measure(frames)
    count = frames.shape[0]
    offsets = model_input.offsets_s[start:start + count]
    seconds = float(offsets[-1] - offsets[0]) / (count - 1) if count > 1 else 0.0
    distance = (model_input.cube.meta.get("wcs") or {}).get("DSUN_OBS")
    return WindowMeasurement(
        model_input=model_input, start=start, frames=frames, measurement=found,
        evidence=evidence, seconds_per_frame=seconds or data.cadence_s,
        pixel_scale_arcsec=(model_input.pixel_scale_arcsec
                            or data.field_of_view_arcsec / frames.shape[-1]),
        km_per_arcsec=km_per_arcsec(float(distance) if distance else None))


def _grid_wcs(model_input) -> dict:
    """The cube's WCS keywords (``meta["wcs"]``, native pixels) moved to the model's
    grid: a grid pixel ``g`` is the cube's pooled pixel ``g * scale + offset``
    (:attr:`~jetkeras.conform.ModelInput.to_input`), itself native pixels
    ``p * pool + (pool - 1) / 2``. Empty when the cube has no helioprojective WCS."""
    header = dict(model_input.cube.meta.get("wcs") or {})
    if not str(header.get("CTYPE1", "")).startswith("HPLN"):
        return {}
    pool = int(model_input.cube.meta.get("pool") or 1)
    row_scale, row_offset, col_scale, col_offset = model_input.to_input
    # FITS axis 1 is the column, axis 2 the row.
    for axis, scale, offset in ((1, col_scale, col_offset), (2, row_scale, row_offset)):
        step = scale * pool  # native pixels per grid pixel
        if f"CRPIX{axis}" in header:
            native = float(header[f"CRPIX{axis}"]) - 1.0  # 0-based
            header[f"CRPIX{axis}"] = (native - offset * pool - (pool - 1) / 2.0) / step + 1.0
        if f"CDELT{axis}" in header:
            header[f"CDELT{axis}"] = float(header[f"CDELT{axis}"]) * step
        for other in (1, 2):
            if f"CD{other}_{axis}" in header:
                header[f"CD{other}_{axis}"] = float(header[f"CD{other}_{axis}"]) * step
    header.pop("NAXIS1", None)
    header.pop("NAXIS2", None)
    return header
