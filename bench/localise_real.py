"""The measurement on real jets (issue 27): a contact sheet of every real-jet window the
bundled model calls a jet, with its footprint, base point, direction and time-distance
diagram, and the lengths and speeds measured there compared, as distributions, with the
Solar Jet Hunter catalogue's ``max_height`` and ``velocity``.

Usage::

    .venv/bin/python bench/localise_real.py --realjets ../shared/data/realjets \
        --out bench/results/localise_realjets

Validation only: nothing here is fitted or chosen. The windows are ``realcheck``'s
(:func:`jetkeras.realcheck.load_windows`: consecutive 30-frame windows of each chain, each
single subject shown twice). No per-jet truth exists for them, so only distributions are
compared, and with two caveats that the table carries:

- **Scale.** The sequences are whole event cutouts of varied sizes brought to 166 px, not
  300" around the base point: the model's nominal 300"/166 px = 1.81" per pixel is
  assumed. Their true scale may differ by a factor of about 2 either way.
- **Cadence.** Subjects are 24 s or 36 s apart, unknown per sequence: 24 s (the model's
  grid) is assumed, so a 36 s sequence's speeds read 1.5x too fast.

The catalogue's units: ``max_height`` is in arcsec (the catalogue authors' statistics
notebook converts it to Mm with 0.73 Mm per arcsec) and ``velocity`` in arcsec per second
(median 0.18, i.e. about 130 km/s, a typical jet speed; its histogram is labelled in
km/s after conversion). Both are compared here in arcsec and arcsec per second.

Writes ``OUT.jpg`` (the contact sheet), ``OUT_distributions.png`` (histograms of both
quantities, ours against the catalogue's) and ``OUT.json`` (every window's row columns,
the quantiles and a two-sample Kolmogorov-Smirnov test of each quantity).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUANTILES = (10, 25, 50, 75, 90)
TILE = (450, 210)  # pixels of each jet's picture on the contact sheet
COLUMNS_PER_ROW = 4


def measure_windows(folder: Path):
    """Score every real window with the bundled model; measure and draw those it calls
    jets. Returns the rows (name, window start, probability and the measurement) and the
    pictures' paths (in a temporary folder)."""
    from tqdm.auto import tqdm

    from jetkeras.conform import ModelInput
    from jetkeras.localise import measure_window
    from jetkeras.realcheck import load_windows
    from jetkeras.runtime import load_predictor

    predictor = load_predictor(runtime="litert")
    data = predictor.config.data
    windows = load_windows(folder)
    pictures_dir = Path(tempfile.mkdtemp(prefix="localise_real_"))
    rows, pictures = [], []
    for window in tqdm(windows, desc="real windows", unit="window"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probability = float(predictor.predict_proba(window["frames"][None])[0])
        row = {"name": window["name"], "start": int(window["start"]),
               "kind": window["kind"], "agreement": window["agreement"],
               "probability": probability, "called_jet": probability >= predictor.threshold}
        if row["called_jet"]:
            measured = measure_window(ModelInput.of_window(window["frames"], data.cadence_s),
                                      0, data)
            row.update(measured.columns())
            picture = pictures_dir / f"{window['name']}_{window['start']:03d}.png"
            measured.figure(picture, title=f"{window['name']} frames {window['start']}+ "
                                           f"({window['agreement']}): P(jet) {probability:.2f}")
            pictures.append(picture)
        rows.append(row)
    return rows, pictures, predictor


def contact_sheet(pictures, path: Path) -> None:
    """Tile the pictures, TILE each, COLUMNS_PER_ROW across, into one JPEG."""
    from PIL import Image

    count = len(pictures)
    lines = (count + COLUMNS_PER_ROW - 1) // COLUMNS_PER_ROW
    sheet = Image.new("RGB", (TILE[0] * COLUMNS_PER_ROW, TILE[1] * max(lines, 1)), "white")
    for index, picture in enumerate(pictures):
        with Image.open(picture) as image:
            tile = image.convert("RGB").resize(TILE, Image.LANCZOS)
        sheet.paste(tile, ((index % COLUMNS_PER_ROW) * TILE[0],
                           (index // COLUMNS_PER_ROW) * TILE[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=82)


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Quantiles of both samples and a two-sample Kolmogorov-Smirnov test."""
    from scipy.stats import ks_2samp

    ours, theirs = ours[np.isfinite(ours)], theirs[np.isfinite(theirs)]
    test = ks_2samp(ours, theirs)
    return {"ours": {"count": int(ours.size),
                     **{f"p{q}": float(np.percentile(ours, q)) for q in QUANTILES}},
            "catalogue": {"count": int(theirs.size),
                          **{f"p{q}": float(np.percentile(theirs, q)) for q in QUANTILES}},
            "median_ratio": float(np.median(ours) / np.median(theirs)),
            "ks_statistic": float(test.statistic), "ks_pvalue": float(test.pvalue)}


def distributions_figure(pairs: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, (title, (ours, theirs, unit)) in zip(figure.subplots(1, len(pairs)),
                                                   pairs.items()):
        ours, theirs = ours[np.isfinite(ours)], theirs[np.isfinite(theirs)]
        bins = np.histogram_bin_edges(np.concatenate([ours, theirs]), bins=20)
        axes.hist(theirs, bins=bins, density=True, alpha=0.5,
                  label=f"SJH catalogue ({theirs.size})")
        axes.hist(ours, bins=bins, density=True, alpha=0.5,
                  label=f"measured, real windows ({ours.size})")
        axes.set_xlabel(f"{title} ({unit})")
        axes.set_ylabel("density")
        axes.legend(fontsize=7)
    figure.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realjets", type=Path, default=ROOT.parent / "shared" / "data" /
                        "realjets", help="the real-jet folder (index.csv, sequences/)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" /
                        "localise_realjets", help="stem of the files written")
    args = parser.parse_args(argv)

    from jetkeras.catalogue import load_events
    from jetkeras.localise import km_per_arcsec

    rows, pictures, predictor = measure_windows(args.realjets)
    contact_sheet(pictures, args.out.with_suffix(".jpg"))
    jets = [row for row in rows if row["called_jet"]]
    catalogue = load_events().query("label == 1")
    length = np.array([row["length_arcsec"] or np.nan for row in jets], dtype=float)
    speed = np.array([row["speed_km_s"] if row["speed_km_s"] is not None else np.nan
                      for row in jets], dtype=float) / km_per_arcsec()
    pairs = {"length / max_height": (length, catalogue["max_height"].to_numpy(float),
                                     "arcsec"),
             "speed / velocity": (speed, catalogue["velocity"].to_numpy(float), "arcsec/s")}
    distributions_figure(pairs, args.out.with_name(args.out.name + "_distributions.png"))
    comparison = {title: compare(ours, theirs) for title, (ours, theirs, _) in pairs.items()}
    result = {"windows": len(rows), "called_jets": len(jets),
              "threshold": predictor.threshold,
              "assumed": {"pixel_scale_arcsec": predictor.config.data.field_of_view_arcsec
                          / predictor.size, "cadence_s": predictor.config.data.cadence_s},
              "comparison": comparison, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"{len(jets)} of {len(rows)} real windows called jets (threshold "
          f"{predictor.threshold:.3f}); contact sheet {args.out.with_suffix('.jpg')}")
    for title, block in comparison.items():
        print(f"{title:22} ours median {block['ours']['p50']:.3g} (n={block['ours']['count']}) "
              f"catalogue median {block['catalogue']['p50']:.3g} "
              f"(n={block['catalogue']['count']}), ratio {block['median_ratio']:.2f}, "
              f"KS {block['ks_statistic']:.2f} (p={block['ks_pvalue']:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
