"""Benchmark the records stage: storage size, build throughput, pipeline throughput.

Three figures, each a ratio against a baseline measured in the same run:

1. bytes per 166x166x30 sequence in our TFRecords versus the seed's
   ``np.savez_compressed`` float64 file of the same cube (goal <= 0.5), on synthetic
   cubes, on real level-1 AIA pixels (sunkit-image's cutout, max-pooled like the seed's),
   and on integer Poisson cubes drawn from sunpy's AIA test image (noise in DN is Poisson:
   noisier than AIA, whose DN hold more than one photon);
2. build throughput (sequences/s) from the synthetic renderer and from a seed-layout
   npz folder (goal >= 20 sequences/s from npz), with ``--workers`` threads;
3. pipeline throughput with augmentation (sequences/s through ``make_dataset``) versus the
   training step rate of the default light ``td_lstm`` on the same machine (goal >= 10x).

Run::

    python bench/records.py --count 64 --workers 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def _real_aia_cubes(count: int, frames: int, size: int, seed: int) -> list[np.ndarray]:
    """Cubes cut from sunpy's real AIA 171 A test image: zoomed, shifted, Poisson counts."""
    from astropy.io import fits
    from scipy import ndimage
    from sunpy.data.test import get_test_filepath

    image = fits.getdata(get_test_filepath("aia_171_level1.fits")).astype(np.float64)
    zoomed = ndimage.zoom(np.clip(image, 0, None), 3 * size / image.shape[0], order=1)
    rng = np.random.default_rng(seed)
    cubes = []
    for _ in range(count):
        y0, x0 = rng.integers(0, zoomed.shape[0] - size - frames, size=2)
        scale = rng.uniform(0.2, 0.6)
        cube = np.stack([zoomed[y0 + t:y0 + t + size, x0:x0 + size] for t in range(frames)])
        cubes.append(rng.poisson(cube * scale).astype(np.float64))
    return cubes


def _real_aia_pixel_frames() -> list[np.ndarray]:
    """Real level-1 AIA DN: sunkit-image's 171 A cutout, 3x3 max-pooled as the seed does.

    Four 166x166 one-frame cubes from the corners of the pooled (235, 256) image: no noise
    or pixel is invented, and no frame repeats another's pixels.
    """
    import sunkit_image
    from astropy.io import fits

    path = Path(sunkit_image.__file__).parent / "data" / "test" / "aia_171_cutout.fits"
    data = fits.getdata(path).astype(np.float64)
    pooled = data[:705, :768].reshape(235, 3, 256, 3).max(axis=(1, 3))
    return [pooled[None, y:y + 166, x:x + 166] for y, x in ((0, 0), (69, 90), (0, 90), (69, 0))]


