"""Tests of jetkeras.fetch without the network: query attributes, retries, resume, conversion."""

import json
import re
import shutil

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time
from sunpy.net import attrs as a

from jetkeras.catalogue import load_events
from jetkeras.fetch import (
    STATE_FILE,
    build_query,
    cutout_corners,
    fetch_catalogue,
    fetch_events,
    jsoc_email,
    main,
)
from jetkeras.io import read_npz

EMAIL = "jets@example.org"


@pytest.fixture
def event():
    """The first real jet of the catalogue (row 0)."""
    return load_events().iloc[0].to_dict()


def test_build_query_is_the_seeds_query(event):
    query = build_query(event, email=EMAIL)
    assert [type(attr).__name__ for attr in query] == [
        "Time", "Wavelength", "Sample", "Series", "Notify", "Segment", "Cutout"]
    time_attr, wavelength, sample, series, notify, segment, cutout = query
    start = Time(event["date"], scale="utc")
    assert time_attr.start.isot == start.isot == "2011-01-20T09:15:44.000"
    # 30 frames at 24 s: the window ends 29 * 24 s = 696 s after the start.
    assert (time_attr.end - time_attr.start).to_value(u.s) == pytest.approx(696.0)
    assert wavelength.min == 304 * u.angstrom and wavelength.max == 304 * u.angstrom
    assert sample.value == pytest.approx(24.0)  # a.Sample stores seconds
    assert series.value == a.jsoc.Series.aia_lev1_euv_12s.value == "aia.lev1_euv_12s"
    assert notify.value == EMAIL
    assert segment.value == a.jsoc.Segment.image.value == "image"
    box = cutout.value
    assert box["x"] == pytest.approx(event["basepoint_X"])  # centred on the jet base
    assert box["y"] == pytest.approx(event["basepoint_Y"])
    assert box["width"] == pytest.approx(300.0) and box["height"] == pytest.approx(300.0)
    assert box["t"] == 1  # JSOC's "t" is "disable tracking": tracking=False
    assert box["locunits"] == "arcsec"
    assert box["t_ref"] == start.isot


def test_build_query_options(event):
    query = build_query(event, email=EMAIL, wavelength_angstrom=171, frames=10, cadence_s=12,
                        box_arcsec=200)
    assert (query[0].end - query[0].start).to_value(u.s) == pytest.approx(108.0)
    assert query[1].min == 171 * u.angstrom
    assert query[2].value == pytest.approx(12.0)
    assert query[6].value["width"] == pytest.approx(200.0)
    with pytest.raises(ValueError, match=r"`frames` expected an integer >= 1, received 0"):
        build_query(event, email=EMAIL, frames=0)
    with pytest.raises(ValueError, match=r"`box_arcsec` expected a positive number, received -5"):
        build_query(event, email=EMAIL, box_arcsec=-5)


def test_cutout_corners_observer_and_obstime(event):
    bottom_left, top_right = cutout_corners(event, box_arcsec=300)
    assert bottom_left.Tx.to_value(u.arcsec) == pytest.approx(event["basepoint_X"] - 150)
    assert bottom_left.Ty.to_value(u.arcsec) == pytest.approx(event["basepoint_Y"] - 150)
    assert top_right.Tx.to_value(u.arcsec) == pytest.approx(event["basepoint_X"] + 150)
    assert top_right.Ty.to_value(u.arcsec) == pytest.approx(event["basepoint_Y"] + 150)
    assert bottom_left.frame.name == "helioprojective"
    assert bottom_left.obstime.isot == "2011-01-20T09:15:44.000"
    # observer="earth" resolves to Earth's position at obstime (~1 AU).
    assert bottom_left.observer.radius.to_value(u.AU) == pytest.approx(0.984, abs=0.01)


