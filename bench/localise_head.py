"""A learned measurement head for a rendered jet (issue 27), beside the classical
pipeline (``jetkeras.localise.measure``) and the trivial guesses.

Usage (held out by event, the default; one run per training seed, then pooled)::

    for s in 0 1 2; do
      .venv/bin/python bench/localise_head.py --train 1200 --epochs 12 --seed $s \
          --draw-seed 0 --out bench/results/localise_head_by_event_s$s.json \
          --weights bench/results/localise_head_by_event_s$s.weights.h5
    done
    .venv/bin/python bench/localise_head.py --combine bench/results/localise_head_by_event_s*.json \
        --out bench/results/localise_head_by_event.json

(the recorded run kept training seed 0's weights as ``localise_head_by_event.weights.h5``;
the bundle's head is those weights in LiteRT)::

    .venv/bin/python bench/localise_head.py --train 1200 --epochs 12 --seed 0 \
        --weights bench/results/localise_head_by_event.weights.h5 \
        --export jetkeras/bundled/measure.tflite

``--no-by-event`` gives the old protocol (``bench/results/localise_head.json``: training
and evaluation draw from all catalogue jets, so evaluation events were seen in training).

Split (``--by-event``, default): the catalogue's jets are grouped by ``SOL_event``
(``event_id`` where missing); the groups are shuffled with ``--split-seed`` and a
``--holdout`` fraction (0.2) of them held out. Training renders come only from the
other groups, evaluation draws only from the held-out ones (:func:`split_jets`).

Training data: ``--train`` renders of training jets drawn (with replacement,
``--draw-seed``, default ``--seed``), renderer seeds ``2000 + k`` (the evaluation uses
``1000 + seed`` and the bundle trained on 0), each reduced to
:func:`jetkeras.localise.head_features` and cached with the renderer's truth
(:func:`jetkeras.synthetic.jet_truth`) in ``--cache``. The head
(:func:`jetkeras.localise.build_head`) is trained for ``--epochs`` on CPU, initialised and
augmented with ``--seed``.

Evaluation: the protocol of ``bench/localise.py`` (per seed, ``--jets`` jets drawn with
that seed from the evaluation jets, renderer seed ``1000 + seed``, only those the bundled
model calls jets), with the classical pipeline, the learned head and the trivial guesses
(cutout centre; radially outward) scored on the same cubes. Median errors per seed,
mean ± std over seeds. Column ``front``: the head's base and direction, with onset, peak,
length and speed from the classical time-distance front sampled along them
(``measure_learned(..., timing="front")``; the held-out cubes are re-rendered for it).
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
TRUTH_KEYS = ("base_row", "base_col", "direction_deg", "onset_frame", "peak_frame",
              "length_arcsec", "speed_arcsec_s", "width_arcsec")


def _angle_error(a_deg, b_deg):
    return np.abs((np.asarray(a_deg) - np.asarray(b_deg) + 180.0) % 360.0 - 180.0)


def _record(cube) -> dict:
    from jetkeras.synthetic import jet_truth

    truth = jet_truth(cube)
    meta = cube.meta
    return {**{key: float(truth[key]) for key in TRUTH_KEYS},
            "pixel": float(meta["pixel_scale_arcsec"]),
            "step_s": float(meta["cadence_s"] / meta["frame_repeat"]),
            "radial_deg": math.degrees(math.atan2(meta["basepoint_y_arcsec"],
                                                  meta["basepoint_x_arcsec"])) % 360.0}


def split_jets(by_event: bool = True, holdout: float = 0.2, split_seed: int = 0):
    """The catalogue's jets as (training, held-out) tables.

    ``by_event``: the groups of ``SOL_event`` (``event_id`` where it is missing), shuffled
    with ``split_seed``; the first ``holdout`` fraction of groups is held out, so no event
    of the evaluation is ever rendered for training. Without it, both are all the jets
    (the old protocol: evaluation events were seen in training).
    """
    from jetkeras.catalogue import load_events

    jets = load_events().query("label == 1").reset_index(drop=True)
    if not by_event:
        return jets, jets
    groups = jets["SOL_event"].astype(object).where(jets["SOL_event"].notna(),
                                                    "id:" + jets["event_id"].astype(str))
    names = np.array(sorted(groups.astype(str).unique()))
    np.random.default_rng(split_seed).shuffle(names)
    held = set(names[:int(round(holdout * len(names)))])
    mask = groups.astype(str).isin(held).to_numpy()
    return jets[~mask].reset_index(drop=True), jets[mask].reset_index(drop=True)


def build_training_cache(path: Path, count: int, seed: int, jets) -> None:
    """Render ``count`` of ``jets`` (renderer seeds 2000 + k) and save features and truth."""
    from jetkeras.localise import head_features
    from jetkeras.synthetic import render_event

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(jets), count)
    features, records = [], []
    started = time.perf_counter()
    for k, pick in enumerate(picks):
        cube = render_event(jets.iloc[int(pick)], seed=2000 + k)
        features.append(head_features(cube.frames).astype(np.float16))
        records.append(_record(cube))
        if (k + 1) % 100 == 0:
            print(f"  rendered {k + 1}/{count} in {time.perf_counter() - started:.0f} s",
                  flush=True)
    np.savez(path, features=np.stack(features),
             **{key: np.array([r[key] for r in records]) for key in records[0]})


def _eval_events(jets, seed: int, jets_count: int):
    """One evaluation seed's draw from the held-out ``jets``."""
    return jets.sample(min(jets_count, len(jets)), random_state=seed)


