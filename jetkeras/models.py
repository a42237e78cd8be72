"""The networks: timing maps + 2-D CNN (``projection``, the default), a per-frame CNN +
temporal head (``td_lstm``, the design card's family) and the seed's own CNN (``epfl2d``).

All three take ``frames``, a float32 tensor of shape ``(B, T, S, S, 1)`` (T =
``config.data.frames``, S = ``config.data.size``; already normalised, dimensionless) and
return one float32 **logit** per sequence, shape ``(B, 1)``; the probability of a jet is
``sigmoid(logit)``.

``projection`` (the default; ``bench/README.md`` measured it ahead of ``td_lstm`` on
renders at both geometries, under nuisance settings and on real jets)
    :class:`jetkeras.layers.MotionChannels` (each sequence standardised on its own, plus
    running- and base-difference channels), then :class:`jetkeras.layers.TemporalProjection`
    folds the frame axis into 8 per-pixel maps: mean frame, largest rise and fall (base
    and running differences), flicker (RMS running difference) and *when* each pixel
    brightens and fades. A jet's coherent outward growth is a brightening time that rises
    along a collimated spire; a scrambled or frozen one has none. One 2-D CNN (the
    ``td_lstm`` frame encoder below: input stem, ``len(widths)`` conv blocks, ``avgmax``
    pooling) reads the maps, then Dropout, Dense(dense_units, relu), Dropout, Dense(1).
    The CNN runs once per sequence, not T times, so it costs the same at 16 or 30
    frames and affords 4x ``td_lstm``'s widths. ``temporal`` and ``lstm_units`` are unused.
    At inference the CNN reads the maps in ``model.views`` orientations (8: every turn
    and mirror of the square) and the logits are averaged
    (:class:`jetkeras.layers.DihedralViews`); training reads one.

``td_lstm`` (the report's idea, done for real; the family's name predates its conv head)
    :class:`jetkeras.layers.MotionChannels` (``model.motion = "differences"``: each
    sequence standardised on its own, plus running- and base-difference channels), an
    optional average pool (``model.input_pool``), then a per-frame Conv2D encoder --
    ``len(widths)`` blocks of ``convs_per_block`` x [Conv2D (no bias: BatchNorm follows) +
    BatchNorm + ReLU] then MaxPool 2; the first conv has stride ``stem_stride`` -- shared
    by all frames through :class:`jetkeras.layers.FrameDistributed` (frames folded into
    the batch axis, one pass at batch B*T), then ``flatten`` or global pooling
    (``model.pooling``; ``avgmax`` by default), a temporal head over the **frame axis**
    (``model.temporal``: ``conv``, two kernel-3 Conv1D + BatchNorm and the max and mean
    over frames, the default; or an LSTM), Dropout, Dense(dense_units, relu), Dropout,
    Dense(1). ``bench/bakeoff.py`` chose these defaults.

``epfl2d`` (the seed's ``RCNN`` as coded, seed-reference section 1)
    Frames are the T input channels of a 2-D VGG-like CNN (``(B, T, S, S, 1)`` is
    permuted to ``(B, S, S, T)``): layer1..layer7 Conv 3x3 (same, with bias) + BN (eps
    1e-5, momentum 0.9, PyTorch's defaults) + ReLU with MaxPool 2 after each pair, and
    ONE ``layer8`` block (Conv 512->512 + BN + ReLU) applied three times with shared
    weights; flatten (12,800 values at 166 px), LSTM(256), Dense 128 relu, Dropout 0.5,
    Dense 32 relu, Dropout 0.5, Dense 1. Kaiming-normal fan-in (untruncated) weights and
    zero biases for conv and dense layers; LSTM weights U(-1/16, 1/16) like PyTorch.
    Trainable parameters at 30 x 166 x 166: 18,112,193 (PyTorch 18,113,217: its LSTM
    has two bias vectors).

    **Fixed seed bug.** The seed passes a 2-D ``(N, 12800)`` tensor to ``nn.LSTM``,
    which PyTorch reads as ONE unbatched sequence of length N: the LSTM ran across the
    *batch*, so a sample's logit depended on the other samples of its batch. Here each
    sample is a length-1 sequence ``(B, 1, 12800)``, so the LSTM is a gated dense layer
    with a zero initial state and samples are independent.

    **Small inputs.** A 2x2 max-pool is applied only while the feature map is at least
    2 px wide; at 1 px it is skipped (e.g. 32 px: 32 -> 16 -> 8 -> 4 -> 2 -> 1, all five
    pools; 16 px: the fifth pool is skipped). The same rule holds in ``td_lstm``.

Precision. ``build_model`` builds every layer under ``config.train.precision`` (set with
``keras.config.set_dtype_policy`` and restored afterwards, so the global policy does not
leak into later code); the final Dense is always float32 so the logit stays float32.

Examples
--------
>>> from jetkeras.config import DataConfig, JetConfig, model_preset
>>> from jetkeras.models import build_model, compile_model
>>> config = JetConfig(data=DataConfig(frames=4, size=32), model=model_preset("tiny"))
>>> model = compile_model(build_model(config), config, steps_per_epoch=10)
>>> model.output.shape
(None, 1)
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import layers

from jetkeras.config import JetConfig
from jetkeras.layers import (
    MOTION_CHANNELS,
    DihedralViews,
    FrameDistributed,
    LogitF1Score,
    LogitPrecision,
    LogitRecall,
    PROJECTION_CHANNELS,
    MotionChannels,
    TemporalProjection,
    ViewMean,
)

__all__ = [
    "EPFL2D_WIDTHS",
    "build_model",
    "compile_model",
    "count_parameters",
    "estimate_flops",
    "resolve_compute",
]

# The seed's conv widths, layer1..layer8 (layer8 is then applied twice more).
EPFL2D_WIDTHS = (64, 64, 128, 128, 256, 256, 512, 512)
_EPFL2D_LSTM_UNITS = 256
_EPFL2D_DENSE = (128, 32)
_EPFL2D_DROPOUT = 0.5  # nn.Dropout() default
# PyTorch BatchNorm2d defaults (eps 1e-5, running-average factor 0.1 = Keras momentum 0.9).
_BN_EPSILON = 1e-5
_BN_MOMENTUM = 0.9
_POOLINGS = ("flatten", "avg", "max", "avgmax")


def _kaiming():
    """kaiming_normal_(nonlinearity='relu'): N(0, 2/fan_in), untruncated (he_normal truncates)."""
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")


# --------------------------------------------------------------------------- compute
def _has_gpu(backend: str) -> bool:
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    if backend == "torch":
        import torch

        return bool(torch.cuda.is_available())
    return False


def resolve_compute(config: JetConfig) -> dict[str, Any]:
    """Turn ``train.jit``, ``model.use_cudnn`` and ``train.precision`` into concrete choices.

    Call it before building: on the TensorFlow backend a cuDNN LSTM has no XLA kernel
    and silently switches XLA off for the whole train step (pitfalls 6.2), so when XLA
    is on the LSTM must be built with ``use_cudnn=False``.

    Rules: ``jit="auto"`` means XLA on a GPU with TensorFlow, always on JAX (eager JAX
    is 3-15x slower), never on torch or a CPU-only TensorFlow (XLA was slower there,
    pitfalls 9). With XLA on TensorFlow, ``use_cudnn="auto"`` becomes False; an
    explicit ``use_cudnn="true"`` wins over ``jit="auto"`` (XLA off) and conflicts with
    ``jit="on"`` (ValueError). On JAX with a GPU, ``mixed_bfloat16`` makes
    ``use_cudnn="auto"`` False and refuses ``"true"``: JAX's cuDNN LSTM has no bfloat16
    kernel.

    Parameters
    ----------
    config : JetConfig

    Returns
    -------
    dict
        ``jit`` (bool, for ``compile(jit_compile=...)``), ``use_cudnn`` ("auto", True or
        False, for ``keras.layers.LSTM``), ``precision`` (dtype policy name),
        ``backend`` (str) and ``gpu`` (bool).
    """
    backend = keras.backend.backend()
    gpu = _has_gpu(backend)
    if config.train.jit == "on":
        jit = True
    elif config.train.jit == "off":
        jit = False
    else:
        jit = backend == "jax" or (backend == "tensorflow" and gpu)
    use_cudnn = {"auto": "auto", "true": True, "false": False}[config.model.use_cudnn]
    if jit and backend == "tensorflow" and use_cudnn is not False:
        if use_cudnn is True:
            if config.train.jit == "on":
                raise ValueError(
                    "config keys `train.jit` and `model.use_cudnn`: expected not both "
                    "'on' and 'true' (a cuDNN LSTM cannot run under XLA on TensorFlow), "
                    "received jit='on', use_cudnn='true'"
                )
            jit = False  # cuDNN was asked for explicitly; automatic XLA gives way.
        else:
            use_cudnn = False
    if backend == "jax" and gpu and config.train.precision == "mixed_bfloat16":
        # JAX's cuDNN LSTM (jax.experimental.rnn) has no bfloat16 kernel: the train step
        # failed with "Unknown output type bfloat16" on an H200 (bench/README, GPU).
        if use_cudnn is True:
            raise ValueError(
                "config keys `train.precision` and `model.use_cudnn`: expected not both "
                "'mixed_bfloat16' and 'true' on the JAX backend with a GPU (JAX's cuDNN "
                "LSTM has no bfloat16 kernel), received precision='mixed_bfloat16', "
                "use_cudnn='true'"
            )
        use_cudnn = False
    return {"jit": jit, "use_cudnn": use_cudnn, "precision": config.train.precision,
            "backend": backend, "gpu": gpu}


# --------------------------------------------------------------------------- shapes
def _same_size(size: int, stride: int) -> int:
    """Output side of a 'same'-padded conv: ceil(size / stride)."""
    return -(-size // stride)


def _pool_size(size: int) -> int:
    """MaxPool 2 (valid, floor) only while the map is >= 2 px; skipped at 1 px."""
    return size // 2 if size >= 2 else size


def _validate(config: JetConfig) -> None:
    model = config.model
    checks = [
        ("model.convs_per_block", model.convs_per_block),
        ("model.kernel_size", model.kernel_size),
        ("model.stem_stride", model.stem_stride),
        ("model.dense_units", model.dense_units),
        ("data.size", config.data.size),
    ]
    for key, value in checks:
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"config key `{key}`: expected a positive integer, received {value!r}"
            )
    if model.pooling not in _POOLINGS:
        raise ValueError(
            f"config key `model.pooling`: expected one of {list(_POOLINGS)}, "
            f"received {model.pooling!r}"
        )


def _input_channels(config: JetConfig) -> int:
    """Channels per frame entering the td_lstm encoder (1, or 3 with motion channels)."""
    if config.model.arch == "projection":
        return len(PROJECTION_CHANNELS)
    return len(MOTION_CHANNELS) if config.model.motion == "differences" else 1


def _td_plan(config: JetConfig) -> list[tuple]:
    """The td_lstm encoder as a list of steps, shared by the builder and the FLOP count.

    Returns ``("conv", name, in_side, out_side, in_channels, out_channels, stride)`` and
    ``("pool", name, in_side, out_side)`` tuples, sides in pixels.
    """
    model = config.model
    side, channels, plan = config.data.size, _input_channels(config), []
    if model.input_pool > 1 and model.input_stem == "patch":
        # A learned k x k, stride-k convolution: each output pixel sees one k x k patch.
        plan.append(("conv", "input_patch", side, side // model.input_pool, channels,
                     model.widths[0], model.input_pool))
        side, channels = side // model.input_pool, model.widths[0]
    elif model.input_pool > 1:
        plan.append(("pool", "input_pool", side, side // model.input_pool))
        side //= model.input_pool
    for block, width in enumerate(model.widths, start=1):
        for index in range(1, model.convs_per_block + 1):
            stride = model.stem_stride if (block == 1 and index == 1) else 1
            out_side = _same_size(side, stride)
            plan.append(("conv", f"block{block}_conv{index}", side, out_side, channels,
                         width, stride))
            side, channels = out_side, width
        if side >= 2:
            plan.append(("pool", f"block{block}_pool", side, _pool_size(side)))
            side = _pool_size(side)
    return plan


def _epfl2d_plan(config: JetConfig) -> list[tuple]:
    """The seed's conv stack; ``layer8`` appears three times (shared weights)."""
    names = [f"layer{i}" for i in range(1, 9)] + ["layer8", "layer8"]
    widths = list(EPFL2D_WIDTHS) + [512, 512]
    pools_after = {1, 3, 5, 7, 9}  # after layer2, layer4, layer6, layer8, third layer8
    side, channels, plan = config.data.size, config.data.frames, []
    for position, (name, width) in enumerate(zip(names, widths)):
        plan.append(("conv", name, side, side, channels, width, 1))
        channels = width
        if position in pools_after and side >= 2:
            plan.append(("pool", f"pool{len([p for p in plan if p[0] == 'pool']) + 1}",
                         side, _pool_size(side)))
            side = _pool_size(side)
    return plan


