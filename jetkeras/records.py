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
negatives) and quantised to uint16 in steps of 1/64 DN, so integer DN (level-1 AIA) are
stored exactly and any other value within 1/128 DN, far below AIA photon noise. The
uint16 values are written byte-planar (all high bytes, then all low bytes: deflate then
sees two smooth planes instead of interleaved noise, about 12 % smaller) and compressed
with zlib level 1 inside each example (level 6 is 4 % smaller and 5x slower; per-example
compression keeps records independently readable). Measured per 166x166x30 sequence: see
``bench/README.md`` (about 0.4 of the seed's float64 ``np.savez_compressed`` file on
synthetic cubes, 0.7 on integer Poisson cubes cut from the real AIA test image, where photon
noise, ~5 bits of entropy per pixel, bounds any lossless coder near 0.5).

One feature spec, :func:`feature_spec`, serves the writer (:func:`encode_example`) and the
parser (:func:`parse_example`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jetkeras._files import atomic_output, atomic_write_text

__all__ = [
    "STORAGE",
    "Encoding",
    "dequantise",
    "encode_example",
    "feature_spec",
    "parse_example",
    "quantise",
    "read_manifest",
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


@dataclass(frozen=True)
class Encoding:
    """How DN are stored: clip to [offset_dn, clip_dn], then uint16 steps."""

    offset_dn: float = -16.0  # lowest DN kept (level-1 AIA has small negatives)
    clip_dn: float = 1000.0  # highest DN kept (the seed's clip)
    zlib_level: int = 1  # zlib level of each example's frames (1: fast, ~4 % larger than 6)

    @property
    def step_dn(self) -> float:
        """DN per uint16 step: 1/64, so integer DN are exact."""
        return 1.0 / 64.0

    def __post_init__(self):
        if (self.clip_dn - self.offset_dn) / self.step_dn > 65535:
            raise ValueError(
                f"config key `data.clip_dn`: at most {self.offset_dn + 65535 * self.step_dn:g} "
                f"DN fit the uint16 storage, received {self.clip_dn:g}"
            )

    @property
    def tolerance_dn(self) -> float:
        """Largest round-trip error for values inside the clipped range."""
        return self.step_dn / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": "uint16",
            "layout": "byte-planar (high bytes, then low bytes)",
            "offset_dn": self.offset_dn,
            "clip_dn": self.clip_dn,
            "step_dn": self.step_dn,
            "tolerance_dn": self.tolerance_dn,
            "compression": f"zlib level {self.zlib_level}, per example",
        }


STORAGE = Encoding()


def _tf():
    import tensorflow as tf

    return tf


def feature_spec() -> dict:
    """The one feature spec of a record, used by writer and parser alike."""
    tf = _tf()
    return {
        "frames": tf.io.FixedLenFeature([], tf.string),  # uint16, byte-planar, zlib
        "shape": tf.io.FixedLenFeature([3], tf.int64),  # (T, H, W)
        "label": tf.io.FixedLenFeature([], tf.int64),  # 1 jet, 0 no jet
        "event_id": tf.io.FixedLenFeature([], tf.string),
        "group": tf.io.FixedLenFeature([], tf.string),
    }


# ----------------------------------------------------------------------- encoding
def quantise(frames: np.ndarray, encoding: Encoding = STORAGE) -> np.ndarray:
    """DN float ``(T, H, W)`` -> uint16 ``(T, H, W)``, clipped to the stored range."""
    clipped = np.clip(frames, encoding.offset_dn, encoding.clip_dn)
    steps = np.rint((clipped - encoding.offset_dn) / encoding.step_dn)
    return steps.astype("<u2")


def _planar_bytes(steps: np.ndarray) -> bytes:
    """uint16 values as all high bytes followed by all low bytes."""
    steps = steps.astype("<u2", copy=False).ravel()
    return np.concatenate([(steps >> 8).astype(np.uint8), (steps & 0xFF).astype(np.uint8)]
                          ).tobytes()


def dequantise(steps: np.ndarray, encoding: Encoding = STORAGE) -> np.ndarray:
    """uint16 steps -> float32 DN (inverse of :func:`quantise`)."""
    return (steps.astype(np.float32) * np.float32(encoding.step_dn)
            + np.float32(encoding.offset_dn))


def compress_frames(frames: np.ndarray, encoding: Encoding = STORAGE) -> bytes:
    """The stored payload of a ``(T, H, W)`` DN cube: uint16 steps, byte-planar, zlib.

    Pure NumPy and zlib: build workers run it without importing TensorFlow.
    """
    return zlib.compress(_planar_bytes(quantise(frames, encoding)), encoding.zlib_level)


def frame_sums(frames: np.ndarray, encoding: Encoding = STORAGE) -> dict[str, float]:
    """Sums of the stored DN (and of their log1p) for the training-split statistics."""
    stored = dequantise(quantise(frames, encoding), encoding).ravel()  # what the pipeline sees
    logged = np.log1p(np.maximum(stored, 0.0))
    return {
        "count": int(stored.size),
        "sum": float(stored.sum(dtype=np.float64)),
        "sum_sq": float(np.dot(stored, stored)),
        "log_sum": float(logged.sum(dtype=np.float64)),
        "log_sum_sq": float(np.dot(logged, logged)),
    }


def encode_example(
    frames: np.ndarray | bytes, label: int, event_id: str, group: str,
    encoding: Encoding = STORAGE, shape: tuple[int, int, int] | None = None,
) -> bytes:
    """One serialised ``tf.train.Example`` for a ``(T, H, W)`` DN cube.

    ``frames`` may also be the payload of :func:`compress_frames`, with its ``shape``.
    """
    tf = _tf()
    if isinstance(frames, bytes):
        payload = frames
    else:
        payload, shape = compress_frames(frames, encoding), frames.shape
    feature = {
        "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=[payload])),
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
    planes = tf.reshape(tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.float32), (2, -1))
    steps = planes[0] * 256.0 + planes[1]  # exact in float32 (< 2**24)
    dn = steps * encoding.step_dn + encoding.offset_dn
    dn = tf.reshape(dn, (frames, size, size, 1))
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
        ``event_id``, ``label``, ``group`` and either ``payload`` + ``shape`` (+ ``sums``)
        or ``reason``: the input of :func:`write_prepared`.
    """
    prepared = []
    for event_id, label, group, frames, reason in examples:
        entry = {"event_id": event_id, "label": int(label), "group": group}
        if frames is None:
            entry["reason"] = reason
        else:
            entry["payload"] = compress_frames(frames, encoding)
            entry["shape"] = tuple(int(n) for n in frames.shape)
            if log_stats:
                entry["sums"] = frame_sums(frames, encoding)
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
                                        entry["group"], shape=entry["shape"]))
            written.append(record)
            for key, value in entry.get("sums", {}).items():
                sums[key] += value
    sidecar = {
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
def read_manifest(records_dir: str | os.PathLike) -> dict[str, Any]:
    """Load ``manifest.json`` of a finished records folder, with clear errors."""
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
    try:
        return json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{manifest_path}: not valid JSON ({error})") from None


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
