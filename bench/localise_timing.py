"""How the time-distance front along the measurement head's axis was tuned (issue 27):
on renders of *training* events only, never the held-out ones.

Usage::

    .venv/bin/python bench/localise_timing.py --out bench/results/localise_timing.json

``--renders`` jets are drawn (``--seed``) from the training share of the by-event split
(``bench/localise_head.py``'s :func:`split_jets`: the 80 % of ``SOL_event`` groups the
head was trained on), rendered with renderer seeds ``3000 + k`` (neither the head's
training renders, 2000 + k, nor the evaluation's, 1000 + seed), and kept when the
bundled model calls them jets. For each, the time-distance diagram along the bundled
head's base point and direction is computed once; then every setting of the grid below
traces the front and fits it, and the median errors against the renderer's truth are
printed and written:

- ``sigma``: the excess (noise levels) the front is traced down to
  (``jetkeras.localise.FRONT_ALONG_SIGMA``);
- ``peak_fraction``: the peak is the first frame the front reaches this fraction of its
  length (``PEAK_FRACTION``);
- ``growth_band``: the line is fitted to the frames where the front sets a new record
  between these fractions of its length (``GROWTH_BAND``).

The shipped setting is the one with the lowest sum of the four median errors, each
divided by its goal (onset 1.5 frames, peak 2 frames, length and speed 25 %), among the
sigmas that trace no spire in pure noise (``noise_front_px``: the median front traced
along random axes of 20 cubes of Gaussian noise must stay under NOISE_FRONT_PX, the
3-px smoothing's width; a lower sigma would measure noise as a spire on real data).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from itertools import product
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
PEAK_FRACTIONS = (0.85, 0.9, 0.95, 1.0)
GROWTH_BANDS = ((0.05, 1.0), (0.1, 0.95), (0.2, 0.9), (0.3, 0.95))
NOISE_FRONT_PX = 3.0
GOALS = {"onset_frames": 1.5, "peak_frames": 2.0, "length_relative": 0.25,
         "speed_relative": 0.25}


def diagrams(renders: int, seed: int):
    """The training-event jets the bundle calls jets: each one's time-distance diagram
    along the bundled head's axis, and its truth in frames and pixels."""
    from localise_head import _record, split_jets
    from scipy import ndimage
    from tqdm.auto import tqdm

    from jetkeras.localise import Localiser, _pixel_noise, _time_distance
    from jetkeras.runtime import load_predictor
    from jetkeras.synthetic import render_event

    training, _ = split_jets(True, 0.2, 0)
    predictor = load_predictor(runtime="litert")
    localiser = Localiser()
    picks = np.random.default_rng(seed).integers(0, len(training), renders)
    out = []
    for k, pick in enumerate(tqdm(picks, desc="render", unit="jet")):
        cube = render_event(training.iloc[int(pick)], seed=3000 + k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probability = float(predictor.predict_proba(cube.frames[None])[0])
        if probability < predictor.threshold:
            continue
        found, _ = localiser.measure(cube.frames)
        frames = cube.frames.astype(np.float32)
        levels = np.median(frames.reshape(frames.shape[0], -1), axis=1)
        frames = frames * (np.median(levels) / levels)[:, None, None].astype(np.float32)
        smooth = ndimage.uniform_filter(frames, size=(1, 3, 3))
        excess = ((smooth - np.percentile(smooth, 20, axis=0)[None])
                  / _pixel_noise(np.diff(smooth, axis=0))[None])
        angle = math.radians(found.direction_deg)
        _, diagram = _time_distance(excess, np.array([found.base_row, found.base_col]),
                                    np.array([math.sin(angle), math.cos(angle)]),
                                    float(frames.shape[-1]))
        truth = _record(cube)
        out.append({"diagram": diagram, "onset": truth["onset_frame"],
                    "peak": truth["peak_frame"],
                    "length": truth["length_arcsec"] / truth["pixel"],
                    "speed": truth["speed_arcsec_s"] * truth["step_s"] / truth["pixel"]})
    return out


def score(cases, sigma: float, peak_fraction: float, band) -> dict:
    """Median errors of one setting over ``cases``."""
    import jetkeras.localise as localise

    distances = np.arange(0.0, cases[0]["diagram"].shape[1] * 0.5, 0.5)
    errors = {key: [] for key in GOALS}
    saved = localise.GROWTH_BAND
    localise.GROWTH_BAND = band
    try:
        for case in cases:
            front = localise._front(case["diagram"] * (localise.FRONT_SIGMA / sigma), distances)
            length = float(front.max())
            if length <= 0:
                continue
            peak = float(np.argmax(front >= peak_fraction * length))
            speed, onset = localise._growth_fit(front, int(peak))
            errors["onset_frames"].append(abs(onset - case["onset"]))
            errors["peak_frames"].append(abs(peak - case["peak"]))
            if case["length"] > 0:
                errors["length_relative"].append(abs(length - case["length"]) / case["length"])
            errors["speed_relative"].append(abs(speed - case["speed"]) / case["speed"])
    finally:
        localise.GROWTH_BAND = saved
    return {key: float(np.median(values)) for key, values in errors.items()}


def noise_front_px(sigma: float, cubes: int = 20, seed: int = 0) -> float:
    """The median front traced down to ``sigma`` along a random axis from the centre of
    each of ``cubes`` cubes of pure Gaussian noise (30 x 166 x 166 around 100 DN)."""
    import jetkeras.localise as localise

    rng = np.random.default_rng(seed)
    fronts = []
    for _ in range(cubes):
        frames = (100.0 + rng.normal(0.0, 3.0, (30, 166, 166))).astype(np.float32)
        angle = rng.uniform(0.0, 2.0 * math.pi)
        found = localise.Measurement(base_row=83.0, base_col=83.0,
                                     direction_deg=math.degrees(angle), onset_frame=0.0,
                                     peak_frame=0.0, length_px=0.0, width_px=0.0,
                                     speed_px_per_frame=0.0, localisation_score=0.0)
        saved = localise.FRONT_ALONG_SIGMA
        localise.FRONT_ALONG_SIGMA = sigma
        try:
            measured, _ = localise.front_along(frames, found)
        finally:
            localise.FRONT_ALONG_SIGMA = saved
        fronts.append(measured.length_px)
    return float(np.median(fronts))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=200, help="training-event renders")
    parser.add_argument("--seed", type=int, default=7, help="which training jets are drawn")
    parser.add_argument("--out", type=Path, help="write the grid as JSON here")
    args = parser.parse_args(argv)
    cases = diagrams(args.renders, args.seed)
    print(f"{len(cases)} of {args.renders} training-event renders called jets")
    noise = {sigma: noise_front_px(sigma) for sigma in SIGMAS}
    print("median front in pure noise (px) by sigma:", noise)
    grid = []
    for sigma, fraction, band in product(SIGMAS, PEAK_FRACTIONS, GROWTH_BANDS):
        errors = score(cases, sigma, fraction, band)
        cost = sum(errors[key] / goal for key, goal in GOALS.items())
        grid.append({"sigma": sigma, "peak_fraction": fraction, "growth_band": list(band),
                     **errors, "cost": cost, "noise_front_px": noise[sigma],
                     "allowed": noise[sigma] < NOISE_FRONT_PX})
    grid.sort(key=lambda entry: (not entry["allowed"], entry["cost"]))
    print(f"{'sigma':>6}{'peak':>6}{'band':>12}{'onset':>8}{'peak':>8}{'length':>8}"
          f"{'speed':>8}{'cost':>7}{'noise':>7}")
    for entry in grid[:10]:
        print(f"{entry['sigma']:6g}{entry['peak_fraction']:6g}{str(entry['growth_band']):>12}"
              f"{entry['onset_frames']:8.2f}{entry['peak_frames']:8.2f}"
              f"{entry['length_relative']:8.2f}{entry['speed_relative']:8.2f}"
              f"{entry['cost']:7.2f}{entry['noise_front_px']:7.1f}")
    print("chosen:", {key: grid[0][key] for key in ("sigma", "peak_fraction", "growth_band")})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cases": len(cases), "renders": args.renders,
                                        "seed": args.seed, "goals": GOALS,
                                        "noise_front_px": noise, "chosen": grid[0],
                                        "grid": grid}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