def _feature_size(config: JetConfig) -> int:
    """Values per frame (td_lstm) or per sample (epfl2d) entering the LSTM."""
    if config.model.arch == "epfl2d":
        plan = _epfl2d_plan(config)
    else:  # td_lstm and projection share the encoder
        plan = _td_plan(config)
        if config.model.pooling != "flatten":
            return config.model.widths[-1] * (2 if config.model.pooling == "avgmax" else 1)
    side = plan[-1][3]
    channels = [step[5] for step in plan if step[0] == "conv"][-1]
    return side * side * channels


# --------------------------------------------------------------------------- builders
def _frame_encoder(config: JetConfig) -> keras.Model:
    """The 2-D CNN: ``(B, S, S, C)`` -> ``(B, F)``.

    C is 3 (motion channels of one frame, ``td_lstm``), 1 (``motion="none"``) or 8 (the
    timing maps of a whole sequence, ``projection``).
    """
    size = config.data.size
    frame = keras.Input((size, size, _input_channels(config)), name="frame")
    x = frame
    for step in _td_plan(config):
        if step[1] == "input_patch":
            # Patchify rather than average: a thin spire (one pooled pixel wide) would
            # be diluted k-fold by the mean; learned k x k filters keep it.
            k = config.model.input_pool
            x = layers.Conv2D(config.model.widths[0], k, strides=k, padding="valid",
                              use_bias=False, kernel_initializer=_kaiming(),
                              name="input_patch")(x)
            x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
                                          name="input_patch_bn")(x)
            x = layers.ReLU(name="input_patch_relu")(x)
        elif step[1] == "input_pool":
            # A mean (a flux-conserving rebin, as a coarser detector would see it), not a
            # max: the max of k^2 noisy pixels biases the noise upward and keeps only the
            # positive half of the difference channels; the mean cuts the noise k-fold.
            x = layers.AveragePooling2D(config.model.input_pool, name="input_pool")(x)
        elif step[0] == "conv":
            _, name, _, _, _, width, stride = step
            # No bias: the BatchNorm beta that follows does its job.
            x = layers.Conv2D(width, config.model.kernel_size, strides=stride,
                              padding="same", use_bias=False,
                              kernel_initializer=_kaiming(), name=name)(x)
            x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
                                          name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        else:
            x = layers.MaxPooling2D(2, name=step[1])(x)
    if config.model.pooling == "flatten":
        x = layers.Flatten(name="flatten")(x)
    elif config.model.pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
    elif config.model.pooling == "avgmax":
        x = layers.Concatenate(name="global_avg_max_pool")([
            layers.GlobalAveragePooling2D(name="global_avg_pool")(x),
            layers.GlobalMaxPooling2D(name="global_max_pool")(x)])
    else:
        x = layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    return keras.Model(frame, x, name="frame_encoder")


