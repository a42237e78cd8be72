"""Shared pieces of the command-line entry points.

Every ``python -m jetkeras.<stage>`` module is a thin ``main(argv=None)``: it parses
flags (help on every flag, with its unit and default) and calls one library function
with keyword-only arguments. User errors (``ValueError``, ``FileNotFoundError``) and a
full disk become one line on stderr and exit status 2 -- never a traceback.

Flag values are checked by argparse, with the types below (``positive_int``,
``probability``, ``existing_file``, ...): 0, negatives, NaN and out-of-range values are
refused before any work starts, with argparse's one line and exit status 2.

Ctrl-C (SIGINT) and SIGTERM (what batch schedulers send) end a command the same way:
one line saying what was kept and the exact command that resumes, exit status 130. A long
job says what it kept by raising :class:`Interrupted`; its ``main`` says how to resume
(``run_main(..., resume=...)``). That holds at any moment of a command process: before
``run_main`` (imports, argparse) and after it, jetkeras's start-up guard
(``jetkeras/__init__.py``) ends the process with one line; under it, a second signal, or
a job still running ``STOP_WITHIN_S`` seconds after the first, ends it at once.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import math
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from jetkeras._files import is_disk_full

__all__ = ["Interrupted", "add_seed_flag", "bounded_int", "disk_full_message", "existing_file",
           "existing_folder", "existing_path", "held_interrupts", "hold_interrupts",
           "make_parser", "native_stderr_silenced", "non_negative_float", "non_negative_int",
           "one_line_warnings", "positive_float", "positive_int", "probability",
           "quiet_tensorflow",
           "release_interrupts", "resume_command", "run_main", "seed_int", "set_seed",
           "target_recall"]

SEED_MAX = 2**32 - 1  # NumPy's legacy seeding and Keras both refuse larger seeds
MAX_FRAMES = 1000  # frames per sequence: 400 min at AIA's 24 s cadence, beyond any jet
MAX_SIZE = 4096  # pixels per side: AIA's detector
MAX_WORKERS = 1024  # threads or processes on one machine
HELP_WIDTH = 80  # columns of --help's description and examples at most


def quiet_tensorflow(*, load: bool = True) -> None:
    """Silence TensorFlow's C++ chatter (oneDNN, cuInit, absl's start-up warning).

    ``TF_CPP_MIN_LOG_LEVEL`` quiets what TensorFlow logs once running, but TensorFlow 2.21
    writes its import-time lines to file descriptor 2 before reading it. With ``load``
    (the default) TensorFlow is therefore imported here, with descriptor 2 sent to
    /dev/null for the import only; ``load=False`` keeps a command that may never need
    TensorFlow (``predict`` on LiteRT) from paying for the import. Without TensorFlow
    installed nothing happens here: the command's own import then fails in one line.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not load or "tensorflow" in sys.modules:
        return
    # Neither TensorFlow 2.21 nor what it imports (absl, jax, Keras) installs a SIGINT or
    # SIGTERM handler, in Python or with sigaction (checked): the one in place (jetkeras's
    # start-up guard, or run_main's) stays in charge; nothing to put back afterwards.
    try:
        with native_stderr_silenced():
            import tensorflow  # noqa: F401
    except ImportError:
        pass


