"""build_records: round trip, leak-free split, resume after SIGKILL, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jetkeras.build_records import build_records, main
from jetkeras.catalogue import load_events
from jetkeras.config import JetConfig
from jetkeras.pipeline import iterate_records
from jetkeras.records import STORAGE, dequantise, quantise, read_manifest
from jetkeras.synthetic import render_event

TINY = JetConfig().replace(data={"frames": 4, "size": 32})


@pytest.fixture(scope="module")
def tiny_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("records") / "tiny"
    manifest = build_records(source="synthetic", out=out, config=TINY, limit=40, seed=3,
                             records_per_shard=8, progress=False)
    return out, manifest


def test_quantisation_round_trip_within_stated_tolerance():
    rng = np.random.default_rng(0)
    dn = rng.uniform(STORAGE.offset_dn, STORAGE.clip_dn, size=(4, 32, 32)).astype(np.float32)
    steps, step = quantise(dn)
    assert step == STORAGE.fine_step_dn
    assert np.abs(dequantise(steps, step) - dn).max() <= STORAGE.tolerance_dn * 1.001
    integer_dn = np.rint(dn)
    steps, step = quantise(integer_dn)
    assert step == 1.0 and np.array_equal(dequantise(steps, step), integer_dn)  # exact
    assert dequantise(*quantise(np.array([5000.0, -50.0]))).tolist() == [
        pytest.approx(STORAGE.clip_dn), pytest.approx(STORAGE.offset_dn)]


def test_plain_zlib_writes_what_isal_writes(monkeypatch):
    """Without python-isal the stdlib zlib compresses; the parser reads either."""
    import builtins

    from jetkeras.records import encode_example, parse_example

    cube = np.random.default_rng(2).poisson(60.0, (3, 16, 16)).astype(np.float32)
    with_isal = encode_example(cube, 1, "e", "g")
    real_import = builtins.__import__

    def no_isal(name, *args, **kwargs):
        if name.startswith("isal"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_isal)
    without_isal = encode_example(cube, 1, "e", "g")
    assert without_isal != with_isal  # really another compressor
    for serialized in (with_isal, without_isal):
        back = parse_example(serialized, 3, 16)["frames"].numpy()[..., 0]
        np.testing.assert_array_equal(back, cube)


@pytest.mark.parametrize("low", [-16.0, -15.5])  # integer and fine steps
def test_encode_parse_round_trip_at_the_range_ends(low):
    """Neighbours at opposite ends of the range: the row prediction wraps modulo 2**16."""
    from jetkeras.records import encode_example, parse_example

    cube = np.tile(np.array([low, 1000.0, 3.0, 999.0], np.float32), (3, 8, 2))  # (3, 8, 8)
    back = parse_example(encode_example(cube, 1, "e", "g"), 3, 8)["frames"].numpy()[..., 0]
    np.testing.assert_allclose(back, cube, atol=STORAGE.tolerance_dn)


def test_round_trip_write_read_equal(tiny_records):
    out, manifest = tiny_records
    events = load_events().set_index("event_id")
    seen = 0
    for split in ("train", "val", "test"):
        for record in iterate_records(out, split):
            event = events.loc[record["event_id"]]
            expected = render_event({"event_id": record["event_id"], **event.to_dict()},
                                    frames=4, size=32, seed=3).frames
            stored = np.clip(expected, STORAGE.offset_dn, STORAGE.clip_dn)
            np.testing.assert_allclose(record["frames"][..., 0], stored,
                                       atol=manifest["encoding"]["tolerance_dn"] * 1.01)
            assert record["label"] == event["label"]
            assert record["group"] == event["group"]
            seen += 1
    assert seen == manifest["count"] == 40


def test_manifest_contents(tiny_records):
    out, manifest = tiny_records
    assert manifest["frames"] == 4 and manifest["size"] == 32
    assert manifest["normalisation"]["computed_on"] == "train"
    assert manifest["normalisation"]["std"] > 0
    counts = {s: e["counts"] for s, e in manifest["splits"].items()}
    assert sum(c["jet"] for c in counts.values()) == 20
    assert sum(c["no_jet"] for c in counts.values()) == 20
    groups = [set(e["groups"]) for e in manifest["splits"].values()]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert manifest["jetkeras_version"]
    assert all(len(s["sha256"]) == 64 for e in manifest["splits"].values() for s in e["shards"])


def test_training_statistics_come_from_train_split_only(tiny_records):
    out, manifest = tiny_records
    values = np.concatenate([r["frames"].ravel() for r in iterate_records(out, "train")])
    assert manifest["normalisation"]["mean"] == pytest.approx(values.mean(), rel=1e-4)
    assert manifest["normalisation"]["std"] == pytest.approx(values.std(), rel=1e-3)


def test_corrupted_shard_is_named(tiny_records, tmp_path):
    out, manifest = tiny_records
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = copy / manifest["splits"]["val"]["shards"][0]["name"]
    shard.write_bytes(shard.read_bytes()[:-20])
    with pytest.raises(ValueError, match=rf"{shard.name}: shard is truncated or corrupted"):
        list(iterate_records(copy, "val"))


def test_other_config_is_refused(tiny_records):
    out, _ = tiny_records
    with pytest.raises(ValueError, match=r"holds records built with frames=4, this build asks "
                                         r"frames=8"):
        build_records(source="synthetic", out=out, config=TINY.replace(data={"frames": 8}),
                      limit=40, seed=3, records_per_shard=8, progress=False)


def test_rerun_of_finished_build_is_a_no_op(tiny_records):
    out, manifest = tiny_records
    again = build_records(source="synthetic", out=out, config=TINY, limit=40, seed=3,
                          records_per_shard=8, progress=False)
    assert again["splits"] == manifest["splits"]


def test_split_fractions_grow_validation_and_test_and_are_part_of_the_identity(
        tiny_records, tmp_path):
    _, default = tiny_records
    out = tmp_path / "wide"
    wide = build_records(source="synthetic", out=out, config=TINY, limit=40, seed=3,
                         records_per_shard=8, progress=False,
                         split_fractions=(0.4, 0.3, 0.3))
    counts = {name: entry["count"] for name, entry in wide["splits"].items()}
    assert sum(counts.values()) == 40
    assert counts["train"] < default["splits"]["train"]["count"]
    assert counts["val"] > default["splits"]["val"]["count"]
    assert counts["test"] > default["splits"]["test"]["count"]
    assert wide["build"]["split_fractions"] == [0.4, 0.3, 0.3]
    assert "split_fractions" not in default["build"]  # default: older folders resume
    with pytest.raises(ValueError, match=r"holds records built with split_fractions="
                                         r"\[0.4, 0.3, 0.3\], this build asks "
                                         r"split_fractions=None"):
        build_records(source="synthetic", out=out, config=TINY, limit=40, seed=3,
                      records_per_shard=8, progress=False)


def test_split_fractions_flag_that_does_not_sum_to_one_is_one_line(tmp_path, capsys):
    code = main(["--source", "synthetic", "--out", str(tmp_path / "r"), "--limit", "40",
                 "--split-fractions", "0.5", "0.3", "0.3"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert "--split-fractions: expected three fractions TRAIN VAL TEST" in error[0]
    assert "received [0.5, 0.3, 0.3]" in error[0] and not (tmp_path / "r").exists()


@pytest.mark.parametrize("fractions", [(0.5, 0.3, 0.3), (1.0, 0.0, 0.0), (0.5, 0.5)])
def test_bad_split_fractions_are_one_line(fractions, tmp_path):
    with pytest.raises(ValueError, match=r"--split-fractions: expected three fractions "
                                         r"TRAIN VAL TEST, each in \(0, 1\), summing to 1; "
                                         r"received \["):
        build_records(source="synthetic", out=tmp_path / "r", config=TINY, limit=40,
                      progress=False, split_fractions=fractions)


def test_npz_source_with_seed_split(seed_npz_root, tmp_path):
    out = tmp_path / "seed"
    manifest = build_records(source="npz", npz_root=seed_npz_root, out=out, split="seed",
                             config=TINY, progress=False)
    assert manifest["splits"]["train"]["count"] == 4
    assert manifest["splits"]["test"]["counts"] == {"jet": 0, "no_jet": 1}
    assert manifest["splits"]["val"]["counts"] == {"jet": 1, "no_jet": 0}


def test_wrong_frame_count_is_rejected_and_counted(make_seed_npz_root, tmp_path):
    root = make_seed_npz_root(shape=(32, 32, 5))
    bad = root / "data1" / "0.npz"
    np.savez_compressed(bad, np.zeros((32, 32, 3)))
    manifest = build_records(source="npz", npz_root=root, out=tmp_path / "r", split="seed",
                             config=TINY.replace(data={"frames": 5}), progress=False)
    reasons = {r["event_id"]: r["reason"] for r in manifest["rejected"]}
    assert "expected 5 frames, received 3" in reasons["sjh_2011-01-20T09_1"]
    assert manifest["splits"]["train"]["count"] == 3


def test_seed_split_without_seed_folders(make_seed_npz_root, tmp_path):
    root = make_seed_npz_root(counts={"data0": 2, "data1": 2})
    with pytest.raises(ValueError, match="--split seed: .* has no `_val` and `_test` seed folders"):
        build_records(source="npz", npz_root=root, out=tmp_path / "r", split="seed",
                      config=TINY, progress=False)


def test_empty_source(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["--source", "fits", "--fits-root", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "r")])
    assert code == 2
    assert "expected cubes matching catalogue rows, found none" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_then_resume_gives_every_id_once(tmp_path):
    out = tmp_path / "killed"
    # Cubes large enough (~30 ms to render) that the kill lands mid-build.
    command = [sys.executable, "-m", "jetkeras.build_records", "--source", "synthetic",
               "--frames", "8", "--size", "96", "--limit", "48", "--records-per-shard", "2",
               "--out", str(out), "--seed", "5"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.tfrecord.json"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(list(out.glob("*.tfrecord.json")))
    assert 3 <= finished_before < 24, "the kill should land mid-build"
    assert not (out / "manifest.json").exists()
    subprocess.run(command, env=env, check=True, capture_output=True)
    manifest = read_manifest(out)
    ids = [r["event_id"] for split in manifest["splits"] for r in iterate_records(out, split)]
    assert len(ids) == len(set(ids)) == 48
    reference = build_records(source="synthetic", out=tmp_path / "clean",
                              config=JetConfig().replace(data={"frames": 8, "size": 96}),
                              limit=48, seed=5, records_per_shard=2, progress=False)
    assert sorted(ids) == sorted(r["event_id"] for s in reference["splits"]
                                 for r in iterate_records(tmp_path / "clean", s))
    assert json.dumps(reference["splits"], sort_keys=True) == json.dumps(manifest["splits"],
                                                                         sort_keys=True)


@pytest.mark.parametrize("parallel", ["threads", pytest.param("processes",
                                                                 marks=pytest.mark.slow)])
def test_parallel_build_writes_the_same_records(tmp_path, parallel):
    single = build_records(source="synthetic", out=tmp_path / "single", config=TINY, limit=24,
                           seed=4, records_per_shard=4, progress=False)
    out = tmp_path / parallel
    manifest = build_records(source="synthetic", out=out, config=TINY, limit=24, seed=4,
                             records_per_shard=4, workers=2, parallel=parallel,
                             progress=False)
    # Same shards, byte for byte (checksums), whatever ran them.
    assert json.dumps(single["splits"], sort_keys=True) == json.dumps(manifest["splits"],
                                                                      sort_keys=True)
    assert single["normalisation"] == manifest["normalisation"]


def test_bad_parallel_flags_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "o"), "--workers", "0"])
    assert exit_info.value.code == 2
    assert ("argument --workers: expected an integer in [1, 1024], received 0"
            in capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_describe_prints_table_and_writes_contact_sheet(tiny_records, tmp_path, capsys):
    from PIL import Image

    out, _ = tiny_records
    code = main(["--describe", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "split" in printed and "train" in printed and "sequences 40 of 4x32x32" in printed
    with Image.open(out / "describe.png") as image:
        assert image.size[0] > 200 and image.size[1] > 200


def _storage_ratio(cubes, folder):
    """Bytes of our shard ``folder/s.tfrecord`` over the seed's npz files, same cubes."""
    from jetkeras.records import write_shard

    seed_bytes = 0
    for index, cube in enumerate(cubes):
        path = folder / f"{index}.npz"  # the seed's file: (H, W, T) float64, gzip npz
        np.savez_compressed(path, np.moveaxis(cube.astype(np.float64), 0, -1))
        seed_bytes += path.stat().st_size
    sidecar = write_shard(folder / "s.tfrecord",
                          ((f"e{i}", 1, "g", c, None) for i, c in enumerate(cubes)),
                          log_stats=False)
    return sidecar["bytes"] / seed_bytes


