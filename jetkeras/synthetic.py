"""Render the real catalogue as synthetic AIA 304 A cubes: the embedded default data source.

Every row of :func:`jetkeras.catalogue.load_events` becomes one cube of ``frames`` images of
``size x size`` pixels covering ``field_of_view_arcsec`` (300" by default, the seed's
cutout) centred on the catalogue base point, one frame every ``cadence_s`` seconds from the
catalogue start time, in DN-like units comparable with the seed's max-pooled level-1 data.
No download is needed, so the whole pipeline (records, training, evaluation) runs offline.

The picture, and why
--------------------
Geometry
    Pixel ``(row, column)`` sits at helioprojective
    ``x = basepoint_X + offset_x + (column - (size - 1) / 2) * scale`` and
    ``y = basepoint_Y + offset_y + (row - (size - 1) / 2) * scale`` arcsec with
    ``scale = field_of_view / size`` (300" over 166 px -> 1.81"/px, the seed's 3x3-pooled
    scale): rows run south to north as in a FITS array, so plot with ``origin="lower"``.
    The solar radius follows the Earth-Sun distance on the date (944"-976").
Viewing conditions (domain randomisation, ``randomise=True``, the default)
    Real cutouts differ in ways a detector must ignore, so each sequence draws them: half
    keep the nominal field of view, the rest zoom to 40-160 % of it (log-uniform:
    volunteers' cutouts are often smaller, and small jets in a wide field are common); 70 % put the base point off centre by up to 20 %
    of the field each way (catalogue positions are rough, and jets run out of the
    field); the cadence is 24 s (60 %) or 36 s (20 %), and a fifth are volunteers'
    subjects: 15 frames at 24 s (15 %) or 36 s (5 %), each shown twice to fill the
    30-frame window, so they span half of it (shorter windows hold no subjects); the window catches the jet at any
    phase of its life: 40 % of jets start with it (the catalogue start, as the seed's HEK
    windows do), 20 % up to a quarter of a window later, and 40 % are already under way
    (0-60 % of their catalogue duration has passed at the first frame: grown, still
    evolving, draining or fading, as volunteers' subjects often catch them); a tenth
    are still scenes (background and confusers held: only a jet moves) and a fifth flicker
    in exposure by 5-20 % per frame, in both classes alike, so that neither a frozen nor
    a flickering picture says "no jet" by itself; a quarter of the sequences pass through an animation's display round trip (asinh
    stretch, per-frame autoscale, dithered 8-bit levels, inverted back), as the pixels
    of volunteers' subjects and quick-look movies have. Each choice is kept in ``meta``.
Background: the He II 304 A chromospheric network
    A log-normal field (mean ``DISK_MEAN_DN``, logarithmic spread ~0.8, so std ~ mean as
    in the seed's data: mean ~50 DN, std ~50 DN after pooling) built from three Gaussian
    random fields, supergranular cells (~25"), fine network (~8") and the mottled grain
    (~3.5"). Each is drawn on a coarse grid and upsampled with
    :func:`scipy.ndimage.zoom`. The window evolves slowly: each field rotates between two
    independent draws, ``cos(w t) A + sin(w t) B`` (this keeps the variance constant), the
    small scales faster than the cells. About a third of sequences hold an active-region
    plage patch (a smooth brightening of 1.5-5x), equally often for jets and negatives.
Limb
    Near the limb the disk brightens slightly (304 A limb brightening); above it a
    spicule forest: thin radial streaks ~1.5" apart whose heights (scale height 4-12"
    times a log-normal factor per streak) and brightness vary along the limb and evolve,
    over a dim floor (corona and scattered light, 3-15 % of the disk level). Cutouts whose base point is near the limb therefore
    hold a disk edge crossing the frame; off-limb cutouts are mostly dark.
Exposure, optics and detector
    A per-sequence brightness scale (log-normal, sigma 0.5 randomised, 0.35 nominal, times
    a mild degradation of the 304 A channel with the year) and a 1 % per-frame exposure
    jitter. Photon noise (``PHOTONS_PER_DN`` photons per DN) and a 1 DN read noise are
    drawn for every native 0.6" AIA pixel and max-pooled k x k (k = pixel / 0.6", at most
    3) as the seed pooled its cutouts, so pooled noise is biased upwards and narrower,
    then area-averaged on coarser grids. Structure is taken as smooth on 0.6" (AIA's PSF
    is ~1.5" FWHM, folded into the narrowest spire).
Jets (label 1)
    A collimated spire rooted at the base point. Its length grows at the catalogue
    ``velocity`` (arcsec/s; when NaN, ``max_height`` over a rise time of 25-50 % of
    ``duration``) up to ``max_height``; in half the jets the material then drains back
    (the top sinks at 20-50 % of the rise speed). The bright core is 8-30 % of the
    catalogue ``avg_width`` (the volunteers' box around the whole jet; at least 1.5")
    and widens with height; one to three threads, slightly splayed, each twisting
    (a helical displacement travelling along the spire: untwisting); the path may curve.
    Blowout jets (30 %) add a broad, faint curtain. The base is a small bright dome
    (the inverted-Y, "Eiffel tower" footpoint arch) with a flickering brightening at its
    top. Plasma blobs travel outward at the jet speed (and back with falling material).
    The brightness rises over the first frames and fades on the scale of the catalogue
    ``duration`` (minutes). Direction: uniform on the disk; radial +-20 degrees when the
    base lies beyond 0.9 solar radii. The peak contrast is ``contrast * DISK_MEAN_DN``
    with ``contrast`` log-normal (median 3, sigma 0.75): from bright to barely above
    the network, as real jets are.
Confusers (both classes)
    Transients and structures that are not jets: flickering bright points, stationary
    loop brightenings (an arc between two footpoints), slowly drifting, swelling blobs,
    jet-sized diffuse surges that swell in place, **static spires** (a jet's picture held
    in place: plumes, fibrils, the remnant of an old jet) and **incoherent spires** (a
    jet's frames in random order: the same shapes and flux without coherent outward
    motion). 90 % of negatives (HEK flagged an event at their position) and 25 % of jets
    hold one to three of them, 60 % placed near the cutout centre (the HEK event position
    the negatives come from), drawn with the same contrast law as jets, half of them
    starting with the window as a jet does. Brightness and variance summaries therefore
    overlap between classes (see :mod:`jetkeras.baseline`); what separates them is the
    coherent outward growth of a collimated spire.
Time-order negatives (label 0, ``randomise`` only)
    20 % of negatives hold a jet (drawn like the catalogue's) whose whole scene is put in
    random frame order, and 10 % hold one where a single frame is held (fresh noise in
    every frame). They teach that a jet is *coherent* outward motion, not any change
    between frames (frames out of order and frozen pictures are real data faults too).
    The real-jet check (:mod:`jetkeras.realcheck`) scores real jets against the same
    two constructions of real pixels, so its AUC measures whether that notion, learnt on
    renders, carries over to real jets; it is not blind to the construction.

What it leaves out: foreshortening of the network near the limb, solar rotation
(~2" over the window), flares, AEC exposure changes, prominences, and the PSF's wings.

Determinism
-----------
The random stream of one event depends only on ``(seed, event_id)`` through
``numpy.random.SeedSequence([seed, crc32(event_id)])``, never on Python's salted
``hash()`` nor on rendering order, so parallel workers produce identical cubes. A
``variant`` v > 0 adds v to that sequence: a new, equally reproducible draw of the same
row (training uses several, see ``build_records --variants``).

Examples
--------
>>> from jetkeras.catalogue import load_events
>>> from jetkeras.synthetic import render_event
>>> cube = render_event(load_events().iloc[0], frames=4, size=32)
>>> cube.frames.shape, cube.frames.dtype.name, cube.meta["label"]
((4, 32, 32), 'float32', 1)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy import ndimage

from jetkeras.cube import Cube

__all__ = [
    "jet_truth",
    "DISK_MEAN_DN",
    "PHOTONS_PER_DN",
    "READ_NOISE_DN",
    "Nuisance",
    "event_rng",
    "render_event",
    "render_events",
    "solar_radius_arcsec",
]

DISK_MEAN_DN = 62.0  # mean quiet-disk level in pooled DN; with limb cubes the data mean ~50
PHOTONS_PER_DN = 1.7  # 304 A photons per DN (~11 e- per photon, gain ~18 e-/DN)
READ_NOISE_DN = 1.0  # Gaussian read noise, DN
NETWORK_SIGMA = 0.8  # spread of the logarithm of the network intensity
CELL_SCALE_ARCSEC = 25.0  # supergranular network cell size
FINE_SCALE_ARCSEC = 8.0  # fine network / bright point size
GRAIN_SCALE_ARCSEC = 3.5  # the mottled small-scale texture of the 304 A network
CELL_EVOLUTION_RAD_PER_S = 0.15 / 700.0  # cells barely change over the 11.6 min window
FINE_EVOLUTION_RAD_PER_S = 0.9 / 700.0  # the fine network changes visibly
SOLAR_RADIUS_1AU_ARCSEC = 959.63  # apparent solar radius at 1 AU
JET_CONTRAST_MEDIAN = 3.0  # peak spire brightness over DISK_MEAN_DN, median
CONTRAST_SIGMA = 0.75  # log-normal spread: 5 % of spires below 0.9, 5 % above 10
NEGATIVE_CONFUSER_PROBABILITY = 0.9  # HEK flagged something at every negative's position
JET_CONFUSER_PROBABILITY = 0.25
CONFUSER_KINDS = ("bright_point", "loop", "blob", "surge", "static_spire", "incoherent_spire")
CONFUSER_WEIGHTS = (0.12, 0.16, 0.12, 0.2, 0.2, 0.2)
BLOWOUT_FRACTION = 0.3  # blowout jets among all jets (Moore et al. 2010: about a third)
FALLBACK_FRACTION = 0.5  # jets whose material visibly drains back within the window
NATIVE_PIXEL_ARCSEC = 0.6  # AIA's sampling; the seed max-pooled 3x3 of these
EXPOSURE_SIGMA = 0.35  # log-normal spread of the per-sequence brightness scale
EXPOSURE_SIGMA_RANDOMISED = 0.5
RENDERER_VERSION = 4  # 2: spires, spicule forest, max-pooled noise, domain randomisation;
# 3: jets caught at any phase of their life; 4: volunteers' subjects at their own cadence
SCRAMBLED_FRACTION = 0.2  # negatives: a jet scene with its frames in random order
FROZEN_FRACTION = 0.1  # negatives: a jet scene with one frame held
# Half the renders zoom their field of view by a log-uniform factor in this range, so a
# model trained on them has seen pixel scales from 0.4 to 1.6 times its nominal one.
ZOOM_RANGE = (0.4, 1.6)
STATIC_FRACTION = 0.1  # sequences (both classes) whose background and confusers are held
FLICKER_FRACTION = 0.2  # sequences (both classes) with 5-20 % per-frame exposure flicker
DISPLAY_FRACTION = 0.25  # sequences passed through a display stretch and 8-bit quantisation
JET_MAX_LIFE_ELAPSED = 0.6  # jets under way: at most this much of their duration gone
SUBJECT_FRAMES = 15  # frames of a volunteer's subject (Solar Jet Hunter's animations)

_JET_COLUMNS = ("max_height", "avg_width", "duration")


@dataclass(frozen=True)
class Nuisance:
    """Shifts of the things a detector must be blind to, for robustness tests.

    A model is trained on the default renders; rendering its test events again with a
    :class:`Nuisance` shows whether its score follows the jets or these settings.

    Attributes
    ----------
    exposure_scale : float
        Multiplies every sequence's brightness (a shorter exposure, a degraded channel).
        With the photon noise applied afterwards, a dimmer sequence is also noisier.
    noise_scale : float
        Multiplies the photon-noise standard deviation (fewer photons per DN).
    contrast_scale : float
        Multiplies the peak contrast of jets (< 1: fainter jets against the network).
    limb_fraction : float
        Probability that a sequence's base point is moved radially onto the limb
        (0.97-1.02 solar radii, same position angle): more limb scenes than the catalogue.
    jet_under_way_windows : float or None
        Fix every jet's phase: it started this many windows (the sequence's span) before
        the first frame, so 0 opens with the jet and 0.5 catches it half a window into
        its life. None (the default) draws the phase as training does.
    confuser_kinds : tuple of str or None
        Draw confusers only of these kinds (of :data:`CONFUSER_KINDS`, their weights
        renormalised): leave one family out of training, or test on it alone. None (the
        default) draws every kind as training does.
    confuser_probability : float or None
        Probability that a sequence holds confusers (both classes); None (the default):
        the renderer's, 0.9 for jet-free intervals and 0.25 for jets.
    """

    exposure_scale: float = 1.0
    noise_scale: float = 1.0
    contrast_scale: float = 1.0
    limb_fraction: float = 0.0
    jet_under_way_windows: float | None = None
    confuser_kinds: tuple[str, ...] | None = None
    confuser_probability: float | None = None

    def __post_init__(self):
        for name in ("exposure_scale", "noise_scale", "contrast_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Nuisance: expected `{name}` a positive number, "
                                 f"received {value!r}")
        if not 0.0 <= self.limb_fraction <= 1.0:
            raise ValueError(f"Nuisance: expected `limb_fraction` in [0, 1], received "
                             f"{self.limb_fraction!r}")
        under_way = self.jet_under_way_windows
        if under_way is not None and not (isinstance(under_way, (int, float))
                                          and math.isfinite(under_way) and under_way >= 0):
            raise ValueError(f"Nuisance: expected `jet_under_way_windows` None or a "
                             f"non-negative number, received {under_way!r}")
        if self.confuser_kinds is not None:
            unknown = sorted(set(self.confuser_kinds) - set(CONFUSER_KINDS))
            if not self.confuser_kinds or unknown:
                raise ValueError(f"Nuisance: expected `confuser_kinds` a non-empty subset of "
                                 f"{CONFUSER_KINDS}, received {self.confuser_kinds!r}")
        chance = self.confuser_probability
        if chance is not None and not (isinstance(chance, (int, float)) and 0.0 <= chance <= 1.0):
            raise ValueError(f"Nuisance: expected `confuser_probability` None or in [0, 1], "
                             f"received {chance!r}")


# ----------------------------------------------------------------------------------------
# Event parsing and random streams
# ----------------------------------------------------------------------------------------


def event_rng(seed: int, event_id: str, variant: int = 0) -> np.random.Generator:
    """The random generator of one event: a function of ``(seed, event_id, variant)`` only.

    ``crc32`` is stable across processes and platforms, unlike Python's ``hash()``.
    Variant 0 is the event's first render (the stream of earlier versions); variant
    ``v > 0`` is an independent new draw of the same catalogue row.
    """
    key = zlib.crc32(str(event_id).encode("utf-8"))
    entropy = [int(seed) & 0xFFFFFFFF, key] + ([int(variant)] if variant else [])
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _field(event: Mapping[str, Any] | Any, name: str, event_id: str) -> Any:
    try:
        return event[name]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            f"event {event_id}: expected a catalogue row with column `{name}`, "
            f"received columns {list(getattr(event, 'keys', list)())}"
        ) from None


def _float_field(event, name: str, event_id: str, *, allow_nan: bool = False) -> float:
    value = _field(event, name, event_id)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"event {event_id}: column `{name}` expects a number, received {value!r}"
        ) from None
    if not allow_nan and not math.isfinite(number):
        raise ValueError(
            f"event {event_id}: column `{name}` expects a finite number, received {value!r}"
        )
    return number


def _parse_date(value: Any, event_id: str) -> datetime:
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"event {event_id}: column `date` expects an ISO 8601 UTC time, received {value!r}"
        ) from None
    return parsed.replace(tzinfo=None)


def _parse_event(event) -> dict[str, Any]:
    if not hasattr(event, "__getitem__"):
        raise ValueError(
            f"render_event: expected a catalogue row (pandas Series or dict), "
            f"received {type(event).__name__}"
        )
    try:
        event_id = str(event["event_id"])
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            "render_event: expected a catalogue row with column `event_id`, received none"
        ) from None
    label_value = _field(event, "label", event_id)
    try:
        label = int(label_value)
    except (TypeError, ValueError):
        label = -1
    if label not in (0, 1):
        raise ValueError(
            f"event {event_id}: column `label` expects 0 or 1, received {label_value!r}"
        )
    try:
        group = event["group"]
    except (KeyError, IndexError, TypeError):
        group = event_id
    parsed = {
        "event_id": event_id,
        "label": label,
        "group": str(group),
        "date": _parse_date(_field(event, "date", event_id), event_id),
        "base_x": _float_field(event, "basepoint_X", event_id),
        "base_y": _float_field(event, "basepoint_Y", event_id),
    }
    if label == 1:
        for name in _JET_COLUMNS:
            parsed[name] = _float_field(event, name, event_id)
            if parsed[name] <= 0:
                raise ValueError(
                    f"event {event_id}: column `{name}` expects a positive number, "
                    f"received {parsed[name]!r}"
                )
        try:
            velocity = float(event["velocity"])
        except (KeyError, IndexError, TypeError, ValueError):
            velocity = float("nan")
        parsed["velocity"] = velocity if math.isfinite(velocity) and velocity > 0 else math.nan
    return parsed


def _check_render_args(frames, size, cadence_s, field_of_view_arcsec) -> None:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 2:
        raise ValueError(f"render_event: `frames` expects an integer >= 2, received {frames!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"render_event: `size` expects an integer >= 16, received {size!r}")
    if not (isinstance(cadence_s, (int, float)) and math.isfinite(cadence_s) and cadence_s > 0):
        raise ValueError(
            f"render_event: `cadence_s` expects a positive number of seconds, "
            f"received {cadence_s!r}"
        )
    if not (isinstance(field_of_view_arcsec, (int, float)) and math.isfinite(field_of_view_arcsec)
            and field_of_view_arcsec > 0):
        raise ValueError(
            f"render_event: `field_of_view_arcsec` expects a positive number of arcsec, "
            f"received {field_of_view_arcsec!r}"
        )


# ----------------------------------------------------------------------------------------
# Physics pieces
# ----------------------------------------------------------------------------------------


def solar_radius_arcsec(date: datetime) -> float:
    """Apparent solar radius seen from Earth on ``date``, arcsec (944" in July, 976" in January).

    The Earth-Sun distance is ``1 - e cos(2 pi (day - 4) / 365.256)`` AU (perihelion on
    4 January, eccentricity 0.0167); good to ~0.5" against
    ``sunpy.coordinates.sun.angular_radius``.
    """
    day = date.timetuple().tm_yday + date.hour / 24.0
    distance_au = 1.0 - 0.01671 * math.cos(2.0 * math.pi * (day - 4.0) / 365.256)
    return SOLAR_RADIUS_1AU_ARCSEC / distance_au


def _degradation(date: datetime) -> float:
    """Mild loss of 304 A sensitivity with time (~10 %/year, not the exact AIA curve)."""
    years = (date.year + date.timetuple().tm_yday / 365.25) - 2011.0
    return float(math.exp(-0.1 * max(years, 0.0)))


def _gaussian_field(rng, size: int, scale_arcsec: float, pixel_arcsec: float) -> np.ndarray:
    """Unit-variance smooth random field (size, size), correlation length ~scale_arcsec."""
    field_of_view = size * pixel_arcsec
    coarse = int(np.clip(round(field_of_view / scale_arcsec) + 2, 3, size))
    white = rng.standard_normal((coarse, coarse))
    # Cubic upsampling of white noise on a grid of spacing ~scale gives blobs of ~scale.
    smooth = ndimage.zoom(white, size / coarse, order=3, mode="grid-wrap", grid_mode=True)
    smooth = smooth[:size, :size]
    smooth -= smooth.mean()
    return (smooth / max(float(smooth.std()), 1e-6)).astype(np.float32)


def _evolving_field(rng, times_s, size, scale_arcsec, pixel_arcsec, rate_rad_per_s):
    """(T, size, size) unit-variance field rotating between two independent draws."""
    first = _gaussian_field(rng, size, scale_arcsec, pixel_arcsec)
    second = _gaussian_field(rng, size, scale_arcsec, pixel_arcsec)
    angle = rng.uniform(0, 2 * np.pi) + rate_rad_per_s * times_s
    cos = np.cos(angle).astype(np.float32)[:, None, None]
    sin = np.sin(angle).astype(np.float32)[:, None, None]
    return cos * first + sin * second


def _pulse(times_s, start_s, rise_s, hold_s, decay_s) -> np.ndarray:
    """(T,) envelope in [0, 1]: 0 before start, exponential rise, hold, exponential decay."""
    since = np.asarray(times_s, dtype=np.float64) - start_s
    rising = 1.0 - np.exp(-np.clip(since, 0.0, None) / max(rise_s, 1e-3))
    decaying = np.exp(-np.clip(since - rise_s - hold_s, 0.0, None) / max(decay_s, 1e-3))
    return np.where(since > 0, rising * decaying, 0.0)


def _background(rng, times_s, x, y, radius, pixel_arcsec) -> np.ndarray:
    """Noise-free expected intensity (T, H, W) in DN before exposure scaling."""
    size = x.shape[0]
    log_intensity = (
        0.68 * _evolving_field(rng, times_s, size, CELL_SCALE_ARCSEC, pixel_arcsec,
                               CELL_EVOLUTION_RAD_PER_S)
        + 0.62 * _evolving_field(rng, times_s, size, FINE_SCALE_ARCSEC, pixel_arcsec,
                                  FINE_EVOLUTION_RAD_PER_S)
        + 0.39 * _evolving_field(rng, times_s, size, GRAIN_SCALE_ARCSEC, pixel_arcsec,
                                  FINE_EVOLUTION_RAD_PER_S)
    )  # (T, H, W), unit variance (0.68^2 + 0.62^2 + 0.39^2 = 1)
    sigma = NETWORK_SIGMA * rng.uniform(0.8, 1.15)
    disk = np.exp(np.float32(sigma) * log_intensity - np.float32(0.5 * sigma * sigma))
    disk *= np.float32(DISK_MEAN_DN)

    if rng.random() < 0.35:
        # Active-region plage: a smooth brightening somewhere in (or near) the cutout.
        centre = rng.uniform(-0.6, 0.6, 2) * size * pixel_arcsec  # offset from the base
        plage_radius = rng.uniform(30.0, 110.0)
        distance2 = (x - x.mean() - centre[0]) ** 2 + (y - y.mean() - centre[1]) ** 2
        plage = 1.0 + rng.uniform(0.5, 4.0) * np.exp(-0.5 * distance2 / plage_radius**2)
        disk *= plage.astype(np.float32)[None]

    r = np.hypot(x, y)
    if r.max() < radius - 60.0:
        return disk  # entirely on the disk, far from the limb
    # Limb brightening on the disk, a spicule layer and the faint corona above it.
    edge = max(1.0, 0.5 * pixel_arcsec)
    on_disk = (0.5 * (1.0 - np.tanh((r - radius) / edge))).astype(np.float32)
    brightening = 1.0 + 0.3 * np.exp(-np.clip(radius - r, 0.0, None) / 15.0)
    height = np.clip(r - radius, 0.0, None)
    scale_height = rng.uniform(4.0, 12.0)
    angle = np.arctan2(y, x)
    step = 3.0 / radius  # spicule texture every ~3" along the limb
    grid = np.arange(angle.min() - step, angle.max() + 2 * step, step)
    phase = rng.uniform(0, 2 * np.pi) + FINE_EVOLUTION_RAD_PER_S * 2.0 * times_s
    texture_a = np.interp(angle, grid, rng.standard_normal(grid.size))
    texture_b = np.interp(angle, grid, rng.standard_normal(grid.size))
    texture = (np.cos(phase)[:, None, None] * texture_a + np.sin(phase)[:, None, None] * texture_b)
    spicules = rng.uniform(0.6, 1.3) * np.exp(0.5 * texture - 0.125)
    # The spicule forest: a fresh angular texture (~1.5" apart) sets each spicule's
    # height, so the limb is a fringe of thin radial streaks rather than a smooth layer.
    fine_step = 1.5 / radius
    fine_grid = np.arange(angle.min() - fine_step, angle.max() + 2 * fine_step, fine_step)
    heights = scale_height * np.exp(0.45 * np.interp(angle, fine_grid,
                                                      rng.standard_normal(fine_grid.size)))
    # The floor: coronal emission plus light scattered by the telescope (PSF wings), a
    # few to 15 % of the disk level, so the sky above the limb is dim but not black.
    floor = rng.uniform(0.03, 0.15)
    off_limb = DISK_MEAN_DN * (spicules * np.exp(-height / heights)
                               + floor * np.exp(-height / rng.uniform(100.0, 300.0)))
    return (disk * (on_disk * brightening)[None]
            + (off_limb * (1.0 - on_disk)[None]).astype(np.float32)).astype(np.float32)


def _jet_emission(rng, times_s, dx, dy, event, base_radius, radius, pixel_arcsec,
                  contrast_scale=1.0):
    """Noise-free jet intensity (T, H, W) in DN before exposure, and its parameters.

    ``dx``, ``dy`` are arcsec offsets of each pixel from the base point, shape (H, W).
    ``event`` needs ``max_height``, ``avg_width`` (arcsec), ``duration`` (minutes),
    ``velocity`` (arcsec/s or NaN), ``base_x`` and ``base_y`` (arcsec).
    """
    height = event["max_height"]
    width = event["avg_width"]
    duration_s = event["duration"] * 60.0
    velocity = event["velocity"]
    if math.isnan(velocity):
        velocity = height / (duration_s * rng.uniform(0.25, 0.5))
    rise_s = height / velocity
    if base_radius > 0.9 * radius:
        angle = rng.normal(0.0, math.radians(20.0))
        angle += math.atan2(event["base_y"], event["base_x"])
    else:
        angle = rng.uniform(-math.pi, math.pi)
    contrast = contrast_scale * float(np.exp(rng.normal(math.log(JET_CONTRAST_MEDIAN),
                                                        CONTRAST_SIGMA)))
    # The catalogue start is rounded to a frame; a window need not open with the jet.
    start_s = event.get("start_s", 0.0) - rng.uniform(0.0, 1.0) * (times_s[1] - times_s[0])
    blowout = bool(rng.random() < BLOWOUT_FRACTION)
    # The catalogue width is the volunteers' box around the whole jet; the bright spire
    # inside it is a few arcsec across (AIA's PSF, ~1.5" FWHM, sets the floor).
    spire_fwhm = max(width * rng.uniform(0.08, 0.3), 1.5)
    drawn_fwhm, dilution = _drawn_width(spire_fwhm, pixel_arcsec)
    threads = int(rng.integers(1, 4))
    bend = rng.uniform(-0.3, 0.3) * height  # sideways offset of the top: a curved path
    helix_amplitude = rng.uniform(0.0, 0.5) * spire_fwhm * (2.0 if blowout else 1.0)
    helix_wavelength = rng.uniform(30.0, 80.0)
    helix_period_s = rng.uniform(60.0, 240.0) * rng.choice([-1.0, 1.0])
    falls_back = bool(rng.random() < FALLBACK_FRACTION)
    hold_s = rng.uniform(0.2, 0.8) * rise_s
    fall_speed = velocity * rng.uniform(0.2, 0.5)

    along = dx * math.cos(angle) + dy * math.sin(angle)  # (H, W) arcsec outward
    across = -dx * math.sin(angle) + dy * math.cos(angle)
    fraction = np.clip(along / height, 0.0, 1.0)
    centre_line = bend * fraction**2
    edge = max(2.0 * pixel_arcsec, 0.04 * height)

    elapsed = np.clip(times_s - start_s, 0.0, None)  # (T,)
    draining = np.clip(elapsed - rise_s - hold_s, 0.0, None)
    length = np.minimum(velocity * elapsed, height)
    travelled = velocity * np.minimum(elapsed, rise_s + hold_s)  # arcsec, blob phase
    if falls_back:
        # Material drains back: the top of the lit column sinks and the blobs turn round.
        length = np.where(draining > 0, np.maximum(height - fall_speed * draining, 0.0), length)
        travelled = travelled - fall_speed * draining
    front = 0.5 * (1.0 + np.tanh((length[:, None, None] - along[None]) / edge))
    back = 0.5 * (1.0 + np.tanh((along + edge) / edge))

    tick = (times_s - times_s[0])[:, None, None]
    beam = np.zeros((times_s.size,) + dx.shape, dtype=np.float64)
    sigma = (drawn_fwhm / 2.355) * (1.0 + 0.6 * fraction)  # (H, W): widens with height
    for thread in range(threads):
        # Strands of one jet: slightly splayed, each a twisting (helical) thread.
        if thread == 0:
            offset, strength = 0.0, 1.0
        else:
            offset = (rng.normal(0.0, 0.8) * spire_fwhm
                      + along * math.tan(rng.normal(0.0, math.radians(3.0))))
            strength = rng.uniform(0.3, 0.8)
        helix = helix_amplitude * np.sin(2.0 * np.pi * (along[None] / helix_wavelength
                                                         - tick / helix_period_s)
                                         + rng.uniform(0.0, 2.0 * np.pi))
        distance = across[None] - centre_line[None] - offset - helix
        beam += strength * np.exp(-0.5 * (distance / sigma[None]) ** 2)
    if blowout:
        # A blowout jet: a broad, fainter curtain around the spire.
        curtain = width * rng.uniform(0.3, 0.7) / 2.355 * (1.0 + fraction)
        beam += 0.35 * np.exp(-0.5 * ((across - centre_line) / curtain) ** 2)[None]
    wavelength = rng.uniform(20.0, 50.0)
    blobs = 1.0 + rng.uniform(0.1, 0.4) * np.sin(
        2.0 * np.pi * (along[None] - travelled[:, None, None]) / wavelength)
    envelope = _pulse(times_s, start_s, max(0.3 * rise_s, 24.0), 0.7 * rise_s,
                      max(duration_s - rise_s, 120.0) / 2.0)
    beam *= front * blobs * ((1.0 - 0.5 * fraction) * back)[None]
    beam *= envelope[:, None, None]

    # The base: a small bright dome (the inverted-Y / "Eiffel tower" footpoint arch) with
    # a compact brightening at its top that flickers as reconnection proceeds.
    dome_radius = float(np.clip(rng.uniform(0.1, 0.3) * width, 2.0 * pixel_arcsec, 15.0))
    dome_sigma = drawn_fwhm / 2.355
    dome_distance = np.abs(np.hypot(along, across) - dome_radius)
    dome = np.exp(-0.5 * (dome_distance / dome_sigma) ** 2) * (along > -dome_sigma)
    base_sigma = max(min(0.05 * width, 4.0), 1.0 * pixel_arcsec)
    base_point = np.exp(-0.5 * ((along - dome_radius) ** 2 + across**2) / base_sigma**2)
    flicker = np.exp(0.25 * rng.standard_normal(times_s.size))
    base_envelope = _pulse(times_s, start_s, 48.0, 0.5 * rise_s, max(duration_s, 120.0) / 3.0)
    base_strength = rng.uniform(0.3, 1.0)
    base = (base_strength * (base_envelope * flicker)[:, None, None]
            * (0.6 * dome + base_point)[None])

    emission = (contrast * dilution * DISK_MEAN_DN) * (beam + base)
    parameters = {
        "jet_front_start_s": round(float(start_s), 3),  # the front leaves the base
        "jet_height_arcsec": round(float(height), 3),
        "jet_angle_deg": round(math.degrees(angle), 3),
        "jet_contrast": round(contrast, 4),
        "jet_velocity_arcsec_s": round(float(velocity), 5),
        "jet_rise_s": round(float(rise_s), 2),
        "jet_spire_fwhm_arcsec": round(float(spire_fwhm), 3),
        "jet_threads": threads,
        "jet_blowout": blowout,
        "jet_falls_back": falls_back,
    }
    return emission.astype(np.float32), parameters


def _drawn_width(fwhm_arcsec: float, pixel_arcsec: float) -> tuple[float, float]:
    """How a thin structure looks after the seed's pooling: (drawn FWHM, peak factor).

    The seed max-pooled 3x3 native pixels: a line thinner than a pooled pixel (1.8") keeps
    its peak brightness and fills one pooled pixel, so it is drawn ``1.2 * pixel`` wide at
    full peak. On coarser grids the pooled pixels are averaged: the line is drawn one
    pixel wide and its peak diluted so its flux is conserved.
    """
    pooled = min(pixel_arcsec, 3 * NATIVE_PIXEL_ARCSEC)
    at_pooled = max(fwhm_arcsec, 1.2 * pooled)
    drawn = max(at_pooled, 1.2 * pixel_arcsec)
    return drawn, at_pooled / drawn


def _random_jet(rng, base_x: float, base_y: float) -> dict[str, float]:
    """Jet parameters drawn like the catalogue's jets (medians: 100" high, 39" wide, 13 min)."""
    return {"max_height": float(np.exp(rng.normal(math.log(100.0), 0.55))),
            "avg_width": float(np.exp(rng.normal(math.log(39.0), 0.6))),
            "duration": float(np.exp(rng.normal(math.log(12.8), 0.6))),
            "velocity": math.nan, "base_x": base_x, "base_y": base_y}


def _confuser_position(rng, field_of_view: float) -> np.ndarray:
    """Offset (arcsec) from the cutout centre: 60 % near the centre, the rest anywhere."""
    if rng.random() < 0.6:
        return np.clip(rng.normal(0.0, 30.0, 2), -0.45 * field_of_view, 0.45 * field_of_view)
    return rng.uniform(-0.45, 0.45, 2) * field_of_view


def _confuser_probability(label: int, nuisance: Nuisance) -> float:
    """How likely a sequence holds confusers: the nuisance's, else the renderer's."""
    if nuisance.confuser_probability is not None:
        return nuisance.confuser_probability
    return JET_CONFUSER_PROBABILITY if label == 1 else NEGATIVE_CONFUSER_PROBABILITY


def _confusers(rng, times_s, dx, dy, pixel_arcsec, count, base_x=0.0, base_y=0.0,
               radius=SOLAR_RADIUS_1AU_ARCSEC, kinds_allowed=None
               ) -> tuple[np.ndarray, list[str]]:
    """Noise-free (T, H, W) intensity of ``count`` non-jet transients, and their kinds.

    ``dx``, ``dy``: arcsec offsets from the base point ``(base_x, base_y)``, shape (H, W).
    ``kinds_allowed``: draw only these kinds (weights renormalised); None: all.
    """
    weights = np.asarray(CONFUSER_WEIGHTS, dtype=np.float64)
    if kinds_allowed is not None:
        weights = weights * np.isin(CONFUSER_KINDS, kinds_allowed)
        weights = weights / weights.sum()
    field_of_view = dx.shape[0] * pixel_arcsec
    total = np.zeros((times_s.size,) + dx.shape, dtype=np.float32)
    window = float(times_s[-1] - times_s[0]) + (times_s[1] - times_s[0])
    kinds = []
    for _ in range(count):
        kind = str(rng.choice(CONFUSER_KINDS, p=weights))
        kinds.append(kind)
        centre = _confuser_position(rng, field_of_view)
        if kind in ("static_spire", "incoherent_spire"):
            # A collimated structure that is not a jet: a plume, fibril or old jet held in
            # place, or a spire that flickers without coherent outward motion (its frames
            # in random order). Same morphology and flux as a jet; only its motion differs.
            spire_x, spire_y = base_x + centre[0], base_y + centre[1]
            emission, _ = _jet_emission(rng, times_s, dx - centre[0], dy - centre[1],
                                        _random_jet(rng, spire_x, spire_y),
                                        math.hypot(spire_x, spire_y), radius, pixel_arcsec)
            if kind == "static_spire":
                held = emission[int(np.argmax(emission.sum(axis=(1, 2))))]
                drift = 1.0 + rng.uniform(-0.15, 0.15) * np.linspace(0.0, 1.0, times_s.size)
                total += drift.astype(np.float32)[:, None, None] * held[None]
            else:
                total += emission[rng.permutation(times_s.size)]
            continue
        contrast = float(np.exp(rng.normal(math.log(JET_CONTRAST_MEDIAN), CONTRAST_SIGMA)))
        # Half start with the window, as a jet does (the brightness trend then overlaps).
        start = (rng.uniform(-0.1, 0.2) if rng.random() < 0.5 else rng.uniform(-0.3, 0.6)) * window
        envelope = _pulse(times_s, start, rng.uniform(24.0, 0.4 * window + 24.0),
                          rng.uniform(0.0, 0.3) * window, rng.uniform(0.1, 0.6) * window)
        if kind == "bright_point":
            sigma = max(rng.uniform(1.5, 5.0), 0.6 * pixel_arcsec)
            shape = np.exp(-0.5 * ((dx - centre[0]) ** 2 + (dy - centre[1]) ** 2) / sigma**2)
            flicker = np.exp(0.6 * rng.standard_normal(times_s.size))
            # Compact features must be brighter to carry comparable flux.
            series = 2.5 * envelope * flicker
            total += (contrast * DISK_MEAN_DN * series)[:, None, None] * shape[None]
        elif kind == "loop":
            separation = rng.uniform(20.0, 90.0)
            tilt = rng.uniform(0, np.pi)
            apex = rng.uniform(0.3, 0.8) * separation
            sigma = max(rng.uniform(2.0, 7.0), 0.6 * pixel_arcsec)
            points = np.linspace(0.0, np.pi, 16)
            along = -0.5 * separation * np.cos(points)
            up = apex * np.sin(points)
            px = centre[0] + along * np.cos(tilt) - up * np.sin(tilt)
            py = centre[1] + along * np.sin(tilt) + up * np.cos(tilt)
            shape = np.zeros(dx.shape)
            for point_x, point_y in zip(px, py):
                shape = np.maximum(
                    shape, np.exp(-0.5 * ((dx - point_x) ** 2 + (dy - point_y) ** 2) / sigma**2)
                )
            total += (contrast * DISK_MEAN_DN * envelope)[:, None, None] * shape[None]
        elif kind == "surge":
            # A jet-sized diffuse brightening that swells in place: the flux and the
            # light curve of a jet without its collimated outward-moving front.
            length = rng.uniform(30.0, 120.0)
            width = rng.uniform(0.3, 0.8) * length
            tilt = rng.uniform(0, np.pi)
            along = (dx - centre[0]) * np.cos(tilt) + (dy - centre[1]) * np.sin(tilt)
            across = -(dx - centre[0]) * np.sin(tilt) + (dy - centre[1]) * np.cos(tilt)
            growth = 0.6 + 0.4 * envelope  # grows a little, in all directions at once
            shape = np.exp(-0.5 * ((along[None] / (0.5 * length * growth[:, None, None])) ** 2
                                   + (across[None] / (0.5 * width * growth[:, None, None])) ** 2))
            total += (contrast * DISK_MEAN_DN * envelope)[:, None, None] * shape
        else:
            drift = rng.normal(0.0, 0.015, 2)  # arcsec/s: a few arcsec over the window
            sigma0 = rng.uniform(4.0, 14.0)
            swell = rng.uniform(0.0, 0.6)
            elapsed = (times_s - times_s[0])[:, None, None]
            sigma = sigma0 * (1.0 + swell * elapsed / window)
            centre_x = centre[0] + drift[0] * elapsed
            centre_y = centre[1] + drift[1] * elapsed
            shape = np.exp(-0.5 * ((dx[None] - centre_x) ** 2 + (dy[None] - centre_y) ** 2)
                           / sigma**2)
            total += (contrast * DISK_MEAN_DN * envelope)[:, None, None] * shape
    return total, kinds


def _photon_noise(rng, expected_dn: np.ndarray, noise_scale: float = 1.0,
                  pixel_arcsec: float = NATIVE_PIXEL_ARCSEC) -> np.ndarray:
    """Photon noise plus read noise on (T, H, W) expected DN, as the seed's pooling sees it.

    Each output pixel is the seed's k x k max-pool of native 0.6" AIA pixels
    (``k = round(pixel_arcsec / 0.6)``, at most 3), area-averaged over the pooled pixels
    when the grid is coarser still. The noise is drawn for each of the k^2 native pixels
    and the maximum kept, which biases pooled noise upwards and narrows it, as in the
    seed's files; structure is assumed smooth on 0.6" (the PSF is ~1.5" FWHM).
    ``noise_scale`` multiplies the photon noise's standard deviation: photons per DN
    fall by its square. Returns float32 DN.
    """
    photons_per_dn = PHOTONS_PER_DN / noise_scale ** 2
    pool = int(np.clip(round(pixel_arcsec / NATIVE_PIXEL_ARCSEC), 1, 3))
    averaged = max(1.0, (pixel_arcsec / (pool * NATIVE_PIXEL_ARCSEC)) ** 2)
    photons = np.clip(expected_dn, 0.0, None) * np.float32(photons_per_dn)
    if pool == 1:
        unit = rng.standard_normal(photons.shape, dtype=np.float32)
    else:
        draws = rng.standard_normal((pool * pool,) + photons.shape, dtype=np.float32)
        unit = draws.max(axis=0)  # the max-pool: mean ~1.5 sigma, spread ~0.65 sigma (k=3)
    if averaged > 1.0:
        centre = np.float32(unit.mean())
        unit = centre + (unit - centre) / np.float32(math.sqrt(averaged))
    noisy = photons + np.sqrt(photons) * unit
    low = photons < 30.0
    if pool == 1 and averaged == 1.0 and low.any():
        # The Gaussian approximation is poor for few photons: draw those exactly.
        noisy[low] = rng.poisson(photons[low].astype(np.float64))
    noisy = np.clip(noisy, 0.0, None) * np.float32(1.0 / photons_per_dn)
    noisy += np.float32(READ_NOISE_DN) * rng.standard_normal(photons.shape, dtype=np.float32)
    return noisy


def _display_roundtrip(rng, frames: np.ndarray) -> np.ndarray:
    """Pixels recovered from an animation: asinh stretch, per-frame autoscale, 8 bits, inverted.

    Volunteers' subjects (and many archives' quick-looks) are such renders; the round trip
    leaves quantisation noise that grows with brightness and clips the brightest pixels.
    (T, H, W) float32 DN in, same out.
    """
    softening = float(np.exp(rng.uniform(math.log(0.002), math.log(0.02))))
    flat = np.clip(frames, 0.0, None).reshape(frames.shape[0], -1)
    top = np.maximum(np.percentile(flat, rng.uniform(99.0, 100.0), axis=1), 1.0)
    top = top.astype(np.float32)[:, None, None]
    scale = np.float32(math.asinh(1.0 / softening))
    level = np.clip(np.arcsinh(np.clip(frames, 0.0, None) / top / softening) / scale, 0.0, 1.0)
    level = np.round(level * 255.0 + rng.uniform(-0.5, 0.5, level.shape)) / 255.0  # dithered
    return (top * softening * np.sinh(np.clip(level, 0.0, 1.0) * scale)).astype(np.float32)


def _domain(rng, frames: int, cadence_s: float, field_of_view_arcsec: float,
            randomise: bool) -> dict[str, Any]:
    """Per-sequence viewing conditions: what real cutouts vary and a detector must ignore.

    Half the sequences keep the cutout's nominal field of view; the rest zoom (40-160 %,
    log-uniform: volunteers' cutouts are often tighter, small jets sit in wide fields).
    70 % put the base point off centre (up to 20 % of the field each way, so some jets
    leave the field). Cadence: 24 s (60 %), 36 s (20 %), or a volunteer's subject, 15
    frames at 24 s (15 %) or 36 s (5 %) each shown ``frames // 15`` times (twice in the
    30-frame window: half its span; windows under 30 frames hold no subjects and keep
    the cadence). A quarter pass through an animation's display round trip. The jet's phase: 40 % start with the window (the
    catalogue start), 20 % up to a quarter of a window after it, 40 % are already under
    way, ``jet_life_elapsed`` (0-0.6) of their duration gone at the first frame; the
    time-order negatives' jets draw the same phase, so phase is no class cue. A tenth
    are still scenes (background and confusers held, only a jet moves) and a fifth
    flicker in exposure (5-20 % per frame), in both classes.
    """
    nominal = {"field_of_view_arcsec": float(field_of_view_arcsec), "shift_arcsec": (0.0, 0.0),
               "cadence_s": float(cadence_s), "repeat": 1, "display": False,
               "jet_start_fraction": 0.0, "jet_life_elapsed": 0.0, "static": False,
               "flicker": False}
    if not randomise:
        return nominal
    zoom = 1.0 if rng.random() < 0.5 else float(np.exp(rng.uniform(
        math.log(ZOOM_RANGE[0]), math.log(ZOOM_RANGE[1]))))
    field_of_view = float(field_of_view_arcsec) * zoom
    shift = rng.uniform(-0.2, 0.2, 2) * field_of_view if rng.random() < 0.7 else np.zeros(2)
    choice = rng.random()
    # A volunteer's subject is 15 frames at the data's own cadence (24 s, some 36 s), each
    # shown twice: half the span of a 30-frame window, not 15 frames 48 s apart.
    factor = 1.5 if 0.6 <= choice < 0.8 or choice >= 0.95 else 1.0
    # Each of a subject's frames fills frames // 15 of the window's; a window too short
    # to show all 15 twice cannot hold a subject, so it keeps the drawn cadence.
    repeat = frames // SUBJECT_FRAMES if choice >= 0.8 else 1
    repeat = repeat if repeat >= 2 else 1
    phase = rng.random()
    # Real windows catch jets at any phase. Trained on windows that open with the jet,
    # the bundle kept 65 % of held-out jets one window under way, against 93 % of those
    # opening the window (bench/phase.py).
    start_fraction = float(rng.uniform(0.0, 0.25)) if 0.4 <= phase < 0.6 else 0.0
    life_elapsed = float(rng.uniform(0.0, JET_MAX_LIFE_ELAPSED)) if phase >= 0.6 else 0.0
    return {"field_of_view_arcsec": field_of_view,
            "shift_arcsec": (float(shift[0]), float(shift[1])),
            "cadence_s": float(cadence_s) * factor, "repeat": repeat,
            "display": bool(rng.random() < DISPLAY_FRACTION),
            "jet_start_fraction": start_fraction, "jet_life_elapsed": life_elapsed,
            "static": bool(rng.random() < STATIC_FRACTION),
            "flicker": bool(rng.random() < FLICKER_FRACTION)}


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------


def render_event(
    event,
    *,
    frames: int = 30,
    size: int = 166,
    cadence_s: float = 24.0,
    field_of_view_arcsec: float = 300.0,
    seed: int = 0,
    variant: int = 0,
    nuisance: Nuisance | None = None,
    randomise: bool = True,
) -> Cube:
    """Render one catalogue row as a synthetic AIA 304 A cube.

    Parameters
    ----------
    event : pandas.Series or dict
        One row of :func:`jetkeras.catalogue.load_events`: ``event_id``, ``label`` (1 jet,
        0 negative), ``date`` (ISO UTC start), ``basepoint_X``/``basepoint_Y``
        (helioprojective arcsec), and for jets ``max_height`` (arcsec), ``avg_width``
        (arcsec), ``duration`` (minutes) and ``velocity`` (arcsec/s, may be NaN).
        ``group`` is copied into the metadata when present.
    frames : int
        Number of frames T (>= 2). Defaults to 30 (the seed's window).
    size : int
        Pixels per side H = W (>= 16). Defaults to 166 (the seed's pooled size).
    cadence_s : float
        Seconds between frames. Defaults to 24.
    field_of_view_arcsec : float
        Side of the square cutout centred on the base point, arcsec. Defaults to 300.
    seed : int
        Global seed; the event's stream is ``SeedSequence([seed, crc32(event_id)])``.
    variant : int
        Which independent render of the row (0, the default, is the first): training
        uses new variants so the network sees new backgrounds, jets and noise instead of
        memorising one picture per event.
    nuisance : Nuisance, optional
        Shifted exposure, noise, jet contrast or limb fraction (robustness tests). None
        (the default) renders exactly as without it.
    randomise : bool
        Draw the viewing conditions per sequence (field of view, base point off centre,
        cadence, display round trip, wider exposure spread; see the module docstring).
        True (the default) for training and evaluation; False renders the nominal
        cutout: 300" centred on the base point at ``cadence_s``.

    Returns
    -------
    Cube
        ``frames`` float32 ``(frames, size, size)`` in DN (rows south to north);
        ``times`` ISO UTC strings, frame i at ``date + i * cadence_s``; ``meta`` with
        ``event_id``, ``label``, ``group`` and the render parameters.

    Raises
    ------
    ValueError
        One line naming the event or argument when the row or an argument is unusable.
    """
    _check_render_args(frames, size, cadence_s, field_of_view_arcsec)
    parsed = _parse_event(event)
    if isinstance(variant, bool) or not isinstance(variant, (int, np.integer)) or variant < 0:
        raise ValueError(f"render_event: expected `variant` a non-negative integer, "
                         f"received {variant!r}")
    rng = event_rng(seed, parsed["event_id"], int(variant))
    nuisance = nuisance or Nuisance()
    # Independent sub-streams: adding a confuser never changes the background draw.
    background_rng, jet_rng, confuser_rng, noise_rng, domain_rng, order_rng = rng.spawn(6)
    radius = solar_radius_arcsec(parsed["date"])
    if nuisance.limb_fraction > 0:  # a seventh stream: the six above are unchanged
        parsed = _maybe_move_to_limb(rng.spawn(1)[0], parsed, radius, nuisance.limb_fraction)
    domain = _domain(domain_rng, frames, float(cadence_s), float(field_of_view_arcsec),
                     randomise)
    if nuisance.jet_under_way_windows is not None:
        domain.update(jet_start_fraction=-float(nuisance.jet_under_way_windows),
                      jet_life_elapsed=0.0)
    pixel_arcsec = domain["field_of_view_arcsec"] / size
    offsets = (np.arange(size, dtype=np.float64) - (size - 1) / 2.0) * pixel_arcsec
    shift_x, shift_y = domain["shift_arcsec"]  # where the cutout centre sits from the base
    dx = np.broadcast_to(offsets[None, :] + shift_x, (size, size))  # (H, W) arcsec east-west
    dy = np.broadcast_to(offsets[:, None] + shift_y, (size, size))  # (H, W) arcsec south-north
    repeat = domain["repeat"]
    distinct = -(-frames // repeat)  # frames actually rendered; each is shown `repeat` times
    times_s = np.arange(distinct, dtype=np.float64) * domain["cadence_s"]
    expected = _background(background_rng, times_s, parsed["base_x"] + dx,
                           parsed["base_y"] + dy, radius, pixel_arcsec)
    meta = _render_meta(parsed, seed, variant, domain, pixel_arcsec, radius)
    count = int(confuser_rng.integers(1, 4)) if confuser_rng.random() < _confuser_probability(
        parsed["label"], nuisance) else 0
    kinds: list[str] = []
    if count:
        confusers, kinds = _confusers(confuser_rng, times_s, dx, dy, pixel_arcsec, count,
                                      parsed["base_x"], parsed["base_y"], radius,
                                      nuisance.confuser_kinds)
        expected += confusers
    meta["confusers"] = ",".join(kinds)
    if domain["static"]:
        # A still scene: background and confusers held (fresh noise every frame), so a
        # scene where nothing but the jet moves exists in both classes.
        expected = np.repeat(expected[distinct // 2][None], distinct, axis=0)
    base_radius = math.hypot(parsed["base_x"], parsed["base_y"])
    if parsed["label"] == 1:
        parsed["start_s"] = _jet_start_s(domain, parsed["duration"], distinct)
        meta["jet_start_s"] = round(parsed["start_s"], 2)
        jet, jet_parameters = _jet_emission(jet_rng, times_s, dx, dy, parsed, base_radius,
                                            radius, pixel_arcsec, nuisance.contrast_scale)
        expected += jet
        meta.update(jet_parameters)
    order = "none"
    if parsed["label"] == 0 and randomise:
        expected, order = _time_order_negative(order_rng, expected, parsed, times_s, dx, dy,
                                               base_radius, radius, pixel_arcsec, domain)
    meta["time_order"] = order
    cube_frames, meta["exposure_scale"] = _observe(noise_rng, expected, parsed["date"],
                                                   domain, nuisance, pixel_arcsec, randomise)
    if order == "scrambled":
        cube_frames = cube_frames[order_rng.permutation(distinct)]
    cube_frames = np.repeat(cube_frames, repeat, axis=0)[:frames]
    times = [(parsed["date"] + timedelta(seconds=float(offset))).isoformat(timespec="milliseconds")
             for offset in np.repeat(times_s, repeat)[:frames]]
    return Cube(frames=np.ascontiguousarray(cube_frames),
                source=f"synthetic:{parsed['event_id']}", times=times, meta=meta)


def _jet_start_s(domain: dict, duration_minutes: float, distinct: int) -> float:
    """When the jet starts, seconds after the first frame (negative: already under way)."""
    window_s = distinct * domain["cadence_s"]
    return (domain["jet_start_fraction"] * window_s
            - domain["jet_life_elapsed"] * duration_minutes * 60.0)


def _time_order_negative(order_rng: np.random.Generator, expected: np.ndarray, parsed: dict,
                         times_s, dx, dy, base_radius: float, radius: float,
                         pixel_arcsec: float, domain: dict) -> tuple[np.ndarray, str]:
    """Maybe turn a negative's scene into a time-order negative: ``(expected, order)``.

    A jet's scene with its frames in random order ("scrambled", shuffled later, after the
    noise) or one frame held ("frozen", fresh noise every frame); otherwise "none" and
    ``expected`` unchanged. A jet is coherent outward motion, not any change.
    """
    draw = order_rng.random()
    order = ("scrambled" if draw < SCRAMBLED_FRACTION else
             "frozen" if draw < SCRAMBLED_FRACTION + FROZEN_FRACTION else "none")
    if order == "none":
        return expected, order
    event = _random_jet(order_rng, parsed["base_x"], parsed["base_y"])
    event["start_s"] = _jet_start_s(domain, event["duration"], len(times_s))
    jet, _ = _jet_emission(order_rng, times_s, dx, dy, event, base_radius, radius,
                           pixel_arcsec)
    expected = expected + jet
    if order == "frozen":
        distinct = len(expected)
        held = int(order_rng.integers(distinct // 3, distinct))
        expected = np.repeat(expected[held][None], distinct, axis=0)
    return expected, order


def _maybe_move_to_limb(limb_rng: np.random.Generator, parsed: dict, radius: float,
                        limb_fraction: float) -> dict:
    """With probability ``limb_fraction``, the event moved radially onto the limb (0.97-1.02 R)."""
    if limb_rng.random() >= limb_fraction:
        return parsed
    angle = math.atan2(parsed["base_y"], parsed["base_x"])
    moved = radius * limb_rng.uniform(0.97, 1.02)
    return {**parsed, "base_x": moved * math.cos(angle), "base_y": moved * math.sin(angle)}


def _render_meta(parsed: dict, seed: int, variant: int, domain: dict, pixel_arcsec: float,
                 radius: float) -> dict[str, Any]:
    """The cube's metadata before the confusers, jet and time order add theirs."""
    shift_x, shift_y = domain["shift_arcsec"]
    return {
        "event_id": parsed["event_id"],
        "label": parsed["label"],
        "group": parsed["group"],
        "renderer": "jetkeras.synthetic",
        "renderer_version": RENDERER_VERSION,
        "seed": int(seed),
        "variant": int(variant),
        "cadence_s": domain["cadence_s"],
        "frame_repeat": domain["repeat"],
        "field_of_view_arcsec": round(domain["field_of_view_arcsec"], 4),
        "pixel_scale_arcsec": round(pixel_arcsec, 6),
        "centre_offset_arcsec": [round(shift_x, 3), round(shift_y, 3)],
        "display_roundtrip": domain["display"],
        "still_scene": domain["static"],
        "exposure_flicker": domain["flicker"],
        "basepoint_x_arcsec": parsed["base_x"],
        "basepoint_y_arcsec": parsed["base_y"],
        "solar_radius_arcsec": round(radius, 3),
    }


def _observe(noise_rng: np.random.Generator, expected: np.ndarray, date, domain: dict,
             nuisance: Nuisance, pixel_arcsec: float,
             randomise: bool) -> tuple[np.ndarray, float]:
    """Expected DN ``(T, H, W)`` -> observed DN frames, and the sequence's exposure scale.

    Exposure (log-normal spread times the instrument's degradation on ``date``), the
    per-frame jitter, photon and read noise at native sampling, and the display round
    trip when ``domain`` drew one.
    """
    spread = EXPOSURE_SIGMA_RANDOMISED if randomise else EXPOSURE_SIGMA
    exposure = (float(np.exp(noise_rng.normal(0.0, spread))) * _degradation(date)
                * nuisance.exposure_scale)
    # Exposure jitter: 1 %, or in a fifth of sequences a flicker of 5-20 % per frame
    # (automatic exposure control, varying exposures), in both classes alike.
    jitter = noise_rng.uniform(0.05, 0.2) if domain["flicker"] else 0.01
    per_frame = exposure * np.exp(jitter * noise_rng.standard_normal(len(expected)))
    expected = expected * per_frame.astype(np.float32)[:, None, None]
    frames = _photon_noise(noise_rng, expected, nuisance.noise_scale, pixel_arcsec)
    if domain["display"]:
        frames = _display_roundtrip(noise_rng, frames)
    return frames, round(exposure, 5)



def jet_truth(cube: Cube) -> dict[str, float] | None:
    """What the renderer knows of a rendered jet, in the columns a measurement gives.

    ``base_row``/``base_col`` (0-based pixels of the frame array), ``direction_deg``
    (``atan2(d_row, d_col)``, 0-360), ``onset_frame`` (when the front leaves the base,
    frames from the first; negative when under way), ``peak_frame`` (when it is longest),
    ``length_arcsec`` (the longest it gets within the window), ``speed_arcsec_s``, and
    ``width_arcsec`` (the bright spire's FWHM). None for a cube without a jet.
    """
    meta = cube.meta
    if "jet_front_start_s" not in meta:
        return None
    size = cube.frames.shape[-1]
    pixel = meta["pixel_scale_arcsec"]
    shift_x, shift_y = meta["centre_offset_arcsec"]
    step_s = meta["cadence_s"] / meta["frame_repeat"]  # window frames are this far apart
    start, rise = meta["jet_front_start_s"], meta["jet_rise_s"]
    height, velocity = meta["jet_height_arcsec"], meta["jet_velocity_arcsec_s"]
    # The last distinct frame's time: a subject shows each frame frame_repeat times.
    last_s = (math.ceil(cube.frames.shape[0] / meta["frame_repeat"]) - 1) * meta["cadence_s"]
    return {
        "base_row": (size - 1) / 2.0 - shift_y / pixel,
        "base_col": (size - 1) / 2.0 - shift_x / pixel,
        "direction_deg": meta["jet_angle_deg"] % 360.0,
        "onset_frame": start / step_s,
        "peak_frame": min(start + rise, last_s) / step_s,
        "length_arcsec": float(np.clip(velocity * (last_s - start), 0.0, height)),
        "speed_arcsec_s": velocity,
        "width_arcsec": meta["jet_spire_fwhm_arcsec"],
    }


def render_events(events, **kwargs) -> Iterator[Cube]:
    """Render every row of ``events`` (a DataFrame or an iterable of rows) lazily.

    Keyword arguments are those of :func:`render_event`. Each cube depends only on its
    own row and ``seed``, so any subset or order gives the same cubes.
    """
    rows: Iterable
    if hasattr(events, "iterrows"):
        rows = (row for _, row in events.iterrows())
    else:
        rows = events
    for row in rows:
        yield render_event(row, **kwargs)