@contextlib.contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: C++ libraries log there, past Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# ---------------------------------------------------------------------- parsers
def make_parser(module: str, description: str,
                examples: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of ``python -m jetkeras.<module>``, the same shape for every command.

    Parameters
    ----------
    module : str
        Entry point, e.g. ``"predict"``.
    description : str
        Plain text (no reST markup): what the command does, a sentence or two; wrapped
        to the terminal (at most ``HELP_WIDTH`` columns).
    examples : list of str
        Arguments of example command lines, each shown as
        ``python -m jetkeras.<module> ARGS`` under "examples:" at the end of ``--help``
        (a long one continued on the next line with a backslash, ready to paste).
    """
    import textwrap

    width = min(shutil.get_terminal_size().columns, HELP_WIDTH) - 2
    lines = [_example_lines(f"python -m jetkeras.{module} {example}", width)
             for example in examples]
    return argparse.ArgumentParser(prog=f"python -m jetkeras.{module}",
                                   description=textwrap.fill(" ".join(description.split()),
                                                             width),
                                   epilog="examples:\n" + "\n".join(lines),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _example_lines(command: str, width: int) -> str:
    """``command`` indented by 2; past ``width`` columns it goes on after " \\" and a
    newline, breaking only before a flag so that each flag keeps its value."""
    chunks: list[str] = []
    for word in command.split():
        if chunks and not word.startswith("-"):
            chunks[-1] += " " + word
        else:
            chunks.append(word)
    lines = ["  " + chunks[0]]
    for index, chunk in enumerate(chunks[1:], start=2):
        room = 0 if index == len(chunks) else 2  # the last chunk needs no " \\"
        if len(lines[-1]) + 1 + len(chunk) + room > width:
            lines[-1] += " \\"
            lines.append("      " + chunk)
        else:
            lines[-1] += " " + chunk
    return "\n".join(lines)


# ---------------------------------------------------------------- argparse types
def _integer(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}") from None


def _real(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
    return value


def bounded_int(minimum: int, maximum: int | None = None, *,
                expected: str | None = None) -> Callable[[str], int]:
    """argparse type factory: an integer in ``[minimum, maximum]`` (no maximum if None).

    ``expected`` words the range in messages; default "an integer >= MIN" or "an integer
    in [MIN, MAX]".
    """
    expected = expected or (f"an integer >= {minimum}" if maximum is None
                            else f"an integer in [{minimum}, {maximum}]")

    def parse(text: str) -> int:
        value = _integer(text, expected)
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, received {value}")
        return value

    parse.__name__ = f"integer_from_{minimum}"
    return parse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0, negatives and non-numbers refused by argparse)."""
    return bounded_int(1, expected="a positive integer")(text)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return bounded_int(0)(text)


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**32 - 1]."""
    return bounded_int(0, SEED_MAX)(text)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (NaN and infinities refused)."""
    value = _real(text, "a finite number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, received {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _real(text, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, received {value:g}")
    return value


def probability(text: str) -> float:
    """argparse type: a probability in [0, 1] (a decision threshold)."""
    value = _real(text, "a probability in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], received "
                                         f"{value:g}")
    return value


def target_recall(text: str) -> float:
    """argparse type: a recall to reach, in (0, 1] (0 would accept every threshold)."""
    value = _real(text, "a recall in (0, 1]")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a recall in (0, 1], received {value:g}")
    return value


def existing_file(text: str) -> str:
    """argparse type: the path of an existing file."""
    if not Path(text).is_file():
        found = "a folder" if Path(text).is_dir() else "nothing"
        raise argparse.ArgumentTypeError(f"expected an existing file, received {text!r} "
                                         f"({found} there); check the path")
    return text


def existing_folder(text: str) -> str:
    """argparse type: the path of an existing folder."""
    if not Path(text).is_dir():
        found = "a file" if Path(text).exists() else "nothing"
        raise argparse.ArgumentTypeError(f"expected an existing folder, received {text!r} "
                                         f"({found} there); check the path")
    return text


