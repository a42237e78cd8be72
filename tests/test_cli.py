"""_cli: flag types of every CLI, the interrupt line, SIGTERM, held interrupts."""

import argparse
import importlib
import math
import os
import signal

import pytest

from jetkeras import _cli


# ------------------------------------------------------------------ flag types
@pytest.mark.parametrize("kind, text, value", [
    (_cli.positive_int, "3", 3),
    (_cli.non_negative_int, "0", 0),
    (_cli.seed_int, str(2**32 - 1), 2**32 - 1),
    (_cli.bounded_int(2, 5), "5", 5),
    (_cli.positive_float, "1e-4", 1e-4),
    (_cli.non_negative_float, "0", 0.0),
    (_cli.probability, "0", 0.0),
    (_cli.probability, "1", 1.0),
    (_cli.target_recall, "1", 1.0),
])
def test_types_accept_values_in_range(kind, text, value):
    assert kind(text) == value


@pytest.mark.parametrize("kind, text, expected", [
    (_cli.positive_int, "0", "expected a positive integer, received 0"),
    (_cli.positive_int, "-2", "expected a positive integer, received -2"),
    (_cli.positive_int, "2.5", "expected a positive integer, received '2.5'"),
    (_cli.positive_int, "nan", "expected a positive integer, received 'nan'"),
    (_cli.non_negative_int, "-1", "expected an integer >= 0, received -1"),
    (_cli.seed_int, "-1", "expected an integer in [0, 4294967295], received -1"),
    (_cli.seed_int, str(2**32), "expected an integer in [0, 4294967295], received 4294967296"),
    (_cli.bounded_int(2, 5), "6", "expected an integer in [2, 5], received 6"),
    (_cli.positive_float, "0", "expected a finite number > 0, received 0"),
    (_cli.positive_float, "-1e-3", "expected a finite number > 0, received -0.001"),
    (_cli.positive_float, "nan", "expected a finite number > 0, received 'nan'"),
    (_cli.positive_float, "inf", "expected a finite number > 0, received 'inf'"),
    (_cli.non_negative_float, "-0.5", "expected a finite number >= 0, received -0.5"),
    (_cli.non_negative_float, "NaN", "expected a finite number >= 0, received 'NaN'"),
    (_cli.probability, "1.5", "expected a probability in [0, 1], received 1.5"),
    (_cli.probability, "-0.1", "expected a probability in [0, 1], received -0.1"),
    (_cli.probability, "nan", "expected a probability in [0, 1], received 'nan'"),
    (_cli.target_recall, "0", "expected a recall in (0, 1], received 0"),
])
def test_types_refuse_zero_negative_nan_and_too_large(kind, text, expected):
    with pytest.raises(argparse.ArgumentTypeError) as error:
        kind(text)
    assert str(error.value) == expected


def test_path_types_name_what_is_there(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    assert _cli.existing_file(str(tmp_path / "a.json")) == str(tmp_path / "a.json")
    assert _cli.existing_folder(str(tmp_path)) == str(tmp_path)
    assert _cli.existing_path(str(tmp_path / "a.json")) == str(tmp_path / "a.json")
    with pytest.raises(argparse.ArgumentTypeError, match=r"existing file, received .*\(a folder"):
        _cli.existing_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match=r"existing folder, received .*\(a file"):
        _cli.existing_folder(str(tmp_path / "a.json"))
    with pytest.raises(argparse.ArgumentTypeError, match=r"received .*\(nothing there\)"):
        _cli.existing_path(str(tmp_path / "absent"))


# ------------------------------------------------------- every CLI's flags
def _folders(tmp_path):
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    (tmp_path / "space.json").write_text("{}")
    out = str(tmp_path / "out")
    return str(records), str(tmp_path / "space.json"), out


# hek's and survey's required flags: a month of HEK events into {out}
_SURVEY = ["--start", "2017-01-01", "--end", "2017-02-01", "--out", "{out}"]

