"""The bundled default model: ``python -m jetkeras.bundle`` rebuilds it from a fixed seed.

``python -m jetkeras.predict cube.npz`` with no ``--model`` runs the model that ships
inside the package (``jetkeras/bundled/``). This module is how that model is made, so
anyone can reproduce it:

1. render catalogue events at the seed's geometry, 30 frames of 166x166 (the JSOC cutout
   format), with ``--variants`` fresh renders of every training event, and build grouped
   records (train/val/test by HEK event);
2. train the default ``projection`` model (the bake-off's winner, ``bench/bakeoff.py``)
   deterministically and choose the decision threshold on the *rendered* validation
   split: the highest threshold whose validation recall reaches ``--target-recall``
   (a survey should miss few jets; a physicist vets the candidates by eye);
3. score the held-out rendered test split;
4. copy what inference needs (``model.keras``, ``config.json``, ``normalisation.json``,
   ``threshold.json``; the measurement head ``measure.tflite`` and ``measure.json`` from
   the installed bundle, :mod:`jetkeras.localise`), write ``model.tflite`` from the weights (frames in DN: the
   training clip and standardisation inside the graph) with ``litert.json`` saying so,
   and a ``bundle.json`` of provenance and figures into ``--out``, atomically;
   ``--install`` then replaces ``jetkeras/bundled``.

``--relite`` trains nothing: it rewrites a bundle folder's ``model.tflite`` and
``litert.json`` from its ``model.keras`` (the weights unchanged), e.g. to move the
shipped model to the DN-in graph (:func:`relite`).

The model is trained on synthetic renders only (:mod:`jetkeras.synthetic`); nothing here
reads the real-jet validation set. ``docs/model_card.md`` says what it is and is not.

Examples
--------
::

    python -m jetkeras.bundle --work bundle_work --out bundle_work/jet304 --seed 0
    python -m jetkeras.bundle --work bundle_work --out bundle_work/jet304 --install
    python -m jetkeras.bundle --relite                  # jetkeras/bundled's model.tflite
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from jetkeras import _cli, runs
from jetkeras._files import replace_folder
from jetkeras.runs import BUNDLED_MODEL
from jetkeras.config import JetConfig, atomic_write_text, epochs_for, input_pool_for
from jetkeras.demo import SPLIT_FRACTIONS
from jetkeras.localise import HEAD_LITERT_FILE, HEAD_RECORD_FILE

__all__ = ["BUNDLED_MODEL", "BUNDLE_FILES", "build_bundle", "bundle_config", "main", "relite"]

BUNDLE_FILES = (runs.LITERT_FILE, runs.LITERT_METADATA_FILE, runs.MODEL_FILE,
                runs.CONFIG_FILE, runs.NORMALISATION_FILE, runs.THRESHOLD_FILE)
FRAMES, SIZE = 30, 166  # the seed's window and pooled cutout: what JSOC cutouts become
# Events rendered: issue 12's 280 training events at 166 px (its CPU budget), with the
# demo's wider validation split (120 events) so the recall threshold rests on ~60 jets.
LIMIT = 520
VARIANTS = 8  # fresh renders of every training event
TARGET_RECALL = 0.95


def bundle_config(*, seed: int = 0, epochs: int | None = None,
                  target_recall: float = TARGET_RECALL, frames: int = FRAMES,
                  size: int = SIZE) -> JetConfig:
    """The bundled model's configuration: the demo's recipe at 30x166x166 (the seed's
    geometry), with the threshold that reaches ``target_recall`` on validation."""
    from jetkeras.demo import demo_config

    config = demo_config(full=True, epochs=epochs, seed=seed)
    return config.replace(data={"frames": frames, "size": size},
                          model={"input_pool": input_pool_for(size)},
                          train={"threshold_metric": "recall", "target_recall": target_recall,
                                 "epochs": epochs_for(size) if epochs is None else epochs})


def build_bundle(*, work: str | Path, out: str | Path, seed: int = 0, limit: int = LIMIT,
                 variants: int = VARIANTS, epochs: int | None = None,
                 target_recall: float = TARGET_RECALL, workers: int = 2,
                 install: bool = False, frames: int = FRAMES, size: int = SIZE,
                 verbose: int = 2) -> dict[str, Any]:
    """Train the default model on renders and write a bundle folder.

    Parameters
    ----------
    work : path
        Working folder for ``records/``, ``run/`` and ``report/``; an interrupted build
        resumes from it (finished steps are kept).
    out : path
        The bundle folder to write (replaced atomically).
    seed : int
        Seeds the renders, the split and the training.
    limit, variants, epochs, target_recall, workers
        Events rendered, renders per training event, training epochs (default
        ``train``'s), the validation recall the threshold must reach, render threads.
    install : bool
        Also replace the package's ``jetkeras/bundled`` with the new bundle.
    frames, size : int
        Geometry (default the seed's, 30 frames of 166x166; smaller only for tests).

    Returns
    -------
    dict
        The ``bundle.json`` content.
    """
    from jetkeras import __version__
    from jetkeras.build_records import build_records
    from jetkeras.evaluate import evaluate
    from jetkeras.runtime import load_run_model
    from jetkeras.synthetic import RENDERER_VERSION
    from jetkeras.train import train_or_keep

    work, out = Path(work), Path(out)
    work.mkdir(parents=True, exist_ok=True)
    config = bundle_config(seed=seed, epochs=epochs, target_recall=target_recall,
                           frames=frames, size=size)
    started = time.perf_counter()
    manifest = build_records(source="synthetic", out=work / "records", config=config,
                             seed=seed, limit=limit, workers=workers, variants=variants,
                             split_fractions=SPLIT_FRACTIONS)
    run = work / "run"
    threshold = train_or_keep(records=work / "records", out=run, config=config,
                              verbose=verbose)
    metrics = evaluate(run=run, records=work / "records", split="test", out=work / "report",
                       overwrite=True)
    provenance = {
        "name": "jet304-synthetic",
        "jetkeras_version": __version__,
        "renderer_version": RENDERER_VERSION,
        "trained_on": "synthetic renders of the bundled Solar Jet Hunter catalogue only",
        "geometry": {"frames": frames, "size": size, "cadence_s": 24.0,
                     "field_of_view_arcsec": 300.0},
        "seed": seed, "events": limit, "variants": variants,
        "sequences": manifest["count"],
        "epochs": config.train.epochs,
        "threshold": threshold["threshold"], "threshold_rule": threshold.get("rule"),
        "rendered_test": {key: metrics[key] for key in ("roc_auc", "f1", "recall",
                                                        "precision", "accuracy")
                          if key in metrics},
        # This command's wall time: a rerun that keeps a finished run takes seconds, so
        # the training's own time comes from its threshold.json.
        "seconds": round(time.perf_counter() - started, 1),
        "train_seconds": threshold.get("train_seconds"),
        "command": (f"python -m jetkeras.bundle --seed {seed} --limit {limit} "
                    f"--variants {variants}"
                    + ("" if epochs is None else f" --epochs {epochs}")),
        "model_card": "docs/model_card.md",
    }
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in BUNDLE_FILES:
        if name == runs.MODEL_FILE:
            # The weights alone: the run's archive also holds AdamW's two moments (3x
            # the size), which inference never reads and the 20 MB budget cannot carry.
            load_run_model(run)["model"].save(staging / name)
        elif name not in (runs.LITERT_FILE, runs.LITERT_METADATA_FILE):
            shutil.copy2(run / name, staging / name)
    # Written, not copied: a run kept from before the DN-in graphs has an older one.
    _write_litert_from_weights(staging)
    # The measurement head reads frames, not the detector's weights: it carries over
    # (made by bench/localise_head.py --export).
    for name in (HEAD_LITERT_FILE, HEAD_RECORD_FILE):
        if (BUNDLED_MODEL / name).is_file():
            shutil.copy2(BUNDLED_MODEL / name, staging / name)
    atomic_write_text(staging / "bundle.json", json.dumps(provenance, indent=2))
    replace_folder(staging, out)
    if install:
        copy = BUNDLED_MODEL.with_name(BUNDLED_MODEL.name + ".partial")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(out, copy)
        replace_folder(copy, BUNDLED_MODEL)
    print(json.dumps(provenance, indent=2), file=sys.stderr)
    return provenance


def _write_litert_from_weights(folder: Path) -> int:
    """Write ``folder``'s ``model.tflite`` and ``litert.json`` (DN in) from its
    ``model.keras``, ``config.json`` and ``normalisation.json``; return the bytes."""
    from jetkeras.export import write_litert
    from jetkeras.runtime import load_run_model

    loaded = load_run_model(folder)
    return write_litert(loaded["model"], loaded["config"], folder / runs.LITERT_FILE,
                        loaded["normalisation"])


def relite(folder: str | Path = BUNDLED_MODEL) -> dict[str, Any]:
    """Rewrite a bundle (or run) folder's ``model.tflite`` from its ``model.keras``.

    The new graph takes frames in DN (the training clip and standardisation inside it,
    :func:`jetkeras.export.write_litert`) and ``litert.json`` says so; ``model.keras``
    and every other file are left byte for byte. The folder is rewritten in a copy and
    swapped in whole, so a reader never meets a new graph beside an old record.

    Parameters
    ----------
    folder : path
        A finished run or bundle folder; default the package's ``jetkeras/bundled``.

    Returns
    -------
    dict
        ``folder``, ``bytes`` (of the new ``model.tflite``) and ``input`` ("dn").
    """
    folder = Path(folder)
    runs.read_run(folder)  # a finished run folder, checked, before anything is copied
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    size = _write_litert_from_weights(staging)
    replace_folder(staging, folder)
    return {"folder": str(folder), "bytes": size,
            "input": runs.read_litert(folder)["input"]}


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    parser = _cli.make_parser(
        "bundle",
        "Rebuild the bundled default model from a fixed seed: render synthetic events, "
        "train, score, and write the bundle folder (with --install, replace the one "
        "shipped in the package).",
        ["--work bundle_work", "--work bundle_work --install"])
    parser.add_argument("--work", default="bundle_work",
                        help="working folder (records, run, report); default bundle_work")
    parser.add_argument("--out", help="bundle folder to write; default WORK/jet304 (WORK is --work)")
    parser.add_argument("--limit", type=_cli.positive_int, default=LIMIT,
                        help=f"events to render; default {LIMIT}")
    parser.add_argument("--variants", type=_cli.positive_int, default=VARIANTS,
                        help=f"renders of each training event; default {VARIANTS}")
    parser.add_argument("--epochs", type=_cli.positive_int,
                        help="training epochs; default train's (by frame size)")
    parser.add_argument("--target-recall", type=_cli.target_recall, default=TARGET_RECALL,
                        help=f"validation recall the threshold must reach; default "
                             f"{TARGET_RECALL}")
    parser.add_argument("--workers", type=_cli.bounded_int(1, _cli.MAX_WORKERS), default=2,
                        help="render threads; default 2")
    parser.add_argument("--install", action="store_true",
                        help="replace the package's jetkeras/bundled with the new bundle; "
                             "default off")
    parser.add_argument("--relite", action="store_true",
                        help="train nothing: rewrite model.tflite and litert.json (frames "
                             "in DN) of --out, default the package's jetkeras/bundled, "
                             "from its model.keras (weights unchanged); default off")
    _cli.add_seed_flag(parser)
    args = parser.parse_args(argv)

    if args.relite:
        def relite_run():
            result = relite(args.out or BUNDLED_MODEL)
            print(f"bundle: wrote {result['folder']}/{runs.LITERT_FILE} "
                  f"({result['bytes'] / 1e6:.2f} MB, input {result['input']}) from its "
                  f"{runs.MODEL_FILE}", file=sys.stderr)

        return _cli.run_main(relite_run, "bundle",
                             kept="nothing changed (the folder is swapped in whole)")

    def run():
        build_bundle(work=args.work, out=args.out or Path(args.work) / "jet304",
                     seed=args.seed, limit=args.limit, variants=args.variants,
                     epochs=args.epochs, target_recall=args.target_recall,
                     workers=args.workers, install=args.install)

    # Records, run and report in WORK are each kept when finished (the run resumes).
    return _cli.run_main(run, "bundle", resume=_cli.resume_command("bundle", argv),
                         out=args.work)


if __name__ == "__main__":
    raise SystemExit(main())