def _build_td_lstm(config: JetConfig, frames_input, use_cudnn, unroll) -> Any:
    encoder = _frame_encoder(config)
    x = frames_input
    if config.model.motion == "differences":
        x = MotionChannels(name="motion_channels")(x)  # (B, T, S, S, 3)
    x = FrameDistributed(encoder, name="frame_distributed")(x)  # (B, T, F)
    if config.model.temporal == "conv":
        # Conv + BatchNorm keeps the frame features at unit scale whatever the encoder
        # gives (without it one of three seeds started at loss 1.0 and never learnt);
        # the second conv stays linear before the max over frames, so no ReLU can switch
        # every unit off for every frame.
        for index, activation in ((1, "relu"), (2, None)):
            x = layers.Conv1D(config.model.lstm_units, 3, padding="same", use_bias=False,
                              kernel_initializer=_kaiming(), name=f"temporal_conv{index}")(x)
            x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
                                          name=f"temporal_conv{index}_bn")(x)
            if activation:
                x = layers.ReLU(name=f"temporal_conv{index}_relu")(x)
        # Max and mean over frames: the max finds the frame where the jet is clearest;
        # the mean gives every frame a gradient, which the max alone does not (with it
        # alone, training sat at chance for 30 epochs on one of three seeds).
        x = layers.Concatenate(name="temporal_pool")([
            layers.GlobalMaxPooling1D(name="temporal_max")(x),
            layers.GlobalAveragePooling1D(name="temporal_mean")(x)])
    else:
        x = layers.LSTM(config.model.lstm_units, use_cudnn=use_cudnn, unroll=unroll,
                        name="lstm")(x)
    return _dense_head(config, x)


