"""The main job on the embedded default: ``python -m jetkeras.demo`` (``make demo``).

From the bundled Solar Jet Hunter catalogue to a served model, offline, in one folder:

1. render a class-balanced subset of the catalogue (negatives matched to the jets'
   distance from disk centre) with the synthetic renderer and build grouped TFRecords
   (train/val/test split by HEK event, never by sequence), with 8 independent renders of
   every training event so that each epoch meets new pictures;
2. train the default ``projection`` model (motion channels -> per-pixel timing maps over
   the window -> 2-D CNN; the bake-off's winner, ``bench/README.md``) deterministically,
   and choose the decision threshold on the validation split;
3. evaluate on the held-out test groups (metrics, ROC, PR, F1-vs-threshold, confusion
   matrix, GIFs of misclassified sequences, ``report.md``) and score the
   brightness-feature baselines (best single feature, logistic regression and
   gradient-boosted trees, fitted on the training split) on the same test sequences;
4. export a SavedModel and run ``predict`` with it on a few cubes written to disk.

Examples
--------
On a 2-core CPU (about 9 minutes)::

    python -m jetkeras.demo --out demo_output

At the seed's scale (all 1,766 events, 30 frames of 166x166) on a GPU machine::

    python -m jetkeras.demo --full --out demo_full

Interrupt it at any time: the same command resumes (finished steps are kept).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from jetkeras import _cli
from jetkeras.config import (JetConfig, atomic_write_text, epochs_for, input_pool_for,
                              model_preset)

__all__ = ["demo_config", "main", "run_demo"]


VARIANTS = 8  # fresh renders of each training event (bench/bakeoff.py: the recipe)
LIMIT = 624  # sequences rendered on a CPU: 336 training events, 144 validation, 144 test
# Twice the 70/15/15 split's validation and test events for the same training events: on
# 72 test sequences one seed's AUC moved by +-0.03 with the split alone, and a
# 72-sequence validation split threw the threshold around (bench/README.md).
SPLIT_FRACTIONS = (0.54, 0.23, 0.23)


def demo_config(*, full: bool = False, epochs: int | None = None, seed: int = 0) -> JetConfig:
    """The demo's configuration: CPU-sized by default, the seed's geometry with ``full``.

    The model is the ``projection`` preset (the bake-off's winner) trained with ``train``'s
    defaults (60 epochs, batch 8, peak learning rate 2e-3); training is deterministic
    (``tf.config.experimental.enable_op_determinism``): the same seed gives the same
    figure run after run (checked on this project's CPU machines; other CPU kinds may
    differ in the last bits through oneDNN's kernels).
    """
    # The seed's window (30 frames, 24 s apart: 11.6 min) on a CPU: slow spires barely
    # move in 16 frames, which cost 0.03-0.04 AUC (bench/README.md), and the CNN reads
    # one set of timing maps whatever the frame count. 128 px through the learned 2x2
    # patch stem (64 px reach the first conv): thin spires survive it, where frames
    # rendered at 64 px dilute them.
    frames, size = (30, 166) if full else (30, 128)
    return JetConfig().replace(
        # data.cache stays off (the default): the training renders would hold 5.3 GB in
        # memory; train keeps the small validation split instead.
        data={"frames": frames, "size": size},
        model={**model_preset("projection").__dict__, "input_pool": input_pool_for(size)},
        # Validation every 5th epoch on the CPU: each pass scores 8 views of every
        # validation cube (model.views), 16 % of the demo's CPU time when run every
        # epoch; the weights are the same either way (the last epoch is kept).
        train={"seed": seed, "deterministic": True, "validation_every": 1 if full else 5,
               "epochs": epochs_for(size) if epochs is None else epochs},
    )


def _step(number: int, text: str) -> None:
    print(f"\n[{number}/5] {text}", file=sys.stderr, flush=True)


def run_demo(
    *,
    out: str | Path = "demo_output",
    full: bool = False,
    limit: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    workers: int = 2,
    verbose: int = 2,
) -> dict[str, Any]:
    """Run the whole job and return its summary (also written to ``summary.json``).

    Parameters
    ----------
    out : path
        One folder for everything: ``records/``, ``run/``, ``report/``, ``savedmodel/``,
        ``cubes/``, ``predictions.csv``, ``contact_sheets.png``, ``summary.json``.
    full : bool
        All 1,766 catalogue events at 30 frames of 166x166 (for a GPU machine).
    limit : int, optional
        Number of sequences to render; default 624 (CPU: 336 training events, 144
        validation, 144 test) or all (``full``, 70/15/15).
    epochs : int, optional
        Training epochs (passes over the training events); default 60.
    """
    from jetkeras.baseline import held_out_baselines, split_features
    from jetkeras.build_records import build_records
    from jetkeras.cube import Cube
    from jetkeras.evaluate import evaluate
    from jetkeras.export import export_run
    from jetkeras.io import write_cube
    from jetkeras.pipeline import iterate_records
    from jetkeras.plotting import contact_sheets
    from jetkeras.predict import format_table, predict_cubes
    from jetkeras.runs import THRESHOLD_FILE
    from jetkeras.train import train_or_keep

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = demo_config(full=full, epochs=epochs, seed=seed)
    if limit is None and not full:
        limit = LIMIT
    started = time.perf_counter()

    count = "all" if limit is None else limit
    _step(1, f"render the Solar Jet Hunter catalogue ({count} sequences of "
             f"{config.data.frames}x{config.data.size}x{config.data.size}) and build records")
    manifest = build_records(source="synthetic", out=out / "records", config=config,
                             seed=seed, limit=limit, workers=workers, variants=VARIANTS,
                             split_fractions=None if full else SPLIT_FRACTIONS)

    _step(2, f"train {config.model.arch} ({config.model.preset} preset) and choose the "
             f"threshold on validation")
    run = out / "run"
    if (run / THRESHOLD_FILE).is_file():
        print(f"  {run} already holds a finished run: kept", file=sys.stderr)
    threshold = train_or_keep(records=out / "records", out=run, config=config,
                              verbose=verbose)

    _step(3, "evaluate on the held-out test groups; score the brightness baseline")
    metrics = evaluate(run=run, records=out / "records", split="test", out=out / "report",
                       overwrite=True)
    test_records = list(iterate_records(out / "records", "test"))
    train_table, train_labels = split_features(out / "records", "train")
    baseline = held_out_baselines(train_table, train_labels,
                                  [r["frames"][..., 0] for r in test_records],
                                  [r["label"] for r in test_records], seed=seed)

    examples = ([r for r in test_records if r["label"] == 1][:2]
                + [r for r in test_records if r["label"] == 0][:2])
    contact_sheets([r["frames"][..., 0] for r in examples], out / "contact_sheets.png",
                   titles=[f"{'jet' if r['label'] else 'no jet'} {r['event_id']}"
                           for r in examples])

    _step(4, "export the SavedModel (CPU-safe LSTM)")
    export_run(run=run, out=out / "savedmodel", overwrite=True)

    _step(5, "predict on a few cubes with the exported model")
    cubes = out / "cubes"
    for record in test_records[:4]:
        write_cube(cubes / f"{record['event_id']}.npz",
                   Cube(record["frames"][..., 0], source="demo",
                        meta={"event_id": record["event_id"], "label": record["label"]}))
    rows = predict_cubes(cubes=[cubes], model=out / "savedmodel",
                         out=out / "predictions.csv", progress=False)
    print(format_table(rows), file=sys.stderr)

    summary = {
        "sequences": manifest["count"],
        # Training holds VARIANTS renders of each event; validation and test one each.
        "events": sum(entry["count"] // entry.get("variants", 1)
                      for entry in manifest["splits"].values()),
        "splits": {name: entry["counts"] for name, entry in manifest["splits"].items()},
        "frames": config.data.frames,
        "size": config.data.size,
        "threshold": threshold["threshold"],
        "val_auc": threshold.get("val_auc"),
        "test_roc_auc": metrics["roc_auc"],
        "test_f1": metrics["f1"],
        "test_accuracy": metrics["accuracy"],
        "test_confusion_matrix": metrics["confusion_matrix"],
        "baseline_feature": baseline["feature"],
        "baseline_feature_test_auc": baseline["feature_auc"],
        "baseline_logistic_test_auc": baseline["logistic_auc"],
        "baseline_boosting_test_auc": baseline["boosting_auc"],
        "best_baseline": baseline["best"],
        "best_baseline_test_auc": baseline["best_auc"],
        "margin_over_best_baseline": metrics["roc_auc"] - baseline["best_auc"],
        "seconds": time.perf_counter() - started,
        "report": str(out / "report" / "report.md"),
        "contact_sheets": str(out / "contact_sheets.png"),
        "savedmodel": str(out / "savedmodel"),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    print(_summary_text(summary), file=sys.stderr)
    return summary


def _summary_text(summary: dict[str, Any]) -> str:
    splits = ", ".join(f"{name} {c['jet']} jets/{c['no_jet']} no-jet"
                       for name, c in summary["splits"].items())
    return "\n".join([
        "",
        "jetkeras demo summary",
        f"  sequences      {summary['sequences']} renders of {summary['events']} events "
        f"({splits}; {VARIANTS} renders of each training event)",
        f"  geometry       {summary['frames']} frames of {summary['size']}x{summary['size']}",
        f"  threshold      {summary['threshold']:.3f} (chosen on validation)",
        f"  test ROC AUC   {summary['test_roc_auc']:.3f}",
        f"  baselines      brightness features fitted on train, scored on test: best single "
        f"feature '{summary['baseline_feature']}' {summary['baseline_feature_test_auc']:.3f}, "
        f"logistic regression on all {summary['baseline_logistic_test_auc']:.3f}, "
        f"gradient-boosted trees on all {summary['baseline_boosting_test_auc']:.3f}",
        f"  margin         {summary['margin_over_best_baseline']:+.3f} over the best baseline "
        f"({summary['best_baseline']})",
        f"  test F1        {summary['test_f1']:.3f}, accuracy {summary['test_accuracy']:.3f}, "
        f"confusion [[tn, fp], [fn, tp]] = {summary['test_confusion_matrix']}",
        f"  report         {summary['report']} (contact sheets: {summary['contact_sheets']})",
        f"  SavedModel     {summary['savedmodel']}",
        f"  wall time      {summary['seconds']:.0f} s",
    ])


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    parser = _cli.make_parser(
        "demo",
        "The whole job offline in one folder: render a class-balanced subset of the bundled "
        "Solar Jet Hunter catalogue, build records, train the default model, evaluate it on "
        "held-out events against brightness baselines, export it and predict with it. "
        "About 8 minutes on a 2-core CPU; interrupt it at any time, the same command resumes.",
        ["--out demo_output", "--full --out demo_full"])
    parser.add_argument("--out", default="demo_output", help="output folder; default demo_output")
    parser.add_argument("--full", action="store_true",
                        help="all 1,766 events at 30 frames of 166x166 px (for a GPU machine); "
                             "default off (a CPU-sized subset)")
    parser.add_argument("--limit", type=_cli.bounded_int(2),
                        help="sequences to render; default 624 (CPU), all with --full")
    parser.add_argument("--epochs", type=_cli.positive_int, help="training epochs; default 60")
    parser.add_argument("--workers", type=_cli.bounded_int(1, _cli.MAX_WORKERS), default=2,
                        help="threads rendering sequences; default 2")
    _cli.add_seed_flag(parser)
    args = parser.parse_args(argv)
    return _cli.run_main(lambda: run_demo(out=args.out, full=args.full, limit=args.limit,
                                          epochs=args.epochs, seed=args.seed,
                                          workers=args.workers), "demo",
                          # The records, the run (from its last epoch) and the later steps
                          # pick up where they stopped.
                          resume=_cli.resume_command("demo", argv), out=args.out)


if __name__ == "__main__":
    raise SystemExit(main())
