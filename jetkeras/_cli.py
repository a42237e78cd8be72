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
(``run_main(..., resume=...)``).
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from jetkeras._files import is_disk_full

__all__ = ["Interrupted", "add_seed_flag", "bounded_int", "disk_full_message", "existing_file",
           "existing_folder", "existing_path", "held_interrupts", "hold_interrupts",
           "make_parser", "native_stderr_silenced", "non_negative_float", "non_negative_int",
           "positive_float", "positive_int", "probability", "quiet_tensorflow",
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


def _handle_signal(signum, frame) -> None:
    if getattr(_HOLD, "depth", 0) > 0:
        _PENDING.append(signum)
        return
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
        _PENDING.clear()
        if raise_pending:
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
def _signals_raise_keyboard_interrupt() -> Iterator[None]:
    """Install the SIGINT and SIGTERM handlers for one command; restore the old ones."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {number: signal.signal(number, _handle_signal)
                for number in (signal.SIGINT, signal.SIGTERM)}
    _HOLD.depth = 0
    _PENDING.clear()
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
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
    try:
        with _signals_raise_keyboard_interrupt():
            function()
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
    return 0
