"""jetkeras: find solar coronal jets in SDO/AIA 304 A image sequences with Keras 3.

Stages, one module each: :mod:`jetkeras.catalogue` (the real catalogues),
:mod:`jetkeras.io` (cube readers), :mod:`jetkeras.synthetic` (renderer of the catalogue),
:mod:`jetkeras.fetch` (JSOC), :mod:`jetkeras.records` and :mod:`jetkeras.pipeline`
(TFRecords and tf.data), :mod:`jetkeras.models`, :mod:`jetkeras.train`,
:mod:`jetkeras.tune` (with :mod:`jetkeras.space` and :mod:`jetkeras.tuners`),
:mod:`jetkeras.evaluate`, :mod:`jetkeras.crossval`, :mod:`jetkeras.runs` (run folders
and exports on disk), :mod:`jetkeras.runtime` (what runs the network),
:mod:`jetkeras.predict`, :mod:`jetkeras.export`, :mod:`jetkeras.demo` and
:mod:`jetkeras.bundle` (the bundled default model). ``docs/architecture.md`` has the
table of which module owns what.

The Python API in one call, the same checks, time grid, flags and row as
``python -m jetkeras.predict``::

    import sunpy.map, jetkeras
    maps = sunpy.map.Map("aia304/*.fits", sequence=True)
    row = jetkeras.predict_cube(maps)   # the bundled model; one jetkeras-row/2 row

``jetkeras.load_predictor`` loads a model once for many calls
(``predict_cube(source, model=predictor)``).
"""

# Both loaded by the interpreter before any user code: importing the package stays as
# cheap as it was (signal is imported only by a command process, below).
import os
import sys

__version__ = "0.1.0"

__all__ = ["__version__", "load_predictor", "predict_cube"]

# The API's homes; imported on first use, so `import jetkeras` stays cheap.
_API = {"predict_cube": "jetkeras.predict", "load_predictor": "jetkeras.runtime"}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------- Ctrl-C while a command starts
# A command spends its first seconds importing (TensorFlow alone takes ~6 s on 2 cores),
# before :func:`jetkeras._cli.run_main` installs the handlers that end it in one line.
# With Python's own handler, SIGINT then raises KeyboardInterrupt wherever the next
# bytecode runs, which went wrong two ways (issue 26, reproduced with
# ``timeout -s INT N python -m jetkeras.train ...``):
#
# - a traceback from deep inside TensorFlow's import (most moments);
# - nothing at all: when that bytecode belongs to a garbage-collector callback (jax,
#   which TensorFlow imports for tf.lite, registers one), a weakref callback (importlib's
#   module-lock cleanup) or a ``__del__``, Python reports "Exception ignored in ..." --
#   to /dev/null, where quiet_tensorflow sends descriptor 2 during the import -- and
#   drops the exception: the whole training then ran to the end.
#
# So a command process gets, as soon as the package is imported (before train.py's own
# imports), a handler that raises nothing: it writes one line and ends the process with
# os._exit. Nothing can swallow it and nothing was written yet, so nothing is lost.
# run_main replaces it while the command works and puts it back afterwards. A library
# process (a notebook, pytest, a Dask worker) gets no handler.

class _StartupGuard:
    """SIGINT and SIGTERM handler of a command process outside :func:`run_main`.

    Parameters
    ----------
    prog : str
        The command's name in the line, e.g. ``"train"``.

    Attributes
    ----------
    doing : str
        The end of the line: what the command was doing and what that leaves
        (:func:`jetkeras._cli.run_main` changes it once the work has ended).
    """

    def __init__(self, prog: str):
        self.prog = prog
        self.doing = "while starting; nothing written"
        try:
            # The real stderr, kept apart: quiet_tensorflow points descriptor 2 at
            # /dev/null during TensorFlow's import, where most of the start is spent.
            self.stderr = os.dup(2)  # not inherited by child processes (PEP 446)
        except OSError:  # no stderr at all (a daemon): the exit status still tells
            self.stderr = None

    def say(self, line: str) -> None:
        """Write one line to the command's stderr, unbuffered (safe in a handler)."""
        if self.stderr is not None:
            try:
                os.write(self.stderr, (line + "\n").encode(errors="replace"))
            except OSError:
                pass

    def __call__(self, signum, frame) -> None:
        self.say(f"{self.prog}: interrupted {self.doing}")
        os._exit(130)  # 128 + SIGINT, as run_main reports an interrupted command


def _command_name() -> str | None:
    """The command this process runs (``"train"``), or None when jetkeras is a library.

    ``python -m jetkeras.<command>``: runpy imports this package while it looks for the
    module, and ``sys.argv[0]`` is ``"-m"`` until the module's path replaces it;
    ``sys.orig_argv`` names the module. A console script (``jetkeras-train``) is the
    script named on the interpreter's command line. A multiprocessing child (a Dask
    worker) is neither: it runs ``python -c ...`` and imports jetkeras with its
    parent's ``sys.argv``.
    """
    argv = getattr(sys, "orig_argv", None) or []  # Python >= 3.10
    first = sys.argv[0] if sys.argv else ""
    if first == "-m":
        for argument in argv[1:]:
            module = argument[2:] if argument.startswith("-m") else argument
            if module.startswith(__name__ + "."):
                return module[len(__name__) + 1:]
        return __name__
    script = os.path.basename(first)
    if script.startswith(__name__ + "-") and first in argv:
        return script[len(__name__) + 1:].removesuffix(".exe").replace("-", "_")
    return None


def _install_startup_guard() -> _StartupGuard | None:
    """Install the start-up guard in a command process; None (nothing done) elsewhere."""
    prog = _command_name()
    if prog is None:
        return None
    import signal

    guard = _StartupGuard(prog)
    # Even over an ignored SIGINT (a script's background job), as run_main always did:
    # one behaviour from the first second to the last.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, guard)
    return guard


_STARTUP_GUARD = _install_startup_guard()
