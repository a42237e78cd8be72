"""The README's survey picture: ``python -m jetkeras.survey`` on one month of rendered cubes.

Neither the HEK nor JSOC can be reached from the machine this runs on, so both ends are
stand-ins and the survey itself is the real code:

- **HEK**: a HEK-shaped JSON answer (``{"result": [...], "overmax": false}``) rebuilt
  from the bundled catalogue for the month: one row per Solar Jet Hunter HEK event (its
  real ``SOL_event`` id, the first jet's start time and base point) and one per jet-free
  HEK window (named ``SOL<date>_nojet_<row>``: the catalogue keeps no HEK id for them).
- **JSOC**: a client that renders each event with :func:`jetkeras.synthetic.render_event`
  (30 frames of 166x166, nominal 300" field, 24 s cadence) and writes the frames as
  304 A FITS files at 3x the size (each pixel repeated 3x3, so the survey's 3x3 max-pool
  gives the render back), with an AIA-like header (``sunpy.map.Map`` reads them as
  ``AIAMap``).

The bundled model was trained on renders of this same catalogue, so its probabilities
here say nothing about real jets: the picture shows what a survey writes, not how well
it finds jets. Writes ``report.md``, ``timeline.png``, ``top.png`` and ``borderline.png``
into ``--out`` (default ``bench/results/survey``); the full survey folder (cubes, GIFs)
stays in ``--work``.

Examples::

    python bench/survey_figure.py                       # 2016-10, the bundled model
    python bench/survey_figure.py --start 2012-04-01 --end 2012-05-01 --work /tmp/survey
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.parse
import warnings
from pathlib import Path

import numpy as np

from jetkeras._cli import run_main


def hek_rows(start: str, end: str) -> tuple[list[dict], dict[str, dict]]:
    """HEK-shaped rows for the catalogue events starting in [start, end), and the
    catalogue row of each (keyed by the event id the survey will give it)."""
    from jetkeras.catalogue import load_events
    from jetkeras.hek import UNSAFE_ID_CHARACTERS

    events = load_events()
    in_range = events[(events["date"] >= start) & (events["date"] < end)]
    rows, by_id = [], {}
    jets = in_range[in_range["label"] == 1].sort_values("date").groupby("SOL_event").head(1)
    negatives = in_range[in_range["label"] == 0]
    for event in [*jets.to_dict("records"), *negatives.to_dict("records")]:
        if event["label"] == 1:
            sol = event["SOL_event"]
            minutes = float(event["duration"])
        else:
            sol = f"SOL{event['date'][:19]}_nojet_{event['row']:04d}"
            minutes = 12.0
        stop = np.datetime64(event["date"][:19]) + np.timedelta64(int(minutes * 60), "s")
        rows.append({
            "SOL_standard": sol, "event_type": "CJ", "event_starttime": event["date"][:19],
            "event_endtime": str(stop), "hpc_x": float(event["basepoint_X"]),
            "hpc_y": float(event["basepoint_Y"]),
            "frm_name": "rebuilt from the bundled catalogue", "obs_observatory": "SDO",
            "obs_instrument": "AIA", "obs_channelid": "304",
        })
        by_id[UNSAFE_ID_CHARACTERS.sub("", sol)] = event
    return rows, by_id


class CatalogueHEK:
    """``opener(url) -> bytes``: the rows overlapping the URL's time window, one page."""

    def __init__(self, rows):
        self.rows = rows

    def __call__(self, url: str) -> bytes:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        start, end = query["event_starttime"], query["event_endtime"]
        rows = [row for row in self.rows
                if row["event_starttime"] < end and row["event_endtime"] >= start]
        return json.dumps({"result": rows, "overmax": False}).encode()