# (module, arguments given besides the bad flag, bad flag, bad value)
BAD_FLAGS = [
    ("build_records", [], "--frames", "0"),
    ("build_records", [], "--frames", "-30"),
    ("build_records", [], "--frames", "100000"),
    ("build_records", [], "--size", "nan"),
    ("build_records", [], "--size", "8"),
    ("build_records", [], "--limit", "0"),
    ("build_records", [], "--records-per-shard", "0"),
    ("build_records", [], "--workers", "-1"),
    ("build_records", [], "--variants", "0"),
    ("build_records", [], "--seed", "-1"),
    ("build_records", [], "--catalogue", "{tmp}/absent.csv"),
    ("build_records", [], "--npz-root", "{tmp}/absent"),
    ("build_records", [], "--describe", "{tmp}/absent"),
    ("fetch", ["--out", "{out}"], "--frames", "0"),
    ("fetch", ["--out", "{out}"], "--limit", "0"),
    ("fetch", ["--out", "{out}"], "--rows", "-1"),
    ("fetch", ["--out", "{out}"], "--wavelength", "0"),
    ("fetch", ["--out", "{out}"], "--cadence", "nan"),
    ("fetch", ["--out", "{out}"], "--cadence-tolerance", "-1"),
    ("fetch", ["--out", "{out}"], "--box", "-300"),
    ("fetch", ["--out", "{out}"], "--pool", "0"),
    ("fetch", ["--out", "{out}"], "--retries", "-1"),
    ("fetch", ["--out", "{out}"], "--backoff", "inf"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--epochs", "0"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--batch-size", "-4"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--lr", "0"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--lr", "nan"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--target-recall", "1.2"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--seed", "4294967296"),
    ("train", ["--out", "{out}"], "--records", "{tmp}/absent"),
    ("train", ["--records", "{records}", "--out", "{out}"], "--config", "{tmp}/absent.json"),
    ("tune", ["--records", "{records}", "--space", "{space}", "--tuner", "grid", "--out",
              "{out}"], "--max-trials", "0"),
    ("tune", ["--records", "{records}", "--space", "{space}", "--tuner", "grid", "--out",
              "{out}"], "--epochs", "-1"),
    ("tune", ["--records", "{records}", "--space", "{space}", "--tuner", "grid", "--out",
              "{out}"], "--worker-id", "-1"),
    ("tune", ["--records", "{records}", "--space", "{space}", "--tuner", "grid", "--out",
              "{out}"], "--connect-timeout", "0"),
    ("tune", ["--records", "{records}", "--space", "{space}", "--tuner", "grid", "--out",
              "{out}"], "--max-failures", "0"),
    ("tune", ["--records", "{records}", "--tuner", "grid", "--out", "{out}"], "--space",
     "{tmp}/absent.json"),
    ("evaluate", ["--run", "{records}", "--records", "{records}", "--out", "{out}"],
     "--max-gifs", "-1"),
    ("evaluate", ["--run", "{records}", "--records", "{records}", "--out", "{out}"],
     "--batch-size", "0"),
    ("predict", [], "--threshold", "nan"),
    ("predict", [], "--threshold", "-0.1"),
    ("predict", [], "--batch-size", "0"),
    ("predict", [], "--workers", "0"),
    ("predict", [], "--stride", "0"),
    ("crossval", ["--records", "{records}", "--out", "{out}"], "--folds", "1"),
    ("crossval", ["--records", "{records}", "--out", "{out}"], "--epochs", "0"),
    ("crossval", ["--records", "{records}", "--out", "{out}"], "--seed", "-5"),
    ("demo", [], "--limit", "0"),
    ("demo", [], "--epochs", "0"),
    ("demo", [], "--workers", "0"),
    ("bundle", [], "--target-recall", "0"),
    ("bundle", [], "--target-recall", "nan"),
    ("bundle", [], "--limit", "0"),
    ("ensemble", ["--runs", "{records}", "--out", "{out}"], "--records", "{tmp}/absent"),
    ("realcheck", ["--model", "{records}"], "--realjets", "{tmp}/absent"),
    ("hek", _SURVEY, "--window-days", "0"),
    ("survey", _SURVEY, "--threshold", "1.5"),
    ("survey", _SURVEY, "--top", "-1"),
    ("survey", _SURVEY, "--limit", "0"),
    ("survey", _SURVEY, "--window-days", "nan"),
    ("survey", _SURVEY, "--workers", "0"),
    ("survey", _SURVEY, "--backoff", "-1"),
]


@pytest.mark.parametrize("module, given, flag, value", BAD_FLAGS,
                         ids=[f"{m}{f}={v.replace('{tmp}/', '')}" for m, _, f, v in BAD_FLAGS])
def test_every_cli_refuses_out_of_range_flags_before_any_work(module, given, flag, value,
                                                              tmp_path, capsys):
    records, space, out = _folders(tmp_path)

    def fill(text):
        return text.format(tmp=tmp_path, records=records, space=space, out=out)

    main = importlib.import_module(f"jetkeras.{module}").main
    with pytest.raises(SystemExit) as exit_info:
        main([fill(a) for a in given] + [flag, fill(value)])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: argument {flag}: expected " in line, line
    assert f"received {fill(value)!r}" in line or f"received {value}" in line or \
        f"received {float(value):g}" in line, line
    assert not os.path.exists(out)  # nothing was started


