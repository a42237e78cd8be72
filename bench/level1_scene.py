"""What the bundled model says of the real level-1 304 A scene, and where its measurement
points (issue 30): an observation, not a label.

Usage::

    .venv/bin/python bench/level1_scene.py --out bench/results/level1_scene

The folder ``tests/data/level1/aia304`` (a copy of ``../shared/data/level1/aia304``: 26
level-1 frames 36 s apart, 2012-07-19, a west-limb flare arcade with coronal rain; the
Solar Jet Hunter catalogue has no jet that day) is scored window by window
(``predict --timeline``, stride 1) with every window called a jet measured and drawn.
Nothing is fitted or chosen on it: its straight off-limb strand may be jet-like, so the
scene is reported, never used as a negative label.

Writes ``OUT/timeline.csv`` (one ``jetkeras-row/2`` row per window), ``OUT/timeline.png``,
``OUT/aia304_w<window>.png`` for each window called a jet, and ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCENE = ROOT / "tests" / "data" / "level1" / "aia304"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", type=Path, default=SCENE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "level1_scene")
    args = parser.parse_args(argv)

    from jetkeras.predict import Figures, predict_timeline
    from jetkeras.runs import BUNDLED_MODEL

    args.out.mkdir(parents=True, exist_ok=True)
    rows = predict_timeline(cube=args.scene, model=BUNDLED_MODEL, out=args.out / "timeline.csv",
                            figures=Figures(args.out))
    keep = ("window", "start_time", "probability", "predicted", "quality", "base_hpc_x",
            "base_hpc_y", "direction_deg", "length_arcsec", "speed_km_s",
            "localisation_score")
    summary = {"scene": str(args.scene.relative_to(ROOT)) if args.scene.is_relative_to(ROOT)
               else str(args.scene), "threshold": rows[0]["threshold"],
               "model": rows[0]["model"], "windows": [{key: row[key] for key in keep}
                                                     for row in rows]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    called = sum(row["predicted"] for row in rows)
    print(f"{called} of {len(rows)} windows called jets (threshold {rows[0]['threshold']:.3f}); "
          f"probabilities {min(r['probability'] for r in rows):.3f}-"
          f"{max(r['probability'] for r in rows):.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
