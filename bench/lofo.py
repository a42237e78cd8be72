"""Leave one confuser family out (issue 30): how often does a model flag a non-jet
phenomenon it has never seen?

Usage (the demo's recipe; about 10 minutes a fit on a 2-core CPU, so the full table is
hours there; ``--smoke`` runs the whole path on tiny settings in about a minute)::

    .venv/bin/python bench/lofo.py --seeds 0 1 2 --out bench/results/lofo.jsonl
    .venv/bin/python bench/lofo.py --smoke --out /tmp/lofo_smoke.jsonl

For each family ``F`` of :data:`jetkeras.synthetic.CONFUSER_KINDS` (and ``none``, every
family seen: the baseline of the same run) and each seed:

1. build the demo's records (:func:`jetkeras.demo.demo_config`, the same events, split
   by HEK event, 8 renders of each training event) with ``F`` never drawn
   (``build_records(nuisance=Nuisance(confuser_kinds=<the others>))``);
2. train the demo's model on them (threshold chosen on their validation split);
3. render the *test* split's jet-free events again, each holding 1-3 confusers of ``F``
   only (``Nuisance(confuser_kinds=(F,), confuser_probability=1.0)``, renderer seed
   ``5000 + seed``), and its jets as the renderer draws them: the fraction of the
   held-out family's windows flagged at the stored threshold (goal <= 0.10) and the
   recall of rendered jets (goal >= 0.95).

One JSON line per (family, seed) is appended to ``--out`` as it finishes, so an
interrupted run resumes where it stopped (finished cells are skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _done(path: Path) -> set[tuple[str, int]]:
    if not path.is_file():
        return set()
    return {(cell["family"], cell["seed"]) for cell in map(json.loads, path.read_text()
                                                           .splitlines()) if cell}


def cell(family: str, seed: int, *, work: Path, limit: int, variants: int,
         epochs: int | None, frames: int | None, size: int | None) -> dict:
    """Train without ``family`` and score the held-out family and the jets."""
    from jetkeras.build_records import build_records
    from jetkeras.catalogue import load_events
    from jetkeras.demo import SPLIT_FRACTIONS, demo_config
    from jetkeras.pipeline import iterate_records
    from jetkeras.runtime import load_predictor
    from jetkeras.synthetic import CONFUSER_KINDS, Nuisance, render_event
    from jetkeras.train import train_or_keep

    config = demo_config(epochs=epochs, seed=seed)
    if frames or size:
        config = config.replace(data={"frames": frames or config.data.frames,
                                      "size": size or config.data.size})
    others = tuple(kind for kind in CONFUSER_KINDS if kind != family)
    folder = work / f"{family}_s{seed}"
    started = time.perf_counter()
    build_records(source="synthetic", out=folder / "records", config=config, seed=seed,
                  limit=limit, variants=variants, split_fractions=SPLIT_FRACTIONS,
                  progress=False,
                  nuisance=Nuisance(confuser_kinds=others) if family != "none" else None)
    result = train_or_keep(records=folder / "records", out=folder / "run", config=config,
                           verbose=0)
    predictor = load_predictor(folder / "run")
    events = load_events().set_index("event_id")
    test_ids = [record["event_id"] for record in iterate_records(folder / "records", "test")]
    jets = [event_id for event_id in test_ids if int(events.loc[event_id, "label"]) == 1]
    quiet = [event_id for event_id in test_ids if int(events.loc[event_id, "label"]) == 0]
    data = config.data
    shape = {"frames": data.frames, "size": data.size, "cadence_s": data.cadence_s,
             "field_of_view_arcsec": data.field_of_view_arcsec, "seed": 5000 + seed}
    held_out = Nuisance(confuser_kinds=(family,) if family != "none" else None,
                        confuser_probability=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_scores = predictor.predict_proba(np.stack([
            render_event(events.loc[event_id].to_dict() | {"event_id": event_id},
                         nuisance=held_out, **shape).frames for event_id in quiet]))
        jet_scores = predictor.predict_proba(np.stack([
            render_event(events.loc[event_id].to_dict() | {"event_id": event_id},
                         **shape).frames for event_id in jets]))
    return {"family": family, "seed": seed, "threshold": predictor.threshold,
            "held_out_windows": len(quiet),
            "held_out_flagged": float(np.mean(quiet_scores >= predictor.threshold)),
            "jets": len(jets), "jet_recall": float(np.mean(jet_scores >= predictor.threshold)),
            "val_auc": result.get("val_auc"),
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv=None) -> int:
    from jetkeras.synthetic import CONFUSER_KINDS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["none", *CONFUSER_KINDS],
                        choices=["none", *CONFUSER_KINDS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=624, help="sequences rendered")
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--epochs", type=int, help="default the demo's")
    parser.add_argument("--work", type=Path, default=Path("lofo_work"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lofo.jsonl")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny settings (4 frames of 32x32, 40 events, 1 epoch): the "
                             "whole path in about a minute, figures meaningless")
    args = parser.parse_args(argv)
    frames = size = None
    if args.smoke:
        args.limit, args.variants, args.epochs, frames, size = 40, 1, 1, 4, 32
    done = _done(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for family in args.families:
            if (family, seed) in done:
                continue
            result = cell(family, seed, work=args.work, limit=args.limit,
                          variants=args.variants, epochs=args.epochs, frames=frames,
                          size=size)
            with open(args.out, "a") as handle:  # one whole line per finished cell
                handle.write(json.dumps(result) + "\n")
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
