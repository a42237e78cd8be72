"""Soak test of ``predict``: 10,000 small cubes in one process, memory and speed.

Usage::

    .venv/bin/python bench/soak.py --out bench/results/soak.json
    .venv/bin/python bench/soak.py --cubes 2000 --chunk 250     # a quicker look

What it does, on this machine's CPU, in one process:

1. Trains the tiny preset one epoch on 24 rendered sequences of 4 frames of 32x32 (a real
   run folder with ``model.tflite``; in a child process, so this one never imports
   TensorFlow), and writes ``--cubes`` distinct ``jetkeras-cube/1``
   files of that geometry with frame times (renders with fresh noise per copy), so every
   cube goes the whole way: read, time grid, quality flags, row.
2. Scores them with :func:`jetkeras.predict.predict_cubes` (one loaded Predictor, LiteRT)
   in chunks of ``--chunk`` cubes, and records the resident memory (RSS, psutil) after
   each chunk. The goal: RSS grows by less than 50 MB from the end of the first 500 cubes
   to the end of the run.
3. Baseline in the same run: the same cubes' frames, already in memory, through
   ``Predictor.predict_proba`` alone (no reading, no grid, no flags, no rows), so the
   ratio says what the whole path costs per cube over the bare network.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GOAL_MB = 50.0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def write_cubes(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` distinct cubes: 50 renders, each copy with its own Poisson-like noise."""
    from jetkeras.catalogue import load_events
    from jetkeras.cube import Cube
    from jetkeras.io import write_cube
    from jetkeras.synthetic import render_event

    rng = np.random.default_rng(seed)
    events = load_events().sample(50, random_state=seed)
    renders = [render_event(event, frames=4, size=32, seed=seed)
               for _, event in events.iterrows()]
    paths = []
    for number in range(count):
        base = renders[number % len(renders)]
        frames = np.maximum(base.frames + rng.normal(0, 2.0, base.frames.shape), 0)
        paths.append(write_cube(folder / f"cube{number:05d}.npz",
                                Cube(frames=frames.astype(np.float32), source="soak",
                                     times=base.times, meta=dict(base.meta))))
    return paths


def soak(paths: list[Path], model: Path, chunk: int) -> dict:
    """Score ``paths`` chunk by chunk in this process; RSS after each chunk."""
    from jetkeras.predict import predict_cubes, prepare
    from jetkeras.runtime import load_predictor

    predictor = load_predictor(model, runtime="litert")
    samples = []
    started = time.perf_counter()
    for first in range(0, len(paths), chunk):
        rows = predict_cubes(cubes=paths[first:first + chunk], model=predictor,
                             progress=False)
        if len(rows) != len(paths[first:first + chunk]):
            raise RuntimeError("soak: a chunk lost rows")
        samples.append({"cubes": first + len(rows), "rss_mb": round(_rss_mb(), 1),
                        "seconds": round(time.perf_counter() - started, 2)})
    seconds = time.perf_counter() - started
    # The baseline: the network alone on the same frames, already in memory.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stack = np.stack([prepare(path, predictor).window(0, predictor.frames)
                          for path in paths[:chunk]])
    repeats = max(1, len(paths) // len(stack))
    started = time.perf_counter()
    for _ in range(repeats):
        predictor.predict_proba(stack, batch_size=16)
    bare = time.perf_counter() - started
    return {"samples": samples, "seconds": seconds,
            "cubes_per_s": len(paths) / seconds,
            "network_only_cubes_per_s": repeats * len(stack) / bare}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cubes", type=int, default=10_000, help="cubes to score; default "
                                                                  "10000")
    parser.add_argument("--chunk", type=int, default=500, help="cubes per predict_cubes "
                                                               "call (and per RSS sample); "
                                                               "default 500")
    parser.add_argument("--seed", type=int, default=0, help="renders and noise; default 0")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # Trained in a child process, so that this one never imports TensorFlow: the
        # soak measures predict as a LiteRT user runs it.
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); "
                        "from pathlib import Path; from predict import tiny_run; "
                        f"tiny_run(Path({str(scratch / 'tiny')!r}))"],
                       cwd=ROOT, check=True, capture_output=True)
        model = scratch / "tiny" / "run"
        paths = write_cubes(scratch / "cubes", args.cubes, args.seed)
        result = soak(paths, model, args.chunk)
    samples = result["samples"]
    after_first = next(s for s in samples if s["cubes"] >= min(500, args.cubes))
    growth = samples[-1]["rss_mb"] - after_first["rss_mb"]
    result.update({
        "tensorflow_imported": "tensorflow" in sys.modules,
        "machine": f"{os.cpu_count()} CPU cores", "cubes": args.cubes, "chunk": args.chunk,
        "rss_after_first_500_mb": after_first["rss_mb"], "rss_end_mb": samples[-1]["rss_mb"],
        "rss_growth_mb": round(growth, 1), "goal_mb": GOAL_MB, "met": growth < GOAL_MB,
        "ratio_to_network_only": result["cubes_per_s"] / result["network_only_cubes_per_s"],
    })
    print(f"{args.cubes} cubes in {result['seconds']:.1f} s: {result['cubes_per_s']:.0f} "
          f"cubes/s through predict_cubes, {result['network_only_cubes_per_s']:.0f} cubes/s "
          f"for the network alone (ratio {result['ratio_to_network_only']:.2f})")
    print(f"RSS {after_first['rss_mb']:.1f} MB after {after_first['cubes']} cubes, "
          f"{samples[-1]['rss_mb']:.1f} MB at the end: growth {growth:+.1f} MB "
          f"(goal < {GOAL_MB:g} MB: {'met' if growth < GOAL_MB else 'NOT met'})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
