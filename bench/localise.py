"""How well ``jetkeras.localise.measure`` finds a rendered jet: base, direction, timing,
length, speed, beside two trivial guesses.

Usage::

    .venv/bin/python bench/localise.py --seeds 0 1 2 --jets 60 --out bench/results/localise.json

For each seed, ``--jets`` jets of the bundled catalogue (drawn with that seed) are
rendered at the seed geometry (30 frames of 166x166, 24 s; renderer seed ``1000 + seed``,
never the bundle's training seed 0), scored by the bundled model, and measured; only
the jets the model calls jets (at its stored threshold) count. The renderer's truth is
:func:`jetkeras.synthetic.jet_truth`. Trivial guesses, in the same run: the cutout's
centre for the base point, and radially outward from disk centre for the direction.

Printed and written per seed, then as mean ± std over the seeds: the median error of the
base point (px), of the direction (degrees), of the onset and peak (frames), and the
median relative error of length and speed; the fraction of jets measured at all.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOALS = {"base_px": 3.0, "direction_deg": 15.0, "onset_frames": 1.5, "peak_frames": 2.0,
         "length_relative": 0.25, "speed_relative": 0.25}


def _angle_error(a_deg: float, b_deg: float) -> float:
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0)


def called_jets(events, seed: int, predictor):
    """Render each event (renderer seed ``1000 + seed``, never the bundle's 0) and yield
    the cubes ``predictor`` calls jets at its threshold: the cubes every localisation
    figure is measured on."""
    import warnings

    from jetkeras.synthetic import render_event

    for _, event in events.iterrows():
        cube = render_event(event, seed=1000 + seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probability = float(predictor.predict_proba(cube.frames[None])[0])
        if probability >= predictor.threshold:
            yield cube


def run_seed(seed: int, jets: int) -> dict:
    """Render, score and measure ``jets`` jets; the medians of every error."""
    from jetkeras.catalogue import load_events
    from jetkeras.localise import measure
    from jetkeras.runtime import load_predictor
    from jetkeras.synthetic import jet_truth

    predictor = load_predictor(runtime="litert")
    events = load_events().query("label == 1").sample(jets, random_state=seed)
    errors: dict[str, list[float]] = {key: [] for key in
                                      ("base_px", "direction_deg", "onset_frames",
                                       "peak_frames", "length_relative", "speed_relative",
                                       "centre_base_px", "radial_direction_deg")}
    called = measured = 0
    seconds = 0.0
    for cube in called_jets(events, seed, predictor):
        called += 1
        truth = jet_truth(cube)
        size = cube.frames.shape[-1]
        errors["centre_base_px"].append(math.hypot(truth["base_row"] - (size - 1) / 2,
                                                   truth["base_col"] - (size - 1) / 2))
        radial = math.degrees(math.atan2(cube.meta["basepoint_y_arcsec"],
                                         cube.meta["basepoint_x_arcsec"])) % 360.0
        errors["radial_direction_deg"].append(_angle_error(radial, truth["direction_deg"]))
        started = time.perf_counter()
        found = measure(cube.frames)
        seconds += time.perf_counter() - started
        if found is None:
            continue
        measured += 1
        pixel = cube.meta["pixel_scale_arcsec"]
        step_s = cube.meta["cadence_s"] / cube.meta["frame_repeat"]
        errors["base_px"].append(math.hypot(found.base_row - truth["base_row"],
                                            found.base_col - truth["base_col"]))
        errors["direction_deg"].append(_angle_error(found.direction_deg,
                                                    truth["direction_deg"]))
        errors["onset_frames"].append(abs(found.onset_frame - truth["onset_frame"]))
        errors["peak_frames"].append(abs(found.peak_frame - truth["peak_frame"]))
        if truth["length_arcsec"] > 0:
            errors["length_relative"].append(
                abs(found.length_px * pixel - truth["length_arcsec"]) / truth["length_arcsec"])
        errors["speed_relative"].append(
            abs(found.speed_px_per_frame * pixel / step_s - truth["speed_arcsec_s"])
            / truth["speed_arcsec_s"])
    medians = {key: float(np.median(values)) if values else None
               for key, values in errors.items()}
    return {"seed": seed, "jets": jets, "called_jets": called, "measured": measured,
            "measured_fraction": measured / called if called else 0.0,
            "seconds_per_measurement": seconds / max(measured, 1), **medians}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="event draws and renderer seeds (1000 + seed); default 0 1 2")
    parser.add_argument("--jets", type=int, default=60, help="jets per seed; default 60")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    results = [run_seed(seed, args.jets) for seed in args.seeds]
    keys = ["base_px", "centre_base_px", "direction_deg", "radial_direction_deg",
            "onset_frames", "peak_frames", "length_relative", "speed_relative",
            "measured_fraction"]
    print(f"{'':24}" + "".join(f"{'seed ' + str(r['seed']):>10}" for r in results)
          + f"{'mean ± std':>18}{'goal':>8}")
    summary = {}
    for key in keys:
        values = [r[key] for r in results if r[key] is not None]
        mean, std = float(np.mean(values)), float(np.std(values))
        summary[key] = {"mean": mean, "std": std}
        goal = GOALS.get(key)
        print(f"{key:24}" + "".join(f"{r[key]:10.3f}" for r in results)
              + f"{mean:11.3f} ± {std:5.3f}" + (f"{goal:8g}" if goal else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seeds": results, "summary": summary,
                                        "goals": GOALS}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