def test_build_records_frames_default_comes_from_the_config_not_a_falsy_test(tmp_path):
    from jetkeras.build_records import main
    from jetkeras.records import read_manifest

    config = tmp_path / "config.json"
    config.write_text('{"data": {"frames": 4, "size": 32}}')
    out = tmp_path / "records"
    assert main(["--config", str(config), "--limit", "8", "--out", str(out),
                 "--records-per-shard", "8"]) == 0
    assert (read_manifest(out)["frames"], read_manifest(out)["size"]) == (4, 32)


# ---------------------------------------------------------------- interrupts
def test_resume_command_adds_and_drops_flags():
    command = _cli.resume_command("train", ["--records", "my records", "--out", "r",
                                            "--overwrite"], add=["--resume"],
                                  drop=["--overwrite"])
    assert command == "python -m jetkeras.train --records 'my records' --out r --resume"
    assert _cli.resume_command("train", ["--resume"], add=["--resume"]).count("--resume") == 1


def test_interrupt_prints_what_was_kept_and_how_to_resume(capsys):
    def job():
        raise _cli.Interrupted("at epoch 3 of 9", "2 finished epoch(s) kept in r/backup")

    assert _cli.run_main(job, "train", resume="python -m jetkeras.train --resume") == 130
    assert capsys.readouterr().err == (
        "train: interrupted at epoch 3 of 9; 2 finished epoch(s) kept in r/backup; resume "
        "with: python -m jetkeras.train --resume\n")

    def plain():
        raise KeyboardInterrupt

    assert _cli.run_main(plain, "predict", resume=lambda: "python -m jetkeras.predict x",
                         kept="nothing written") == 130
    assert capsys.readouterr().err == ("predict: interrupted; nothing written; resume with: "
                                       "python -m jetkeras.predict x\n")


def test_sigterm_is_an_interrupt_and_the_old_handlers_come_back(capsys):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def job():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            math.sqrt(2.0)
        raise AssertionError("SIGTERM did not interrupt the job")

    assert _cli.run_main(job, "survey") == 130
    assert capsys.readouterr().err.startswith("survey: interrupted; finished work is kept; "
                                              "resume with: ")
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_held_interrupts_wait_for_the_end_of_the_block(capsys):
    steps = []

    def job():
        with _cli.held_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                math.sqrt(2.0)
            steps.append("the block finished")
        steps.append("after the block")

    assert _cli.run_main(job, "train") == 130
    assert steps == ["the block finished"]
    assert "train: interrupted" in capsys.readouterr().err


def _raise(error):
    def function(*args, **kwargs):
        raise error

    return function


def test_each_command_names_its_resume_command(tmp_path, monkeypatch, capsys):
    import jetkeras.demo
    import jetkeras.fetch
    import jetkeras.predict
    import jetkeras.tune

    records, space, out = _folders(tmp_path)
    monkeypatch.setattr(jetkeras.predict, "predict_cubes", _raise(KeyboardInterrupt()))
    assert jetkeras.predict.main(["cube.npz", "--model", out, "--quiet"]) == 130
    assert capsys.readouterr().err == (
        f"predict: interrupted; nothing written (predictions are written when all cubes are "
        f"scored); resume with: python -m jetkeras.predict cube.npz --model {out} --quiet\n")

    monkeypatch.setattr(jetkeras.fetch, "fetch_catalogue", _raise(
        _cli.Interrupted("after 1 of 3 events", "1 fetched cube(s) and the state are kept")))
    assert jetkeras.fetch.main(["--out", out, "--limit", "3"]) == 130
    assert capsys.readouterr().err.endswith(
        "interrupted after 1 of 3 events; 1 fetched cube(s) and the state are kept; resume "
        f"with: python -m jetkeras.fetch --out {out} --limit 3\n")

    monkeypatch.setattr(jetkeras.demo, "run_demo", _raise(_cli.Interrupted(
        "after 2 of 9 shards", "the 2 finished shard(s) are kept in demo/records")))
    assert jetkeras.demo.main(["--out", out]) == 130
    assert capsys.readouterr().err == (
        f"demo: interrupted after 2 of 9 shards; the 2 finished shard(s) are kept in "
        f"demo/records; resume with: python -m jetkeras.demo --out {out}\n")

    # tune: --resume only once the search state is on disk; a worker just rejoins.
    monkeypatch.setattr(jetkeras.tune, "tune", _raise(_cli.Interrupted(
        "after 0 finished trial execution(s)", "the search state is kept in OUT/tuner")))
    argv = ["--records", records, "--space", space, "--tuner", "grid", "--out", out]
    assert jetkeras.tune.main(argv) == 130
    assert capsys.readouterr().err.endswith(f"--out {out}\n")
    os.makedirs(os.path.join(out, "tuner"))
    for name in ("search.json", os.path.join("tuner", "oracle.json")):
        with open(os.path.join(out, name), "w") as handle:
            handle.write("{}")
    assert jetkeras.tune.main(argv) == 130
    assert capsys.readouterr().err.endswith(f"--out {out} --resume\n")
    worker = argv + ["--role", "worker", "--oracle", "127.0.0.1:8000", "--worker-id", "0"]
    assert jetkeras.tune.main(worker) == 130
    assert capsys.readouterr().err.endswith("--worker-id 0\n")


