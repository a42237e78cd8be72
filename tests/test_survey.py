"""The survey end to end on recorded HEK pages, a fake JSOC client and a tiny model."""

import json
import shutil
import zlib

import pandas as pd
import pytest

from jetkeras.rows import COLUMNS, model_identity
from jetkeras.survey import main, survey

EMAIL = "jets@example.org"
START, END = "2017-01-01", "2017-02-01"


class FakeJSOC:
    """Copies one of a few real-AIA FITS folders (4 frames at 304 A) per event.

    ``interrupt_at``: raise KeyboardInterrupt on that call (1-based), as Ctrl-C would.
    """

    def __init__(self, sources, interrupt_at=None):
        self.sources = sources
        self.interrupt_at = interrupt_at
        self.calls = []

    def __call__(self, query, directory):
        self.calls.append(directory.name)
        if len(self.calls) == self.interrupt_at:
            (directory / "partial.fits").write_bytes(b"SIMPLE  =")
            raise KeyboardInterrupt
        source = self.sources[zlib.crc32(directory.name.encode()) % len(self.sources)]
        return [shutil.copy(file, directory / file.name) for file in sorted(source.iterdir())]


@pytest.fixture(scope="module")
def fits_sources(make_aia_fits_dir):
    return [make_aia_fits_dir(n_frames=4, wavelength_angstrom=[304] * 4, seed=seed)
            for seed in range(3)]


def _run(out, model, *, client, opener, **options):
    return survey(start=START, end=END, out=out, model=model, window_days=16, top=2,
                  borderline=2, chunk=2, hek_opener=opener, jsoc_client=client, email=EMAIL,
                  sleep=lambda seconds: None, progress=False, **options)


@pytest.mark.slow
def test_survey_end_to_end_with_interruptions(tiny_run, fits_sources, recorded_hek, tmp_path,
                                              monkeypatch):
    import jetkeras.predict

    out = tmp_path / "survey"
    model = tiny_run["run"]
    # 1. Ctrl-C during the third download.
    client = FakeJSOC(fits_sources, interrupt_at=3)
    with pytest.warns(UserWarning), pytest.raises(KeyboardInterrupt):
        _run(out, model, client=client, opener=recorded_hek())
    assert len(list((out / "cubes").glob("*.npz"))) == 2
    assert not (out / "predictions.csv").exists()

    # 2. Resume, then Ctrl-C in the second prediction chunk (chunks of 2 events).
    original = jetkeras.predict.predict_cubes
    chunks = []

    def interrupted_predict(**options):
        chunks.append(len(options["cubes"]))
        if len(chunks) == 2:
            raise KeyboardInterrupt
        return original(**options)

    monkeypatch.setattr(jetkeras.predict, "predict_cubes", interrupted_predict)
    opener = recorded_hek()
    client = FakeJSOC(fits_sources)
    with pytest.warns(UserWarning), pytest.raises(KeyboardInterrupt):
        _run(out, model, client=client, opener=opener)
    assert opener.urls == []  # the HEK pages came from the cache
    assert len(client.calls) == 3  # the interrupted event and the two not yet fetched
    assert len(pd.read_csv(out / "predictions.csv")) == 2  # the first chunk was kept

    # 3. Resume to the end: only the three events left are predicted.
    monkeypatch.setattr(jetkeras.predict, "predict_cubes", original)
    client = FakeJSOC(fits_sources)
    with pytest.warns(UserWarning):
        result = _run(out, model, client=client, opener=recorded_hek())
    assert client.calls == [] and result["fetched_now"] == 0
    assert result["predicted_now"] == 3
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 5 and predictions["event_id"].is_unique

    events = pd.read_csv(out / "events.csv", keep_default_na=False)
    assert len(events) == 5
    assert set(events["fetch_status"]) == {"done"}
    assert events["probability"].between(0, 1).all()
    threshold = json.loads((tiny_run["run"] / "threshold.json").read_text())["threshold"]
    assert (events["predicted"] == (events["probability"] >= threshold).astype(int)).all()
    # Every column of the row schema but label: no truth here, HEK events are unclassified.
    assert "label" not in events.columns
    assert set(COLUMNS) - {"label"} <= set(events.columns)
    assert list(predictions.columns) == list(COLUMNS)
    assert set(events["model"]) == {model_identity(tiny_run["run"])}

    # The pictures and the report.
    assert (out / "timeline.png").stat().st_size > 10_000
    assert (out / "gallery" / "top.png").is_file() and (out / "gallery" / "borderline.png").is_file()
    top = sorted(p.name for p in (out / "gallery" / "top").glob("*.gif"))
    best = events.sort_values("probability", ascending=False)["event_id"].head(2).tolist()
    assert top == [f"01_{best[0]}.gif", f"02_{best[1]}.gif"]
    assert len(list((out / "gallery" / "borderline").glob("*.gif"))) == 2
    report = (out / "report.md").read_text()
    assert f"- **Model:** `{tiny_run['run']}`" in report
    assert f"- **Threshold:** {threshold:.4f}, stored with the model" in report
    assert "- **Input units:** DN (level-1 counts, not divided by the exposure time)" in report
    assert "5 event(s)" in report and "![Probability against date](timeline.png)" in report

    # 4. A rerun does nothing new; other settings in the same folder are refused.
    with pytest.warns(UserWarning):
        again = _run(out, model, client=FakeJSOC(fits_sources), opener=recorded_hek())
    assert again["fetched_now"] == 0 and again["predicted_now"] == 0
    with pytest.raises(ValueError, match=r"survey.json: this folder was surveyed with other "
                                         r"settings \(threshold: \[None\], received \[0.5\]\)"):
        _run(out, model, client=FakeJSOC(fits_sources), opener=recorded_hek(), threshold=0.5)


