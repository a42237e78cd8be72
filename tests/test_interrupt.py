"""Ctrl-C at any moment of a command: one line on stderr, exit status 130 (issue 26).

Before the fix, ``timeout -s INT N python -m jetkeras.train ...`` ended in a traceback
from inside TensorFlow's import at most moments of the start, and at some (a signal
landing in a garbage-collector or weakref callback) the interrupt vanished and the whole
training ran. The end-to-end test sends SIGINT to real command processes at 1 to 5 s and
once the work has begun; the fast tests pin each piece: the start-up guard and the
handler given back after ``run_main``, the second signal, the watchdog, and each way an
interrupt was seen to get lost or changed on its way to ``run_main`` (a garbage-collector
callback, C code printing it, pybind11 turning it into a RuntimeError, a string ``exec``
making CPython kill the process with SIGINT at exit).
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jetkeras
from jetkeras import _cli

REPO = Path(__file__).resolve().parents[1]
DELAYS_S = (1, 2, 3, 4, 5)  # seconds after the start at which SIGINT is sent
STOP_S = 60  # the most a command may take to end once signalled (on a loaded CI machine)
MARKER_S = 300  # the most a command may take to begin its work (5 at once on 2 cores)


def _environment(**extra: str) -> dict[str, str]:
    """This checkout first on the path; no proxy a CI machine may set; then ``extra``."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.lower().endswith("_proxy")}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    environment.update(extra)
    return environment


def _python(code: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_environment(**extra), timeout=120)