def storage(count: int, seed: int) -> dict[str, float]:
    """Mean bytes per 30 frames: our shard versus the seed's npz, same cubes."""
    from jetkeras.catalogue import load_events
    from jetkeras.records import write_shard
    from jetkeras.synthetic import render_event

    events = load_events().sample(count, random_state=seed)
    synthetic = [render_event(row, seed=seed).frames.astype(np.float64)
                 for _, row in events.iterrows()]
    poisson = _real_aia_cubes(count, 30, 166, seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cubes in (("synthetic", synthetic), ("real AIA pixels", _real_aia_pixel_frames()),
                            ("Poisson", poisson)):
            seed_bytes = 0
            for index, cube in enumerate(cubes):
                path = Path(tmp) / f"{name}{index}.npz"
                # The seed's file: (166, 166, 30) float64 under arr_0, gzip npz.
                np.savez_compressed(path, np.moveaxis(cube, 0, -1))
                seed_bytes += path.stat().st_size
            shard = Path(tmp) / f"{name}.tfrecord"
            write_shard(shard, ((f"e{i}", 1, "g", c.astype(np.float32), None)
                                for i, c in enumerate(cubes)), log_stats=False)
            # Per 30 frames, so one-frame cubes read on the same scale as sequences.
            frames = sum(len(c) for c in cubes) / 30
            ours, theirs = shard.stat().st_size / frames, seed_bytes / frames
            results[name] = {"ours": ours, "seed": theirs, "ratio": ours / theirs}
    return results


def build_throughput(count: int, workers: int, seed: int) -> dict[str, float]:
    """Sequences/s building 166x166x30 records: renderer and npz, 1 process and ``workers``.

    One worker is the baseline; ``workers`` runs ``build_records``'s default parallelism
    for these sources (threads of one process).
    """
    from jetkeras.build_records import build_records
    from jetkeras.catalogue import load_events
    from jetkeras.config import JetConfig
    from jetkeras.synthetic import render_event

    config = JetConfig()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # A seed-layout folder (jets in data1, negatives in data0) of rendered events.
        root = Path(tmp) / "seed_root"
        chosen = load_events().groupby("label").head(count // 2)
        for _, row in chosen.iterrows():
            folder = root / ("data1" if row["label"] == 1 else "data0")
            folder.mkdir(parents=True, exist_ok=True)
            cube = render_event(row, seed=seed).frames.astype(np.float64)
            np.savez_compressed(folder / f"{row['row']}.npz", np.moveaxis(cube, 0, -1))
        for count_workers in sorted({1, workers}):
            for source in ("synthetic", "npz"):
                out = Path(tmp) / f"{source}{count_workers}"
                start = time.perf_counter()
                build_records(source=source, npz_root=root if source == "npz" else None,
                              out=out, config=config, limit=count, seed=seed,
                              workers=count_workers, progress=False)
                results[f"{source}, {count_workers} worker(s)"] = count / (
                    time.perf_counter() - start)
    return results


def pipeline_versus_training(count: int, seed: int, frames: int, size: int) -> dict[str, float]:
    """Augmented pipeline sequences/s versus light td_lstm training sequences/s."""
    import keras

    from jetkeras.build_records import build_records
    from jetkeras.config import JetConfig
    from jetkeras.models import build_model, compile_model
    from jetkeras.pipeline import make_dataset

    config = JetConfig().replace(data={"frames": frames, "size": size, "max_angle_deg": 15.0},
                                 train={"batch_size": 8})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records"
        build_records(source="synthetic", out=out, config=config, limit=count, seed=seed,
                      progress=False)
        dataset = make_dataset(out, "train", config).repeat()
        iterator = iter(dataset)
        next(iterator)
        batches = 30
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        pipeline_rate = batches * 8 / (time.perf_counter() - start)

        keras.utils.set_random_seed(seed)
        model = build_model(config)
        compile_model(model, config, steps_per_epoch=10)
        model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # trace
        steps = 10
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        train_rate = steps * 8 / (time.perf_counter() - start)
    return {"pipeline": pipeline_rate, "training": train_rate,
            "ratio": pipeline_rate / train_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64, help="sequences per measurement")
    parser.add_argument("--workers", type=int, default=2, help="build workers (threads)")
    parser.add_argument("--frames", type=int, default=16, help="frames for the pipeline test")
    parser.add_argument("--size", type=int, default=64, help="pixels for the pipeline test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="storage,build,pipeline",
                        help="comma-separated subset of storage, build, pipeline")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    if "storage" in parts:
        print(f"1. storage, {args.count} sequences of 30x166x166 (bytes per 30 frames)")
        for name, row in storage(args.count, args.seed).items():
            print(f"   {name:<16} ours {row['ours'] / 1e6:6.2f} MB   seed npz float64 "
                  f"{row['seed'] / 1e6:6.2f} MB   ratio {row['ratio']:.3f}  (goal <= 0.5)")
    if "build" in parts:
        print(f"2. build throughput, {args.count} sequences of 30x166x166")
        rates = build_throughput(args.count, args.workers, args.seed)
        for name, rate in rates.items():
            print(f"   {name:<28} {rate:7.1f} sequences/s")
        print("   (goal >= 20 sequences/s from npz on 2 cores)")
    if "pipeline" not in parts:
        return
    print(f"3. pipeline with augmentation vs light td_lstm training, {args.frames}x{args.size}"
          f"x{args.size}, batch 8")
    row = pipeline_versus_training(max(args.count, 64), args.seed, args.frames, args.size)
    print(f"   pipeline {row['pipeline']:.1f} seq/s   training {row['training']:.1f} seq/s   "
          f"ratio {row['ratio']:.1f}x  (goal >= 10x)")


if __name__ == "__main__":
    main()
