"""Benchmark inference: cold CLI time, warm throughput against PyTorch, SavedModel size/load.

Usage::

    .venv/bin/python bench/predict.py                # light preset, 16 x 64 x 64
    .venv/bin/python bench/predict.py --seed-preset  # also the seed preset, 30 x 166 x 166

What it measures, all on this machine's CPU in one run:

1. **Cold CLI**: wall time of ``python -m jetkeras.predict cube.npz --model RUN`` in a
   fresh process (imports, model load, one prediction), for a tiny trained run, on the
   default LiteRT runtime and with ``--runtime tensorflow`` (goal <= 8 s), median of
   ``--repeats``; baseline ``python -c "import tensorflow"`` in the same run.
2. **Warm throughput** (sequences/s) of an untrained ``td_lstm`` (``build_model``) through
   :class:`jetkeras.runtime.Predictor` (normalisation included) on LiteRT
   (``model.tflite`` from :func:`jetkeras.export.write_litert`), on TensorFlow (with and
   without XLA), and of the same network written in PyTorch (per-frame Conv-BN-ReLU
   blocks with the same widths, strides and pooling, flatten, LSTM over frames, Dense,
   Dense), all float32, batch 8, median of 5 timed calls after 2 warm-up calls. Weights
   differ between PyTorch and Keras (both untrained): only the speed is compared.
3. **SavedModel**: export time, size on disk, ``tf.saved_model.load`` time in a fresh
   process that does not import jetkeras.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 8
WARMUP, TIMED = 2, 5


def tiny_run(folder: Path) -> Path:
    """Build 24 synthetic sequences and train the tiny preset one epoch: a real run folder."""
    from jetkeras.build_records import build_records
    from jetkeras.config import JetConfig, model_preset
    from jetkeras.train import train

    config = JetConfig().replace(data={"frames": 4, "size": 32},
                                 model=model_preset("tiny").__dict__,
                                 train={"epochs": 1, "batch_size": 4})
    build_records(source="synthetic", out=folder / "records", config=config, limit=24, seed=0)
    train(records=folder / "records", out=folder / "run", config=config, verbose=0)
    return folder / "run"


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return time.perf_counter() - start


def cold_cli(run: Path, folder: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds for a fresh ``predict`` of one cube per runtime, and for ``import tensorflow``."""
    from jetkeras.catalogue import load_events
    from jetkeras.io import write_cube
    from jetkeras.synthetic import render_event

    cube = write_cube(folder / "cube.npz",
                      render_event(load_events().iloc[0], frames=4, size=32, seed=0))
    predict = [sys.executable, "-m", "jetkeras.predict", str(cube), "--model", str(run),
               "--quiet", "--runtime"]
    times: dict[str, list[float]] = {"litert": [], "tensorflow": [], "import tensorflow": []}
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits all three
        times["litert"].append(_wall([*predict, "litert"]))
        times["tensorflow"].append(_wall([*predict, "tensorflow"]))
        times["import tensorflow"].append(_wall([sys.executable, "-c", "import tensorflow"]))
    return times


class TorchTdLstm:
    """The td_lstm network in PyTorch, same layer plan as jetkeras.models._td_plan."""

    def __new__(cls, config):
        import torch
        from torch import nn

        from jetkeras.models import _feature_size, _td_plan

        class Network(nn.Module):
            def __init__(self):
                super().__init__()
                steps = []
                for step in _td_plan(config):
                    if step[0] == "conv":
                        _, _, _, _, in_channels, out_channels, stride = step
                        steps += [nn.Conv2d(in_channels, out_channels,
                                            config.model.kernel_size, stride=stride,
                                            padding=config.model.kernel_size // 2,
                                            bias=False),
                                  nn.BatchNorm2d(out_channels), nn.ReLU()]
                    else:
                        steps.append(nn.MaxPool2d(2))
                self.encoder = nn.Sequential(*steps, nn.Flatten())
                self.lstm = nn.LSTM(_feature_size(config), config.model.lstm_units,
                                    batch_first=True)
                self.head = nn.Sequential(nn.Linear(config.model.lstm_units,
                                                    config.model.dense_units),
                                          nn.ReLU(), nn.Linear(config.model.dense_units, 1))

            def forward(self, frames):  # (B, T, 1, H, W)
                batch, count = frames.shape[:2]
                features = self.encoder(frames.reshape(batch * count, *frames.shape[2:]))
                _, (hidden, _) = self.lstm(features.reshape(batch, count, -1))
                return self.head(hidden[-1])

        torch.manual_seed(0)
        return Network().eval()


def _median_rate(call, frames) -> float:
    for _ in range(WARMUP):
        call(frames)
    durations = []
    for _ in range(TIMED):
        start = time.perf_counter()
        call(frames)
        durations.append(time.perf_counter() - start)
    return frames.shape[0] / statistics.median(durations)


