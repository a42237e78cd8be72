"""Training throughput of the jetkeras models against the seed's PyTorch training loop.

Measures training sequences per second on synthetic random input (normal noise, random
0/1 labels) for each (arch, batch size, precision), plus the seed's own network in
PyTorch trained the seed's way (eager, float32, batch 2, AdamW, ``loss.item()`` every
step), in the same run and on the same machine. Each configuration runs in its own
subprocess so that its peak RSS (``resource.getrusage``) is its own.

Printed per row: seconds per step (median of ``--steps`` timed steps after a warm-up),
sequences per second, the ratio to the PyTorch seed loop (sequences per second, the
seed's network at batch 2 fp32 -- "how many times faster than the seed trains"), peak
RSS, and on a GPU the peak device memory and the MFU (model FLOPs utilisation: 3 x
forward FLOPs from :func:`jetkeras.models.estimate_flops` x sequences/s / peak FLOP/s).

Arch names: ``projection`` (the shipped recipe: the ``projection`` preset, eight views at
inference), ``td_lstm_light`` and ``td_lstm_seed`` (the td_lstm network with the
``light`` / ``seed`` presets) and ``epfl2d``. Each row also times inference
(``predict_on_batch``, sequences per second, with the model's views) on the same batch.

Backends: TensorFlow by default. With ``KERAS_BACKEND=jax`` the same Keras models run on
JAX, whose train step is always XLA-compiled; this is how a GPU machine without a
TensorFlow build measures the XLA and bfloat16 figures (the PyTorch seed loop is the
same either way).

Examples
--------
Small default shapes (16 frames of 64x64; a few minutes on 2 CPU cores)::

    python bench/train_throughput.py
    python bench/train_throughput.py --batch-sizes 2,8 --precisions float32,mixed_bfloat16

The seed's geometry (30 frames of 166x166; GPU)::

    python bench/train_throughput.py --seed-size --archs epfl2d,td_lstm_light
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jetkeras._cli import run_main
from jetkeras.config import atomic_write_text

__all__ = ["main", "run_benchmark"]

ARCHS = {
    "projection": ("projection", "projection"),
    "td_lstm_light": ("td_lstm", "light"),
    "td_lstm_seed": ("td_lstm", "seed"),
    "epfl2d": ("epfl2d", "light"),  # epfl2d ignores the preset's widths
}
# Dense peak FLOP/s per GPU family: (bfloat16/float16 tensor cores, float32 via TF32).
PEAK_FLOPS = {"H100": (989e12, 494e12), "H200": (989e12, 494e12),
              "A100": (312e12, 156e12), "L4": (121e12, 60e12), "T4": (65e12, 8.1e12)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _peak_flops(device_name: str, precision: str, override_tflops: float | None):
    if override_tflops:
        return override_tflops * 1e12
    for family, (low, full) in PEAK_FLOPS.items():
        if family in device_name:
            return full if precision == "float32" else low
    return None


# --------------------------------------------------------------------------- workers
def _keras_worker(spec: dict) -> dict:
    import keras
    import numpy as np

    from jetkeras.config import DataConfig, JetConfig, TrainConfig, model_preset
    from jetkeras.models import build_model, compile_model, count_parameters, estimate_flops

    arch, preset = ARCHS[spec["arch"]]
    config = JetConfig(
        data=DataConfig(frames=spec["frames"], size=spec["size"]),
        model=model_preset(preset, arch=arch),
        train=TrainConfig(batch_size=spec["batch_size"], precision=spec["precision"],
                          jit=spec["jit"], seed=0),
    )
    started = time.perf_counter()
    model = compile_model(build_model(config), config, steps_per_epoch=spec["steps"])
    generator = np.random.default_rng(0)
    shape = (spec["batch_size"], spec["frames"], spec["size"], spec["size"], 1)
    cubes = generator.normal(size=shape).astype("float32")
    labels = generator.integers(0, 2, size=(spec["batch_size"], 1)).astype("float32")
    gpu = _GpuMemory()
    model.train_on_batch(cubes, labels)  # traces (and with XLA compiles) the step
    first_s = time.perf_counter() - started
    for _ in range(spec["warmup"]):
        model.train_on_batch(cubes, labels)
    step_times = []
    for _ in range(spec["steps"]):
        begin = time.perf_counter()
        logs = model.train_on_batch(cubes, labels, return_dict=True)  # syncs: floats
        step_times.append(time.perf_counter() - begin)
    step_s = statistics.median(step_times)
    model.predict_on_batch(cubes)  # traces the inference function (with the views)
    infer_times = []
    for _ in range(spec["steps"]):
        begin = time.perf_counter()
        np.asarray(model.predict_on_batch(cubes))  # syncs: host array
        infer_times.append(time.perf_counter() - begin)
    result = {
        "framework": "keras", "backend": keras.backend.backend(),
        "first_call_s": first_s, "step_s": step_s,
        "seq_per_s": spec["batch_size"] / step_s, "loss": float(logs["loss"]),
        "infer_seq_per_s": spec["batch_size"] / statistics.median(infer_times),
        "trainable_params": count_parameters(model)[0],
        "forward_flops": estimate_flops(config), "jit": bool(model.jit_compile),
        "peak_rss_mb": _peak_rss_mb(), "device": "cpu",
    }
    result.update(gpu.read())
    keras.backend.clear_session()
    return result


class _GpuMemory:
    """Peak device memory and device name of GPU 0 on the TensorFlow or JAX backend.

    Each configuration runs in its own process, so on JAX (which cannot reset its peak)
    the process's peak is the configuration's.
    """

    def __init__(self):
        import keras

        self.backend = keras.backend.backend()
        if self.backend == "jax":
            import jax

            gpus = [device for device in jax.devices() if device.platform == "gpu"]
            self.device = gpus[0] if gpus else None
        else:
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            self.device = gpus[0] if gpus else None
            if gpus:
                tf.config.experimental.reset_memory_stats("GPU:0")

    def read(self) -> dict:
        """``device`` and ``peak_gpu_mb`` (MiB) on a GPU; nothing on a CPU."""
        if self.device is None:
            return {}
        if self.backend == "jax":
            peak = self.device.memory_stats()["peak_bytes_in_use"]
            return {"device": self.device.device_kind, "peak_gpu_mb": peak / 2**20}
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(self.device)
        return {"device": details.get("device_name", "gpu"),
                "peak_gpu_mb": tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20}


def _torch_worker(spec: dict) -> dict:
    import numpy as np
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    def block(in_channels, out_channels):
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1),
                             nn.BatchNorm2d(out_channels), nn.ReLU())

    class RCNN(nn.Module):
        """The seed's network; the LSTM gets (N, 1, F) per sample (same cost as the seed)."""

        def __init__(self, frames, size):
            super().__init__()
            widths = [frames, 64, 64, 128, 128, 256, 256, 512, 512]
            for index in range(1, 9):
                setattr(self, f"layer{index}", block(widths[index - 1], widths[index]))
            self.pool = nn.MaxPool2d(2, 2)
            side = size
            for _ in range(5):
                side = side // 2 if side >= 2 else side
            self.lstm = nn.LSTM(512 * side * side, 256, num_layers=1, batch_first=True)
            self.classifier = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(128, 32), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(32, 1))
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                    nn.init.zeros_(module.bias)

        def _pool(self, x):
            return self.pool(x) if x.shape[-1] >= 2 else x

        def forward(self, x):  # (N, T, S, S)
            x = self._pool(self.layer2(self.layer1(x)))
            x = self._pool(self.layer4(self.layer3(x)))
            x = self._pool(self.layer6(self.layer5(x)))
            x = self._pool(self.layer8(self.layer7(x)))
            x = self._pool(self.layer8(self.layer8(x)))
            x, _ = self.lstm(x.reshape(x.shape[0], 1, -1))
            return self.classifier(x[:, -1])

    model = RCNN(spec["frames"], spec["size"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=5e-3)
    loss_function = nn.BCEWithLogitsLoss()
    generator = np.random.default_rng(0)
    batch = spec["batch_size"]
    cubes = torch.from_numpy(generator.normal(
        size=(batch, spec["frames"], spec["size"], spec["size"])).astype("float32")).to(device)
    labels = torch.from_numpy(
        generator.integers(0, 2, size=(batch, 1)).astype("float32")).to(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        optimizer.zero_grad()
        loss = loss_function(model(cubes), labels)
        loss.backward()
        optimizer.step()
        return loss.item()  # the seed's per-step host sync

    model.train()
    started = time.perf_counter()
    step()
    first_s = time.perf_counter() - started
    for _ in range(spec["warmup"]):
        step()
    step_times = []
    for _ in range(spec["steps"]):
        begin = time.perf_counter()
        loss = step()
        step_times.append(time.perf_counter() - begin)
    step_s = statistics.median(step_times)
    result = {
        "framework": "torch", "first_call_s": first_s, "step_s": step_s,
        "seq_per_s": batch / step_s, "loss": loss, "jit": False,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "peak_rss_mb": _peak_rss_mb(), "device": "cpu",
    }
    from jetkeras.config import DataConfig, JetConfig, model_preset
    from jetkeras.models import estimate_flops

    result["forward_flops"] = estimate_flops(JetConfig(
        data=DataConfig(frames=spec["frames"], size=spec["size"]),
        model=model_preset("light", arch="epfl2d")))
    if device == "cuda":
        result["device"] = torch.cuda.get_device_name(0)
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


# --------------------------------------------------------------------------- driver
def _run_worker(spec: dict, timeout_s: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True,
                                   timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {"error": _exception_line(completed.stderr)}
    return json.loads(lines[-1])


def _exception_line(stderr: str) -> str:
    """The raised exception's ``Type: message`` line of a worker's stderr, else its last line.

    JAX ends its tracebacks with a note about filtered frames, so the last line alone
    does not say what failed.
    """
    lines = stderr.strip().splitlines() or ["no output"]
    raised = [line for line in lines
              if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b", line)]
    return (raised or lines)[-1][:300]


def _format_table(rows: list[dict], torch_seq_per_s: float | None) -> str:
    header = (f"{'framework':9} {'arch':14} {'batch':>5} {'precision':15} {'jit':>5} "
              f"{'params':>11} {'1st call s':>10} {'s/step':>8} {'seq/s':>8} "
              f"{'x torch':>8} {'infer/s':>8} {'RSS MB':>8} {'GPU MB':>8} {'MFU %':>6}")
    lines = [header, "-" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"{row['framework']:9} {row['arch']:14} {row['batch_size']:>5} "
                         f"{row['precision']:15} ERROR: {row['error']}")
            continue
        ratio = (f"{row['seq_per_s'] / torch_seq_per_s:8.2f}" if torch_seq_per_s
                 else f"{'-':>8}")
        gpu = f"{row['peak_gpu_mb']:8.0f}" if "peak_gpu_mb" in row else f"{'-':>8}"
        mfu = f"{100 * row['mfu']:6.1f}" if row.get("mfu") else f"{'-':>6}"
        infer = (f"{row['infer_seq_per_s']:8.2f}" if "infer_seq_per_s" in row
                 else f"{'-':>8}")
        lines.append(
            f"{row['framework']:9} {row['arch']:14} {row['batch_size']:>5} "
            f"{row['precision']:15} {row['jit']!s:>5} {row['trainable_params']:>11,} "
            f"{row['first_call_s']:10.1f} {row['step_s']:8.3f} {row['seq_per_s']:8.2f} "
            f"{ratio} {infer} {row['peak_rss_mb']:8.0f} {gpu} {mfu}")
    return "\n".join(lines)


def run_benchmark(*, frames: int, size: int, batch_sizes: list[int], steps: int,
                  warmup: int, precisions: list[str], archs: list[str], torch: bool,
                  jit: str, peak_tflops: float | None, timeout_s: float,
                  output: str | None) -> list[dict]:
    """Measure every configuration in its own subprocess; print and return the rows.

    Parameters
    ----------
    frames, size : int
        Sequence geometry: ``frames`` frames of ``size`` x ``size`` pixels.
    batch_sizes : list of int
        Keras batch sizes (sequences per step). PyTorch always uses the seed's 2.
    steps, warmup : int
        Timed steps (median reported) and untimed steps after the first call.
    precisions : list of str
        Keras dtype policies: float32, mixed_bfloat16, mixed_float16.
    archs : list of str
        Among ``projection``, ``td_lstm_light``, ``td_lstm_seed``, ``epfl2d``.
    torch : bool
        Also measure the seed's PyTorch loop (needs ``torch`` installed).
    jit : str
        ``train.jit`` for Keras: auto, on, off.
    peak_tflops : float or None
        Peak FLOP/s of the GPU for MFU, in TFLOP/s; default from the device name.
    timeout_s : float
        Limit per configuration, seconds.
    output : str or None
        Also write the rows as JSON to this path (atomically, after every row).

    Returns
    -------
    list of dict
        One row per configuration (``seq_per_s``, ``step_s``, ``peak_rss_mb``, ...).
    """
    for flag, values, known in [("--archs", archs, ARCHS),
                                ("--precisions", precisions,
                                 ("float32", "mixed_bfloat16", "mixed_float16"))]:
        unknown = [value for value in values if value not in known]
        if unknown:
            raise ValueError(f"{flag}: expected names among {sorted(known)}, received "
                             f"{unknown}")
    if jit not in ("auto", "on", "off"):
        raise ValueError(f"--jit: expected auto, on or off, received {jit!r}")
    for flag, value in [("--frames", frames), ("--size", size), ("--steps", steps)]:
        if value < 1:
            raise ValueError(f"{flag}: expected a positive integer, received {value}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"--batch-sizes: expected positive integers, received "
                         f"{batch_sizes}")
    base = {"frames": frames, "size": size, "steps": steps, "warmup": warmup, "jit": jit}
    rows = []

    def measure(spec: dict) -> dict:
        print(f"running {spec['framework']} {spec['arch']} batch {spec['batch_size']} "
              f"{spec['precision']} ...", file=sys.stderr, flush=True)
        row = {**spec, **_run_worker(spec, timeout_s)}
        if "seq_per_s" in row and row.get("device", "cpu") != "cpu":
            peak = _peak_flops(row["device"], row["precision"], peak_tflops)
            if peak:
                row["mfu"] = 3.0 * row["forward_flops"] * row["seq_per_s"] / peak
        rows.append(row)
        if output:  # after every row, so that a run cut short keeps what it measured
            atomic_write_text(output, json.dumps(rows, indent=2) + "\n")
        return row

    torch_seq_per_s = None
    if torch:
        torch_seq_per_s = measure({**base, "framework": "torch", "arch": "epfl2d",
                                   "batch_size": 2, "precision": "float32"}).get("seq_per_s")
    for arch in archs:
        for precision in precisions:
            for batch_size in batch_sizes:
                measure({**base, "framework": "keras", "arch": arch,
                         "batch_size": batch_size, "precision": precision})
    print(f"\ntraining throughput, {frames} frames x {size} x {size} px, synthetic input, "
          f"median of {steps} steps; 'x torch' = seq/s over the PyTorch seed loop "
          f"(epfl2d, batch 2, fp32, eager)")
    print(_format_table(rows, torch_seq_per_s))
    return rows


def _integers(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",") if item]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, received {text!r}") from None


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16,
                        help="frames per sequence; default 16")
    parser.add_argument("--size", type=int, default=64,
                        help="pixels per side of each frame; default 64")
    parser.add_argument("--seed-size", action="store_true",
                        help="use the seed's geometry, 30 frames of 166x166 px "
                             "(overrides --frames/--size; GPU advised)")
    parser.add_argument("--batch-sizes", type=_integers, default=[2, 8],
                        help="comma-separated Keras batch sizes, sequences per step; "
                             "default 2,8")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed training steps per configuration (median "
                             "reported); default 5")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps after the first (tracing) call; default 1")
    parser.add_argument("--precisions", type=_names, default=["float32"],
                        help="comma-separated dtype policies (float32, mixed_bfloat16, "
                             "mixed_float16); default float32")
    parser.add_argument("--archs", type=_names,
                        default=["td_lstm_light", "td_lstm_seed", "epfl2d"],
                        help="comma-separated models among projection, td_lstm_light, "
                             "td_lstm_seed, epfl2d; default the last three")
    parser.add_argument("--torch", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the seed's PyTorch loop (epfl2d, batch 2, fp32, "
                             "eager, loss.item() per step); default on")
    parser.add_argument("--jit", default="auto", choices=["auto", "on", "off"],
                        help="XLA for Keras (train.jit); default auto (GPU only)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="GPU peak TFLOP/s for MFU; default from the device name "
                             "(H100/H200/A100/L4/T4)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="limit per configuration, seconds; default 900")
    parser.add_argument("--output", default=None,
                        help="also write the rows as JSON to this file; default none")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # internal: one configuration, result as one JSON line
        spec = json.loads(args.worker)
        worker = _torch_worker if spec["framework"] == "torch" else _keras_worker
        print(json.dumps(worker(spec)))
        return 0
    frames, size = (30, 166) if args.seed_size else (args.frames, args.size)
    return run_main(lambda: run_benchmark(
        frames=frames, size=size, batch_sizes=args.batch_sizes, steps=args.steps,
        warmup=args.warmup, precisions=args.precisions, archs=args.archs,
        torch=args.torch, jit=args.jit, peak_tflops=args.peak_tflops,
        timeout_s=args.timeout, output=args.output), prog="train_throughput",
        resume=f"python {shlex.join(sys.argv)} (it measures every row again)",
        kept=(f"the rows measured so far are in {args.output}" if args.output
              else "nothing is kept without --output"))


if __name__ == "__main__":
    raise SystemExit(main())
