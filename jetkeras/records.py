"""TFRecord shards of preprocessed sequences, their manifest, and the leak-free split.

Layout of a records folder (``tfrecords/<name>/``)::

    build.json                          what is being built (refuses another config)
    train-000-of-012.tfrecord           TFRecord shard, <split>-<index>-of-<count>
    train-000-of-012.tfrecord.json      sidecar: ids written, ids rejected and why,
                                        normalisation sums, SHA-256 of the shard
    ...
    manifest.json                       everything above, gathered when the build ends

Each shard is written to a temporary name and renamed when complete; its sidecar is
written after the rename and marks the shard as done. A rerun after a crash or a kill
redoes only the shards without a sidecar, so no sequence is lost or duplicated: the
assignment of sequences to shards is a pure function of the catalogue, the split and
the seed.

Storage (chosen by measurement, ``bench/records.py``): DN are clipped to
``[offset_dn, clip_dn]`` = [-16, 1000] (the seed clips at 1000; level-1 AIA has small
negatives) and quantised to uint16. A cube of integer DN (level-1 AIA and its max-pooled
cutouts) is stored in steps of 1 DN, exactly; any other cube (exposure-normalised data, our
renderer) in steps of 1/64 DN, within 1/128 DN, far below AIA photon noise.
The step is stored in each record. Each row is then predicted from its left neighbour (the
residual, modulo 2**16, zigzag-mapped so small residuals of either sign are small
numbers), written byte-planar (all high bytes, then all low bytes) and deflated at level
1 inside each example, by Intel ISA-L when python-isal is installed (4x faster) or zlib
(per-example compression keeps records independently readable; the parser undoes the
prediction with one cumulative sum).
On real level-1 AIA pixels (sunkit-image's 171 A cutout, 3x3 max-pooled as the seed does)
this is 0.43-0.46 of the seed's float64 ``np.savez_compressed`` file for the same pixels,
where plain uint16 + zlib was 0.54-0.62; see ``bench/README.md``.

:func:`feature_spec` is the parser's spec (:func:`parse_example`); the writer
(:func:`encode_example`) builds ``tf.train.Feature`` values for exactly the same keys (a
test checks that the two agree).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jetkeras._files import Schema, atomic_output, atomic_write_text

if TYPE_CHECKING:  # pandas is imported where used: predict's start stays light
    import pandas as pd

__all__ = [
    "FORMAT",
    "STORAGE",
    "Encoding",
    "dequantise",
    "encode_example",
    "feature_spec",
    "parse_example",
    "quantise",
    "check_manifest",
    "read_build",
    "read_manifest",
    "read_sidecar",
    "sha256_file",
    "shard_name",
    "split_events",
    "verify_shards",
    "write_shard",
    "prepare_examples",
    "write_prepared",
    "compress_frames",
    "frame_sums",
]

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


FORMAT = "jetkeras-records/2"  # bump when the stored bytes change meaning


@dataclass(frozen=True)
class Encoding:
    """How DN are stored: clip to [offset_dn, clip_dn], then uint16 steps (1 or 1/64 DN)."""

    offset_dn: float = -16.0  # lowest DN kept (level-1 AIA has small negatives)
    clip_dn: float = 1000.0  # highest DN kept (the seed's clip)
    zlib_level: int = 1  # zlib level of each example's frames (1: fast; 6 gains ~3 %, 3x slower)
    integer_step_dn: float = 1.0  # step for cubes of integer DN: exact
    fine_step_dn: float = 1.0 / 64.0  # step for any other cube: within 1/128 DN

    def __post_init__(self):
        if (self.clip_dn - self.offset_dn) / self.fine_step_dn > 65535:
            raise ValueError(
                f"config key `data.clip_dn`: at most "
                f"{self.offset_dn + 65535 * self.fine_step_dn:g} DN fit the uint16 storage, "
                f"received {self.clip_dn:g}"
            )

    @property
    def tolerance_dn(self) -> float:
        """Largest round-trip error for values inside the clipped range (0 for integer DN)."""
        return self.fine_step_dn / 2.0

    def step_for(self, clipped: np.ndarray) -> float:
        """The step for an already clipped cube: 1 DN if every value is an integer."""
        integer = np.array_equal(clipped, np.rint(clipped)) and float(self.offset_dn).is_integer()
        return self.integer_step_dn if integer else self.fine_step_dn

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "dtype": "uint16",
            "offset_dn": self.offset_dn,
            "clip_dn": self.clip_dn,
            "step_dn": {"integer_dn": self.integer_step_dn, "other": self.fine_step_dn},
            "tolerance_dn": self.tolerance_dn,
            "tolerance_integer_dn": 0.0,
            "prediction": "left neighbour, residual modulo 2**16, zigzag",
            "layout": "byte-planar (high bytes, then low bytes)",
            "compression": f"zlib stream, level {self.zlib_level}, per example",
        }


STORAGE = Encoding()


def _tf():
    import tensorflow as tf

    return tf


def feature_spec() -> dict:
    """The feature spec :func:`parse_example` parses; :func:`encode_example` writes its keys."""
    tf = _tf()
    return {
        "frames": tf.io.FixedLenFeature([], tf.string),  # predicted uint16, byte-planar, zlib
        "step_dn": tf.io.FixedLenFeature([], tf.float32),  # DN per stored step (1 or 1/64)
        "shape": tf.io.FixedLenFeature([3], tf.int64),  # (T, H, W)
        "label": tf.io.FixedLenFeature([], tf.int64),  # 1 jet, 0 no jet
        "event_id": tf.io.FixedLenFeature([], tf.string),
        "group": tf.io.FixedLenFeature([], tf.string),
    }


# ----------------------------------------------------------------------- encoding
def quantise(frames: np.ndarray, encoding: Encoding = STORAGE) -> tuple[np.ndarray, float]:
    """DN float ``(T, H, W)`` -> (uint16 steps ``(T, H, W)``, DN per step), clipped."""
    clipped = np.clip(frames, encoding.offset_dn, encoding.clip_dn)
    step = encoding.step_for(clipped)
    steps = np.rint((clipped - encoding.offset_dn) / step)
    return steps.astype("<u2"), step


def dequantise(steps: np.ndarray, step_dn: float, encoding: Encoding = STORAGE) -> np.ndarray:
    """uint16 steps -> float32 DN (inverse of :func:`quantise`)."""
    return steps.astype(np.float32) * np.float32(step_dn) + np.float32(encoding.offset_dn)


def _predict_rows(steps: np.ndarray) -> np.ndarray:
    """uint16 steps -> zigzag residuals of the left-neighbour prediction, uint16.

    The residual is taken modulo 2**16 (uint16 arithmetic wraps), so it always fits, and
    the parser's cumulative sum modulo 2**16 restores the steps exactly.
    """
    residual = np.diff(steps, axis=-1, prepend=np.uint16(0)).view(np.int16)
    return ((residual << 1) ^ (residual >> 15)).view(np.uint16)  # zigzag: 0,-1,1,-2 -> 0,1,2,3


def _compressor(encoding: Encoding):
    """A zlib-format compressor: Intel ISA-L's (python-isal) when installed, else zlib's.

    Both write standard zlib streams that ``tf.io.decode_compressed`` reads. ISA-L's level
    1 is 4x faster than zlib's level 1 with run-length strategy, and about 2 % larger.
    """
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.compressobj(encoding.zlib_level, zlib.DEFLATED, zlib.MAX_WBITS, 9,
                                zlib.Z_RLE)
    return isal_zlib.compressobj(encoding.zlib_level, isal_zlib.DEFLATED, isal_zlib.MAX_WBITS)


def _compress_planar(values: np.ndarray, encoding: Encoding) -> bytes:
    """zlib stream of uint16 ``values`` laid out as all high bytes, then all low bytes."""
    pairs = values.astype("<u2", copy=False).reshape(-1).view(np.uint8).reshape(-1, 2)
    compressor = _compressor(encoding)
    return (compressor.compress(np.ascontiguousarray(pairs[:, 1]))
            + compressor.compress(np.ascontiguousarray(pairs[:, 0])) + compressor.flush())


def compress_frames(frames: np.ndarray, encoding: Encoding = STORAGE
                    ) -> tuple[bytes, float, np.ndarray]:
    """The stored payload of a ``(T, H, W)`` DN cube, its step in DN and its uint16 steps.

    Pure NumPy and zlib (both release the GIL, so build threads run in parallel).
    """
    steps, step = quantise(frames, encoding)
    return _compress_planar(_predict_rows(steps), encoding), step, steps


def frame_sums(steps: np.ndarray, step_dn: float, encoding: Encoding = STORAGE
               ) -> dict[str, float]:
    """Sums of the stored DN (and of their log1p) for the training-split statistics.

    Computed from a histogram of the uint16 ``steps`` (what the pipeline will read), in
    float64: exact, and one log per distinct value instead of one per pixel.
    """
    counts = np.bincount(steps.ravel(), minlength=1).astype(np.float64)
    dn = np.arange(counts.size) * step_dn + encoding.offset_dn
    logged = np.log1p(np.maximum(dn, 0.0))
    # Element-wise sums, not BLAS dot products: OpenBLAS's threads spin after each call
    # and would steal the cores from the other build threads.
    return {
        "count": int(steps.size),
        "sum": float((counts * dn).sum()),
        "sum_sq": float((counts * dn**2).sum()),
        "log_sum": float((counts * logged).sum()),
        "log_sum_sq": float((counts * logged**2).sum()),
    }


def encode_example(
    frames: np.ndarray | bytes, label: int, event_id: str, group: str,
    encoding: Encoding = STORAGE, shape: tuple[int, int, int] | None = None,
    step_dn: float | None = None,
) -> bytes:
    """One serialised ``tf.train.Example`` for a ``(T, H, W)`` DN cube.

    ``frames`` may also be the payload of :func:`compress_frames`, with its ``shape`` and
    ``step_dn``.
    """
    tf = _tf()
    if isinstance(frames, bytes):
        payload = frames
    else:
        (payload, step_dn, _), shape = compress_frames(frames, encoding), frames.shape
    feature = {
        "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=[payload])),
        "step_dn": tf.train.Feature(float_list=tf.train.FloatList(value=[step_dn])),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(shape))),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "event_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[event_id.encode()])),
        "group": tf.train.Feature(bytes_list=tf.train.BytesList(value=[group.encode()])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic: map fields in a fixed order, so a rebuild gives identical bytes.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized, frames: int, size: int, encoding: Encoding = STORAGE):
    """Parse one serialised example into float32 DN ``(T, H, W, 1)`` and the rest.

    Returns
    -------
    dict
        ``frames`` float32 ``(T, H, W, 1)`` in DN, ``label`` int64 scalar,
        ``event_id`` and ``group`` string scalars.
    """
    tf = _tf()
    parsed = tf.io.parse_single_example(serialized, feature_spec())
    raw = tf.io.decode_compressed(parsed["frames"], compression_type="ZLIB")
    planes = tf.reshape(tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int32),
                        (2, frames, size, size))
    zigzag = planes[0] * 256 + planes[1]
    residual = tf.bitwise.bitwise_xor(tf.bitwise.right_shift(zigzag, 1),
                                      -tf.bitwise.bitwise_and(zigzag, 1))
    steps = tf.bitwise.bitwise_and(tf.cumsum(residual, axis=-1), 0xFFFF)  # undo prediction
    dn = tf.cast(steps, tf.float32) * parsed["step_dn"] + encoding.offset_dn
    dn = dn[..., tf.newaxis]
    return {
        "frames": dn,
        "label": parsed["label"],
        "event_id": parsed["event_id"],
        "group": parsed["group"],
    }


# -------------------------------------------------------------------------- split
def split_events(
    events: pd.DataFrame, *, seed: int = 0, fractions: dict[str, float] | None = None,
) -> pd.Series:
    """Assign every row to train/val/test by ``group``, stratified by class.

    Whole groups are dealt, largest first (ties in a seeded random order), to the split
    whose jet and no-jet counts lag furthest behind their targets, so no HEK event is in
    two splits and each split keeps about the overall class balance.

    Parameters
    ----------
    events : pandas.DataFrame
        Needs columns ``group`` and ``label``.
    seed : int
        Orders groups of equal size.
    fractions : dict, optional
        Target fraction per split; default 70/15/15.

    Returns
    -------
    pandas.Series
        Split name per row, index aligned with ``events``.
    """
    fractions = fractions or SPLIT_FRACTIONS
    names = list(fractions)
    composition = events.groupby("group")["label"].agg(["size", "sum"])
    rng = np.random.default_rng(seed)
    composition["tie"] = rng.permutation(len(composition))
    composition = composition.sort_values(["size", "tie"], ascending=[False, True])
    totals = np.array([(events["label"] == 0).sum(), (events["label"] == 1).sum()], float)
    counts = {name: np.zeros(2) for name in names}
    assigned = {}
    for group, row in composition.iterrows():
        group_counts = np.array([row["size"] - row["sum"], row["sum"]], float)
        # Deficit of each split for this group's classes, relative to its target.
        deficits = []
        for name in names:
            target = fractions[name] * totals
            deficit = ((target - counts[name]) * group_counts).sum() / max(group_counts.sum(), 1)
            deficits.append(deficit / max(fractions[name], 1e-9))
        choice = names[int(np.argmax(deficits))]
        counts[choice] += group_counts
        assigned[group] = choice
    return events["group"].map(assigned)


def shard_name(split: str, index: int, count: int) -> str:
    """``train-003-of-012.tfrecord``."""
    return f"{split}-{index:03d}-of-{count:03d}.tfrecord"


# ------------------------------------------------------------------------ writing
def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_examples(
    examples: Iterable[tuple[str, int, str, np.ndarray | None, str | None]],
    *,
    log_stats: bool,
    encoding: Encoding = STORAGE,
) -> list[dict[str, Any]]:
    """Compress each cube (and sum it for statistics) without TensorFlow.

    Parameters
    ----------
    examples : iterable of (event_id, label, group, frames or None, reason or None)
        ``frames`` float32 ``(T, H, W)`` DN; ``None`` with a ``reason`` for a rejected
        sequence (recorded, not written).
    log_stats : bool
        Also compute the normalisation sums (training shards).

    Returns
    -------
    list of dict
        ``event_id``, ``label``, ``group`` and either ``payload``, ``step_dn`` and
        ``shape`` (+ ``sums``)
        or ``reason``: the input of :func:`write_prepared`.
    """
    prepared = []
    for event_id, label, group, frames, reason in examples:
        entry = {"event_id": event_id, "label": int(label), "group": group}
        if frames is None:
            entry["reason"] = reason
        else:
            entry["payload"], entry["step_dn"], steps = compress_frames(frames, encoding)
            entry["shape"] = tuple(int(n) for n in frames.shape)
            if log_stats:
                entry["sums"] = frame_sums(steps, entry["step_dn"], encoding)
        prepared.append(entry)
    return prepared


def write_prepared(path: Path, prepared: list[dict[str, Any]]) -> dict[str, Any]:
    """Write prepared examples as one shard atomically, then its sidecar; return the sidecar."""
    tf = _tf()
    written, rejected = [], []
    sums = {"count": 0, "sum": 0.0, "sum_sq": 0.0, "log_sum": 0.0, "log_sum_sq": 0.0}
    with atomic_output(path) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
        for entry in prepared:
            record = {k: entry[k] for k in ("event_id", "label", "group")}
            if "payload" not in entry:
                rejected.append({k: entry[k] for k in ("event_id", "label", "reason")})
                continue
            writer.write(encode_example(entry["payload"], entry["label"], entry["event_id"],
                                        entry["group"], shape=entry["shape"],
                                        step_dn=entry["step_dn"]))
            written.append(record)
            for key, value in entry.get("sums", {}).items():
                sums[key] += value
    sidecar = {
        "format": SIDECAR_FORMAT,
        "shard": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "written": written,
        "rejected": rejected,
        "sums": sums,
    }
    atomic_write_text(path.with_name(path.name + ".json"), json.dumps(sidecar, indent=1))
    return sidecar


def write_shard(
    path: Path,
    examples: Iterable[tuple[str, int, str, np.ndarray | None, str | None]],
    *,
    log_stats: bool,
    encoding: Encoding = STORAGE,
) -> dict[str, Any]:
    """:func:`prepare_examples` then :func:`write_prepared`, in this process."""
    return write_prepared(path, prepare_examples(examples, log_stats=log_stats,
                                                 encoding=encoding))


# ------------------------------------------------------------------------ reading
REBUILD = "rebuild the records with `python -m jetkeras.build_records` or fix the file"
SIDECAR_FORMAT = "jetkeras-shard/1"  # a sidecar without "format" is this version
_SHA256_DIGITS = frozenset("0123456789abcdef")


class _Schema(Schema):
    """A records file's checks (:class:`jetkeras._files.Schema`), ending "rebuild"."""

    def __init__(self, path: Path, fix: str = REBUILD):
        super().__init__(path, fix)

    def listing(self, value: Any, dotted: str) -> list:
        if not isinstance(value, list):
            self.fail(dotted, "a JSON list", type(value).__name__)
        return value

    def sha256(self, value: Any, dotted: str) -> str:
        if not isinstance(value, str) or len(value) != 64 or not set(value) <= _SHA256_DIGITS:
            self.fail(dotted, "a SHA-256 of 64 hex digits", value)
        return value


