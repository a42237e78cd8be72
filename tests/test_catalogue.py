import pytest

from jetkeras.catalogue import load_events, load_jets, load_negatives, times
from jetkeras.records import split_events


@pytest.fixture(scope="module")
def events():
    return load_events()


def test_real_jet_catalogue_is_read_exactly():
    jets = load_jets()
    assert len(jets) == 883
    assert jets["sjh_ID"].is_unique
    assert jets["SOL_event"].nunique() == 229
    assert jets.loc[0, "flag"] == "001" and jets["flag"].str.len().eq(3).all()
    assert jets["flag"].value_counts().to_dict() == {
        "000": 339, "010": 282, "110": 170, "011": 43, "001": 32, "111": 17}
    assert jets["velocity"].isna().sum() == 512
    # The flag bits agree with the data (seed-reference section 7.1).
    assert ((jets["duration"] < 6) == (jets["flag"].str[0] == "1")).all()
    assert (jets["velocity"].isna() == (jets["flag"].str[1] == "1")).all()


def test_real_negatives():
    negatives = load_negatives()
    assert len(negatives) == 883
    assert negatives[["basepoint_X", "basepoint_Y"]].drop_duplicates().shape[0] == 208


def test_event_index(events):
    assert len(events) == 1766
    assert events["event_id"].is_unique
    assert (events["label"] == 1).sum() == 883
    assert events.loc[events["label"] == 1, "SOL_event"].nunique() == 229
    jets = events[events["label"] == 1]
    assert (jets["group"] == jets["SOL_event"]).all()
    assert events.loc[events["label"] == 0, "event_id"].iloc[0] == "nojet_0000"
    t = times(events.iloc[:3])
    assert t.scale == "utc" and t[0].isot == "2011-01-20T09:15:44.000"


def test_negatives_from_one_region_and_day_share_a_group(events):
    negatives = events[events["label"] == 0]
    # Two negatives on one day at the same base point are in one group.
    key = negatives["date"].str.slice(0, 10) + negatives["basepoint_X"].astype(str)
    repeated = negatives[key.duplicated(keep=False)]
    for _, members in repeated.groupby(key[key.duplicated(keep=False)]):
        assert members["group"].nunique() == 1


def test_grouped_split_never_shares_a_group(events):
    split = split_events(events, seed=0)
    per_group = split.groupby(events["group"]).nunique()
    assert (per_group == 1).all()
    fractions = split.value_counts(normalize=True)
    assert abs(fractions["train"] - 0.70) < 0.05
    assert abs(fractions["val"] - 0.15) < 0.05 and abs(fractions["test"] - 0.15) < 0.05
    for name in ("train", "val", "test"):
        jet_share = events.loc[split == name, "label"].mean()
        assert 0.4 < jet_share < 0.6
    assert (split_events(events, seed=0) == split).all()
    assert not (split_events(events, seed=1) == split).all()


def test_missing_and_malformed_catalogue(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv: catalogue file not found"):
        load_jets(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,basepoint_X\n2011-01-01T00:00:00,1\n")
    with pytest.raises(ValueError, match=r"bad.csv: expected columns .* missing \['basepoint_Y'\]"):
        load_negatives(bad)
    bad.write_text("date,basepoint_X,basepoint_Y\nyesterday,1,2\n")
    with pytest.raises(ValueError, match="bad.csv: column `date` expects ISO 8601 UTC times, "
                                         "received 'yesterday' in row 0"):
        load_negatives(bad)


def test_read_table_reads_the_three_layouts(tmp_path):
    from jetkeras.catalogue import _bundled, read_table

    jets = read_table(_bundled("Jet_clusters_3.0_2.0_paperID.csv"))
    assert len(jets) == 883 and set(jets["label"]) == {1}
    assert jets["event_id"].iloc[0] == "sjh_2011-01-20T09_1"
    negatives = read_table(_bundled("No_jet_df.csv"))
    assert len(negatives) == 883 and set(negatives["label"]) == {0}
    assert negatives["event_id"].iloc[2] == "nojet_0002"
    table = tmp_path / "events.csv"
    table.write_text("event_id,label,date,basepoint_X,basepoint_Y\n"
                     "SOL2017-01-03T101100L125C072,,2017-01-03T10:11:00.000,-712.3,305.1\n"
                     "b,1,2017-01-04T00:00:00,1,2\n")
    events = read_table(table)
    assert events["label"].tolist() == ["", 1] and events["row"].tolist() == [0, 1]
    table.write_text("event_id,date,basepoint_X,basepoint_Y\na,2017-01-03,west,1\n")
    with pytest.raises(ValueError, match=r"events.csv: column `basepoint_X` expects arcsec, "
                                         r"received 'west' in row 0"):
        read_table(table)
    table.write_text("event_id,date,basepoint_X,basepoint_Y\na,2017-01-03,1,1\na,2017,1,1\n")
    with pytest.raises(ValueError, match=r"expected unique event ids, received 'a' twice"):
        read_table(table)
    table.write_text("time,x,y\n2017-01-03,1,1\n")
    with pytest.raises(ValueError, match=r"events.csv: expected an event table \(event_id, "
                                         r"date, basepoint_X, basepoint_Y\), the Solar Jet "
                                         r"Hunter catalogue"):
        read_table(table)


def test_table_layout_names_the_layout_from_the_header(tmp_path):
    from jetkeras.catalogue import _bundled, table_layout

    assert table_layout(_bundled("Jet_clusters_3.0_2.0_paperID.csv")) == "jets"
    assert table_layout(_bundled("No_jet_df.csv")) == "negatives"
    table = tmp_path / "events.csv"
    table.write_text("event_id,date,basepoint_X,basepoint_Y\na,2017-01-03,1,1\n")
    assert table_layout(table) == "events"
    table.write_text("time,x,y\n2017-01-03,1,1\n")
    assert table_layout(table) is None
    table.write_text("")
    with pytest.raises(ValueError, match=r"events.csv: expected an event table CSV, received "
                                         r"an unreadable file \(EmptyDataError\)"):
        table_layout(table)
    with pytest.raises(FileNotFoundError, match=r"missing.csv: catalogue CSV file not found"):
        table_layout(tmp_path / "missing.csv")