def test_storage_is_at_most_half_the_seed_npz_on_synthetic_cubes(tmp_path):
    events = load_events().iloc[[0, 1, 900, 901]]
    cubes = [render_event(row, frames=10, size=166, seed=0).frames
             for _, row in events.iterrows()]
    assert _storage_ratio(cubes, tmp_path) <= 0.5


def test_real_aia_pixels_store_in_at_most_half_the_seed_npz(aia_cutout, tmp_path):
    """Real level-1 AIA DN, 3x3 max-pooled as the seed does: 166x166 frames, stored exactly."""
    data, _ = aia_cutout  # (705, 769) integer DN
    pooled = data[:705, :768].reshape(235, 3, 256, 3).max(axis=(1, 3))
    # Separate one-frame cubes at four corners: no frame repeats another's pixels, so
    # neither file gains from redundancy that real sequences would not have.
    cubes = [pooled[None, y:y + 166, x:x + 166] for y, x in ((0, 0), (69, 90), (0, 90), (69, 0))]
    assert _storage_ratio(cubes, tmp_path) <= 0.5


def test_real_aia_integer_dn_round_trip_exactly_and_store_smaller(make_aia_frames, tmp_path):
    cubes = [make_aia_frames(n_frames=8, size=64, seed=seed) for seed in range(3)]
    assert all(np.array_equal(c, np.rint(c)) for c in cubes)  # integer DN like level-1 AIA
    # Poisson noise in DN is noisier per DN than AIA's (~1.7 photons per DN): above 0.5.
    assert _storage_ratio(cubes, tmp_path) < 0.7
    import tensorflow as tf

    from jetkeras.records import parse_example

    for cube, serialized in zip(cubes, tf.data.TFRecordDataset(str(tmp_path / "s.tfrecord"))):
        back = parse_example(serialized, 8, 64)["frames"].numpy()[..., 0]
        np.testing.assert_array_equal(back, np.clip(cube, STORAGE.offset_dn, STORAGE.clip_dn))


