"""Does a model still find a jet that the window catches late in its life?

Usage::

    .venv/bin/python bench/phase.py                                  # the bundled model
    .venv/bin/python bench/phase.py --models OLD_BUNDLE jetkeras/bundled \\
        --records bundle_work/records --out bench/results/phase.json

Renders the same catalogue jets again and again, changing only when each jet started:
0 (it opens the window, as the seed's HEK windows do) and 0.25, 0.5, 1 and 2 windows
before the first frame (already under way: grown, evolving, draining or fading), with
:class:`jetkeras.synthetic.Nuisance` ``jet_under_way_windows``. Every other draw of a
render (background, viewing conditions, noise) is the same at every phase. Each model
scores every render through :func:`jetkeras.runtime.load_predictor`; printed per model and
phase: the median probability, the 10th percentile and the recall at the model's stored
threshold, and that recall as a ratio to the same model's recall at phase 0 (the
baseline of the same run).

``--records`` limits the jets to the test split of a records folder (its ``groups``), so
that a bundle is scored on events it was not trained on. Without it every catalogue jet
is a candidate (fresh renders of training events: the absolute recall is then a little
optimistic; the trend across phases is the point).

Why: volunteers' subjects catch real jets at any phase, and the renderer before version 3
opened most windows with the jet. The bundle trained on it kept 93 % of held-out jets
that opened the window, 77 % of those half a window under way and 65 % one window under
way (``bench/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHASES = (0.0, 0.25, 0.5, 1.0, 2.0)  # windows the jet started before the first frame


def _jets(records: Path | None, count: int, seed: int):
    """``count`` catalogue jets, from the test split of ``records`` when given."""
    from jetkeras.catalogue import load_events

    events = load_events()
    jets = events[events["label"] == 1]
    if records is not None:
        manifest_path = records / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(f"--records: expected a records folder with manifest.json, "
                             f"received {records}")
        groups = set(json.loads(manifest_path.read_text())["splits"]["test"]["groups"])
        jets = jets[jets["group"].isin(groups)]
    if count < 1 or jets.empty:
        raise ValueError(f"--count: expected a positive number of jets to draw from "
                         f"{len(jets)}, received {count}")
    return jets.sample(n=min(count, len(jets)), random_state=seed)


def run_benchmark(models: list[Path], records: Path | None, count: int, seed: int,
                  phases: tuple[float, ...] = PHASES) -> list[dict]:
    """Score ``models`` on the same jets rendered at each phase; return one row per pair.

    Parameters
    ----------
    models : list of Path
        Model folders (run, SavedModel or bundle), each scored on the same cubes.
    records : Path or None
        Records folder whose test split's groups the jets come from; None: any jet.
    count : int
        Jets to render per phase (fewer if the split holds fewer).
    seed : int
        Seed of the jet sample and of every render.
    phases : tuple of float
        Windows each jet started before the first frame.

    Returns
    -------
    list of dict
        ``model``, ``phase_windows``, ``jets``, ``median``, ``p10``, ``recall``,
        ``threshold`` and ``recall_over_phase0``.
    """
    from jetkeras.runtime import load_predictor
    from jetkeras.synthetic import Nuisance, render_event

    predictors = [load_predictor(model, runtime="tensorflow") for model in models]
    frames, size = predictors[0].frames, predictors[0].size
    jets = _jets(records, count, seed)
    rows = []
    for phase in phases:
        cubes = np.stack([render_event(row, frames=frames, size=size, seed=seed,
                                       nuisance=Nuisance(jet_under_way_windows=phase)).frames
                          for _, row in jets.iterrows()])
        for model, predictor in zip(models, predictors):
            probabilities = predictor.predict_proba(cubes, batch_size=8)
            rows.append({"model": str(model), "phase_windows": phase, "jets": len(cubes),
                         "median": float(np.median(probabilities)),
                         "p10": float(np.quantile(probabilities, 0.1)),
                         "recall": float(np.mean(probabilities >= predictor.threshold)),
                         "threshold": float(predictor.threshold)})
    for row in rows:
        start = next(other for other in rows
                     if other["model"] == row["model"] and other["phase_windows"] == 0.0)
        row["recall_over_phase0"] = (row["recall"] / start["recall"] if start["recall"]
                                     else float("nan"))
    return rows


def main(argv=None) -> int:
    from jetkeras._cli import run_main
    from jetkeras.bundle import BUNDLED_MODEL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, nargs="+", default=[BUNDLED_MODEL],
                        help="model folders to score; default the bundled model")
    parser.add_argument("--records", type=Path, default=None,
                        help="take the jets from this records folder's test split")
    parser.add_argument("--count", type=int, default=60, help="jets per phase; default 60")
    parser.add_argument("--seed", type=int, default=11,
                        help="seed of the jet sample and the renders; default 11")
    parser.add_argument("--out", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    return run_main(lambda: _report(args), prog="phase")


def _report(args) -> None:
    rows = run_benchmark(args.models, args.records, args.count, args.seed)
    print(f"{'model':40} {'phase':>6} {'jets':>5} {'median':>7} {'p10':>6} {'recall':>7} "
          f"{'vs phase 0':>10}")
    for row in rows:
        print(f"{row['model'][-40:]:40} {row['phase_windows']:6.2f} {row['jets']:5d} "
              f"{row['median']:7.3f} {row['p10']:6.3f} {row['recall']:7.2f} "
              f"{row['recall_over_phase0']:10.2f}")
    if args.out:
        from jetkeras.config import atomic_write_text

        atomic_write_text(args.out, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
