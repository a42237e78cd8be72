"""The tf.data input pipeline over a records folder.

One chain, the same on every Keras backend (only ``tf.*`` ops inside ``map``, never
Keras layers)::

    shards (SHA-256 checked) -> TFRecordDataset(parallel reads) -> parse (DN)
      -> [cache] -> [train: shuffle(seed) -> augment(ONE draw per sequence)]
      -> normalise (training-split statistics from the manifest)
      -> batch (static shapes; drop_remainder when training) -> prefetch(AUTOTUNE)

Augmentation draws once per sequence and applies the draw to every frame, because a
jet is recognised by its motion and a per-frame transform would scramble it: rot90 by
k in 0..3, left-right and up-down flips, an optional shared arbitrary angle
(``ImageProjectiveTransformV3`` with one transform row broadcast over the frames) and a
multiplicative exposure jitter (real AIA exposures and brightness vary). Draws come from
``tf.data.Dataset.random(seed)``, so the same seed gives the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras.config import JetConfig
from jetkeras.records import Encoding, parse_example, read_manifest, verify_shards

__all__ = ["augment", "check_compatible", "iterate_records", "make_dataset", "normalise",
           "steps_per_epoch"]


def _tf():
    import tensorflow as tf

    return tf


def check_compatible(manifest: dict[str, Any], config: JetConfig, records_dir) -> None:
    """Refuse records whose frame count or size differs from the config's."""
    got = (manifest["frames"], manifest["size"])
    want = (config.data.frames, config.data.size)
    if got != want:
        raise ValueError(
            f"{records_dir}: records hold sequences of {got[0]} frames of {got[1]}x{got[1]} px, "
            f"the model expects {want[0]} frames of {want[1]}x{want[1]} px"
        )


def steps_per_epoch(manifest: dict[str, Any], batch_size: int, records_dir="records",
                    flag: str = "--batch-size") -> int:
    """Optimiser steps in one epoch: one pass over the training *events*.

    A synthetic records folder built with ``--variants V`` holds V renders of each
    training event; an epoch then draws ``count / V`` of them, so successive epochs meet
    renders they have not seen instead of repeating one picture per event. ``flag``
    names the batch size in the error (the CLI flag, or a config key in a search).
    """
    train = manifest["splits"].get("train", {})
    count, variants = train.get("count", 0), int(train.get("variants", 1))
    steps = count // (variants * batch_size)
    if steps < 1:
        raise ValueError(
            f"{records_dir}: the train split holds {count // variants} events, fewer than "
            f"{flag} {batch_size}"
        )
    return steps


def normalise(frames, normalisation: dict[str, float], scaling: str = "clip", *,
              numpy: bool = False):
    """DN -> standardised float32 exactly as in training.

    ``clip``: clip to [-inf, clip_dn] then ``(x - mean) / std`` (the seed's scheme, with
    statistics of our training split). ``log``: ``log1p(max(x, 0))`` standardised.
    ``numpy=True`` computes with NumPy (for ``predict``: no eager TensorFlow ops per
    batch); otherwise with TensorFlow ops (inside ``tf.data``).
    """
    if numpy:
        minimum, maximum, log1p = np.minimum, np.maximum, np.log1p
        x = np.asarray(frames, dtype=np.float32)
    else:
        tf = _tf()
        minimum, maximum, log1p = tf.minimum, tf.maximum, tf.math.log1p
        x = tf.cast(frames, tf.float32)
    x = minimum(x, np.float32(normalisation["clip_dn"]))
    if scaling == "log":
        x = log1p(maximum(x, np.float32(0.0)))
        return (x - np.float32(normalisation["log_mean"])) / np.float32(normalisation["log_std"])
    return (x - np.float32(normalisation["mean"])) / np.float32(normalisation["std"])


def augment(frames, seed, config: JetConfig):
    """One random transform per sequence, applied to all of its frames.

    Parameters
    ----------
    frames : tf.Tensor
        float32 ``(T, H, W, 1)`` in DN, square frames.
    seed : tf.Tensor
        int64 ``(2,)`` stateless seed of this sequence.
    """
    tf = _tf()
    data = config.data
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)
    if data.rot90:
        k = tf.random.stateless_uniform([], seeds[0], minval=0, maxval=4, dtype=tf.int32)
        frames = tf.image.rot90(frames, k)  # (T, H, W, C): the same k for every frame
    if data.flips:
        flip_lr = tf.random.stateless_uniform([], seeds[1]) < 0.5
        frames = tf.cond(flip_lr, lambda: tf.image.flip_left_right(frames), lambda: frames)
        flip_ud = tf.random.stateless_uniform([], seeds[2]) < 0.5
        frames = tf.cond(flip_ud, lambda: tf.image.flip_up_down(frames), lambda: frames)
    if data.max_angle_deg > 0:
        limit = data.max_angle_deg * math.pi / 180.0
        angle = tf.random.stateless_uniform([], seeds[3], -limit, limit)
        frames = _rotate(frames, angle)
    if data.brightness_jitter > 0:
        spread = math.log1p(data.brightness_jitter)
        gain = tf.exp(tf.random.stateless_uniform([], seeds[4], -spread, spread))
        frames = frames * gain
    return frames