def throughput(preset: str, frames_count: int, size: int, folder: Path,
               batch: int = BATCH) -> dict:
    import torch

    from jetkeras.config import JetConfig, model_preset
    from jetkeras.export import write_litert
    from jetkeras.models import build_model
    from jetkeras.runtime import Predictor, _keras_logits_function, _litert_logits_function

    config = JetConfig().replace(data={"frames": frames_count, "size": size},
                                 model=model_preset(preset).__dict__)
    model = build_model(config)
    lite_path = folder / f"{preset}.tflite"
    write_litert(model, config, lite_path)
    normalisation = {"clip_dn": 1000.0, "mean": 50.0, "std": 50.0, "scaling": "clip"}
    rng = np.random.default_rng(0)
    frames = rng.gamma(2.0, 25.0, (batch, frames_count, size, size)).astype(np.float32)
    functions = {"litert": _litert_logits_function(lite_path),
                 "tensorflow": _keras_logits_function(model, False),
                 "tensorflow_xla": _keras_logits_function(model, True)}
    rates = {}
    for name, function in functions.items():
        predictor = Predictor(logits_function=function, frames=frames_count, size=size,
                              threshold=0.5, normalisation=normalisation, config=config,
                              source="untrained", kind="run")
        rates[name] = _median_rate(predictor.predict_proba, frames)  # one pass: 16 >= batch

    network = TorchTdLstm(config)
    torch.set_num_threads(os.cpu_count() or 1)
    tensor_input = torch.from_numpy(((np.minimum(frames, 1000.0) - 50.0) / 50.0)[:, :, None])

    def torch_call(x):
        with torch.inference_mode():
            return torch.sigmoid(network(x)).numpy()

    torch_rate = _median_rate(torch_call, tensor_input)
    return {"preset": preset, "shape": [frames_count, size, size], "batch": batch,
            "parameters": int(model.count_params()),
            "torch_parameters": int(sum(p.numel() for p in network.parameters())),
            **{f"{name}_seq_per_s": rate for name, rate in rates.items()},
            "torch_seq_per_s": torch_rate,
            **{f"{name}_over_torch": rate / torch_rate for name, rate in rates.items()}}


def saved_model(run: Path, folder: Path) -> dict:
    from jetkeras.export import export_run

    start = time.perf_counter()
    result = export_run(run=run, out=folder / "saved_model")
    export_s = time.perf_counter() - start
    script = ("import time; t = time.perf_counter(); import tensorflow as tf; "
              f"i = time.perf_counter(); tf.saved_model.load({str(folder / 'saved_model')!r}); "
              "print(i - t, time.perf_counter() - i)")
    output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    import_s, load_s = map(float, output.stdout.split())
    return {"export_s": export_s, "bytes": result["bytes"], "import_tf_s": import_s,
            "load_s": load_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-preset", action="store_true",
                        help="also time the seed preset at 30 x 166 x 166 (slow on a CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="cold CLI runs; default 3")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    results: dict = {"cpu_count": os.cpu_count(), "batch": BATCH}
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        run = tiny_run(folder)
        results["cold_cli_s"] = cold_cli(run, folder, args.repeats)
        for name, times in results["cold_cli_s"].items():
            label = name if name.startswith("import") else f"predict --runtime {name}"
            print(f"cold {label:<30} median {statistics.median(times):5.2f} s "
                  f"{[round(t, 2) for t in times]}", flush=True)
        results["saved_model_tiny"] = saved_model(run, folder)
        print(f"SavedModel (tiny): {results['saved_model_tiny']}", flush=True)
        shapes = [("light", 16, 64, BATCH)] + ([("seed", 30, 166, 2)] if args.seed_preset
                                               else [])
        results["throughput"] = []
        for preset, count, size, batch in shapes:
            row = throughput(preset, count, size, folder, batch)
            results["throughput"].append(row)
            print(f"{preset} {count}x{size}x{size}, batch {batch} ({row['parameters']:,} "
                  f"params; torch {row['torch_parameters']:,}): LiteRT "
                  f"{row['litert_seq_per_s']:.2f} seq/s, TensorFlow "
                  f"{row['tensorflow_seq_per_s']:.2f}, TensorFlow + XLA "
                  f"{row['tensorflow_xla_seq_per_s']:.2f}, PyTorch "
                  f"{row['torch_seq_per_s']:.2f}; over PyTorch: LiteRT "
                  f"{row['litert_over_torch']:.2f}x, TensorFlow "
                  f"{row['tensorflow_over_torch']:.2f}x, XLA "
                  f"{row['tensorflow_xla_over_torch']:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