# ------------------------------------------------------------ stored artefacts
def _copy_records(tiny_records, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(tiny_records[0], out)
    return out


def _set(document, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        document = document[int(key)] if key.isdigit() else document[key]
    if value is _DELETE:
        del document[last]
    else:
        document[last] = value


_DELETE = object()


@pytest.mark.parametrize("key, value, message", [
    ("normalisation.std", 0.0, "key `normalisation.std`: expected a finite number > 0, "
                               "received 0.0"),
    ("normalisation.log_std", -1.0, "key `normalisation.log_std`: expected a finite number > 0"),
    ("normalisation.mean", float("nan"), "key `normalisation.mean`: expected a finite number, "
                                         "received nan"),
    ("normalisation", _DELETE, "key `normalisation`: expected the key, received "
                               "a file without it"),
    ("frames", 0, "key `frames`: expected an integer >= 1, received 0"),
    ("size", "32", "key `size`: expected an integer >= 1, received '32'"),
    ("count", -1, "key `count`: expected an integer >= 0, received -1"),
    ("count", 41, "key `count`: expected the sum of the splits' counts, 40, received 41"),
    ("splits.train.count", 1000, "key `splits.train.count`: expected jet + no_jet"),
    ("splits.train.counts.jet", -3, "key `splits.train.counts.jet`: expected an integer >= 0"),
    ("splits.val.shards.0.name", "../elsewhere.tfrecord",
     "key `splits.val.shards[0].name`: expected a file name inside the records folder"),
    ("splits.val.shards.0.sha256", "abc", "key `splits.val.shards[0].sha256`: expected a "
                                          "SHA-256 of 64 hex digits"),
    ("encoding.format", "jetkeras-records/9", "key `encoding.format`: expected a known version"),
    ("encoding.clip_dn", -20.0, "key `encoding.clip_dn`: expected a number above offset_dn"),
    ("config.data.frames", 8, "key `config.data`: expected frames 4 and size 32 as the "
                              "records"),
    ("config.train.epochs", 0, "config key `train.epochs`: expected a positive integer"),
    ("build.format", "jetkeras-records/1", "key `build.format`: expected a known version"),
    ("splits.holdout", {}, "key `splits`: expected one or more of ['train', 'val', 'test']"),
])
def test_a_changed_manifest_is_refused_with_the_key(tiny_records, tmp_path, key, value,
                                                    message):
    out = _copy_records(tiny_records, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    _set(manifest, key, value)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError) as error:
        read_manifest(out)
    line = str(error.value)
    assert line.startswith(f"{out / 'manifest.json'}: ") and "\n" not in line
    assert message in line, line
    assert line.endswith("rebuild the records with `python -m jetkeras.build_records` or fix "
                         "the file")


def test_a_manifest_of_another_format_or_not_json_is_refused(tiny_records, tmp_path):
    out = _copy_records(tiny_records, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format": "jetkeras-records/3"}))
    with pytest.raises(ValueError, match="expected records of format 'jetkeras-records/2', "
                                         "received 'jetkeras-records/3'; rebuild them"):
        read_manifest(out)
    (out / "manifest.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="manifest.json: expected JSON, received invalid JSON"):
        read_manifest(out)


@pytest.mark.parametrize("key, value, message", [
    ("format", "jetkeras-records/7", "key `format`: expected a known version"),
    ("seed", -1, "key `seed`: expected an integer >= 0, received -1"),
    ("records_per_shard", 0, "key `records_per_shard`: expected an integer >= 1"),
])
def test_a_changed_build_json_is_refused_before_building(tiny_records, tmp_path, capsys, key,
                                                         value, message):
    out = _copy_records(tiny_records, tmp_path)
    build = json.loads((out / "build.json").read_text())
    build[key] = value
    (out / "build.json").write_text(json.dumps(build))
    code = main(["--frames", "4", "--size", "32", "--limit", "40", "--seed", "3",
                 "--records-per-shard", "8", "--out", str(out)])
    assert code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"build_records: error: {out / 'build.json'}: {message}"), line
    assert line.endswith("delete the folder and rerun build_records, or fix the file")


def test_sidecars_are_checked_and_old_ones_without_a_version_still_read(tiny_records,
                                                                        tmp_path, capsys):
    out = _copy_records(tiny_records, tmp_path)
    sidecars = sorted(out.glob("*.tfrecord.json"))
    for path in sidecars:  # as written before sidecars carried a version
        sidecar = json.loads(path.read_text())
        assert sidecar.pop("format") == "jetkeras-shard/1"
        path.write_text(json.dumps(sidecar))
    (out / "manifest.json").unlink()
    argv = ["--frames", "4", "--size", "32", "--limit", "40", "--seed", "3",
            "--records-per-shard", "8", "--out", str(out)]
    assert main(argv) == 0
    assert read_manifest(out)["splits"] == tiny_records[1]["splits"]
    sidecar = json.loads(sidecars[0].read_text())
    sidecar["sums"]["count"] = -5
    sidecars[0].write_text(json.dumps(sidecar))
    (out / "manifest.json").unlink()
    capsys.readouterr()
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert line.startswith(f"build_records: error: {sidecars[0]}: key `sums.count`: expected "
                           f"an integer >= 0, received -5; delete {sidecars[0].name[:-5]} and "
                           f"its sidecar and rerun build_records"), line


@pytest.mark.slow
def test_sigint_says_how_to_resume_and_the_resume_loses_and_duplicates_nothing(tmp_path):
    import shlex

    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "jetkeras.build_records", "--source", "synthetic",
               "--frames", "8", "--size", "96", "--limit", "48", "--records-per-shard", "2",
               "--out", str(out), "--seed", "5"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.time() + 120
        while time.time() < deadline and len(list(out.glob("*.tfrecord.json"))) < 3:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    line = (tmp_path / "stderr.txt").read_text().strip().splitlines()[-1]
    finished = len(list(out.glob("*.tfrecord.json")))
    shards = int(line.split(" of ")[1].split(" shards")[0])
    assert 3 <= finished < shards, "the interrupt should land mid-build"
    assert not (out / "manifest.json").exists()
    assert line == (f"build_records: interrupted after {finished} of {shards} shards; the "
                    f"{finished} finished shard(s) are kept in {out}; resume with: python -m "
                    f"jetkeras.build_records {shlex.join(command[3:])}")
    resume = shlex.split(line.split("resume with: ")[1])
    subprocess.run([sys.executable, *resume[1:]], env=env, check=True, capture_output=True)
    manifest = read_manifest(out)
    assert shards == sum(len(entry["shards"]) for entry in manifest["splits"].values())
    ids = [r["event_id"] for split in manifest["splits"] for r in iterate_records(out, split)]
    assert len(ids) == len(set(ids)) == 48
    reference = build_records(source="synthetic", out=tmp_path / "clean",
                              config=JetConfig().replace(data={"frames": 8, "size": 96}),
                              limit=48, seed=5, records_per_shard=2, progress=False)
    assert json.dumps(reference["splits"], sort_keys=True) == json.dumps(manifest["splits"],
                                                                         sort_keys=True)


def test_writer_and_parser_use_the_same_feature_keys():
    """records.py says the writer writes exactly the keys of feature_spec: check it."""
    import tensorflow as tf

    from jetkeras.records import encode_example, feature_spec

    frames = np.full((2, 4, 4), 7.0, dtype=np.float32)
    example = tf.train.Example.FromString(encode_example(frames, 1, "jet_1", "group_1"))
    assert set(example.features.feature) == set(feature_spec())


def test_a_labelled_event_table_builds_records(tmp_path, capsys):
    # Survey events checked by eye: the event table of jetkeras.hek plus a 0/1 label.
    from jetkeras.io import write_cube

    events = load_events()
    rows = []
    for index in range(20):
        event = events.iloc[index if index % 2 else 883 + index].to_dict()
        event_id = f"SOL2017-01-{index + 1:02d}T000000L100C090"
        cube = render_event(event, frames=4, size=32, seed=index)
        cube.meta = {"event_id": event_id}
        write_cube(tmp_path / "cubes" / f"{event_id}.npz", cube)
        rows.append(f"{event_id},{event['label']},{event_id},{event['date']},"
                    f"{event['basepoint_X']},{event['basepoint_Y']}")
    table = tmp_path / "checked.csv"
    table.write_text("event_id,label,SOL_event,date,basepoint_X,basepoint_Y\n"
                     + "\n".join(rows) + "\n")
    manifest = build_records(source="npz", npz_root=tmp_path / "cubes", catalogue=table,
                             out=tmp_path / "records", config=TINY, progress=False)
    counts = {split: manifest["splits"][split]["count"] for split in ("train", "val", "test")}
    assert sum(counts.values()) == 20
    labels = {record["event_id"]: record["label"]
              for split in ("train", "val", "test")
              for record in iterate_records(tmp_path / "records", split)}
    assert labels == {f"SOL2017-01-{index + 1:02d}T000000L100C090": index % 2
                      for index in range(20)}

    table.write_text(table.read_text().replace(f"{rows[3].split(',')[0]},1,",
                                               f"{rows[3].split(',')[0]},,"))
    assert main(["--source", "npz", "--npz-root", str(tmp_path / "cubes"), "--catalogue",
                 str(table), "--out", str(tmp_path / "r2")]) == 2
    assert "expected a label (1 jet, 0 no jet) in every row to train on, received none in 1 " \
           "row(s), first row 3" in capsys.readouterr().err
    assert main(["--source", "synthetic", "--catalogue", str(table), "--out",
                 str(tmp_path / "r3")]) == 2
    assert "the synthetic source renders the Solar Jet Hunter catalogue's jet parameters" in \
        capsys.readouterr().err


def test_renders_with_a_nuisance_are_other_records_and_part_of_the_identity(
        tiny_records, tmp_path):
    """A confuser family drawn alone (the leave-one-family-out hook): other pixels than
    the default build's, recorded in build.json, and a rebuild without it is refused."""
    from jetkeras.pipeline import iterate_records
    from jetkeras.synthetic import Nuisance

    default_out, _ = tiny_records
    out = tmp_path / "loops"
    manifest = build_records(source="synthetic", out=out, config=TINY, limit=40, seed=3,
                             records_per_shard=8, progress=False,
                             nuisance=Nuisance(confuser_kinds=("loop",),
                                               confuser_probability=1.0))
    assert manifest["build"]["nuisance"]["confuser_kinds"] == ["loop"]
    plain = {r["event_id"]: r["frames"] for r in iterate_records(default_out, "test")}
    loops = {r["event_id"]: r["frames"] for r in iterate_records(out, "test")}
    assert plain.keys() == loops.keys()  # the same events and split
    assert any(not np.array_equal(plain[key], loops[key]) for key in plain)
    with pytest.raises(ValueError, match=r"holds records built with nuisance="):
        build_records(source="synthetic", out=out, config=TINY, limit=40, seed=3,
                      records_per_shard=8, progress=False)
    with pytest.raises(ValueError, match=r"nuisance: renders' settings apply to the "
                                         r"synthetic source only, received source 'npz'"):
        build_records(source="npz", out=tmp_path / "n", config=TINY,
                      nuisance=Nuisance())