def build_eval_cache(path: Path, seed: int, jets_count: int, jets) -> None:
    """The held-out jets of one seed (bench/localise.py protocol), with the classical
    pipeline's measurement of each, so the head can be re-scored without re-rendering."""
    from localise import called_jets  # bench/localise.py: the same held-out cubes

    from jetkeras.localise import head_features, measure
    from jetkeras.runtime import load_predictor

    predictor = load_predictor(runtime="litert")
    events = _eval_events(jets, seed, jets_count)
    features, records = [], []
    for cube in called_jets(events, seed, predictor):
        record = _record(cube)
        found = measure(cube.frames)
        classical = ([found.base_row, found.base_col, found.direction_deg,
                      found.onset_frame, found.peak_frame, found.length_px,
                      found.speed_px_per_frame] if found is not None else [np.nan] * 7)
        record.update({f"classical_{i}": float(v) for i, v in enumerate(classical)})
        features.append(head_features(cube.frames).astype(np.float16))
        records.append(record)
    np.savez(path, features=np.stack(features),
             **{key: np.array([r[key] for r in records]) for key in records[0]})


def _targets(data, size: int) -> dict:
    """Training targets on the head's grid (see ``jetkeras.localise.build_head``)."""
    rows = (data["base_row"] - 0.5) / 2.0
    cols = (data["base_col"] - 0.5) / 2.0
    angle = np.radians(data["direction_deg"])
    length_px = data["length_arcsec"] / data["pixel"]
    speed_px = data["speed_arcsec_s"] * data["step_s"] / data["pixel"]
    return {"rows": rows, "cols": cols, "dir": np.stack([np.cos(angle), np.sin(angle)], 1),
            "reg": np.stack([data["onset_frame"] / 10.0, data["peak_frame"] / 10.0,
                             np.log1p(length_px), np.log(speed_px)], 1)}


def _augment(features, targets, rng, size: int):
    """One random element of the square's symmetry group per sample (transpose, then
    flips), applied to the features, base point and direction alike."""
    x = features.copy()
    rows, cols = targets["rows"].copy(), targets["cols"].copy()
    d = targets["dir"].copy()  # (cos, sin) = (d_col, d_row)
    transpose = rng.random(len(x)) < 0.5
    flip_rows = rng.random(len(x)) < 0.5
    flip_cols = rng.random(len(x)) < 0.5
    x[transpose] = np.swapaxes(x[transpose], 1, 2)
    rows[transpose], cols[transpose] = cols[transpose], rows[transpose].copy()
    d[transpose] = d[transpose][:, ::-1]
    x[flip_rows] = x[flip_rows][:, ::-1]
    rows[flip_rows] = size - 1 - rows[flip_rows]
    d[flip_rows, 1] *= -1
    x[flip_cols] = x[flip_cols][:, :, ::-1]
    cols[flip_cols] = size - 1 - cols[flip_cols]
    d[flip_cols, 0] *= -1
    return x, rows, cols, d