def _dense_head(config: JetConfig, x) -> Any:
    """Dropout, Dense(dense_units, relu), Dropout: what the logit layer reads."""
    x = layers.Dropout(config.model.dropout, name="dropout_1")(x)
    x = layers.Dense(config.model.dense_units, activation="relu",
                     kernel_initializer=_kaiming(), name="dense")(x)
    return layers.Dropout(config.model.dropout, name="dropout_2")(x)


def _build_projection(config: JetConfig, frames_input) -> Any:
    x = MotionChannels(name="motion_channels")(frames_input)  # (B, T, S, S, 3)
    x = TemporalProjection(name="temporal_projection")(x)  # (B, S, S, 8)
    if config.model.views > 1:
        # Turning the maps equals turning the frames (the front end is per pixel), so
        # only the CNN below runs once per view: (views * B, S, S, 8) at inference.
        x = DihedralViews(config.model.views, name="views")(x)
    x = _frame_encoder(config)(x)  # (B, F): the frame encoder, run once on the maps
    return _dense_head(config, x)


def _build_epfl2d(config: JetConfig, frames_input, use_cudnn, unroll) -> Any:
    size, frames = config.data.size, config.data.frames
    # (B, T, S, S, 1) -> (B, S, S, T, 1) -> (B, S, S, T): frames become channels.
    x = layers.Permute((2, 3, 1, 4), name="frames_last")(frames_input)
    x = layers.Reshape((size, size, frames), name="frames_as_channels")(x)
    shared: dict[str, tuple] = {}
    for step in _epfl2d_plan(config):
        if step[0] == "pool":
            x = layers.MaxPooling2D(2, name=step[1])(x)
            continue
        name, width = step[1], step[5]
        if name not in shared:
            shared[name] = (
                layers.Conv2D(width, 3, padding="same", use_bias=True,
                              kernel_initializer=_kaiming(), bias_initializer="zeros",
                              name=f"{name}_conv"),
                layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
                                          name=f"{name}_bn"),
                layers.ReLU(name=f"{name}_relu"),
            )
        convolution, normalisation, activation = shared[name]  # layer8: same objects
        x = activation(normalisation(convolution(x)))
    features = _feature_size(config)
    x = layers.Flatten(name="flatten")(x)
    # The seed's bug fixed: one length-1 sequence per sample, (B, 1, F).
    x = layers.Reshape((1, features), name="one_step_sequence")(x)
    bound = 1.0 / math.sqrt(_EPFL2D_LSTM_UNITS)  # PyTorch's LSTM initialisation
    uniform = keras.initializers.RandomUniform(-bound, bound)
    x = layers.LSTM(_EPFL2D_LSTM_UNITS, use_cudnn=use_cudnn, kernel_initializer=uniform,
                    recurrent_initializer=keras.initializers.RandomUniform(-bound, bound),
                    bias_initializer=keras.initializers.RandomUniform(-bound, bound),
                    unit_forget_bias=False, unroll=unroll, name="lstm")(x)
    for index, units in enumerate(_EPFL2D_DENSE, start=1):
        x = layers.Dense(units, activation="relu", kernel_initializer=_kaiming(),
                         bias_initializer="zeros", name=f"dense_{index}")(x)
        x = layers.Dropout(_EPFL2D_DROPOUT, name=f"dropout_{index}")(x)
    return x


