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
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