def _heat_target(rows, cols, size: int, sigma: float = 1.0) -> np.ndarray:
    grid = np.arange(size, dtype=np.float32)
    r = np.exp(-0.5 * ((grid[None] - np.clip(rows, 0, size - 1)[:, None]) / sigma) ** 2)
    c = np.exp(-0.5 * ((grid[None] - np.clip(cols, 0, size - 1)[:, None]) / sigma) ** 2)
    heat = (r[:, :, None] * c[:, None, :]).reshape(len(rows), -1)
    return (heat / heat.sum(axis=1, keepdims=True)).astype(np.float32)


def train(data, epochs: int, seed: int, weights: Path):
    import keras

    from jetkeras.localise import SPIRE_GRID_PX, build_head

    keras.utils.set_random_seed(seed)
    features = data["features"].astype(np.float32)
    size = features.shape[1]
    targets = _targets(data, size)
    model = build_head(size)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * int(
        math.ceil(len(features) / 32)), alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss={"heat": "categorical_crossentropy",
                        "spire": "categorical_crossentropy", "base": keras.losses.Huber(2.0),
                        "dir": "mse", "reg": keras.losses.Huber(0.5)},
                  loss_weights={"heat": 1.0, "spire": 1.0, "base": 0.2, "dir": 2.0, "reg": 1.0})
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        x, rows, cols, d = _augment(features, targets, rng, size)
        history = model.fit(x, {"heat": _heat_target(rows, cols, size),
                                "spire": _heat_target(rows + SPIRE_GRID_PX * d[:, 1],
                                                      cols + SPIRE_GRID_PX * d[:, 0], size),
                                "base": np.stack([rows, cols], 1).astype(np.float32),
                                "dir": d.astype(np.float32),
                                "reg": targets["reg"].astype(np.float32)},
                            batch_size=32, epochs=1, verbose=0, shuffle=True)
        logs = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
        print(f"  epoch {epoch + 1}/{epochs} {time.perf_counter() - started:.0f} s {logs}",
              flush=True)
    weights.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(weights))
    return model, time.perf_counter() - started


def score(data, model) -> dict:
    """Median errors of the classical pipeline, the head and the trivial guesses."""
    from jetkeras.localise import _measurement_from_head

    size = data["features"].shape[1]
    out = model.predict(data["features"].astype(np.float32), batch_size=32, verbose=0)
    n = len(data["base_row"])
    learned = [_measurement_from_head({k: np.asarray(v)[i] for k, v in out.items()},
                                      size, pool=2, frames=30) for i in range(n)]
    truth = {key: data[key] for key in TRUTH_KEYS}
    pixel, step = data["pixel"], data["step_s"]
    centre = (data["features"].shape[1] * 2 - 1) / 2.0
    errors = {"centre_base_px": np.hypot(truth["base_row"] - centre, truth["base_col"] - centre),
              "radial_direction_deg": _angle_error(data["radial_deg"], truth["direction_deg"])}
    classical = np.stack([data[f"classical_{i}"] for i in range(7)], 1)
    mine = np.array([[m.base_row, m.base_col, m.direction_deg, m.onset_frame, m.peak_frame,
                      m.length_px, m.speed_px_per_frame] for m in learned])
    for name, values in (("classical", classical), ("learned", mine)):
        ok = ~np.isnan(values[:, 0])
        v = values[ok]
        t = {key: truth[key][ok] for key in truth}
        has_length = t["length_arcsec"] > 0
        errors[f"{name}_base_px"] = np.hypot(v[:, 0] - t["base_row"], v[:, 1] - t["base_col"])
        errors[f"{name}_direction_deg"] = _angle_error(v[:, 2], t["direction_deg"])
        errors[f"{name}_onset_frames"] = np.abs(v[:, 3] - t["onset_frame"])
        errors[f"{name}_peak_frames"] = np.abs(v[:, 4] - t["peak_frame"])
        errors[f"{name}_length_relative"] = (np.abs(v[has_length, 5] * pixel[ok][has_length]
                                                    - t["length_arcsec"][has_length])
                                             / t["length_arcsec"][has_length])
        errors[f"{name}_speed_relative"] = (np.abs(v[:, 6] * pixel[ok] / step[ok]
                                                   - t["speed_arcsec_s"])
                                            / t["speed_arcsec_s"])
        errors[f"{name}_measured_fraction"] = np.array([ok.mean()])
    medians = {key: float(np.median(values)) for key, values in errors.items()}
    medians["called_jets"] = n
    return medians