def test_survey_without_network_is_one_line(tmp_path, capsys, monkeypatch, recorded_hek,
                                            tiny_run):
    import socket
    import urllib.error

    from sunpy.net import Fido

    def no_network(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setattr(Fido, "search", no_network)
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    argv = ["--start", START, "--end", END, "--out", str(tmp_path), "--model",
            str(tiny_run["run"]), "--window-days", "16", "--no-progress"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert error.startswith("python -m jetkeras.survey: error: HEK cannot be reached")
    # With the HEK pages cached, the next stage stops at JSOC, in one line too.
    with pytest.warns(UserWarning):
        survey(start=START, end=END, out=tmp_path / "warm", model=tiny_run["run"],
               window_days=16, hek_opener=recorded_hek(), jsoc_client=lambda q, d: [],
               email=EMAIL, retries=0, progress=False)
    shutil.copytree(tmp_path / "warm" / "hek_cache", tmp_path / "hek_cache")
    assert main(argv) == 2
    # The command shows the HEK's warning as one line of its own, then the one error.
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line for line in lines if not line.startswith("survey: warning: ")] == lines[-1:]
    assert any("HEK: dropped 1 row(s)" in line for line in lines[:-1])
    assert lines[-1].startswith("python -m jetkeras.survey: error: JSOC cannot be reached")


@pytest.mark.slow
def test_survey_on_dask_agrees_with_one_process(tiny_run, fits_sources, recorded_hek,
                                                tmp_path):
    """At threshold 0 every event is a jet: measured alike by both, and drawn."""
    from jetkeras.localise import MEASUREMENT_COLUMNS
    from jetkeras.predict import predict_catalogue

    with pytest.warns(UserWarning):
        one = _run(tmp_path / "one", tiny_run["run"], client=FakeJSOC(fits_sources),
                   opener=recorded_hek(), threshold=0.0)
    with pytest.warns(UserWarning):
        dask = _run(tmp_path / "dask", tiny_run["run"], client=FakeJSOC(fits_sources),
                    opener=recorded_hek(), workers=2, threshold=0.0)
    assert dask["predicted_now"] == 5
    pd.testing.assert_series_equal(one["events"]["probability"],
                                   dask["events"]["probability"], atol=1e-6)
    events = one["events"]
    assert (events["predicted"] == 1).all()
    for column in ("base_row", "base_col", "direction_deg", "length_arcsec",
                   "localisation_score"):
        pd.testing.assert_series_equal(events[column].astype(float),
                                       dask["events"][column].astype(float), atol=1e-6)
    assert events["base_hpc_x"].notna().all()  # the FITS cubes carry a WCS
    assert set(MEASUREMENT_COLUMNS) <= set(events.columns)
    # Each gallery event, called a jet, is drawn and linked from the report.
    report = (tmp_path / "one" / "report.md").read_text()
    best = events.sort_values("probability", ascending=False)["event_id"].head(2)
    for event_id in best:
        [picture] = (tmp_path / "one" / "gallery" / "top").glob(f"{event_id}_w*.png")
        assert picture.stat().st_size > 10_000
        assert f"]({picture.relative_to(tmp_path / 'one').as_posix()})" in report
    # predict --catalogue reads the survey's HEK event table and its cubes as they are.
    rows = predict_catalogue(model=tiny_run["run"], catalogue=tmp_path / "one" / "hek_events.csv",
                             cubes=tmp_path / "one" / "cubes", progress=False)
    assert [row["event_id"] for row in rows] == one["events"]["event_id"].tolist()
    assert [row["probability"] for row in rows] == pytest.approx(
        one["events"]["probability"].tolist(), abs=1e-6)
    assert {row["label"] for row in rows} == {None}  # unclassified, not a 0


def test_bad_flags_are_refused_before_the_folder_is_pinned(tiny_run, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    base = ["--start", START, "--end", END, "--out", str(tmp_path / "s"), "--model",
            str(tiny_run["run"]), "--no-progress"]
    assert main([*base, "--event-type", "jet"]) == 2
    assert "--event-type: expected a two-letter HEK event type" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, as for every CLI
        main([*base, "--top", "-1"])
    assert exit_info.value.code == 2
    assert "argument --top: expected " in capsys.readouterr().err
    assert not (tmp_path / "s" / "survey.json").exists()
    monkeypatch.delenv("JSOC_EMAIL")
    assert main(base) == 2
    assert "JSOC_EMAIL: expected the e-mail address registered with JSOC" in \
        capsys.readouterr().err