def existing_path(text: str) -> str:
    """argparse type: the path of an existing file or folder."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"expected an existing file or folder, received "
                                         f"{text!r} (nothing there); check the path")
    return text


def add_seed_flag(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument(
        "--seed", type=seed_int, default=default,
        help=f"seed for every random draw (splits, shuffling, augmentation, weights), an "
             f"integer in [0, 2**32 - 1]; default {default}",
    )


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend in one call."""
    import keras

    keras.utils.set_random_seed(int(seed))


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters ("" if none).

    Libraries' errors can run to pages (TensorFlow's, the LiteRT interpreter's); a user
    error stays one line.
    """
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else ""


# -------------------------------------------------------------------- full disk
_TENSORFLOW_FUNCTION = re.compile(r"\{\{.*?\}\}\s*")  # "{{function_node ...}} " prefixes
# An absolute path at the start of the message or after a space, quote or "(".
_PATH_IN_TEXT = re.compile(r"(?<![^\s'\"(=])/[^\s'\"`,;:()\[\]{}<>]+")


def _disk_full_cause(error: BaseException) -> BaseException | None:
    """``error`` or the first error it was raised from that says the disk is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        if is_disk_full(error):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def disk_full_message(error: BaseException, prog: str, resume: str | None = None,
                      out: str | os.PathLike | None = None) -> str:
    """One line for a full disk: what was being written, the cause, and how to go on.

    The path is the OSError's ``filename`` when set, else the first path in the message,
    else ``out`` (the command's output folder), else "the output of PROG". ``resume`` is
    the command line that resumes (default: "rerun the same command").
    """
    text = _TENSORFLOW_FUNCTION.sub("", str(error)).strip()
    where = getattr(error, "filename", None)
    if not where:
        found = _PATH_IN_TEXT.search(text)
        where = (found.group(0).rstrip(".") if found
                 else out if out is not None else f"the output of {prog}")
    cause = (getattr(error, "strerror", None) or (text.splitlines() or [""])[0][:200]
             or type(error).__name__)
    then = f"resume with: {resume}" if resume else "rerun the same command to resume"
    return (f"{prog}: error: no space left on device writing {os.fspath(where)} ({cause}); "
            f"free some space and {then}")