def score_front(seed: int, jets_count: int, weights: Path, jets) -> dict:
    """Re-render one seed's held-out jets and score ``measure_learned(timing="front")``:
    the head's base and direction, timing/length/speed from the classical front."""

    from localise import called_jets  # bench/localise.py: the same held-out cubes

    from jetkeras.localise import measure_learned
    from jetkeras.runtime import load_predictor

    predictor = load_predictor(runtime="litert")
    events = _eval_events(jets, seed, jets_count)
    errors = {key: [] for key in ("onset_frames", "peak_frames", "length_relative",
                                  "speed_relative", "width_relative")}
    for cube in called_jets(events, seed, predictor):
        t = _record(cube)
        found = measure_learned(cube.frames, weights, timing="front")
        errors["onset_frames"].append(abs(found.onset_frame - t["onset_frame"]))
        errors["peak_frames"].append(abs(found.peak_frame - t["peak_frame"]))
        if t["length_arcsec"] > 0:
            errors["length_relative"].append(abs(found.length_px * t["pixel"]
                                                 - t["length_arcsec"]) / t["length_arcsec"])
        errors["speed_relative"].append(abs(found.speed_px_per_frame * t["pixel"] / t["step_s"]
                                            - t["speed_arcsec_s"]) / t["speed_arcsec_s"])
        errors["width_relative"].append(abs(found.width_px * t["pixel"] - t["width_arcsec"])
                                        / t["width_arcsec"])
    return {f"front_{key}": float(np.median(values)) for key, values in errors.items()}


ROWS = ["base_px", "direction_deg", "onset_frames", "peak_frames", "length_relative",
        "speed_relative", "width_relative", "measured_fraction"]
TRIVIAL = {"base_px": "centre_base_px", "direction_deg": "radial_direction_deg"}


def summarise(results) -> dict:
    """Print the table (mean ± std of the per-seed medians in ``results``) and return it."""
    names = ("classical", "learned", "front", "trivial")
    print(f"{'':22}" + "".join(f"{name:>16}" for name in names) + f"{'goal':>7}")
    summary = {}
    for row in ROWS:
        cells = []
        for name in names:
            key = TRIVIAL.get(row) if name == "trivial" else f"{name}_{row}"
            if name == "front" and row in ("base_px", "direction_deg", "measured_fraction"):
                key = f"learned_{row}"  # the head's own base and direction
            if row == "width_relative" and name != "front":
                key = None  # only the front along the head measures a width
            if key is None:
                cells.append(f"{'-':>16}")
                continue
            values = [r[key] for r in results]
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                            "per_seed": values}
            cells.append(f"{np.mean(values):9.2f} ± {np.std(values):4.2f}")
        goal = GOALS.get(row)
        print(f"{row:22}" + "".join(cells) + (f"{goal:7g}" if goal else ""))
    print("front: the head's base and direction, timing/length/speed from the classical "
          "time-distance front along them")
    print("called jets per seed:", [r["called_jets"] for r in results])
    return summary