def _load_json(path: Path, fix: str = REBUILD) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: expected JSON, received invalid JSON ({error}); "
                         f"{fix}") from None


def read_manifest(records_dir: str | os.PathLike) -> dict[str, Any]:
    """Load ``manifest.json`` of a finished records folder, checked against its schema.

    Raises
    ------
    FileNotFoundError
        No folder, or no manifest (an unfinished build says so).
    ValueError
        Invalid JSON, an unknown format version, or a key missing, of the wrong type or
        out of range (negative counts, non-finite or non-positive statistics, counts that
        do not add up, frames and size other than the config's): one line naming the key.
    """
    records_dir = Path(records_dir)
    manifest_path = records_dir / "manifest.json"
    if not records_dir.is_dir():
        raise FileNotFoundError(f"{records_dir}: records folder not found")
    if not manifest_path.is_file():
        hint = (" (a build is unfinished: rerun build_records to resume)"
                if (records_dir / "build.json").is_file() else "")
        raise FileNotFoundError(
            f"{records_dir}: expected manifest.json from `python -m jetkeras.build_records`, "
            f"found none{hint}"
        )
    manifest = _load_json(manifest_path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise ValueError(
            f"{manifest_path}: expected records of format {FORMAT!r}, received "
            f"{found!r}; rebuild them with `python -m jetkeras.build_records`"
        )
    check_manifest(manifest, manifest_path)
    return manifest


def check_manifest(manifest: dict[str, Any], path: Path) -> None:
    """Check a manifest's every key that a reader uses (see :func:`read_manifest`)."""
    from jetkeras.config import JetConfig

    schema = _Schema(path)
    frames = schema.integer(schema.get(manifest, "frames", "frames"), "frames", minimum=1)
    size = schema.integer(schema.get(manifest, "size", "size"), "size", minimum=1)
    schema.text(schema.get(manifest, "source", "source"), "source")
    config = schema.object(schema.get(manifest, "config", "config"), "config")
    try:
        config = JetConfig.from_dict(config, source=f"{path}: key `config`")
    except ValueError as error:  # range checks name the key only, not the file
        text = str(error) if str(error).startswith(str(path)) else f"{path}: key `config`: {error}"
        raise ValueError(f"{text}; {REBUILD}") from None
    if (config.data.frames, config.data.size) != (frames, size):
        schema.fail("config.data", f"frames {frames} and size {size} as the records",
                    f"frames {config.data.frames}, size {config.data.size}")
    encoding = schema.object(schema.get(manifest, "encoding", "encoding"), "encoding")
    schema.version(encoding.get("format"), "encoding.format", (FORMAT,))
    offset = schema.number(schema.get(encoding, "offset_dn", "encoding.offset_dn"),
                           "encoding.offset_dn")
    clip = schema.number(schema.get(encoding, "clip_dn", "encoding.clip_dn"),
                         "encoding.clip_dn")
    if clip <= offset:
        schema.fail("encoding.clip_dn", f"a number above offset_dn {offset:g}", clip)
    normalisation = schema.object(schema.get(manifest, "normalisation", "normalisation"),
                                  "normalisation")
    for key in ("mean", "std", "log_mean", "log_std", "clip_dn"):
        schema.number(schema.get(normalisation, key, f"normalisation.{key}"),
                      f"normalisation.{key}", positive=key in ("std", "log_std"))
    splits = schema.object(schema.get(manifest, "splits", "splits"), "splits")
    if not splits or not set(splits) <= set(SPLITS):
        schema.fail("splits", f"one or more of {list(SPLITS)}", sorted(splits))
    total = 0
    for name, entry in splits.items():
        key = f"splits.{name}"
        entry = schema.object(entry, key)
        counts = schema.object(schema.get(entry, "counts", f"{key}.counts"), f"{key}.counts")
        jets = schema.integer(schema.get(counts, "jet", f"{key}.counts.jet"),
                              f"{key}.counts.jet")
        others = schema.integer(schema.get(counts, "no_jet", f"{key}.counts.no_jet"),
                                f"{key}.counts.no_jet")
        count = schema.integer(schema.get(entry, "count", f"{key}.count"), f"{key}.count")
        if count != jets + others:
            schema.fail(f"{key}.count", f"jet + no_jet = {jets + others}", count)
        schema.integer(entry.get("variants", 1), f"{key}.variants", minimum=1)
        schema.listing(schema.get(entry, "groups", f"{key}.groups"), f"{key}.groups")
        shards = schema.listing(schema.get(entry, "shards", f"{key}.shards"), f"{key}.shards")
        in_shards = 0
        for index, shard in enumerate(shards):
            where = f"{key}.shards[{index}]"
            shard = schema.object(shard, where)
            name_ = schema.text(schema.get(shard, "name", f"{where}.name"), f"{where}.name")
            if Path(name_).name != name_:
                schema.fail(f"{where}.name", "a file name inside the records folder", name_)
            schema.sha256(schema.get(shard, "sha256", f"{where}.sha256"), f"{where}.sha256")
            schema.integer(schema.get(shard, "bytes", f"{where}.bytes"), f"{where}.bytes")
            in_shards += schema.integer(schema.get(shard, "count", f"{where}.count"),
                                        f"{where}.count")
        if in_shards != count:
            schema.fail(f"{key}.count", f"the sum of its shards' counts, {in_shards}", count)
        total += count
    count = schema.integer(schema.get(manifest, "count", "count"), "count")
    if count != total:
        schema.fail("count", f"the sum of the splits' counts, {total}", count)
    schema.listing(manifest.get("rejected", []), "rejected")
    check_build(schema.object(schema.get(manifest, "build", "build"), "build"),
                _Schema(path), prefix="build.")


def check_build(build: dict[str, Any], schema: _Schema, prefix: str = "") -> dict[str, Any]:
    """Check a ``build.json`` identity (also the manifest's ``build``); return it."""
    schema.version(build.get("format"), f"{prefix}format", (FORMAT,))
    for key in ("frames", "size", "records_per_shard"):
        schema.integer(schema.get(build, key, f"{prefix}{key}"), f"{prefix}{key}", minimum=1)
    schema.integer(build.get("variants", 1), f"{prefix}variants", minimum=1)
    schema.integer(schema.get(build, "seed", f"{prefix}seed"), f"{prefix}seed")
    if build.get("limit") is not None:
        schema.integer(build["limit"], f"{prefix}limit", minimum=1)
    schema.text(schema.get(build, "source", f"{prefix}source"), f"{prefix}source")
    return build


def read_build(records_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``build.json`` of a records folder (what is being built), checked; None if absent.

    Raises
    ------
    ValueError
        Invalid JSON, an unknown ``format``, or a key of the wrong type or range.
    """
    path = Path(records_dir) / "build.json"
    if not path.is_file():
        return None
    fix = "delete the folder and rerun build_records, or fix the file"
    build = _load_json(path, fix)
    return check_build(_Schema(path, fix).object(build, "(the file)"), _Schema(path, fix))


def read_sidecar(shard: str | os.PathLike) -> dict[str, Any]:
    """The sidecar ``<shard>.json`` of a written shard, checked against the shard on disk.

    A sidecar without ``format`` is version 1 (``jetkeras-shard/1``), the only one.

    Raises
    ------
    ValueError
        Invalid JSON, an unknown version, a key of the wrong type or range, or a shard
        whose size differs from the sidecar's: delete both and rerun to rebuild it.
    """
    shard = Path(shard)
    path = shard.with_name(shard.name + ".json")
    fix = (f"delete {shard.name} and its sidecar and rerun build_records to rebuild the "
           f"shard")
    schema = _Schema(path, fix)
    sidecar = schema.object(_load_json(path, fix), "(the file)")
    schema.version(sidecar.get("format", SIDECAR_FORMAT), "format", (SIDECAR_FORMAT,))
    schema.sha256(schema.get(sidecar, "sha256", "sha256"), "sha256")
    size = schema.integer(schema.get(sidecar, "bytes", "bytes"), "bytes")
    if not shard.is_file() or shard.stat().st_size != size:
        schema.fail("bytes", f"the size of {shard.name}",
                    shard.stat().st_size if shard.is_file() else "no shard")
    for list_key in ("written", "rejected"):
        for index, record in enumerate(schema.listing(schema.get(sidecar, list_key, list_key),
                                                      list_key)):
            record = schema.object(record, f"{list_key}[{index}]")
            if record.get("label") not in (0, 1) or isinstance(record.get("label"), bool):
                schema.fail(f"{list_key}[{index}].label", "0 or 1", record.get("label"))
            schema.get(record, "event_id", f"{list_key}[{index}].event_id")
    sums = schema.object(schema.get(sidecar, "sums", "sums"), "sums")
    schema.integer(schema.get(sums, "count", "sums.count"), "sums.count")
    for key in ("sum", "sum_sq", "log_sum", "log_sum_sq"):
        schema.number(schema.get(sums, key, f"sums.{key}"), f"sums.{key}")
    return sidecar


def verify_shards(records_dir: str | os.PathLike, manifest: dict, split: str) -> list[Path]:
    """Paths of ``split``'s shards after checking each one's SHA-256 against the manifest."""
    records_dir = Path(records_dir)
    if split not in manifest["splits"]:
        raise ValueError(
            f"{records_dir}: expected a split among {sorted(manifest['splits'])}, "
            f"received {split!r}"
        )
    paths = []
    for shard in manifest["splits"][split]["shards"]:
        path = records_dir / shard["name"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: shard listed in manifest.json is missing")
        if path.stat().st_size != shard["bytes"] or sha256_file(path) != shard["sha256"]:
            raise ValueError(
                f"{path}: shard is truncated or corrupted (SHA-256 differs from "
                f"manifest.json); rebuild it with build_records"
            )
        paths.append(path)
    return paths