def test_missing_email_is_one_clear_line(monkeypatch, event, tmp_path):
    monkeypatch.delenv("JSOC_EMAIL", raising=False)
    with pytest.raises(ValueError, match=r"^JSOC_EMAIL: expected the e-mail address registered "
                                         r"with JSOC \(export JSOC_EMAIL=you@example.org\), "
                                         r"received nothing$"):
        jsoc_email()
    with pytest.raises(ValueError, match=r"JSOC_EMAIL: expected the e-mail address"):
        fetch_events([event], out=tmp_path, client=lambda q, d: [])
    monkeypatch.setenv("JSOC_EMAIL", "not-an-address")
    with pytest.raises(ValueError, match=r"JSOC_EMAIL: expected an e-mail address, received "
                                         r"'not-an-address'"):
        jsoc_email()
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    assert jsoc_email() == EMAIL


def test_cli_reports_missing_email(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("JSOC_EMAIL", raising=False)
    assert main(["--out", str(tmp_path), "--limit", "1", "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("python -m jetkeras.fetch: error: JSOC_EMAIL: expected")
    assert len(error.splitlines()) == 1


class FlakyClient:
    """Copies real AIA FITS frames into the download folder; fails on chosen calls."""

    def __init__(self, source, fail_calls=()):
        self.source = source
        self.fail_calls = set(fail_calls)
        self.calls = []

    def __call__(self, query, directory):
        self.calls.append((query, directory))
        if len(self.calls) in self.fail_calls:
            # Leave a partial file behind, as an interrupted download would.
            (directory / "partial.fits").write_bytes(b"SIMPLE  =")
            raise ConnectionError("JSOC export pending (status 7)\nsecond line")
        paths = []
        for file in sorted(self.source.iterdir()):
            paths.append(shutil.copy(file, directory / file.name))
        return paths


def _events(count):
    return load_events().head(count)


def test_fetch_retries_with_backoff_then_resumes(aia_fits_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    waits = []
    client = FlakyClient(aia_fits_dir, fail_calls={1, 2})
    out = tmp_path / "out"
    summary = fetch_events(_events(2), out=out, client=client, frames=6, retries=3,
                           backoff_s=10.0, sleep=waits.append, progress=False)
    assert summary["status"].tolist() == ["done", "done"]
    assert summary["attempts"].tolist() == [3, 1]
    assert waits == [10.0, 20.0]  # exponential back-off before the 2nd and 3rd attempt
    assert len(client.calls) == 4
    # The query reaching the client is build_query's.
    assert client.calls[0][0][4].value == EMAIL
    state = json.loads((out / STATE_FILE).read_text())
    first = state["events"]["sjh_2011-01-20T09_1"]
    assert first["status"] == "done" and first["attempts"] == 3 and first["error"] is None
    assert not (out / "fits").exists()  # raw FITS deleted by default

    # A rerun skips done events: no client call.
    rerun = FlakyClient(aia_fits_dir)
    again = fetch_events(_events(3), out=out, client=rerun, frames=6, sleep=waits.append,
                         progress=False)
    assert again["skipped"].tolist() == [True, True, False]
    assert len(rerun.calls) == 1
    assert sorted(p.name for p in out.glob("*.npz")) == [
        "sjh_2011-01-20T09_1.npz", "sjh_2011-01-20T23_1.npz", "sjh_2011-01-20T23_2.npz"]


def test_fetch_records_failure_and_retries_it_next_run(aia_fits_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    out = tmp_path / "out"
    always = FlakyClient(aia_fits_dir, fail_calls={1, 2})
    summary = fetch_events(_events(1), out=out, client=always, frames=6, retries=1,
                           sleep=lambda s: None, progress=False)
    assert summary["status"].tolist() == ["failed"]
    state = json.loads((out / STATE_FILE).read_text())["events"]["sjh_2011-01-20T09_1"]
    assert state == {"status": "failed", "attempts": 2, "cube": None, "updated": state["updated"],
                     "error": "ConnectionError: JSOC export pending (status 7)"}
    # Next run: the failed event is tried again (attempts accumulate), partial files gone.
    summary = fetch_events(_events(1), out=out, client=FlakyClient(aia_fits_dir), frames=6,
                           keep_fits=True, sleep=lambda s: None, progress=False)
    assert summary["status"].tolist() == ["done"] and summary["attempts"].tolist() == [3]
    kept = sorted(p.name for p in (out / "fits" / "sjh_2011-01-20T09_1").iterdir())
    assert "partial.fits" not in kept and len(kept) == 6


def test_fetch_converts_real_aia_frames_to_cube(aia_fits_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    out = tmp_path / "out"
    events = load_events()
    negative = events[events["label"] == 0].head(1)
    fetch_events(negative, out=out, client=FlakyClient(aia_fits_dir), frames=6,
                 sleep=lambda s: None, progress=False)
    cube = read_npz(out / "nojet_0000.npz", frames=6, size=32)
    assert cube.frames.dtype == np.float32
    assert cube.times[0] == "2013-03-10T12:00:11.341"
    assert cube.meta["event_id"] == "nojet_0000" and cube.meta["label"] == 0
    assert cube.meta["row"] == 0
    assert cube.meta["duration"] is None  # NaN in the catalogue -> JSON null
    assert cube.meta["query"]["frames"] == 6 and cube.meta["pool"] == 3
    assert cube.meta["wavelength_angstrom"] == 171  # read from the real header


def test_fetch_short_download_is_failed_not_retried(aia_fits_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    client = FlakyClient(aia_fits_dir)
    summary = fetch_events(_events(1), out=tmp_path, client=client, frames=30, retries=3,
                           sleep=lambda s: None, progress=False)
    assert len(client.calls) == 1
    assert summary["error"].iloc[0].startswith("conversion: ValueError: ")
    assert summary["error"].iloc[0].endswith("expected 30 frames, received 6")
    # Raw FITS are kept for inspection when the conversion fails.
    assert len(list((tmp_path / "fits" / "sjh_2011-01-20T09_1").iterdir())) == 6


def test_fetch_state_pins_query_settings(aia_fits_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    fetch_events(_events(1), out=tmp_path, client=FlakyClient(aia_fits_dir), frames=6,
                 progress=False)
    with pytest.raises(ValueError, match=r"fetch_state\.json: expected the query settings this "
                                         r"folder was fetched with .*'wavelength_angstrom': 304\.0"
                                         r".*received .*'wavelength_angstrom': 171\.0"):
        fetch_events(_events(1), out=tmp_path, client=FlakyClient(aia_fits_dir), frames=6,
                     wavelength_angstrom=171, progress=False)


def test_a_broken_fetch_state_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    state = tmp_path / "fetch_state.json"
    state.write_text('{"format": ')
    with pytest.raises(ValueError, match=r"fetch_state\.json: expected a JSON fetch state, "
                                         r"received invalid JSON"):
        fetch_events(_events(1), out=tmp_path, client=None, progress=False)
    state.write_text(json.dumps({"format": "jetkeras-fetch-state/0"}))
    with pytest.raises(ValueError, match=r"fetch_state\.json: expected format "
                                         r"'jetkeras-fetch-state/1', received 'jetkeras-fetch-state/0'"):
        fetch_events(_events(1), out=tmp_path, client=None, progress=False)


@pytest.mark.parametrize("entry, key, says", [
    ({"status": "maybe", "attempts": 1}, "status", "expected one of ['done', 'failed'], "
                                                   "received 'maybe'"),
    ({"attempts": 1}, "status", "expected the key"),
    ({"status": "failed", "attempts": -1}, "attempts", "expected an integer >= 0, received -1"),
    ({"status": "failed", "attempts": "3"}, "attempts", "expected an integer >= 0, received '3'"),
    ({"status": "failed", "attempts": 1, "error": 5}, "error", "expected text or null"),
    ({"status": "done", "attempts": 1, "cube": None}, "cube", "expected a non-empty string"),
    ("done", None, "expected a JSON object, received 'str'"),
])
def test_a_changed_fetch_state_entry_is_one_line(entry, key, says, aia_fits_dir, tmp_path,
                                                 monkeypatch):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    fetch_events(_events(1), out=tmp_path, client=FlakyClient(aia_fits_dir), frames=6,
                 progress=False)
    state_path = tmp_path / "fetch_state.json"
    state = json.loads(state_path.read_text())
    (event_id,) = state["events"]
    state["events"][event_id] = entry
    state_path.write_text(json.dumps(state))
    dotted = f"events.{event_id}" + (f".{key}" if key else "")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(state_path))}: key "
                                         rf"`{re.escape(dotted)}`: {re.escape(says)}.*; "
                                         r"delete the event's entry"):
        fetch_events(_events(1), out=tmp_path, client=FlakyClient(aia_fits_dir), frames=6,
                     progress=False)


def test_fetch_catalogue_selects_rows(aia_fits_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    client = FlakyClient(aia_fits_dir)
    summary = fetch_catalogue(out=tmp_path, negatives=True, rows=[5, 3, 9], limit=2,
                              client=client, frames=6, progress=False)
    assert summary["event_id"].tolist() == ["nojet_0003", "nojet_0005"]
    assert "2 of 2 event(s) done" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"--rows: expected rows 0\.\.882 of the jet catalogue, "
                                         r"received \[5000\]"):
        fetch_catalogue(out=tmp_path, rows=[5000], client=client)


def test_fetch_table_takes_the_hek_table_and_both_published_csvs(
        aia_fits_dir, tmp_path, monkeypatch, capsys, recorded_hek):
    from jetkeras.catalogue import _bundled
    from jetkeras.fetch import fetch_table
    from jetkeras.hek import query_hek

    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    with pytest.warns(UserWarning):
        query_hek(start="2017-01-01", end="2017-02-01", window_days=16, out=tmp_path / "e.csv",
                  opener=recorded_hek(), progress=False)
    client = FlakyClient(aia_fits_dir)
    summary = fetch_table(tmp_path / "e.csv", out=tmp_path / "hek", rows=[0, 4],
                          client=client, frames=6, progress=False)
    assert summary["event_id"].tolist() == ["SOL2017-01-03T101100L125C072",
                                            "SOL2017-01-25T143000L010C095"]
    cube = read_npz(tmp_path / "hek" / "SOL2017-01-03T101100L125C072.npz")
    assert cube.meta["SOL_event"] == "SOL2017-01-03T10:11:00L125C072"
    assert cube.meta["label"] == ""  # not classified
    # The query is centred on the HEK base point and starts at the HEK start time.
    cutout = client.calls[0][0][6].value
    assert (cutout["x"], cutout["y"]) == pytest.approx((-712.3, 305.1))
    assert client.calls[0][0][0].start.isot == "2017-01-03T10:11:00.000"
    # The published CSVs, through the command line.
    jets = _bundled("Jet_clusters_3.0_2.0_paperID.csv")
    monkeypatch.setattr("jetkeras.fetch.fido_client", FlakyClient(aia_fits_dir))
    assert main(["--catalogue", str(jets), "--out", str(tmp_path / "sjh"), "--limit", "1",
                 "--frames", "6", "--no-progress"]) == 0
    assert [p.name for p in (tmp_path / "sjh").glob("*.npz")] == ["sjh_2011-01-20T09_1.npz"]
    negatives = _bundled("No_jet_df.csv")
    assert main(["--catalogue", str(negatives), "--out", str(tmp_path / "neg"), "--rows", "7",
                 "--frames", "6", "--no-progress"]) == 0
    assert [p.name for p in (tmp_path / "neg").glob("*.npz")] == ["nojet_0007.npz"]
    capsys.readouterr()
    assert main(["--catalogue", str(negatives), "--negatives", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith(
        "python -m jetkeras.fetch: error: --negatives: selects the bundled catalogue's")


def test_fetch_without_network_stops_in_one_line(aia_fits_dir, tmp_path, monkeypatch, capsys):
    import socket
    import urllib.error

    from sunpy.net import Fido

    monkeypatch.setenv("JSOC_EMAIL", EMAIL)

    def no_network(*query, **options):
        # What drms raises inside Fido.search when jsoc.stanford.edu cannot be resolved.
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(Fido, "search", no_network)
    waits = []
    with pytest.raises(ValueError, match=r"JSOC cannot be reached at jsoc.stanford.edu "
                                         r"\(URLError"):
        fetch_events(_events(2), out=tmp_path, frames=6, sleep=waits.append, progress=False)
    assert waits == []  # no back-off: the same answer would come after minutes
    code = main(["--out", str(tmp_path), "--limit", "2", "--frames", "6", "--no-progress"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert error.startswith("python -m jetkeras.fetch: error: JSOC cannot be reached")
    assert not list(tmp_path.glob("*.npz")) and not (tmp_path / "fits").exists()


def test_an_interrupted_fetch_keeps_finished_events_and_the_rerun_fetches_the_rest(
        aia_fits_dir, tmp_path, monkeypatch):
    from jetkeras import _cli

    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    out = tmp_path / "out"

    class CtrlC(FlakyClient):
        def __call__(self, query, directory):
            if len(self.calls) == 1:  # Ctrl-C in the middle of the second download
                (directory / "partial.fits").write_bytes(b"SIMPLE  =")
                raise KeyboardInterrupt
            return super().__call__(query, directory)

    with pytest.raises(_cli.Interrupted) as interrupt:
        fetch_events(_events(3), out=out, client=CtrlC(aia_fits_dir), frames=6,
                     progress=False)
    assert interrupt.value.where == "after 1 of 3 events"
    assert interrupt.value.kept == (f"1 fetched cube(s) and the state are kept in "
                                    f"{out / STATE_FILE}")
    rerun = FlakyClient(aia_fits_dir)
    summary = fetch_events(_events(3), out=out, client=rerun, frames=6, progress=False)
    assert summary["skipped"].tolist() == [True, False, False]
    assert summary["attempts"].tolist() == [1, 1, 1]  # the interrupted try is not counted
    assert len(rerun.calls) == 2 and len(list(out.glob("*.npz"))) == 3


def test_a_full_disk_stops_the_fetch_at_once_with_one_line(tmp_path, monkeypatch, capsys):
    """Not retried for minutes nor recorded as a failed event: every event would fail."""
    import errno

    import jetkeras.fetch

    monkeypatch.setenv("JSOC_EMAIL", EMAIL)
    out, calls, waits = tmp_path / "out", [], []

    def full(query, directory):
        calls.append(directory)
        (directory / "partial.fits").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as error:
        fetch_events(_events(2), out=out, client=full, frames=6, retries=3,
                     sleep=waits.append, progress=False)
    assert error.value.errno == errno.ENOSPC and len(calls) == 1 and waits == []
    assert not (out / "fits").exists()  # the partial download is gone
    state = out / STATE_FILE
    assert not state.exists() or "failed" not in state.read_text()

    monkeypatch.setattr(jetkeras.fetch, "fetch_catalogue",
                        lambda **kwargs: fetch_events(_events(2), client=full, progress=False,
                                                      **{k: kwargs[k] for k in ("out",)}))
    assert main(["--out", str(out), "--limit", "2"]) == 2
    assert capsys.readouterr().err == (
        f"python -m jetkeras.fetch: error: no space left on device writing "
        f"{out / 'fits' / _events(1)['event_id'][0]} (No space left on device); free some "
        f"space and resume with: python -m jetkeras.fetch --out {out} --limit 2\n")