def combine(paths, out) -> int:
    """Pool the per-seed figures of several training runs (one JSON each)."""
    runs = [json.loads(Path(path).read_text()) for path in paths]
    results = [{**r, "training_seed": run["training"]["seed"]} for run in runs
               for r in run["seeds"]]
    print(f"{len(runs)} training seeds {[run['training']['seed'] for run in runs]} x "
          f"evaluation seeds {[r['seed'] for r in runs[0]['seeds']]}: mean ± std over all")
    summary = summarise(results)
    for key in sorted({k for r in results for k in r if k.startswith("before_")}):
        values = [r[key] for r in results if key in r]
        summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                        "per_seed": values}
        print(f"{key:42} {np.mean(values):5.2f} ± {np.std(values):4.2f}")
    by_training = {}
    for run in runs:
        print(f"training seed {run['training']['seed']}:")
        by_training[run["training"]["seed"]] = summarise(run["seeds"])
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "summary": summary, "goals": GOALS,
            "note": "mean ± std over every (training seed, evaluation seed) pair's medians",
            "by_training_seed": by_training, "seeds": results,
            "runs": [{"file": str(path), "training": run["training"],
                      "split": run.get("split")} for path, run in zip(paths, runs)]},
            indent=1) + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="evaluation draws and renderer seeds (1000 + seed)")
    parser.add_argument("--jets", type=int, default=60, help="jets per evaluation seed")
    parser.add_argument("--train", type=int, default=1500, help="training renders")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0,
                        help="training initialisation and augmentation")
    parser.add_argument("--draw-seed", type=int, default=None,
                        help="which training renders (default: --seed)")
    parser.add_argument("--by-event", action=argparse.BooleanOptionalAction, default=True,
                        help="hold out whole events (SOL_event groups) for evaluation; "
                             "--no-by-event: train and evaluate on all jets (old protocol)")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="fraction of event groups held out (--by-event)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="shuffle of event groups before the split (--by-event)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/jethead"),
                        help="where rendered features are cached (npz)")
    parser.add_argument("--weights", type=Path,
                        default=ROOT / "bench" / "results" / "localise_head.weights.h5")
    parser.add_argument("--skip-training", action="store_true",
                        help="score the weights already at --weights")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--export", type=Path,
                        help="only convert --weights to LiteRT here (the bundle's "
                             "jetkeras/bundled/measure.tflite) with measure.json beside it")
    parser.add_argument("--combine", type=Path, nargs="+",
                        help="only pool these runs' JSON (one per training seed) into --out")
    args = parser.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out)
    if args.export:
        import hashlib

        from jetkeras.localise import write_head_litert

        digest = hashlib.sha256(args.weights.read_bytes()).hexdigest()[:12]
        size = write_head_litert(args.weights, args.export, record={
            "weights": str(args.weights.resolve().relative_to(ROOT)),
            "weights_sha256": digest,
            "trained_by": f"bench/localise_head.py --train {args.train} --epochs "
                          f"{args.epochs} --seed {args.seed} (by event: "
                          f"{1 - args.holdout:.0%} of SOL_event groups, split seed "
                          f"{args.split_seed})",
            "figures": "bench/results/localise_head_by_event.json",
            "timing_tuned_by": "bench/localise_timing.py (training events only): "
                               "bench/results/localise_timing.json"})
        print(f"wrote {args.export} ({size / 1e6:.2f} MB) from {args.weights}")
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    draw_seed = args.seed if args.draw_seed is None else args.draw_seed
    train_jets, eval_jets = split_jets(args.by_event, args.holdout, args.split_seed)
    tag = f"_event{args.holdout:g}s{args.split_seed}" if args.by_event else ""
    if args.by_event:
        print(f"split by event: {len(train_jets)} training jets, {len(eval_jets)} held-out "
              f"jets ({eval_jets['SOL_event'].nunique()} held-out event groups)")
    train_path = args.cache / f"train_{args.train}_s{draw_seed}{tag}.npz"
    seconds = None
    if args.skip_training:
        from jetkeras.localise import build_head

        model = build_head()
        model.load_weights(str(args.weights))
    else:
        if not train_path.exists():
            build_training_cache(train_path, args.train, draw_seed, train_jets)
        model, seconds = train(dict(np.load(train_path)), args.epochs, args.seed,
                               args.weights)
        print(f"trained on {args.train} renders in {seconds:.0f} s; weights {args.weights}")
    results = []
    for seed in args.seeds:
        path = args.cache / (f"eval_{seed}{tag}.npz" if args.jets == 60 else
                             f"eval_{seed}_{args.jets}{tag}.npz")
        if not path.exists():
            build_eval_cache(path, seed, args.jets, eval_jets)
        results.append({"seed": seed, **score(dict(np.load(path)), model),
                        **score_front(seed, args.jets, args.weights, eval_jets)})
    summary = summarise(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "seeds": results, "summary": summary, "goals": GOALS,
            "training": {"renders": args.train, "epochs": args.epochs, "seed": args.seed,
                         "draw_seed": draw_seed, "seconds": seconds,
                         "weights": str(args.weights)},
            "split": {"by_event": args.by_event, "holdout": args.holdout,
                      "split_seed": args.split_seed, "training_jets": len(train_jets),
                      "held_out_jets": len(eval_jets),
                      "training_event_groups": int(train_jets["SOL_event"].nunique()),
                      "held_out_event_groups": int(eval_jets["SOL_event"].nunique())}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