def test_short_commands_say_nothing_was_written(tmp_path, monkeypatch, capsys):
    import jetkeras.ensemble
    import jetkeras.evaluate

    records, _, out = _folders(tmp_path)
    monkeypatch.setattr(jetkeras.evaluate, "evaluate", _raise(KeyboardInterrupt()))
    argv = ["--run", records, "--records", records, "--out", out]
    assert jetkeras.evaluate.main(argv) == 130
    assert capsys.readouterr().err == (
        f"evaluate: interrupted; nothing written (the report folder appears whole or not at "
        f"all); resume with: python -m jetkeras.evaluate {' '.join(argv)}\n")
    # An ensemble folder interrupted half-way is rebuilt, which needs --overwrite.
    os.makedirs(out)
    monkeypatch.setattr(jetkeras.ensemble, "build_ensemble", _raise(KeyboardInterrupt()))
    argv = ["--runs", records, "--records", records, "--out", out]
    assert jetkeras.ensemble.main(argv) == 130
    assert capsys.readouterr().err.endswith(f"{' '.join(argv)} --overwrite\n")


# ----------------------------------------------------------------- full disk
def test_a_full_disk_is_one_line_naming_the_file(capsys):
    import errno

    error = OSError(errno.ENOSPC, "No space left on device", "/some/folder/file")
    assert _cli.run_main(_raise(error), "build_records",
                         resume="python -m jetkeras.build_records --out x") == 2
    assert capsys.readouterr().err == (
        "build_records: error: no space left on device writing /some/folder/file (No space "
        "left on device); free some space and resume with: python -m jetkeras.build_records "
        "--out x\n")
    quota = RuntimeError("saving failed")
    quota.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert _cli.run_main(_raise(quota), "fetch") == 2
    assert capsys.readouterr().err == (
        "fetch: error: no space left on device writing the output of fetch (Disk quota "
        "exceeded); free some space and rerun the same command to resume\n")


def test_tensorflow_resource_exhausted_full_disk_names_the_path_in_its_message(capsys):
    class ResourceExhaustedError(Exception):  # TensorFlow's, without importing TensorFlow
        pass

    error = ResourceExhaustedError("{{function_node __wrapped__WriteFile_device_/job:localhost/"
                                   "replica:0/task:0/device:CPU:0}} /tmp/x/shard.tfrecord; No "
                                   "space left on device [Op:WriteFile]\nmore lines")
    assert _cli.run_main(_raise(error), "train") == 2
    line = capsys.readouterr().err
    assert line.startswith("train: error: no space left on device writing /tmp/x/shard.tfrecord "
                           "(/tmp/x/shard.tfrecord; No space left on device [Op:WriteFile]); "
                           "free some space and "), line
    assert line.count("\n") == 1
    # A message without a path: the output folder the command was given.
    assert _cli.run_main(_raise(ResourceExhaustedError("No space left on device")), "train",
                         out="runs/light") == 2
    assert capsys.readouterr().err.startswith("train: error: no space left on device writing "
                                              "runs/light (No space left on device); ")
    # Out of GPU memory is the same class but not a full disk: it stays a traceback.
    with pytest.raises(ResourceExhaustedError):
        _cli.run_main(_raise(ResourceExhaustedError("OOM when allocating tensor")), "train")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_real_full_disk_writes_name_the_file_asked_for(tmp_path, capsys):
    """/dev/full answers every write with ENOSPC: Python names no file, TensorFlow names
    a temporary one; both become the file the command was asked to write."""
    from jetkeras import _files

    def write_text():
        with _files.atomic_output(tmp_path / "table.csv"), open("/dev/full", "w") as full:
            full.write("x" * 100_000)

    assert _cli.run_main(write_text, "predict") == 2
    assert capsys.readouterr().err.startswith(
        f"predict: error: no space left on device writing {tmp_path / 'table.csv'} (No space "
        f"left on device); ")

    def write_records():
        import tensorflow as tf

        with _files.staged_folder(tmp_path / "records"), tf.io.TFRecordWriter("/dev/full") \
                as writer:
            writer.write(b"x" * 100_000)

    assert _cli.run_main(write_records, "build_records") == 2
    assert capsys.readouterr().err.startswith(
        f"build_records: error: no space left on device writing {tmp_path / 'records'} (No "
        f"space left on device); ")
    assert os.listdir(tmp_path) == []  # no temporary file or folder left behind