def build_model(config: JetConfig, *, seed: int | None = None,
                unroll: bool = False) -> keras.Model:
    """Build the (uncompiled) Functional model named by ``config.model.arch``.

    Parameters
    ----------
    config : JetConfig
        ``data.frames`` and ``data.size`` fix the input shape; ``model`` the network;
        ``train.precision``, ``train.jit`` and ``model.use_cudnn`` the compute choices (see
        :func:`resolve_compute`).
    seed : int, optional
        Seeds Python, NumPy and Keras (``keras.utils.set_random_seed``) before the
        weights are drawn; default ``config.train.seed``. Member i of an ensemble
        (``model.members`` > 1) is drawn with ``seed + i``.
    unroll : bool
        Unroll the LSTM over the (static) frame axis. Same weights and outputs; the form
        the LiteRT converter turns into builtin ops only (a loop needs TensorFlow ops).

    Returns
    -------
    keras.Model
        Input ``frames``: float32 ``(B, T, S, S, 1)``, normalised. Output ``logit``:
        float32 ``(B, 1)`` (the last Dense is float32 even under mixed precision); with
        ``model.members`` = M > 1, the mean of M independent networks' logits (their
        weights in member order: ``model.set_weights`` takes the members' weight lists
        one after the other).

    Raises
    ------
    ValueError
        A model setting is out of range (one line naming the config key).
    """
    _validate(config)
    compute = resolve_compute(config)
    seed = int(config.train.seed if seed is None else seed)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(compute["precision"])
    try:
        size, frames = config.data.size, config.data.frames
        frames_input = keras.Input((frames, size, size, 1), dtype="float32",
                                   name="frames")
        if config.model.members == 1:
            keras.utils.set_random_seed(seed)
            logit = _logit(config, frames_input, compute, unroll)
            return keras.Model(frames_input, logit, name=config.model.arch)
        # A seed ensemble as ONE model: export, LiteRT and predict see a plain network.
        logits = []
        for index in range(config.model.members):
            keras.utils.set_random_seed(seed + index)
            member_input = keras.Input((frames, size, size, 1), dtype="float32",
                                       name=f"member{index + 1}_frames")
            member = keras.Model(member_input,
                                 _logit(config, member_input, compute, unroll),
                                 name=f"member{index + 1}")
            logits.append(member(frames_input))
        logit = layers.Average(dtype="float32", name="ensemble_logit")(logits)
        return keras.Model(frames_input, logit, name=f"{config.model.arch}_ensemble")
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _logit(config: JetConfig, frames_input, compute, unroll):
    """One network's logit ``(B, 1)`` float32 on ``frames_input``.

    With ``model.views`` > 1 it is, at inference, the mean of the logits over that many
    turned and mirrored views of the cutout (:class:`jetkeras.layers.DihedralViews`):
    ``projection`` takes the views of its timing maps, the others of the frames.
    """
    views = config.model.views
    if config.model.arch == "projection":
        x = _build_projection(config, frames_input)
    else:
        x = frames_input if views == 1 else DihedralViews(views, name="views")(frames_input)
        build = _build_epfl2d if config.model.arch == "epfl2d" else _build_td_lstm
        x = build(config, x, compute["use_cudnn"], unroll)
    logit = layers.Dense(1, dtype="float32", kernel_initializer=_kaiming(),
                         bias_initializer="zeros", name="logit")(x)
    if views > 1:
        logit = ViewMean(views, dtype="float32", name="view_mean")(logit)
    return logit


