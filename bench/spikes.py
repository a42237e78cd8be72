"""Single-frame spikes and exposure jumps on real cubes: how far do they move a score?
(issue 30, robustness that follows from physics).

Usage::

    .venv/bin/python bench/spikes.py --realjets ../shared/data/realjets --seeds 0 1 2 \
        --out bench/results/spikes.json

The cubes: every 30-frame window of the ``chain_*`` sequences of the real-jet folder
(:func:`jetkeras.realcheck.load_windows`) and, for each, its two motion-removed copies
(frozen and shuffled, :func:`jetkeras.realcheck.motion_removed`). Validation only:
nothing is fitted or chosen on them.

- **Spikes** (cosmic rays, energetic-particle snow): 1-5 per frame, each one pooled pixel
  or two side by side, in one frame only, adding 300-3,000 DN (a hit on AIA's CCD seen
  after the seed's 3x3 max-pooling), capped at AIA's 16,383 DN saturation.
- **Exposure jump** (automatic exposure control near a flare): one run of 1-4
  consecutive frames whose every pixel is multiplied by 0.3-0.6 (a shorter exposure),
  then the level returns.

For each seed (the spikes' and jumps' random draws), every cube is scored by the bundled
model (LiteRT) clean and perturbed, with the predictor's cleaning on and off
(:func:`jetkeras.runtime.clean_frames`: one brightness level per window, then
:func:`jetkeras.preprocess.despike`), and the largest and the 99th percentile absolute
change of probability are reported; the goal is at most 0.02.

The cleaning is judged on renders, not on the real set: ``--rendered`` catalogue events
(half jets, half jet-free intervals; renderer seed ``1000 + seed``, never the bundle's 0)
are scored clean, spiked and jumped, with the cleaning on and off: the rendered AUC and
recall at the stored threshold must not fall with it on clean renders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SATURATION_DN = 16383.0
SPIKE_DN = (300.0, 3000.0)
JUMP_FACTOR = (0.3, 0.6)


def add_spikes(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-5 single-frame spikes in every frame (module docstring)."""
    out = frames.copy()
    count, height, width = frames.shape
    for index in range(count):
        for _ in range(int(rng.integers(1, 6))):
            row, col = int(rng.integers(0, height)), int(rng.integers(0, width - 1))
            cols = [col, col + 1] if rng.random() < 0.5 else [col]
            out[index, row, cols] = np.minimum(out[index, row, cols] + rng.uniform(*SPIKE_DN),
                                               SATURATION_DN)
    return out


def exposure_jump(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One run of 1-4 frames at a shorter exposure (module docstring)."""
    out = frames.copy()
    length = int(rng.integers(1, 5))
    start = int(rng.integers(1, frames.shape[0] - length))
    out[start:start + length] *= rng.uniform(*JUMP_FACTOR)
    return out


def cubes(folder: Path, seed: int):
    """The chain windows and their motion-removed copies, as (kind, frames)."""
    from jetkeras.realcheck import load_windows, motion_removed

    rng = np.random.default_rng(seed)
    for window in load_windows(folder):
        if window["kind"] != "chain":
            continue
        yield "jet", window["frames"]
        for kind in ("frozen", "shuffled"):
            yield kind, motion_removed(window["frames"], kind, rng)


def rendered(count: int, seed: int):
    """``count`` rendered events, half jets and half jet-free intervals: (labels, frames)."""
    from jetkeras.catalogue import load_events
    from jetkeras.synthetic import render_event

    events = load_events()
    picks = [events.query("label == 1").sample(count // 2, random_state=seed),
             events.query("label == 0").sample(count - count // 2, random_state=seed)]
    labels, frames = [], []
    for table in picks:
        for _, event in table.iterrows():
            cube = render_event(event, seed=1000 + seed)
            labels.append(int(event["label"]))
            frames.append(cube.frames)
    return np.array(labels), frames


def rendered_scores(predictor, labels, frames) -> dict:
    from sklearn.metrics import roc_auc_score

    probabilities = predictor.predict_proba(np.stack(frames))
    called = probabilities >= predictor.threshold
    return {"auc": float(roc_auc_score(labels, probabilities)),
            "recall": float(called[labels == 1].mean()),
            "flagged_negatives": float(called[labels == 0].mean())}


def changes(predictor, clean, perturbed) -> dict:
    before = predictor.predict_proba(np.stack(clean))
    after = predictor.predict_proba(np.stack(perturbed))
    moved = np.abs(after - before)
    return {"max": float(moved.max()), "p99": float(np.percentile(moved, 99)),
            "median": float(np.median(moved)),
            "called_before": int((before >= predictor.threshold).sum()),
            "called_after": int((after >= predictor.threshold).sum())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realjets", type=Path,
                        default=ROOT.parent / "shared" / "data" / "realjets")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rendered", type=int, default=120,
                        help="rendered events per seed for the renders' check (0: skip)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from jetkeras.runtime import load_predictor

    results = []
    for seed in args.seeds:
        rng = np.random.default_rng(1000 + seed)
        clean = [frames for _, frames in cubes(args.realjets, seed)]
        spiked = [add_spikes(frames, rng) for frames in clean]
        jumped = [exposure_jump(frames, rng) for frames in clean]
        row = {"seed": seed, "cubes": len(clean)}
        for despike in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictor = load_predictor(runtime="litert", despike=despike)
            tag = "despike" if despike else "raw"
            row[f"spikes_{tag}"] = changes(predictor, clean, spiked)
            row[f"jump_{tag}"] = changes(predictor, clean, jumped)
            if despike:
                # What the step itself does to cubes without spikes.
                raw = load_predictor(runtime="litert", despike=False)
                row["despike_on_clean"] = {
                    "max": float(np.abs(predictor.predict_proba(np.stack(clean))
                                        - raw.predict_proba(np.stack(clean))).max())}
            if args.rendered:
                if not despike:
                    labels, frames = rendered(args.rendered, seed)
                    spiked_renders = [add_spikes(f, rng) for f in frames]
                    jumped_renders = [exposure_jump(f, rng) for f in frames]
                row[f"rendered_{tag}"] = {
                    "clean": rendered_scores(predictor, labels, frames),
                    "spiked": rendered_scores(predictor, labels, spiked_renders),
                    "jumped": rendered_scores(predictor, labels, jumped_renders)}
        results.append(row)
        print(json.dumps(row))
    summary = {}
    for key in ("spikes_raw", "spikes_despike", "jump_raw", "jump_despike"):
        values = [r[key]["max"] for r in results]
        summary[key] = {"max_mean": float(np.mean(values)), "max_std": float(np.std(values))}
    summary["despike_on_clean"] = [r["despike_on_clean"]["max"] for r in results]
    if args.rendered:
        for tag in ("raw", "despike"):
            for case in ("clean", "spiked", "jumped"):
                for metric in ("auc", "recall", "flagged_negatives"):
                    values = [r[f"rendered_{tag}"][case][metric] for r in results]
                    summary[f"rendered_{tag}_{case}_{metric}"] = {
                        "mean": float(np.mean(values)), "std": float(np.std(values))}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"seeds": results, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