def test_build_records_on_a_full_disk_keeps_only_what_the_resume_needs(tmp_path, monkeypatch,
                                                                        capsys):
    import errno

    import jetkeras.records
    from jetkeras.build_records import main
    from jetkeras.records import read_manifest

    out = tmp_path / "records"
    argv = ["--frames", "4", "--size", "32", "--limit", "8", "--records-per-shard", "2",
            "--out", str(out)]
    encode, calls = jetkeras.records.encode_example, []

    def encode_until_the_disk_is_full(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the first sequence of the third shard
            raise OSError(errno.ENOSPC, "No space left on device")
        return encode(*args, **kwargs)

    monkeypatch.setattr(jetkeras.records, "encode_example", encode_until_the_disk_is_full)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    shards = sorted(out.glob("*.tfrecord"))
    assert len(shards) == 2
    assert line.startswith(f"build_records: error: no space left on device writing {out}"
                           f"{os.sep}"), line
    assert line.endswith(f"(No space left on device); free some space and resume with: python "
                         f"-m jetkeras.build_records {' '.join(argv)}"), line
    # Whole shards with their sidecars and build.json; no temporary file, no manifest.
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["build.json"] + [p.name for p in shards] + [p.name + ".json" for p in shards])
    monkeypatch.setattr(jetkeras.records, "encode_example", encode)
    assert main(argv) == 0
    manifest = read_manifest(out)
    assert sum(entry["count"] for entry in manifest["splits"].values()) == 8


def test_train_on_a_full_disk_names_the_run_folder_and_leaves_no_finished_run(
        tmp_path, monkeypatch, capsys):
    """Keras writes its checkpoint itself; the error names no file, so the run folder."""
    import errno

    import keras

    from jetkeras.build_records import main as build_main
    from jetkeras.train import main

    records, out = tmp_path / "records", tmp_path / "run"
    assert build_main(["--frames", "4", "--size", "32", "--limit", "8", "--out",
                       str(records)]) == 0

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full)
    argv = ["--records", str(records), "--out", str(out), "--preset", "tiny", "--epochs", "1",
            "--batch-size", "2"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"train: error: no space left on device writing {out} (No space left on device); "
        f"free some space and resume with: python -m jetkeras.train "), err
    assert not (out / "threshold.json").exists()  # not a finished run: readers refuse it


# ----------------------------------------------------------------- TensorFlow's chatter
_IMPORT_CHATTER = ("oneDNN custom operations", "absl::InitializeLog")


def _python(code: str):
    """Run ``code`` in a fresh interpreter with this checkout first on the path."""
    import subprocess
    import sys
    from pathlib import Path

    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=300)


def test_quiet_tensorflow_imports_it_without_start_up_lines():
    """TensorFlow 2.21 prints its oneDNN and absl lines before TF_CPP_MIN_LOG_LEVEL counts."""
    loud = _python("import tensorflow")
    assert any(line in loud.stderr for line in _IMPORT_CHATTER), loud.stderr  # the problem
    quiet = _python("from jetkeras import _cli; _cli.quiet_tensorflow(); import sys; "
                    "import tensorflow as tf; print('tensorflow' in sys.modules)")
    assert quiet.returncode == 0 and quiet.stdout.strip() == "True", quiet.stderr
    assert not any(line in quiet.stderr for line in _IMPORT_CHATTER), quiet.stderr


def test_quiet_tensorflow_without_load_leaves_it_unimported():
    """predict on LiteRT must not pay for a TensorFlow import it never uses."""
    result = _python("from jetkeras import _cli; _cli.quiet_tensorflow(load=False); "
                     "import sys; print('tensorflow' in sys.modules)")
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr
