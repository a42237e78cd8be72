"""The model bake-off: model families x data worlds, mean ± std of test ROC AUC over seeds.

For every seed, one records folder is rendered per geometry (the same recipe for every
family: ``--variants`` fresh renders of each training event, fixed validation and test
renders), every family is trained on it with :func:`jetkeras.train.train` (checkpoint and
threshold on validation only) and scored on four worlds:

(a) ``demo``: the held-out test events at the demo's geometry, 30 frames of 128x128
    (16 frames until round 3, and 64x64 before renderer v2);
(b) ``seed``: the same at the seed's geometry, 30 frames of 166x166 (400 events);
(c) ``nuisance``: the test events of (a) rendered again with settings no model was
    trained on (:class:`jetkeras.synthetic.Nuisance`: 0.4x exposure, 2x noise, 0.6x jet
    contrast, half of the scenes moved onto the limb);
(d) ``real``: the real 304 A jets of ``--realjets`` against motion-removed copies of
    themselves (:mod:`jetkeras.realcheck`), scored by the models trained on renders of
    (a) and (b). That folder is for validation only: nothing here trains on it or
    chooses anything with it.

The brightness baselines (a logistic regression and gradient-boosted trees on
:func:`jetkeras.baseline.summary_features`) are fitted on the same training renders and
scored on the same worlds. Each finished cell is appended to ``cells.jsonl`` in ``--out``,
so an interrupted run resumes where it stopped; ``--table`` prints the markdown table.

Examples::

    python bench/bakeoff.py --worlds demo --seeds 0 1 2            # (a), (c), (d) at 30x128x128
    python bench/bakeoff.py --worlds seed --seeds 0 1 2 --families motion
    python bench/bakeoff.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from jetkeras._cli import quiet_tensorflow, run_main
from jetkeras.config import MODEL_PRESETS
from jetkeras.demo import LIMIT as DEMO_LIMIT
from jetkeras.demo import SPLIT_FRACTIONS as DEMO_SPLIT
from jetkeras.demo import demo_config

REALJETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "realjets"

# The recipe every family is trained with (the defaults of jetkeras.demo / train).
_DEMO = demo_config().data
GEOMETRIES = {  # the demo's records (jetkeras.demo), and issue 12's 400 events at 166 px
    "demo": {"frames": _DEMO.frames, "size": _DEMO.size, "limit": DEMO_LIMIT,
             "split": DEMO_SPLIT},
    "seed": {"frames": 30, "size": 166, "limit": 400, "split": None},
}

# Rows. Each is a change to the default model config; "today" is the pre-bake-off default
# (light td_lstm, flatten, no motion channels) under its old recipe (one render per
# event, 15 epochs, best-val-AUC checkpoint).
# The architecture rows share one recipe (8 renders per training event, 30 epochs,
# warm-up + cosine, last-epoch checkpoint). "light" is the best of the design card's
# family (per-frame CNN + temporal head) under the shipped recipe (demo_config's: 60
# epochs at 128 px, 80 at 166 px, the learned patch stem), the default until renderer
# v2's bake-off; "projection" is the shipped default (per-pixel timing maps + 2-D CNN)
# under the same recipe: what the demo and the bundled model run. Cells named "default"
# in the result files of earlier runs are the "light" row of their day.
_THIRTY = {"train": {"epochs": 30}}
_LIGHT = {**MODEL_PRESETS["light"], "preset": "light"}  # the td_lstm rows start from it
FAMILIES = {
    "today": {"model": {**_LIGHT, "motion": "none", "pooling": "flatten", "input_pool": 1,
                        "temporal": "lstm"},
              "recipe": {"variants": 1, "train": {"epochs": 15, "warmup_fraction": 0.0,
                                                  "checkpoint": "best",
                                                  "early_stopping_patience": 6}}},
    "global_lstm": {"model": {**_LIGHT, "motion": "none", "temporal": "lstm", "widths": (16, 32, 64, 128),
                              "lstm_units": 64, "dense_units": 64}, "recipe": _THIRTY},
    "motion_lstm": {"model": {**_LIGHT, "temporal": "lstm", "widths": (16, 32, 64, 128),
                              "lstm_units": 64, "dense_units": 64}, "recipe": _THIRTY},
    "motion_conv": {"model": {**_LIGHT, "temporal": "conv"}, "recipe": _THIRTY},
    "light": {"model": _LIGHT},
    "projection": {"model": {}},
    "epfl2d": {"model": {"arch": "epfl2d"}, "recipe": {"train": {"batch_size": 4,
                                                                 "learning_rate": 3e-4}}},
}
NUISANCE = {"exposure_scale": 0.4, "noise_scale": 2.0, "contrast_scale": 0.6,
            "limb_fraction": 0.5}


def _records(geometry: str, seed: int, variants: int, root: Path) -> Path:
    from jetkeras.build_records import build_records
    from jetkeras.demo import demo_config

    shape = GEOMETRIES[geometry]
    out = root / f"records_{geometry}_s{seed}_v{variants}"
    config = demo_config(full=geometry == "seed", seed=seed)
    build_records(source="synthetic", out=out, config=config, seed=seed,
                  limit=shape["limit"], workers=2, variants=variants, progress=False,
                  split_fractions=shape["split"])
    return out


def _config(geometry: str, family: str, seed: int):
    from jetkeras.demo import demo_config

    config = demo_config(full=geometry == "seed", seed=seed)
    spec = FAMILIES[family]
    return config.replace(model=spec["model"], train=spec.get("recipe", {}).get("train", {}))



def _nuisance_test(records: Path, geometry: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The test events of ``records`` rendered again under :data:`NUISANCE`."""
    from jetkeras.catalogue import load_events
    from jetkeras.pipeline import iterate_records
    from jetkeras.synthetic import Nuisance, render_event

    events = load_events().set_index("event_id", drop=False)
    ids = [record["event_id"] for record in iterate_records(records, "test")]
    shape = GEOMETRIES[geometry]
    cubes = [render_event(events.loc[event_id], frames=shape["frames"], size=shape["size"],
                          seed=seed, nuisance=Nuisance(**NUISANCE)) for event_id in ids]
    return (np.stack([cube.frames for cube in cubes]),
            np.array([cube.meta["label"] for cube in cubes]))


