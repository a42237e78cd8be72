"""Tests of jetkeras.hek on recorded HEK pages: parameters, paging, cache, merge, no network."""

import json
import urllib.parse

import pandas as pd
import pytest

from jetkeras.catalogue import read_table
from jetkeras.hek import (
    EVENT_TABLE_COLUMNS,
    HEKUnreachableError,
    events_from_rows,
    hek_parameters,
    main,
    query_hek,
    query_windows,
)

START, END = "2017-01-01", "2017-02-01"


def test_parameters_are_sunpys_hek_query():
    parameters = hek_parameters(START, END, event_type="CJ")
    assert parameters["event_type"] == "CJ"
    assert parameters["event_starttime"] == "2017-01-01T00:00:00"
    assert parameters["event_endtime"] == "2017-02-01T00:00:00"
    # HEKClient's defaults: JSON answer, full-disk box in helioprojective arcsec.
    assert parameters["cosec"] == "2" and parameters["cmd"] == "search"
    assert parameters["event_coordsys"] == "helioprojective"
    assert (parameters["x1"], parameters["x2"]) == (-5000, 5000)
    assert hek_parameters(START, END, event_type="fl")["event_type"] == "FL"
    with pytest.raises(ValueError, match=r"--event-type: expected a two-letter HEK event "
                                         r"type .* received 'jet'"):
        hek_parameters(START, END, event_type="jet")


def test_windows_cover_the_range_without_gaps():
    windows = query_windows(START, END, window_days=16)
    assert windows == [("2017-01-01T00:00:00", "2017-01-17T00:00:00"),
                       ("2017-01-17T00:00:00", "2017-02-01T00:00:00")]
    assert len(query_windows("2011-01-01", "2017-01-01")) == 74  # 2,192 days / 30
    with pytest.raises(ValueError, match=r"--end: expected a time after --start"):
        query_windows(END, START)
    with pytest.raises(ValueError, match=r"--start: expected an ISO 8601 UTC time .* "
                                         r"received 'yesterday'"):
        query_windows("yesterday", END)


def test_query_pages_merges_and_caches(recorded_hek, tmp_path):
    opener = recorded_hek()
    out = tmp_path / "events.csv"
    with pytest.warns(UserWarning, match=r"dropped 1 row\(s\) without SOL_standard"):
        table = query_hek(start=START, end=END, out=out, window_days=16, opener=opener,
                          progress=False)
    # Three pages: window 1 pages 1 and 2 (overmax true, then false), window 2 page 1.
    pages = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
             for url in opener.urls]
    assert [(p["event_starttime"][:10], p["page"]) for p in pages] == [
        ("2017-01-01", "1"), ("2017-01-01", "2"), ("2017-01-17", "1")]
    assert all(p["event_type"] == "CJ" and p["cosec"] == "2" for p in pages)
    assert table.attrs["pages_requested"] == 3 and table.attrs["hek_rows"] == 9
    # Nine rows: one before the range, one without coordinates, two repeats by channel.
    assert table["event_id"].tolist() == [
        "SOL2017-01-03T101100L125C072", "SOL2017-01-09T224000L300C110",
        "SOL2017-01-12T050200L045C100", "SOL2017-01-16T235500L350C095",
        "SOL2017-01-25T143000L010C095"]
    assert list(table.columns) == EVENT_TABLE_COLUMNS
    first = table.iloc[0]
    assert first["SOL_event"] == "SOL2017-01-03T10:11:00L125C072"
    assert first["date"] == "2017-01-03T10:11:00.000"
    assert first["end_date"] == "2017-01-03T10:29:00.000"
    assert (first["basepoint_X"], first["basepoint_Y"]) == (-712.3, 305.1)
    assert first["duration"] == pytest.approx(18.0)
    assert first["obs_channelid"] == "304;171" and first["frm_name"] == "AIA Jet Detector"
    assert table.loc[3, "obs_channelid"] == "304;193"  # merged across the two windows
    assert table["row"].tolist() == [0, 1, 2, 3, 4]

    # The CSV is the documented schema and reads back through the catalogue reader.
    on_disk = read_table(out)
    assert on_disk["event_id"].tolist() == table["event_id"].tolist()
    assert on_disk["label"].tolist() == [""] * 5
    assert len(list((tmp_path / "hek_cache").glob("*/page_*.json"))) == 3
    cached = json.loads(sorted((tmp_path / "hek_cache").glob("CJ_2017-01-01T*/page_0001.json"))[0]
                        .read_text())
    assert cached["overmax"] is True and len(cached["result"]) == 4  # raw, as HEK sent it

    # A rerun is answered from the cache: no URL opened, the same table.
    again_opener = recorded_hek()
    with pytest.warns(UserWarning):
        again = query_hek(start=START, end=END, window_days=16, opener=again_opener,
                          cache=tmp_path / "hek_cache", progress=False)
    assert again_opener.urls == [] and again.attrs["pages_requested"] == 0
    pd.testing.assert_frame_equal(again, table)


