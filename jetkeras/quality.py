"""Quality flags: what about a cube's pixels and headers makes its score less trustworthy.

Every output row carries ``quality``: the flags of the frames the model saw, joined by
``;`` (empty when none). A flag never changes a probability; two of them change the call:
a ``frozen`` or ``constant`` cube holds no motion at all, so it is never ``predicted`` a
jet, whatever the network says (``VETO_FLAGS``). The others say "look before you quote":
the row is still predicted at the threshold, with its flag beside it.

The flags, their meaning and the rule that raises them are in :data:`FLAGS` (the one home
of this text: ``docs/rows.md`` and the model card are checked against it by a test).

Intensity range
    The bundled model was trained on renders whose cube medians span 1.9-198 DN (1st-99th
    percentile 2.3-136 DN) with at most 4 % of pixels at the 1,000 DN clip (300 renders
    of renderer 4, seed 3). Real 304 A level-1 cutouts sit inside that range (median
    76 DN at the limb, 3-103 DN for the real-jet set); a 171 A cube has median 346 DN and
    23 % of its pixels above 1,000 DN. ``out_of_range`` fires outside
    [``MEDIAN_RANGE_DN``] or above ``CLIPPED_FRACTION_MAX``: a cube at another channel's
    levels scored 0.77-0.91 with the bundled model.
"""

from __future__ import annotations

import numpy as np

from jetkeras.preprocess import despike, level_normalise

__all__ = [
    "CLIPPED_FRACTION_MAX",
    "FLAGS",
    "MEDIAN_RANGE_DN",
    "SATURATION_DN",
    "VETO_FLAGS",
    "exposure_flags",
    "format_flags",
    "pixel_flags",
]

VETO_FLAGS = frozenset({"frozen", "constant"})
SATURATION_DN = 15000.0
MEDIAN_RANGE_DN = (1.0, 250.0)
CLIPPED_FRACTION_MAX = 0.10
EXPOSURE_SPREAD_MAX = 1.10  # largest / smallest exposure time

# flag -> what it means for the row (the docs table is checked against these texts)
LEVEL_JUMP = 0.25  # a frame's level this far from the window's: flagged (renders flicker 5-20 %)

FLAGS: dict[str, str] = {
    "frozen": "every frame equals the first: no motion at all, so never predicted a jet",
    "repeated_frames": "some consecutive frames are identical (a repeated or stuck frame, "
                       "or a subject shown twice)",
    "constant": "every frame is constant (empty, all zero or one value): never predicted "
                "a jet",
    "constant_frames": "some frames are constant or empty (a missing frame filled in)",
    "data_gap": "two consecutive frames are further apart than the cadence allows; the "
                "grid was bridged by interpolation where the gap permitted",
    "saturated": f"pixels at or above {SATURATION_DN:,.0f} DN (AIA saturates near 16,383 DN): bleeding "
                 "and blooming may look like motion",
    "out_of_range": "the cube's intensity levels lie outside those the model was trained "
                    "on (another channel, another unit, a wrong exposure)",
    "exposure_varies": "exposure times differ by more than 10 % between frames (automatic "
                       "exposure control near flares): brightness changes may be exposure "
                       "changes",
    "level_jump": "a frame's brightness level differs from the window's by more than "
                  "25 % (an exposure jump, or a flare lighting most of the field): each "
                  "frame was brought to the window's level before scoring",
    "spikes": "single-frame spikes (cosmic-ray hits, particle snow) were replaced by their "
              "neighbours in time before scoring",
    "wrong_channel": "another wavelength or instrument than the model's, accepted with "
                     "--any-channel",
    "resampled_time": "frames were interpolated in time to the model's cadence (or a "
                      "subject's frames each shown twice)",
    "resampled_space": "frames were interpolated in space to the model's pixel scale",
    "padded": "the field of view was smaller than the model's and was padded with a "
              "constant background",
    "cropped": "the field of view was larger than the model's and was cropped about its "
               "centre",
}


def pixel_flags(frames: np.ndarray, *, clip_dn: float = 1000.0,
                to_dn: float | None = 1.0) -> list[str]:
    """The flags that the pixels of one window raise.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(T, H, W)``, in the model's unit.
    clip_dn : float
        The model's upper clip in DN (``normalisation.json``); sets the clipped fraction.
    to_dn : float or None
        Factor that turns the frames into DN: 1 for frames in DN, the exposure time (s)
        for frames in DN/s, None when unknown (the saturation and range rules are then
        skipped).

    Returns
    -------
    list of str
        Flag names in the order of :data:`FLAGS`.
    """
    frames = np.asarray(frames, dtype=np.float32)
    flags = set()
    flat = frames.reshape(frames.shape[0], -1)
    spatial_constant = flat.max(axis=1) == flat.min(axis=1)  # (T,)
    if spatial_constant.all():
        flags.add("constant")
    elif spatial_constant.any():
        flags.add("constant_frames")
    same_as_previous = np.all(flat[1:] == flat[:-1], axis=1)  # (T - 1,)
    if frames.shape[0] > 1 and same_as_previous.all():
        flags.add("frozen")
    elif same_as_previous.any():
        flags.add("repeated_frames")
    # What the predictor's cleaning (jetkeras.runtime.clean_frames) changes, named.
    levelled, levels = level_normalise(frames)
    if np.any(np.abs(levels / np.median(levels) - 1.0) > LEVEL_JUMP):
        flags.add("level_jump")
    if despike(levelled)[1]:
        flags.add("spikes")
    if to_dn is None:
        return _ordered(flags)
    frames_dn = frames * np.float32(to_dn)
    if frames_dn.max() >= SATURATION_DN:
        flags.add("saturated")
    median = float(np.median(frames_dn))
    clipped = float(np.mean(frames_dn >= clip_dn))
    low, high = MEDIAN_RANGE_DN
    if "constant" not in flags and (not low <= median <= high
                                    or clipped > CLIPPED_FRACTION_MAX):
        flags.add("out_of_range")
    return _ordered(flags)


def exposure_flags(exposures_s) -> list[str]:
    """``exposure_varies`` when the frames' exposure times (s) spread by over 10 %."""
    values = [value for value in (exposures_s or [])
              if isinstance(value, (int, float)) and value > 0]
    if len(values) > 1 and max(values) / min(values) > EXPOSURE_SPREAD_MAX:
        return ["exposure_varies"]
    return []


def _ordered(flags) -> list[str]:
    return [name for name in FLAGS if name in flags]


def format_flags(flags) -> str:
    """Flags as the row's ``quality`` text: names in :data:`FLAGS` order, ``;``-joined."""
    return ";".join(_ordered(set(flags)))
