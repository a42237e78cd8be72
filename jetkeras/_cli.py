"""Shared pieces of the command-line entry points.

Every ``python -m jetkeras.<stage>`` module is a thin ``main(argv=None)``: it parses
flags (help on every flag, with its unit and default) and calls one library function
with keyword-only arguments. User errors (``ValueError``, ``FileNotFoundError``) become
one line on stderr and exit status 2 -- never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

__all__ = ["add_seed_flag", "positive_int", "quiet_tensorflow", "run_main", "set_seed"]


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter (oneDNN, cuInit) before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def add_seed_flag(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument(
        "--seed", type=int, default=default,
        help=f"seed for every random draw (splits, shuffling, augmentation, weights); "
             f"default {default}",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0, negatives and non-numbers refused by argparse)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {value}")
    return value


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


def run_main(function: Callable[[], object], prog: str) -> int:
    """Call ``function``; turn user errors into one line on stderr and exit code 2.

    Ctrl-C exits with 130 and a one-line note (long jobs resume on the next run).
    """
    try:
        function()
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        message = first_line(error, limit=10_000) or repr(error)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        # TensorFlow is an extra (pyproject.toml: one of [cpu], [gpu], [jax-gpu]).
        if (error.name or "").split(".")[0] != "tensorflow":
            raise
        print(f"{prog}: error: TensorFlow is not installed; install exactly one build: "
              f"pip install 'jetkeras[cpu]' (or 'jetkeras[gpu]' on a CUDA machine)",
              file=sys.stderr)
        return 2
    return 0