# --------------------------------------------------------------------------- compile
def _learning_rate(config: JetConfig, steps_per_epoch: int):
    train = config.train
    if train.schedule == "cosine":
        # Decays to 0 over the whole run, per step (the seed's was constant in practice),
        # after an optional linear warm-up from 0 (Adam's early steps on a fresh
        # BatchNorm stack are otherwise large and throw the first epochs around).
        warmup_steps = int(round(train.warmup_fraction * train.epochs * steps_per_epoch))
        if warmup_steps == 0:
            return keras.optimizers.schedules.CosineDecay(
                train.learning_rate, decay_steps=train.epochs * steps_per_epoch)
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, train.epochs * steps_per_epoch - warmup_steps),
            warmup_target=train.learning_rate, warmup_steps=warmup_steps)
    if train.schedule == "exponential":
        # The seed's per-epoch ExponentialLR(gamma) as a staircase over steps.
        return keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate, decay_steps=steps_per_epoch,
            decay_rate=train.exponential_decay_rate, staircase=True)
    # "plateau": a plain float, so train's ReduceLROnPlateau callback can change it.
    return float(train.learning_rate)


def compile_model(model: keras.Model, config: JetConfig, *,
                  steps_per_epoch: int) -> keras.Model:
    """Compile ``model`` with the optimiser, schedule, loss and metrics of ``config``.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_model` (logits of shape (B, 1)).
    config : JetConfig
        ``train.optimizer`` (``adamw``; ``sgd``: Nesterov momentum 0.9), ``learning_rate``,
        ``weight_decay`` (decoupled in both; the seed's PyTorch SGD coupled it as L2),
        ``schedule``, ``epochs``, ``exponential_decay_rate`` and ``jit``.
    steps_per_epoch : int
        Optimiser steps per epoch, for the schedules.

    Returns
    -------
    keras.Model
        The same model, compiled: loss ``BinaryCrossentropy(from_logits=True)``; metrics
        ``accuracy``, ``precision``, ``recall``, ``auc``, ``f1`` (probability threshold
        0.5, computed from logits).
    """
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) \
            or steps_per_epoch < 1:
        raise ValueError(
            f"compile_model: expected `steps_per_epoch` a positive integer, received "
            f"{steps_per_epoch!r}"
        )
    compute = resolve_compute(config)
    learning_rate = _learning_rate(config, steps_per_epoch)
    if config.train.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9,
                                         nesterov=True,
                                         weight_decay=config.train.weight_decay)
    else:
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate,
                                           weight_decay=config.train.weight_decay)
    metrics = [
        keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),  # logit > 0
        LogitPrecision(name="precision"),
        LogitRecall(name="recall"),
        keras.metrics.AUC(name="auc", from_logits=True),
        LogitF1Score(name="f1"),
    ]
    model.compile(optimizer=optimizer,
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=metrics, jit_compile=compute["jit"])
    return model