class RenderingJSOC:
    """A JSOC client that renders the event and writes its frames as 304 A FITS files."""

    def __init__(self, by_id: dict[str, dict], seed: int):
        self.by_id = by_id
        self.seed = seed

    def __call__(self, query, directory: Path) -> list[Path]:
        from astropy.io import fits

        from jetkeras.synthetic import render_event

        event = self.by_id[directory.name]
        cube = render_event(event, frames=30, size=166, seed=self.seed, randomise=False)
        paths = []
        for index, frame in enumerate(cube.frames):
            native = np.repeat(np.repeat(frame, 3, axis=0), 3, axis=1)  # 498 x 498
            header = fits.Header()
            header.update({
                "DATE-OBS": cube.times[index], "T_OBS": cube.times[index] + "Z",
                "TELESCOP": "SDO/AIA", "INSTRUME": "AIA_4", "WAVELNTH": 304,
                "WAVEUNIT": "angstrom", "EXPTIME": 2.9, "CTYPE1": "HPLN-TAN",
                "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
                "CDELT1": 300.0 / 498, "CDELT2": 300.0 / 498, "CRPIX1": 249.5,
                "CRPIX2": 249.5, "CRVAL1": float(event["basepoint_X"]),
                "CRVAL2": float(event["basepoint_Y"]),
            })
            path = directory / f"aia.lev1_euv_12s.{index:03d}.304.image_lev1.fits"
            fits.PrimaryHDU(native.astype(np.float32), header=header).writeto(path)
            paths.append(path)
        return paths


def _small_png(source: Path, target: Path, width_px: int = 720) -> None:
    """A contact sheet scaled to ``width_px`` and reduced to 128 colours (a few hundred
    kB instead of 2 MB, for the repository)."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        height_px = round(image.height * width_px / image.width)
        small = image.resize((width_px, height_px), Image.Resampling.LANCZOS)
        small.quantize(colors=128).save(target, optimize=True)


def _copy_report(source: Path, target: Path) -> None:
    """report.md with the contact sheets beside it; the GIFs stay in the work folder."""
    text = source.read_text()
    for name in ("top", "borderline"):
        text = text.replace(f"](gallery/{name}.png)", f"]({name}.png)")
    note = ("> Made by `bench/survey_figure.py` on stand-ins: the HEK answer rebuilt from the "
            "bundled catalogue, the cubes rendered with `jetkeras.synthetic` (HEK and JSOC "
            "cannot be reached from the machine it ran on). The GIFs are not kept here: "
            "rerun the script to see them.\n\n")
    title, rest = text.split("\n", 1)
    target.write_text(f"{title}\n\n{note}{rest.lstrip()}")


def make_figure(*, start: str, end: str, work: Path, out: Path, top: int, borderline: int,
                seed: int) -> None:
    from jetkeras.survey import survey

    rows, by_id = hek_rows(start, end)
    os.environ.setdefault("JSOC_EMAIL", "survey-figure@example.org")
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = survey(start=start, end=end, out=work, top=top, borderline=borderline,
                        hek_opener=CatalogueHEK(rows), jsoc_client=RenderingJSOC(by_id, seed),
                        retries=0)
    seconds = time.perf_counter() - began
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "timeline.png", out / "timeline.png")
    _copy_report(work / "report.md", out / "report.md")
    for name in ("top", "borderline"):
        _small_png(work / "gallery" / f"{name}.png", out / f"{name}.png")
    table = result["events"]
    truth = table["event_id"].map(lambda event_id: by_id[event_id]["label"])
    jets = table["predicted"] == 1
    print(f"survey_figure: {len(table)} events ({int(truth.sum())} rendered as jets) in "
          f"{seconds:.0f} s; labelled jet {int(jets.sum())}, of which rendered jets "
          f"{int((jets & (truth == 1)).sum())}; wrote {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", default="2016-10-01", help="UTC start; default 2016-10-01")
    parser.add_argument("--end", default="2016-11-01", help="UTC end; default 2016-11-01")
    parser.add_argument("--work", default="survey_figure_work",
                        help="survey folder (cubes, GIFs); default survey_figure_work/")
    parser.add_argument("--out", default="bench/results/survey",
                        help="where the picture files go; default bench/results/survey")
    parser.add_argument("--top", type=int, default=8, help="top candidates; default 8")
    parser.add_argument("--borderline", type=int, default=8,
                        help="borderline events; default 8")
    parser.add_argument("--seed", type=int, default=0, help="render seed; default 0")
    args = parser.parse_args(argv)
    return run_main(lambda: make_figure(start=args.start, end=args.end, work=Path(args.work),
                                        out=Path(args.out), top=args.top,
                                        borderline=args.borderline, seed=args.seed),
                    "bench/survey_figure.py")


if __name__ == "__main__":
    raise SystemExit(main())