def test_interrupted_window_resumes_at_its_missing_page(recorded_hek, tmp_path):
    offline_after_one = recorded_hek(fail_after=1)
    with pytest.raises(HEKUnreachableError, match=r"HEK cannot be reached at "
                                                  r"https://www.lmsal.com/hek/her \(URLError"):
        query_hek(start=START, end=END, window_days=16, opener=offline_after_one,
                  cache=tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("*/page_*.json"))) == 1  # page 1 kept
    opener = recorded_hek()
    with pytest.warns(UserWarning):
        table = query_hek(start=START, end=END, window_days=16, opener=opener,
                          cache=tmp_path / "cache", progress=False)
    # Only the two pages not cached were asked for.
    assert [urllib.parse.parse_qs(url)["page"] for url in opener.urls] == [["2"], ["1"]]
    assert len(table) == 5


def test_a_corrupt_cached_page_is_one_line(recorded_hek, tmp_path):
    with pytest.warns(UserWarning):
        query_hek(start=START, end=END, window_days=16, opener=recorded_hek(),
                  cache=tmp_path, progress=False)
    page = sorted(tmp_path.glob("CJ_2017-01-17T*/page_0001.json"))[0]
    page.write_text('{"result": [')
    with pytest.raises(ValueError, match=r"page_0001.json: expected a cached HEK JSON page, "
                                         r"received invalid JSON"):
        query_hek(start=START, end=END, window_days=16, opener=recorded_hek(), cache=tmp_path,
                  progress=False)


def test_events_from_rows_numbers_equal_ids():
    rows = [{"SOL_standard": "SOL2017-01-01T00:00:00L1C1", "event_starttime":
             "2017-01-01T00:00:00", "event_endtime": "2017-01-01T00:10:00", "hpc_x": 1.0,
             "hpc_y": 2.0},
            {"SOL_standard": "SOL2017-01-01T000000L1C1", "event_starttime":
             "2017-01-01T00:00:00", "event_endtime": "2017-01-01T00:10:00", "hpc_x": 1.0,
             "hpc_y": 2.0}]
    table = events_from_rows(rows)
    assert table["event_id"].tolist() == ["SOL2017-01-01T000000L1C1",
                                          "SOL2017-01-01T000000L1C1_2"]


def test_cli_without_network_is_one_line(tmp_path, capsys, monkeypatch):
    import socket
    import urllib.error

    def no_network(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    # What urllib raises when the name cannot be resolved; patched so the test never
    # reaches the HEK on a machine that has a network.
    monkeypatch.setattr("urllib.request.urlopen", no_network)
    code = main(["--start", START, "--end", "2017-01-02", "--out", str(tmp_path / "e.csv"),
                 "--no-progress"])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1
    assert error.startswith("python -m jetkeras.hek: error: HEK cannot be reached at "
                            "https://www.lmsal.com/hek/her")
    assert not (tmp_path / "e.csv").exists()


def test_cli_writes_the_table(recorded_hek, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("jetkeras.hek._urlopen", recorded_hek())
    code = main(["--start", START, "--end", END, "--window-days", "16", "--out",
                 str(tmp_path / "e.csv"), "--no-progress"])
    assert code == 0
    assert "hek: 5 event(s) from 9 HEK row(s); 3 page(s) asked of the HEK" in \
        capsys.readouterr().out
    assert main(["--start", START, "--end", END, "--out", str(tmp_path / "e.txt")]) == 2
    assert "--out" in capsys.readouterr().err