# ------------------------------------------------------------------- interrupts
class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM caught by a long job, with what the job kept.

    Parameters
    ----------
    where : str
        Where the job stood, e.g. "at epoch 12 of 60" ("" if nothing useful).
    kept : str
        What it kept, e.g. "11 finished epoch(s) kept in runs/light/backup".
    """

    def __init__(self, where: str, kept: str):
        super().__init__(f"{where}; {kept}" if where else kept)
        self.where, self.kept = where, kept


_HOLD = threading.local()
_PENDING: list[int] = []  # signals that arrived while held, in order

# Seconds an interrupted command may take to stop (to leave ``function`` and print its
# line) before it is ended anyway; a clean stop takes 1-2 s (train on 2 cores).
STOP_WITHIN_S = 10.0


class _Interrupt:
    """The interrupt state of the command that :func:`run_main` runs.

    In a command process (``python -m jetkeras.<command>``, where ``jetkeras`` installed
    its start-up guard) an interrupt must end the process whatever the job does with
    the ``KeyboardInterrupt``: a second signal, or a job still running
    ``STOP_WITHIN_S`` seconds after the first, ends it at once with one line. A library
    process (a notebook, pytest) only ever gets the ``KeyboardInterrupt``.
    """

    def __init__(self, prog: str, *, resume: str | Callable[[], str] | None, kept: str):
        import jetkeras

        self.prog, self.resume, self.kept = prog, resume, kept
        self.guard = jetkeras._STARTUP_GUARD  # None in a library process
        self.signals = 0  # signals received, not counting redeliveries
        self.signum: int | None = None  # the signal of the last KeyboardInterrupt raised
        self.redelivering = False  # a swallowed interrupt is being delivered again
        self.active = False  # the job runs under the command's handlers
        self.reported = False  # run_main has said how the command ended
        self._watchdog: threading.Timer | None = None

    def raised(self, signum: int) -> None:
        """A ``KeyboardInterrupt`` for ``signum`` is being raised: start the watchdog."""
        self.signum = signum
        if self.guard is not None and self._watchdog is None:
            how = f", stopped after {STOP_WITHIN_S:g} s"
            self._watchdog = threading.Timer(STOP_WITHIN_S, self.stop_now, kwargs={"how": how})
            self._watchdog.daemon = True  # a process that ends by itself does not wait for it
            self._watchdog.start()

    def stop_now(self, how: str = "") -> None:
        """End the process with status 130 and one line, unless run_main gave its line."""
        if not self.reported:
            try:
                command = self.resume() if callable(self.resume) else self.resume
            except Exception:  # the line matters more than the resume command's details
                command = None
            self.guard.say(f"{self.prog}: interrupted{how}; {self.kept}; resume with: "
                           f"{command or _default_resume(self.prog)}")
        os._exit(130)

    # Python runs a signal handler at the next bytecode of the main thread, wherever that
    # is. In a garbage-collector callback (jax registers one), a weakref callback or a
    # __del__, the KeyboardInterrupt is reported as "Exception ignored in ..." and dropped
    # (sys.unraisablehook); in Python code that TensorFlow's C++ calls back (its nest
    # utilities import modules), it comes out as "SystemError: ... returned a result
    # with an exception set", which TensorFlow prints (sys.excepthook) and drops. Either
    # way the job ran on as if never interrupted. The two hooks below deliver the signal
    # again instead, from another thread, so that the handler runs at a later bytecode,
    # once the hook and what called it have returned.
    def _lost(self, error: BaseException | None) -> bool:
        """Whether ``error`` is, or was raised from, an interrupt of this command."""
        if self.signum is None or threading.current_thread() is not threading.main_thread():
            return False
        seen = set()
        while error is not None and id(error) not in seen:
            if isinstance(error, KeyboardInterrupt):
                return True
            seen.add(id(error))
            error = error.__cause__ or error.__context__
        return False

    def _deliver_later(self) -> None:
        if self.redelivering or not self.active:  # one is on its way, or too late
            return
        self.redelivering = True
        # Not from here, nor with threading.Thread (whose start() waits for the thread):
        # the hook is Python code too, and the handler would run, and its
        # KeyboardInterrupt be dropped, before the hook returns.
        _thread.start_new_thread(self._deliver_again, ())

    def _deliver_again(self) -> None:
        """Send the signal to the main thread again, once it has left the callback."""
        time.sleep(0.01)  # the main thread returns from the hook and the callback first
        # Only to the job: once it has ended, the interrupt it swallowed has done its work
        # (or the guard is back); during the interpreter's shutdown Python's default
        # handler would even kill the process with SIGINT after its line was written.
        if self.active:
            with contextlib.suppress(OSError, ValueError):  # the process ended meanwhile
                signal.pthread_kill(threading.main_thread().ident, self.signum)

    def unraisable_hook(self, hook: Callable) -> Callable:
        """``hook`` (a ``sys.unraisablehook``), except for a dropped interrupt: delivered
        again, not printed."""
        def deliver_again(unraisable) -> None:
            try:
                if self._lost(unraisable.exc_value):
                    self._deliver_later()
                else:
                    hook(unraisable)
            except KeyboardInterrupt:  # a signal that came while the hook ran
                self._deliver_later()

        return deliver_again

    def excepthook(self, hook: Callable) -> Callable:
        """``hook`` (a ``sys.excepthook``), except for a dropped interrupt: delivered
        again, not printed. Nothing reaches the top level while the job runs: only C code
        printing an error it then drops (``PyErr_Print``) calls it."""
        def deliver_again(kind, error, traceback) -> None:
            try:
                if self._lost(error):
                    self._deliver_later()
                else:
                    hook(kind, error, traceback)
            except KeyboardInterrupt:  # a signal that came while the hook ran
                self._deliver_later()

        return deliver_again


_INTERRUPT: _Interrupt | None = None  # the command under run_main


def _handle_signal(signum, frame) -> None:
    state = _INTERRUPT
    redelivered = state is not None and state.redelivering
    if state is not None and not redelivered:
        state.signals += 1
        if state.signals > 1 and state.guard is not None:
            # Asked twice: the user (or the scheduler) will not wait for a clean stop,
            # even one held for a checkpoint.
            state.stop_now(how=" twice, stopped at once")
    if state is not None:
        state.redelivering = False
    if getattr(_HOLD, "depth", 0) > 0:
        _PENDING.append(signum)
        return
    if state is not None:
        state.raised(signum)
    raise KeyboardInterrupt


def hold_interrupts() -> None:
    """From now on, delay Ctrl-C and SIGTERM until :func:`release_interrupts`.

    Only under :func:`run_main`, whose handlers do the delaying; elsewhere harmless.
    """
    _HOLD.depth = getattr(_HOLD, "depth", 0) + 1


def release_interrupts(*, raise_pending: bool = True) -> None:
    """End one :func:`hold_interrupts`; raise ``KeyboardInterrupt`` if a signal came."""
    _HOLD.depth = max(0, getattr(_HOLD, "depth", 0) - 1)
    if _HOLD.depth == 0 and _PENDING:
        signum = _PENDING[-1]
        _PENDING.clear()
        if raise_pending:
            if _INTERRUPT is not None and threading.current_thread() is threading.main_thread():
                _INTERRUPT.raised(signum)
            raise KeyboardInterrupt


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Delay Ctrl-C and SIGTERM until the block ends (under :func:`run_main` only).

    For short writes that must finish together (a checkpoint and its metadata): the
    signal is raised as ``KeyboardInterrupt`` as soon as the block is left.
    """
    hold_interrupts()
    try:
        yield
    except BaseException:
        release_interrupts(raise_pending=False)
        raise
    release_interrupts()


