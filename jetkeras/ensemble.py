"""Seed ensembles as one model: ``python -m jetkeras.ensemble``.

Runs trained on the same records with the same configuration but different ``--seed``
disagree mostly where each is unsure; the mean of their logits is steadier than any one
of them. The ensemble is written as an ordinary run folder whose network is ONE Keras
model (``model.members`` = M, see :func:`jetkeras.models.build_model`), so ``evaluate``,
``export``, LiteRT and ``predict`` need nothing new. Its threshold is chosen on the
validation split, like any run's.

Examples
--------
::

    for seed in 0 1 2; do
        python -m jetkeras.train --records tfrecords/demo --out runs/s$seed --seed $seed
    done
    python -m jetkeras.ensemble --runs runs/s0 runs/s1 runs/s2 --records tfrecords/demo \\
        --out runs/ensemble
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from jetkeras import _cli
from jetkeras.config import JetConfig, atomic_write_text
from jetkeras.runs import (CONFIG_FILE, MODEL_FILE, NORMALISATION_FILE, THRESHOLD_FILE,
                           read_threshold)

__all__ = ["build_ensemble", "main"]


def _member_config(config: JetConfig) -> dict[str, Any]:
    """What members must share: everything but the seed and the training bookkeeping."""
    values = config.to_dict()
    for key in ("seed", "deterministic"):
        values["train"].pop(key)
    return values


def build_ensemble(*, runs: list[str | Path], records: str | Path, out: str | Path,
                   overwrite: bool = False) -> dict[str, Any]:
    """Combine finished runs into one run folder whose model averages their logits.

    Parameters
    ----------
    runs : list of path
        Two or more finished run folders of one configuration (seeds may differ) trained
        on the same records (identical ``normalisation.json``).
    records : path
        Those records; the validation split chooses the ensemble's threshold.
    out : path
        The ensemble's run folder.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    dict
        The ensemble's ``threshold.json`` content (``threshold``, ``val_auc``, ...), and
        ``members``: the member runs' validation AUCs.
    """
    _cli.quiet_tensorflow()
    from jetkeras.models import build_model
    from jetkeras.pipeline import make_dataset
    from jetkeras.runtime import load_run_model
    from jetkeras.train import finish_training

    runs, out = [Path(run) for run in runs], Path(out)
    if len(runs) < 2:
        raise ValueError(f"--runs: expected at least two run folders, received {len(runs)}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it or choose "
                              f"another --out")
    loaded = [load_run_model(run) for run in runs]
    first = loaded[0]
    for run, member in zip(runs[1:], loaded[1:]):
        if member["config"].model.members != 1 or first["config"].model.members != 1:
            raise ValueError(f"--runs {run}: expected single-model runs, received an "
                             f"ensemble")
        if _member_config(member["config"]) != _member_config(first["config"]):
            raise ValueError(f"--runs {run}: expected the configuration of {runs[0]} "
                             f"(only --seed may differ), received another one")
        if member["normalisation"] != first["normalisation"]:
            raise ValueError(f"--runs {run}: expected the records of {runs[0]} (same "
                             f"normalisation.json), received runs of other records")
    config = first["config"].replace(model={"members": len(runs), "preset": "custom"})
    model = build_model(config)
    model.set_weights([weight for member in loaded for weight in member["model"].get_weights()])

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    config.to_json(out / CONFIG_FILE)
    atomic_write_text(out / NORMALISATION_FILE,
                      json.dumps(first["normalisation"], indent=2))
    model.save(out / MODEL_FILE)
    member_aucs = [read_threshold(run / THRESHOLD_FILE).get("val_auc") for run in runs]
    val_data = make_dataset(records, "val", config, training=False)
    choice = finish_training(model, config, out, val_data,
                        members=[str(run) for run in runs], member_val_auc=member_aucs)
    return choice


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    parser = _cli.make_parser(
        "ensemble",
        "Average the logits of runs trained with one configuration and different seeds, "
        "and write the result as an ordinary run folder (one Keras model, threshold chosen "
        "on the validation split) that evaluate, export and predict read.",
        ["--runs runs/s0 runs/s1 runs/s2 --records tfrecords/demo --out runs/ensemble"])
    parser.add_argument("--runs", nargs="+", required=True,
                        help="finished run folders (python -m jetkeras.train) of one config, "
                             "different seeds; at least 2")
    parser.add_argument("--records", required=True, type=_cli.existing_folder,
                        help="their records folder; its validation split chooses the "
                             "threshold")
    parser.add_argument("--out", required=True, help="the ensemble's run folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists; default: refuse")
    args = parser.parse_args(argv)

    def run():
        choice = build_ensemble(runs=args.runs, records=args.records, out=args.out,
                                overwrite=args.overwrite)
        print(f"ensemble of {len(args.runs)}: val AUC {choice['val_auc']:.3f} (members "
              f"{', '.join(f'{auc:.3f}' for auc in choice['member_val_auc'])}); threshold "
              f"{choice['threshold']:.3f}; run in {args.out}")

    # An interrupted ensemble folder has no threshold.json yet: it is rebuilt from the runs
    # (seconds), which needs --overwrite once the folder exists.
    return _cli.run_main(run, "ensemble", kept="the member runs are untouched", out=args.out,
                         resume=lambda: _cli.resume_command(
                             "ensemble", argv,
                             add=["--overwrite"] if Path(args.out).exists() else []))


if __name__ == "__main__":
    raise SystemExit(main())