# --------------------------------------------------------------------------- accounting
def count_parameters(model: keras.Model) -> tuple[int, int]:
    """Return ``(trainable, non_trainable)`` scalar counts; shared layers count once."""
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    frozen = sum(int(np.prod(weight.shape)) for weight in model.non_trainable_weights)
    return trainable, frozen


def estimate_flops(config: JetConfig) -> float:
    """Forward FLOPs per sequence (2 x multiply-accumulates) of convs, LSTM and Dense.

    One view, as in training: inference with ``model.views`` = V runs the CNN (all of
    it for ``td_lstm`` and ``epfl2d``) V times. BatchNorm, ReLU and pooling are left out
    (under 1 % here). Training costs about 3x this (forward + backward). ``epfl2d`` at
    30 x 166 x 166: about 12.8 GFLOP (6.39 GMAC in the convolutions, seed-reference
    section 1).

    Parameters
    ----------
    config : JetConfig

    Returns
    -------
    float
        FLOPs per sequence for one forward pass.
    """
    _validate(config)
    kernel = config.model.kernel_size
    if config.model.arch == "epfl2d":
        plan, repeat, kernel = _epfl2d_plan(config), 1, 3
        steps, units = 1, _EPFL2D_LSTM_UNITS
        dense = [units] + list(_EPFL2D_DENSE) + [1]
    elif config.model.arch == "projection":
        plan, repeat, steps, units = _td_plan(config), 1, 0, 0  # one image, no temporal head
        dense = [_feature_size(config), config.model.dense_units, 1]
    else:
        plan, repeat = _td_plan(config), config.data.frames
        steps, units = config.data.frames, config.model.lstm_units
        dense = [units, config.model.dense_units, 1]
    macs = 0
    for step in plan:
        if step[0] == "conv":
            _, name, _, out_side, in_channels, out_channels, stride = step
            size = stride if name == "input_patch" else kernel  # the patch stem: k = stride
            macs += repeat * out_side * out_side * out_channels * size * size * in_channels
    features = _feature_size(config)
    if config.model.arch == "td_lstm" and config.model.temporal == "conv":
        macs += steps * 3 * units * (features + units)  # two kernel-3 1-D convolutions
    else:
        macs += steps * 4 * units * (features + units)  # four gates, input + recurrent
    macs += sum(a * b for a, b in zip(dense[:-1], dense[1:]))
    return 2.0 * float(macs) * config.model.members