@contextlib.contextmanager
def _signals_raise_keyboard_interrupt(state: _Interrupt) -> Iterator[None]:
    """Install the SIGINT and SIGTERM handlers for one command; restore the old ones.

    The old ones are, in a command process, jetkeras's start-up guard (see
    ``jetkeras/__init__.py``): once the block ends, an interrupt ends the process at once,
    with a line saying the work had ended.
    """
    global _INTERRUPT
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {number: signal.signal(number, _handle_signal)
                for number in (signal.SIGINT, signal.SIGTERM)}
    previous_state, _INTERRUPT = _INTERRUPT, state
    hooks = sys.unraisablehook, sys.excepthook
    sys.unraisablehook = state.unraisable_hook(sys.unraisablehook)
    sys.excepthook = state.excepthook(sys.excepthook)
    _HOLD.depth = 0
    _PENDING.clear()
    ended = state.kept
    state.active = True
    try:
        yield
        ended = "its work was done"
    finally:
        state.active = False
        if state.guard is not None:
            state.guard.doing = f"while exiting; {ended}"
        for number, handler in previous.items():
            signal.signal(number, handler)
        sys.unraisablehook, sys.excepthook = hooks
        _INTERRUPT = previous_state
        _HOLD.depth = 0
        _PENDING.clear()