def _worlds(records: Path, geometry: str, seed: int) -> dict[str, tuple]:
    from jetkeras.pipeline import iterate_records

    test = list(iterate_records(records, "test"))
    # "test": the held-out renders of the cell's own geometry, world (a) or (b).
    worlds = {"test": (np.stack([r["frames"][..., 0] for r in test]),
                       np.array([r["label"] for r in test]))}
    if geometry == "demo":
        worlds["nuisance"] = _nuisance_test(records, geometry, seed)
    return worlds


def _score_model(run: Path, worlds: dict, realjets: Path, seed: int) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    from jetkeras.runtime import load_predictor
    from jetkeras.realcheck import real_jet_check

    predictor = load_predictor(run)
    scores = {world: float(roc_auc_score(labels, predictor.predict_proba(frames)))
              for world, (frames, labels) in worlds.items()}
    if realjets.is_dir():
        real = real_jet_check(predictor, realjets, seed=seed)
        scores.update(real=real["auc"], real_recall=real["recall"])
    return scores


def _score_baselines(records: Path, worlds: dict, realjets: Path, seed: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from jetkeras.baseline import feature_table, fit_baselines, split_features
    from jetkeras.realcheck import load_windows, motion_removed

    started = time.process_time()
    fitted = fit_baselines(*split_features(records, "train"), seed=seed)
    seconds = time.process_time() - started
    real_table = real_labels = None
    if realjets.is_dir():
        rng = np.random.default_rng(seed)
        cubes, real_labels = [], []
        for window in load_windows(realjets):
            for copy in ("none", "frozen", "shuffled"):
                cubes.append(window["frames"] if copy == "none"
                             else motion_removed(window["frames"], copy, rng))
                real_labels.append(int(copy == "none"))
        real_table = feature_table(cubes).to_numpy()
    tables = {world: (feature_table(list(frames)).to_numpy(), labels)
              for world, (frames, labels) in worlds.items()}  # once, for both models
    cells = {}
    for name, model in fitted.items():
        scores = {world: float(roc_auc_score(labels, model.predict_proba(table)[:, 1]))
                  for world, (table, labels) in tables.items()}
        if real_table is not None:
            scores["real"] = float(roc_auc_score(real_labels,
                                                 model.predict_proba(real_table)[:, 1]))
        cells[name] = {**scores, "cpu_seconds": seconds}
    return cells


def _done(cells_path: Path) -> set[tuple]:
    if not cells_path.is_file():
        return set()
    return {(c["geometry"], c["seed"], c["family"])
            for c in map(json.loads, cells_path.read_text().splitlines())}


def _append(cells_path: Path, cell: dict) -> None:
    with open(cells_path, "a") as handle:  # one line per finished cell: resumable
        handle.write(json.dumps(cell) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run_bakeoff(*, geometries, seeds, families, out: Path, realjets: Path,
                variants: int) -> None:
    from jetkeras.train import train

    out.mkdir(parents=True, exist_ok=True)
    cells_path = out / "cells.jsonl"
    for geometry in geometries:
        for seed in seeds:
            done = _done(cells_path)
            wanted = [f for f in ["baselines", *families] if (geometry, seed, f) not in done]
            if not wanted:
                continue
            records = _records(geometry, seed, variants, out)
            worlds = _worlds(records, geometry, seed)
            for family in wanted:
                cell = {"geometry": geometry, "seed": seed, "family": family}
                if family == "baselines":
                    for name, scores in _score_baselines(records, worlds, realjets,
                                                         seed).items():
                        _append(cells_path, {**cell, "family": name, **scores})
                    _append(cells_path, {**cell, "marker": True})
                    continue
                recipe = FAMILIES[family].get("recipe", {})
                family_records = records
                if recipe.get("variants", variants) != variants:
                    family_records = _records(geometry, seed, recipe["variants"], out)
                run = out / f"run_{geometry}_s{seed}_{family}"
                started = time.process_time()
                result = train(records=family_records, out=run,
                               config=_config(geometry, family, seed), overwrite=True,
                               verbose=0)
                cpu = time.process_time() - started
                scores = _score_model(run, worlds, realjets, seed)
                _append(cells_path, {**cell, **scores, "cpu_seconds": cpu,
                                     "wall_seconds": result["seconds"],
                                     "val_auc": result["best_val_auc"]})
                print(json.dumps({**cell, **scores, "cpu_seconds": round(cpu)}), flush=True)


def table(out: Path) -> str:
    """The markdown table of ``cells.jsonl``: mean ± std over seeds, and CPU s per fit."""
    import pandas as pd

    cells = pd.DataFrame([c for c in map(json.loads, (out / "cells.jsonl").read_text()
                                         .splitlines()) if not c.get("marker")])
    demo = GEOMETRIES["demo"]
    worlds = [("demo", "test", f"(a) demo {demo['frames']}x{demo['size']}x{demo['size']}"),
              ("seed", "test", "(b) seed 30x166x166"),
              ("demo", "nuisance", "(c) nuisance"), ("demo", "real", "(d) real, demo model"),
              ("seed", "real", "(d) real, seed model")]
    lines = ["| family | " + " | ".join(w[2] for w in worlds) + " | CPU s per fit (a / b) |",
             "|---" * (len(worlds) + 2) + "|"]
    for family, rows in cells.groupby("family", sort=False):
        values = []
        for geometry, column, _ in worlds:
            scores = rows[rows.geometry == geometry].get(column)
            scores = scores.dropna() if scores is not None else []
            values.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f} (n={len(scores)})"
                          if len(scores) else "not run")
        cpu = [rows[rows.geometry == g]["cpu_seconds"].mean() for g in ("demo", "seed")]
        cpu_text = " / ".join(f"{c:.0f}" if np.isfinite(c) else "-" for c in cpu)
        lines.append(f"| {family} | " + " | ".join(values) + f" | {cpu_text} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    quiet_tensorflow()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", nargs="+", choices=sorted(GEOMETRIES), default=["demo"],
                        help="geometries to train at; (c) and (d) come with them")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES),
                        default=[f for f in FAMILIES if f != "epfl2d"],
                        help="rows to train (epfl2d, the seed's 18M-parameter network, only "
                             "when named: about 10x the CPU of the others)")
    parser.add_argument("--variants", type=int, default=8,
                        help="fresh renders per training event (the recipe); default 8")
    parser.add_argument("--realjets", type=Path, default=REALJETS,
                        help="the real-jet validation folder (world d)")
    parser.add_argument("--out", type=Path, default=Path("bench/bakeoff_runs"))
    parser.add_argument("--table", action="store_true", help="print the table and stop")
    args = parser.parse_args(argv)
    if args.table:
        return run_main(lambda: print(table(args.out)), "bakeoff")
    return run_main(lambda: run_bakeoff(geometries=args.worlds, seeds=args.seeds,
                                        families=args.families, out=args.out,
                                        realjets=args.realjets, variants=args.variants),
                    "bakeoff")


if __name__ == "__main__":
    raise SystemExit(main())
