"""Benchmark the synthetic renderer: seconds per cube on one core, and its difficulty.

Renders ``--count`` cubes of the real catalogue at ``--frames x --size x --size`` with
NumPy's threads pinned to one core, prints the seconds per cube and their ratio to the
0.2 s goal, then the best single brightness/variance feature ROC AUC
(:func:`jetkeras.baseline.best_feature_auc`) on ``--auc-events`` jets plus as many
negatives drawn at random (seeded) from the catalogue.

Examples::

    python bench/render.py                      # 20 cubes of 30x166x166, AUC on 200+200
    python bench/render.py --count 5 --auc-events 50 --size 48 --frames 16
"""

from __future__ import annotations

import os

# One core: must be set before NumPy (and its BLAS) is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import time

import pandas as pd

from jetkeras._cli import add_seed_flag, run_main

GOAL_SECONDS_PER_CUBE = 0.2


def run_benchmark(*, count: int = 20, size: int = 166, frames: int = 30, seed: int = 0,
                  auc_events: int = 200) -> dict[str, float | str]:
    """Time the renderer and measure the brightness baseline; print and return the figures."""
    from jetkeras.baseline import feature_aucs
    from jetkeras.catalogue import load_events
    from jetkeras.synthetic import render_event, render_events

    if count < 1:
        raise ValueError(f"--count: expected at least 1 cube, received {count}")
    if auc_events < 2:
        raise ValueError(f"--auc-events: expected at least 2 per class, received {auc_events}")
    events = load_events()
    timed = events.sample(n=min(count, len(events)), random_state=seed)
    render_event(timed.iloc[0], frames=frames, size=size, seed=seed)  # warm-up (imports, caches)
    start = time.perf_counter()
    for _cube in render_events(timed, frames=frames, size=size, seed=seed):
        pass
    seconds = (time.perf_counter() - start) / len(timed)
    print(f"render: {seconds:.4f} s per {frames}x{size}x{size} cube on one core "
          f"({len(timed)} cubes); {seconds / GOAL_SECONDS_PER_CUBE:.2f} x the "
          f"{GOAL_SECONDS_PER_CUBE} s goal")

    chosen = pd.concat([
        events[events["label"] == label].sample(n=auc_events, random_state=seed)
        for label in (1, 0)
    ])
    start = time.perf_counter()
    cubes = list(render_events(chosen, frames=frames, size=size, seed=seed))
    aucs = feature_aucs(cubes, chosen["label"].to_numpy())
    elapsed = time.perf_counter() - start
    ranked = sorted(aucs.items(), key=lambda item: -item[1])
    for name, auc in ranked:
        print(f"  {name:22s} AUC {auc:.3f}")
    best_name, best_auc = ranked[0]
    means = [float(cube.frames.mean()) for cube in cubes]
    stds = [float(cube.frames.std()) for cube in cubes]
    print(f"best summary feature on {auc_events} jets + {auc_events} negatives: {best_name} "
          f"AUC {best_auc:.3f} ({elapsed:.1f} s)")
    print(f"mean of per-cube means {sum(means) / len(means):.1f} DN, mean of per-cube stds "
          f"{sum(stds) / len(stds):.1f} DN (the seed's real data: 50.6 and 49.9)")
    return {"seconds_per_cube": seconds, "goal_ratio": seconds / GOAL_SECONDS_PER_CUBE,
            "best_feature": best_name, "best_auc": best_auc}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/render.py", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20,
                        help="cubes rendered for the timing; default 20")
    parser.add_argument("--size", type=int, default=166,
                        help="pixels per side of each frame; default 166")
    parser.add_argument("--frames", type=int, default=30,
                        help="frames per cube (24 s apart); default 30")
    parser.add_argument("--auc-events", type=int, default=200,
                        help="jets and as many negatives rendered for the AUC; default 200")
    add_seed_flag(parser)
    args = parser.parse_args(argv)
    return run_main(lambda: run_benchmark(count=args.count, size=args.size, frames=args.frames,
                                          seed=args.seed, auc_events=args.auc_events),
                    "bench/render.py")


if __name__ == "__main__":
    raise SystemExit(main())
