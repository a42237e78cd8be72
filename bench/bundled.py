"""Benchmark the bundled default model: speed on a CPU and the real-jet check.

Usage::

    .venv/bin/python bench/bundled.py                       # the package's jetkeras/bundled
    .venv/bin/python bench/bundled.py --model RUN --out bench/results/bundled.json

What it measures, on this machine, in one run:

1. **Warm throughput** (cubes/s) of the model on 30x166x166 cubes through
   :class:`jetkeras.runtime.Predictor` (normalisation included), batch 8, median of 5 timed
   calls after 2 warm-up calls: on LiteRT (the default runtime; goal >= 20 cubes/s on a
   2-core CPU, so a survey of thousands of HEK events takes minutes), with the same
   model on TensorFlow as the baseline of the same run.
2. **Cold CLI**: wall time of ``python -m jetkeras.predict cube.npz`` with no ``--model``
   in a fresh process (imports, bundle load, one prediction), median of 3.
3. **Sim-to-real**: :func:`jetkeras.realcheck.real_jet_check` on ``--realjets`` (real
   jets against motion-removed copies of themselves; recall at the stored threshold).
   That folder is for validation only: nothing here trains or chooses anything on it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REALJETS = ROOT.parent / "shared" / "data" / "realjets"
BATCH, WARMUP, TIMED = 8, 2, 5


def _rate(predictor, cubes: np.ndarray) -> float:
    for _ in range(WARMUP):
        predictor.predict_proba(cubes, batch_size=BATCH)
    seconds = []
    for _ in range(TIMED):
        started = time.perf_counter()
        predictor.predict_proba(cubes, batch_size=BATCH)
        seconds.append(time.perf_counter() - started)
    return len(cubes) / statistics.median(seconds)


def _cube(frames: int, size: int) -> np.ndarray:
    from jetkeras.catalogue import load_events
    from jetkeras.synthetic import render_event

    events = load_events()
    return np.stack([render_event(events.iloc[i], frames=frames, size=size, seed=0).frames
                     for i in (0, 1, 900, 901)] * 2)  # (8, T, H, W) DN


def failures_picture(rows: list[dict], realjets: Path, out: Path, count: int = 4) -> None:
    """The lowest-scoring real jet windows and the highest-scoring motion-removed copies.

    Each row of the picture: first, middle and last frame, and the last minus the first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jetkeras.realcheck import load_windows, motion_removed

    windows = {(w["name"], w["start"]): w["frames"] for w in load_windows(realjets)}
    jets = sorted((r for r in rows if r["copy"] == "none"), key=lambda r: r["probability"])
    copies = sorted((r for r in rows if r["copy"] != "none"),
                    key=lambda r: -r["probability"])
    chosen = jets[:count] + copies[:count]
    figure, axes = plt.subplots(len(chosen), 4, figsize=(8, 2.1 * len(chosen)))
    rng = np.random.default_rng(0)
    for line, row in zip(axes, chosen):
        frames = windows[(row["name"], row["start"])]
        if row["copy"] != "none":  # redrawn: the same construction, not the scored copy
            frames = motion_removed(frames, row["copy"], rng)
        top = np.percentile(frames, 99.5)
        for axis, index in zip(line[:3], (0, len(frames) // 2, len(frames) - 1)):
            axis.imshow(np.clip(frames[index], 0, top) ** 0.5, cmap="gray")
            axis.set_title(f"frame {index}", fontsize=7)
        change = frames[-1] - frames[0]
        limit = np.percentile(np.abs(change), 99) or 1.0
        line[3].imshow(change, cmap="RdBu_r", vmin=-limit, vmax=limit)
        line[3].set_title("last - first", fontsize=7)
        line[0].set_ylabel(f"{row['name']}\n{row['copy']} p={row['probability']:.2f}",
                           fontsize=7)
        for axis in line:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.suptitle("lowest-scoring real jets (top), highest-scoring motion-removed copies",
                    fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=70)
    plt.close(figure)


def main(argv=None) -> None:
    from jetkeras.bundle import BUNDLED_MODEL
    from jetkeras.io import write_cube
    from jetkeras.cube import Cube
    from jetkeras.runtime import load_predictor
    from jetkeras.realcheck import real_jet_check

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL,
                        help="model folder; default the bundled model")
    parser.add_argument("--realjets", type=Path, default=REALJETS)
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    litert = load_predictor(args.model, runtime="litert")
    cubes = _cube(litert.frames, litert.size)
    results = {"model": str(args.model), "geometry": [litert.frames, litert.size],
               "cores": os.cpu_count()}
    results["litert_cubes_per_s"] = _rate(litert, cubes)
    results["tensorflow_cubes_per_s"] = _rate(load_predictor(args.model, runtime="tensorflow"),
                                              cubes)
    results["litert_over_tensorflow"] = (results["litert_cubes_per_s"]
                                         / results["tensorflow_cubes_per_s"])
    print(json.dumps(results), flush=True)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cube.npz"
        write_cube(path, Cube(cubes[0], source="bench"))
        command = [sys.executable, "-m", "jetkeras.predict", str(path), "--quiet"]
        if args.model != BUNDLED_MODEL:
            command += ["--model", str(args.model)]
        walls = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
            walls.append(time.perf_counter() - started)
    results["cold_cli_seconds"] = statistics.median(walls)

    if args.realjets.is_dir():
        check = real_jet_check(litert, args.realjets, seed=0)
        rows = check.pop("rows")
        results["realjets"] = check
        if args.out:
            failures_picture(rows, args.realjets, args.out.with_suffix(".png"))
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