# ------------------------------------------------------------- the start-up guard
def test_a_library_process_gets_no_signal_handler():
    """Importing jetkeras (and a command's module) must leave a notebook's Ctrl-C alone."""
    assert jetkeras._STARTUP_GUARD is None  # pytest imported it as a library
    result = _python(
        "import signal\n"
        "before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)\n"
        "import jetkeras, jetkeras._cli, jetkeras.predict\n"
        "after = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)\n"
        "print(before == after, jetkeras._STARTUP_GUARD)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "None"]


@pytest.mark.parametrize("argv0, orig_argv, expected", [
    ("-m", ["python", "-m", "jetkeras.train", "--out", "r"], "train"),
    ("-m", ["python", "-X", "dev", "-mjetkeras.build_records"], "build_records"),
    ("/venv/bin/jetkeras-build-records", ["python", "/venv/bin/jetkeras-build-records"],
     "build_records"),
    # A Dask worker of a console script: the parent's argv, its own command line.
    ("/venv/bin/jetkeras-predict", ["python", "-c", "from multiprocessing.spawn import x"],
     None),
    ("-c", ["python", "-c", "import jetkeras"], None),
    ("/venv/bin/pytest", ["python", "/venv/bin/pytest"], None),
    ("", ["python"], None),
])
def test_only_a_command_process_is_a_command(argv0, orig_argv, expected, monkeypatch):
    monkeypatch.setattr(sys, "argv", [argv0])
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert jetkeras._command_name() == expected


# As ``python -m jetkeras.fake`` sees itself while runpy imports the package.
_AS_COMMAND = ("import os, signal, sys, time\n"
               "sys.argv[0] = '-m'\n"
               "sys.orig_argv = [sys.executable, '-m', 'jetkeras.fake']\n"
               "import jetkeras\n"
               "from jetkeras import _cli\n"
               "sys.argv[0] = 'fake'\n")


def test_the_guard_is_back_after_run_main_and_ends_the_process_in_one_line():
    result = _python(_AS_COMMAND + (
        "guard = jetkeras._STARTUP_GUARD\n"
        "assert signal.getsignal(signal.SIGINT) is guard, 'no guard at the start'\n"
        "seen = []\n"
        "code = _cli.run_main(lambda: seen.append(signal.getsignal(signal.SIGINT)), 'fake')\n"
        "assert seen[0] is _cli._handle_signal and code == 0, (seen, code)\n"
        "assert signal.getsignal(signal.SIGINT) is guard, 'the guard was not put back'\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(5)\n"
        "print('not interrupted')\n"))
    assert result.returncode == 130, result.stdout + result.stderr
    assert result.stderr == "fake: interrupted while exiting; its work was done\n"
    assert result.stdout == ""


def test_a_second_signal_stops_at_once_even_while_held():
    result = _python(_AS_COMMAND + (
        "def job():\n"
        "    with _cli.held_interrupts():\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.2)\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(5)\n"
        "    print('the held block ended')\n"
        "_cli.run_main(job, 'fake', resume='python -m jetkeras.fake --resume')\n"
        "print('run_main returned')\n"))
    assert result.returncode == 130, result.stdout + result.stderr
    assert result.stderr == ("fake: interrupted twice, stopped at once; finished work is "
                             "kept; resume with: python -m jetkeras.fake --resume\n")
    assert result.stdout == ""


def test_a_job_that_swallows_the_interrupt_is_ended_by_the_watchdog():
    result = _python(_AS_COMMAND + (
        "_cli.STOP_WITHIN_S = 1.0\n"
        "def job():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(1)\n"
        "    except BaseException:  # what a bare except in a library does\n"
        "        pass\n"
        "    time.sleep(10)\n"
        "    print('the job ran on')\n"
        "_cli.run_main(job, 'fake', kept='nothing written', resume='python -m jetkeras.fake')\n"))
    assert result.returncode == 130, result.stdout + result.stderr
    assert result.stderr == ("fake: interrupted, stopped after 1 s; nothing written; resume "
                             "with: python -m jetkeras.fake\n")
    assert result.stdout == ""


# ------------------------------------------------------- interrupts changed on the way
def test_an_interrupt_dropped_in_a_gc_callback_is_delivered_again(capsys):
    """jax's gc callback, importlib's weakref callbacks: Python drops what they raise."""
    steps = []

    def interrupt_inside_a_collection(phase, info):
        if phase == "start" and not steps:
            steps.append("signalled")
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs here, inside the callback
                pass

    def job():
        gc.callbacks.append(interrupt_inside_a_collection)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(interrupt_inside_a_collection)
        steps.append("after the collection")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the interrupt comes again here
            pass
        steps.append("ran on")

    assert _cli.run_main(job, "train", kept="nothing written") == 130
    assert steps == ["signalled", "after the collection"]
    error = capsys.readouterr().err
    assert error.startswith("train: interrupted; nothing written; resume with: "), error
    assert "Exception ignored" not in error


def test_an_interrupt_printed_and_dropped_by_c_code_is_delivered_again(capsys):
    """TensorFlow's C++ nest utilities call Python back; an interrupt there comes out as
    SystemError("... returned a result with an exception set"), which they print with
    PyErr_Print (sys.excepthook) and drop."""
    steps = []

    def job():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        except KeyboardInterrupt as interrupt:
            try:
                raise SystemError("<built-in function __import__> returned a result with "
                                  "an exception set") from interrupt
            except SystemError:
                sys.excepthook(*sys.exc_info())  # what PyErr_Print does, then it goes on
        steps.append("dropped")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the interrupt comes again here
            pass
        steps.append("ran on")

    assert _cli.run_main(job, "train", kept="nothing written") == 130
    assert steps == ["dropped"]
    error = capsys.readouterr().err
    assert error.startswith("train: interrupted; nothing written; "), error
    assert "Traceback" not in error and "SystemError" not in error


def test_a_job_that_drops_the_interrupt_and_finishes_still_exits_130(capsys):
    def job():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        except BaseException:  # what a bare except in a library does
            pass

    assert _cli.run_main(job, "predict") == 130
    assert capsys.readouterr().err == ("predict: interrupted, but the work had already "
                                       "finished; nothing to resume\n")


def test_an_interrupt_turned_into_another_error_is_still_an_interrupt(capsys):
    """pybind11 turns a KeyboardInterrupt raised while TensorFlow builds one of its own
    exceptions into RuntimeError("... MISMATCH of original and normalized ...")."""

    def job():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        except KeyboardInterrupt:
            raise RuntimeError("pybind11::error_already_set: MISMATCH of original and "
                               "normalized active exception types") from None

    assert _cli.run_main(job, "train", kept="nothing written") == 130
    assert capsys.readouterr().err.startswith("train: interrupted; nothing written; ")

    with pytest.raises(RuntimeError, match="not an interrupt"):  # uninterrupted: as before
        _cli.run_main(lambda: (_ for _ in ()).throw(RuntimeError("not an interrupt")),
                      "train")


def test_an_interrupt_that_left_a_string_exec_still_exits_130(tmp_path):
    """CPython kills a ``python -m`` process with SIGINT at exit (status -2) when a
    KeyboardInterrupt once left an ``exec(str)``, caught or not; scipy's and dataclasses'
    imports run such execs."""
    (tmp_path / "interrupted_exec.py").write_text(
        "from jetkeras import _cli\n"
        "def job():\n"
        "    exec('raise KeyboardInterrupt', {})\n"
        "raise SystemExit(_cli.run_main(job, 'fake', resume='python -m fake'))\n")
    result = subprocess.run([sys.executable, "-m", "interrupted_exec"], capture_output=True,
                            text=True, env=_environment(), cwd=tmp_path, timeout=120)
    assert result.returncode == 130, result.stderr
    assert result.stderr == ("fake: interrupted; finished work is kept; resume with: "
                             "python -m fake\n")


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def many_cubes(tmp_path_factory):
    """A folder of 20000 links to one 4x32x32 cube: a minute of ``predict`` on 2 cores,
    a second to make."""
    from jetkeras.catalogue import load_events
    from jetkeras.io import write_cube
    from jetkeras.synthetic import render_event

    root = tmp_path_factory.mktemp("many_cubes")
    cube = write_cube(root / "cube.npz", render_event(load_events().iloc[0], frames=4,
                                                      size=32, seed=0))
    folder = root / "cubes"
    folder.mkdir()
    for index in range(20_000):
        (folder / f"{index:05d}.npz").symlink_to(cube)
    return folder


@pytest.fixture(scope="module")
def endless_config(tiny_run, tmp_path_factory):
    """tiny_run's config with 2000 epochs and no early stopping: training never ends."""
    path = tmp_path_factory.mktemp("endless") / "config.json"
    tiny_run["config"].replace(train={"epochs": 2000, "early_stopping_patience": 2000}
                               ).to_json(path)
    return path


@pytest.fixture
def silent_server():
    """A local TCP port that takes connections and never answers: the survey's HEK query,
    sent there as to a proxy, waits (60 s timeout) as on a stalled network."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def _interrupted_at_every_moment(module, argv, *, tmp_path, later, finished,
                                 environment=None):
    """Run ``python -m jetkeras.<module>`` six times at once; send SIGINT to five at
    ``DELAYS_S`` and to the sixth ``later``: once ``OUT/<later>`` exists (a file name: the
    work has begun) or at ``later`` seconds.

    ``argv(out)`` gives the arguments for the output path ``out``; ``finished(out)`` says
    whether the command left a finished output there. Returns nothing; asserts.
    """
    environment = environment or _environment()
    tmp_path.mkdir(parents=True, exist_ok=True)
    cases = {f"{delay}s": delay for delay in DELAYS_S} | {"later": later}
    runs = {}
    start = time.monotonic()
    for name in cases:
        out = tmp_path / f"at_{name}"
        stdout = open(tmp_path / f"{name}.out", "w")  # files: a full pipe cannot block it
        stderr = open(tmp_path / f"{name}.err", "w")
        process = subprocess.Popen([sys.executable, "-m", f"jetkeras.{module}", *argv(out)],
                                   stdout=stdout, stderr=stderr, env=environment, cwd=tmp_path)
        runs[name] = (process, out, stdout, stderr)
    try:
        signalled = {}
        while len(signalled) < len(cases):
            for name, delay in cases.items():
                process, out = runs[name][:2]
                if name in signalled:
                    continue
                if process.poll() is not None:
                    signalled[name] = "ended before the signal"
                    continue
                marker = isinstance(delay, str)
                due = ((out / delay).exists() if marker
                       else time.monotonic() - start >= delay)
                if due:
                    process.send_signal(signal.SIGINT)
                    signalled[name] = f"{time.monotonic() - start:.1f} s"
                elif marker and time.monotonic() - start > MARKER_S:
                    signalled[name] = f"no {delay} after {MARKER_S} s"
            time.sleep(0.02)
        for process, *_ in runs.values():
            try:
                process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        for process, _, stdout, stderr in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            stdout.close()
            stderr.close()

    for name, (process, out, *_) in runs.items():
        error = (tmp_path / f"{name}.err").read_text()
        lines = [line for line in error.splitlines() if line.strip()]
        context = f"{module} signalled at {signalled[name]} ({name}):\n{error[-3000:]}"
        assert signalled[name].endswith(" s") and signalled[name][0].isdigit(), context
        assert process.returncode == 130, context
        assert "Traceback" not in error, context
        assert lines and "interrupted" in lines[-1], context
        assert sum("interrupted" in line for line in lines) == 1, context
        assert not finished(out), context


@pytest.mark.slow
def test_ctrl_c_at_any_moment_ends_every_command_in_one_line(
        tiny_run, many_cubes, endless_config, silent_server, tmp_path):
    """SIGINT at 1-5 s (during the imports on 2 cores) and once working, five commands at
    a time: exit status 130, one line, no traceback, no finished output."""
    run = str(tiny_run["run"])

    _interrupted_at_every_moment(
        "train", lambda out: ["--records", str(tiny_run["records"]), "--out", str(out),
                              "--config", str(endless_config)],
        tmp_path=tmp_path / "train", later="config.json",
        finished=lambda out: (out / "threshold.json").exists())

    _interrupted_at_every_moment(
        "build_records", lambda out: ["--source", "synthetic", "--frames", "4", "--size",
                                      "32", "--limit", "500", "--variants", "8", "--out",
                                      str(out)],
        tmp_path=tmp_path / "build_records", later="build.json",
        finished=lambda out: (out / "manifest.json").exists())

    # predict writes nothing before every cube is scored (no file says it has begun);
    # on LiteRT it scores from about a second after the start, so 5 s and 8 s land there.
    _interrupted_at_every_moment(
        "predict", lambda out: [str(many_cubes), "--model", run, "--out",
                                str(out.with_suffix(".csv")), "--quiet"],
        tmp_path=tmp_path / "predict", later=8.0,
        finished=lambda out: out.with_suffix(".csv").exists())

    # survey: HEK queries go to a server that never answers, as on a stalled network.
    _interrupted_at_every_moment(
        "survey", lambda out: ["--start", "2017-01-01", "--end", "2017-02-01", "--out",
                               str(out), "--model", run, "--window-days", "16",
                               "--no-progress"],
        tmp_path=tmp_path / "survey", later="survey.json",
        finished=lambda out: (out / "report.md").exists() or (out / "events.csv").exists(),
        environment=_environment(JSOC_EMAIL="jets@example.org", https_proxy=silent_server,
                                 http_proxy=silent_server, no_proxy=""))