def resume_command(module: str, argv: Sequence[str] | None, *, add: Sequence[str] = (),
                   drop: Sequence[str] = ()) -> str:
    """The command line ``python -m jetkeras.<module> ARGS`` that resumes a command.

    Parameters
    ----------
    module : str
        Entry point, e.g. ``"train"``.
    argv : list of str or None
        The command's arguments (None: ``sys.argv[1:]``).
    add : list of str
        Flags to append when missing (``--resume``).
    drop : list of str
        Flags without a value to remove (``--overwrite``: it would throw away what the
        interrupted run kept).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    arguments = [a for a in arguments if a not in drop]
    arguments += [flag for flag in add if flag not in arguments]
    return shlex.join(["python", "-m", f"jetkeras.{module}", *arguments])


def _default_resume(prog: str) -> str:
    """The same command again, when this process runs ``python -m jetkeras.<prog>``."""
    if Path(sys.argv[0]).stem == prog:
        return resume_command(prog, None)
    return "rerun the same command"


def _report_disk_full(error: BaseException, prog: str,
                      resume: str | Callable[[], str] | None,
                      out: str | os.PathLike | None) -> int:
    command = resume() if callable(resume) else resume
    print(disk_full_message(error, prog, command, out), file=sys.stderr)
    return 2


def run_main(function: Callable[[], object], prog: str, *,
             resume: str | Callable[[], str] | None = None,
             kept: str = "finished work is kept",
             out: str | os.PathLike | None = None) -> int:
    """Call ``function``; turn user errors into one line on stderr and exit code 2.

    Ctrl-C (SIGINT) and SIGTERM exit with 130 and one line: what was kept (the
    :class:`Interrupted` text of the job, else ``kept``) and the command that resumes.
    A full disk (ENOSPC or EDQUOT, or TensorFlow's "No space left on device") exits with
    2 and one line naming what was being written (:func:`disk_full_message`).

    Parameters
    ----------
    function : callable
        The command's work, without arguments.
    prog : str
        Name in messages (``"train"``).
    resume : str or callable, optional
        The resume command line, or a function giving it once interrupted (it may look at
        what is on disk). Default: the same command again.
    kept : str
        What is kept when the job does not say; default "finished work is kept".
    out : path, optional
        The command's output folder, named when the disk fills up and the error names
        no file (Keras writing a checkpoint, TensorBoard).
    """
    state = _Interrupt(prog, resume=resume, kept=kept)
    try:
        return _run_command(function, prog, state=state, resume=resume, kept=kept, out=out)
    finally:
        state.reported = True  # a watchdog firing now only ends the process, silently
        _forget_caught_interrupts()


def _forget_caught_interrupts() -> None:
    """Clear CPython's record of a ``KeyboardInterrupt`` that left a string ``exec``.

    CPython (3.11, 3.12) records an interrupt that leaves code run from a string
    (``exec(str)``, ``eval(str)``: ``PyRun_String``) as unhandled, even when a caller
    catches it; under ``python -m`` the interpreter then kills itself with SIGINT on the
    way out, after run_main printed its line and returned 130 (status -2 from
    ``predict``: scipy builds its array-API namespace with ``exec("from numpy import
    *")``, dataclasses build their methods with ``exec``). Every string ``exec`` clears
    the record as it starts; a trivial one after the command does.
    """
    exec("pass", {})


def _run_command(function: Callable[[], object], prog: str, *, state: _Interrupt,
                 resume: str | Callable[[], str] | None, kept: str,
                 out: str | os.PathLike | None) -> int:
    """:func:`run_main`'s work, under ``state``."""
    try:
        try:
            with _signals_raise_keyboard_interrupt(state):
                function()
        except Exception as error:
            if state.signum is None:
                raise
            # The job was interrupted, and the KeyboardInterrupt came out as another
            # error: pybind11 turns one raised while TensorFlow builds its own exception
            # (the handler runs in that exception's __init__) into "RuntimeError: ...
            # MISMATCH of original and normalized active exception types"; tf.data and
            # Dask wrap one raised in their callbacks. What ended the job is the interrupt.
            raise KeyboardInterrupt from error
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        if cause := _disk_full_cause(error):
            return _report_disk_full(cause, prog, resume, out)
        message = first_line(error, limit=10_000) or repr(error)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        where, what = ((interrupt.where, interrupt.kept) if isinstance(interrupt, Interrupted)
                       else ("", kept))
        command = resume() if callable(resume) else resume
        print(f"{prog}: interrupted{' ' + where if where else ''}; {what}; resume with: "
              f"{command or _default_resume(prog)}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        # TensorFlow is an extra (pyproject.toml: one of [cpu], [gpu], [jax-gpu]).
        if (error.name or "").split(".")[0] != "tensorflow":
            raise
        print(f"{prog}: error: TensorFlow is not installed; install exactly one build: "
              f"pip install 'jetkeras[cpu]' (or 'jetkeras[gpu]' on a CUDA machine)",
              file=sys.stderr)
        return 2
    except Exception as error:
        # A full disk: an OSError (ENOSPC, EDQUOT) or TensorFlow's ResourceExhaustedError
        # ("... No space left on device"), told by errno or message, not by importing TF.
        cause = _disk_full_cause(error)
        if cause is None:
            raise
        return _report_disk_full(cause, prog, resume, out)
    if state.signals:
        # Signalled, yet the job ended as if not: the interrupt was lost where the hooks
        # do not see (a bare except, C code clearing it) and the work ended before the
        # watchdog. Its output is whole; the status still says it was interrupted, so
        # that a script's next step does not run.
        print(f"{prog}: interrupted, but the work had already finished; nothing to resume",
              file=sys.stderr)
        return 130
    return 0


# ------------------------------------------------------------------- warnings
@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Show each warning as one line, ``<prog>: warning: <message>``, on stderr.

    Python's default shows two (the warning, then the source line that raised it), which
    reads as a crash to a command-line user; a library caller keeps the default.
    """
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {message}", file=sys.stderr if file is None else file)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