def _rotate(frames, angle):
    """Rotate every frame of ``(T, H, W, C)`` by the same ``angle`` (radians)."""
    tf = _tf()
    shape = tf.shape(frames)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples input at R^-1 about the centre.
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None, :]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=frames, transforms=transform, output_shape=shape[1:3],
        fill_value=tf.reduce_min(frames), interpolation="BILINEAR", fill_mode="CONSTANT")


def make_dataset(
    records_dir: str | Path,
    split: str,
    config: JetConfig | None = None,
    *,
    training: bool | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    include_ids: bool = False,
    verify: bool = True,
):
    """A ``tf.data.Dataset`` of normalised batches from a records folder.

    Parameters
    ----------
    records_dir : path
        Folder written by :func:`jetkeras.build_records.build_records`.
    split : {"train", "val", "test"}
    config : JetConfig
        ``data`` (frames, size, scaling, augmentation) and ``train.batch_size``/``seed``.
    training : bool, optional
        Shuffle, augment and drop the last partial batch; default ``split == "train"``.
    include_ids : bool
        Yield ``(frames, label, event_id)`` instead of ``(frames, label)``.
    verify : bool
        Check every shard's SHA-256 against the manifest first (a truncated or corrupted
        shard is named in a ``ValueError``).

    Returns
    -------
    tf.data.Dataset
        ``frames`` float32 ``(B, T, H, W, 1)``, ``label`` float32 ``(B,)``.
    """
    tf = _tf()
    config = config or JetConfig()
    manifest = read_manifest(records_dir)
    check_compatible(manifest, config, records_dir)
    if split not in manifest["splits"]:
        raise ValueError(
            f"{records_dir}: split {split!r} is empty or absent; present: "
            f"{sorted(manifest['splits'])}"
        )
    if manifest["splits"][split]["count"] == 0:
        raise ValueError(f"{records_dir}: split {split!r} holds no sequences")
    training = (split == "train") if training is None else training
    batch_size = batch_size or config.train.batch_size
    seed = config.train.seed if seed is None else seed
    if verify:
        paths = verify_shards(records_dir, manifest, split)
    else:
        paths = [Path(records_dir) / s["name"] for s in manifest["splits"][split]["shards"]]
    encoding = Encoding(offset_dn=manifest["encoding"]["offset_dn"],
                        clip_dn=manifest["encoding"]["clip_dn"])
    normalisation = manifest["normalisation"]
    frames, size = manifest["frames"], manifest["size"]
    scaling = config.data.scaling

    count = manifest["splits"][split]["count"]
    dataset = tf.data.TFRecordDataset(
        [str(p) for p in paths], num_parallel_reads=tf.data.AUTOTUNE if len(paths) > 1 else None)
    # The manifest's count (its shards' hashes just checked) makes the length known, so
    # Keras sizes the validation pass instead of warning that the "input ran out of data".
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    dataset = dataset.map(lambda s: parse_example(s, frames, size, encoding),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if config.data.cache:
        dataset = dataset.cache()  # before augmentation, never after
    if training:
        dataset = dataset.shuffle(min(config.data.shuffle_buffer, count), seed=seed,
                                  reshuffle_each_iteration=True)
        if config.data.augment:
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
            dataset = tf.data.Dataset.zip((dataset, draws)).map(
                lambda record, draw: {**record, "frames": augment(record["frames"], draw, config)},
                num_parallel_calls=tf.data.AUTOTUNE)

    def to_model(record):
        x = normalise(record["frames"], normalisation, scaling)
        y = tf.cast(record["label"], tf.float32)
        return (x, y, record["event_id"]) if include_ids else (x, y)

    dataset = dataset.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = True  # same seed -> same batches
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def iterate_records(records_dir: str | Path, split: str) -> Iterator[dict[str, Any]]:
    """Yield raw records (DN, no normalisation) as NumPy: for inspection and tests.

    Each item: ``frames`` float32 ``(T, H, W, 1)`` DN, ``label`` int, ``event_id`` and
    ``group`` str.
    """
    tf = _tf()
    manifest = read_manifest(records_dir)
    paths = verify_shards(records_dir, manifest, split)
    encoding = Encoding(offset_dn=manifest["encoding"]["offset_dn"],
                        clip_dn=manifest["encoding"]["clip_dn"])
    # Parsed in the tf.data graph, in file order, a few records ahead (one record at a
    # time in eager mode took twice as long as the summaries computed on them).
    dataset = tf.data.TFRecordDataset([str(p) for p in paths]).map(
        lambda serialized: parse_example(serialized, manifest["frames"], manifest["size"],
                                         encoding),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
    for record in dataset:
        yield {
            "frames": record["frames"].numpy(),
            "label": int(record["label"].numpy()),
            "event_id": record["event_id"].numpy().decode(),
            "group": record["group"].numpy().decode(),
        }
