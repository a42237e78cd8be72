"""One typed configuration for every stage of jetkeras.

The defaults *are* the documentation: each field carries a comment with its unit and
meaning. A :class:`JetConfig` is saved as ``config.json`` beside every output (records
folders, run folders, tuning results, reports) so that any output can be reproduced.

Loading is strict: an unknown key or a value of the wrong type raises a
``ValueError`` that names the key, what was expected and what was received.

Examples
--------
>>> from jetkeras.config import JetConfig
>>> config = JetConfig()
>>> config.data.frames, config.model.arch
(30, 'td_lstm')
>>> JetConfig.from_dict(config.to_dict()) == config
True
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetkeras._files import atomic_write_text

__all__ = [
    "MODEL_PRESETS",
    "DataConfig",
    "epochs_for",
    "input_pool_for",
    "JetConfig",
    "ModelConfig",
    "TrainConfig",
    "atomic_write_text",
    "model_preset",
]


@dataclass(frozen=True)
class DataConfig:
    """What one sequence is and how it is normalised and augmented."""

    # --- geometry --------------------------------------------------------------------
    frames: int = 30  # frames per sequence (the seed: 30 frames, 11.6 min window)
    size: int = 166  # pooled pixels per side (the seed: 500 px cutout max-pooled 3x3)
    cadence_s: float = 24.0  # seconds between frames (AIA EUV is 12 s; sampled every 24 s)
    field_of_view_arcsec: float = 300.0  # side of the cutout centred on the jet base
    pool: int = 3  # max-pool factor applied to native 0.6"/px AIA frames
    # --- input validation ------------------------------------------------------------
    nan_policy: str = "reject"  # "reject": refuse cubes with NaN/Inf; "fill": replace by 0
    cadence_tolerance_s: float = 6.0  # allowed deviation of FITS frame spacing from cadence
    # False: frames stay in DN (level-1 counts), as the bundled model was trained; True:
    # each FITS frame is divided by its EXPTIME (DN/s). predict converts a cube stored in
    # the other unit when it records its exposure times, and refuses it otherwise.
    exposure_normalise: bool = False
    wavelength_angstrom: float = 304.0  # AIA channel the model is for; others are refused
    instrument: str = "AIA"  # instrument the frames must come from (FITS INSTRUME prefix)
    # --- normalisation (statistics come from the training split's manifest) ----------
    scaling: str = "clip"  # "clip": clip at clip_dn then standardise (seed); "log": log1p
    clip_dn: float = 1000.0  # upper clip in DN before standardising (the seed's value)
    # --- augmentation: ONE draw per sequence, applied to all its frames ---------------
    augment: bool = True  # master switch, training split only
    rot90: bool = True  # rotate by k*90 degrees, k uniform in 0..3
    flips: bool = True  # horizontal and vertical flips, each with probability 0.5
    max_angle_deg: float = 0.0  # extra shared rotation angle, uniform in +-max (0 = off)
    brightness_jitter: float = 0.2  # multiplicative exposure jitter, log-uniform +-fraction
    # --- pipeline -------------------------------------------------------------------
    shuffle_buffer: int = 512  # sequences held for shuffling the training split
    cache: bool = False  # cache parsed sequences in memory (before augmentation)


@dataclass(frozen=True)
class ModelConfig:
    """The network. ``projection`` is the default, ``td_lstm`` the report's model, ``epfl2d``
    the seed's code (:mod:`jetkeras.models`)."""

    # "projection" (per-pixel timing maps -> 2-D CNN: the default, bench/README.md),
    # "td_lstm" (per-frame CNN -> temporal head) or "epfl2d" (the seed's frames-as-channels)
    arch: str = "projection"
    preset: str = "projection"  # name of the preset the widths came from ("custom" if edited)
    widths: tuple[int, ...] = (32, 64, 128, 256)  # filters of each conv block (2 conv + pool)
    convs_per_block: int = 2  # Conv2D + BN + ReLU layers per block
    kernel_size: int = 3  # conv kernel side, pixels
    stem_stride: int = 2  # stride of the first conv: halves H and W cheaply (1 = seed-like)
    # Width of the temporal head over the frame axis: the LSTM's state, or the filters of
    # each 1-D convolution of the "conv" head (the name predates the conv head).
    lstm_units: int = 32
    dense_units: int = 32  # width of the dense layer before the logit
    dropout: float = 0.3  # dropout before and after the dense layer
    # How td_lstm turns each frame's last feature map into a vector for the LSTM:
    # "flatten" keeps where things are (5x5x512 = 12,800 at 166 px, seed preset);
    # "avg" / "max" (global pooling) give `widths[-1]` features whatever the size;
    # "avgmax" concatenates both (2 x widths[-1]): the mean says how much, the max where.
    pooling: str = "avgmax"  # "flatten" | "avg" | "max" | "avgmax" (td_lstm only)
    # td_lstm inputs: "differences" standardises each sequence and adds running- and
    # base-difference channels inside the model (jetkeras.layers.MotionChannels), so
    # the first convolution sees motion; "none" feeds the normalised frames as they are.
    motion: str = "differences"  # "none" | "differences" (td_lstm only)
    # Average-pool the frames by this factor first (166 px -> 55 px with 3): see
    # input_pool_for, which train and demo apply per geometry.
    input_pool: int = 1
    # How input_pool reduces the frames: "average" (a flux-conserving rebin) or "patch"
    # (a learned input_pool x input_pool convolution of stride input_pool, then
    # BatchNorm and ReLU: thin spires one pixel wide survive it; the mean dilutes them).
    input_stem: str = "patch"
    # Over the frame axis: "conv", two kernel-3 1-D convolutions then the max over frames
    # (a jet is a transient: where in the window it peaks does not matter), or "lstm".
    # The bake-off (bench/README.md) measured "conv" well ahead at both geometries.
    temporal: str = "conv"  # "conv" | "lstm"
    # > 1: a seed ensemble in one model, the mean of the members' logits (2 by default: in
    # bench/README.md's exploration it lifted seed 1's validation AUC from 0.969 to 0.990
    # for about 1.3x the training time)
    members: int = 2
    # At inference, score the mean logit over this many turned and mirrored views of the
    # cutout (1, 2, 4 or 8; jetkeras.layers.DihedralViews): a jet's score should not
    # depend on the cutout's orientation. 8 lifted the bundled model's real-jet AUC
    # from 0.943 to 0.976 (at the demo's 128 px it changed no figure by over 0.004;
    # bench/README.md). Training is unchanged (one random view per sequence);
    # projection's CNN alone runs once per view, the others' whole network.
    views: int = 8
    use_cudnn: str = "auto"  # "auto" | "true" | "false"; "false" is needed for XLA on TF


@dataclass(frozen=True)
class TrainConfig:
    """How the network is fitted and how its threshold is chosen."""

    epochs: int = 60  # passes over the training events (60: bench/README.md)
    batch_size: int = 8  # sequences per step (static: last partial batch dropped)
    optimizer: str = "adamw"  # "adamw" or "sgd" (Nesterov momentum 0.9)
    learning_rate: float = 2e-3  # peak learning rate (after the warm-up)
    weight_decay: float = 5e-3  # decoupled weight decay (the seed's 5e-3)
    schedule: str = "cosine"  # "cosine" | "exponential" | "plateau" | "constant"
    exponential_decay_rate: float = 0.9  # per-epoch factor of the exponential schedule
    warmup_fraction: float = 0.05  # share of the run's steps spent warming up linearly from 0
    # "best": the epoch of highest val AUC (noisy on a small validation split);
    # "last": the final weights, which a cosine decay to zero leaves settled.
    checkpoint: str = "last"  # "best" | "last"
    # train validates every this many epochs and after the last one. The weights never
    # depend on it with the "last" checkpoint; "best" and the "plateau" schedule read
    # the validation metrics every epoch, so they need 1.
    validation_every: int = 1
    early_stopping_patience: int = 8  # epochs without val AUC gain before stopping
    seed: int = 0  # seeds Python, NumPy, TF and the data pipeline
    precision: str = "float32"  # "float32" | "mixed_bfloat16" | "mixed_float16"
    jit: str = "auto"  # "auto" (XLA on GPU only) | "on" | "off"
    distribute: str = "none"  # "none" | "mirrored": tf.distribute over the GPUs of one node
    deterministic: bool = False  # bitwise-reproducible ops (tf: enable_op_determinism); slower
    threshold_metric: str = "f1"  # "f1": maximise val F1; "recall": reach target_recall
    target_recall: float = 0.95  # used when threshold_metric == "recall"


# Test-time views (model.views): the identity, + the half turn, + the quarter turns, +
# each of those mirrored (jetkeras.layers.DihedralViews).
VIEW_COUNTS = (1, 2, 4, 8)

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # The default (bench/README.md): motion channels, per-pixel timing maps over the
    # window, one 2-D CNN with global average + max pooling, two seeds' networks averaged.
    # It is cheaper than "light" (one image per sequence, not T), so it affords 4x the
    # widths and a second member.
    "projection": dict(arch="projection", widths=(32, 64, 128, 256), stem_stride=2,
                       dense_units=32, motion="differences", pooling="avgmax", members=2,
                       views=8),
    # The design card's family, best of its kind in the bake-off (bench/README.md): motion
    # channels, a strided per-frame CNN, global average + max pooling, a temporal conv
    # head with the max and mean over frames. The td_lstm presets score one view: their
    # whole network runs per frame, so 8 views would cost 8x at inference.
    "light": dict(arch="td_lstm", members=1, views=1, widths=(8, 16, 32, 64), stem_stride=2,
                  lstm_units=32, dense_units=32, motion="differences", pooling="avgmax",
                  temporal="conv"),
    # The seed's VGG-like widths, applied per frame (about 28x the seed's cost: GPU only).
    "seed": dict(arch="td_lstm", members=1, views=1, widths=(64, 128, 256, 512, 512),
                 stem_stride=1, lstm_units=256, dense_units=128, motion="differences",
                 pooling="avgmax", temporal="conv"),
    # For tests: a few thousand parameters; an LSTM head, so that the LSTM's export paths
    # (cuDNN, unrolled LiteRT) stay tested; test_motion.py covers the conv head.
    "tiny": dict(arch="td_lstm", members=1, views=1, widths=(4, 8), stem_stride=1,
                 lstm_units=8, dense_units=8, convs_per_block=1, motion="differences",
                 pooling="avgmax", temporal="lstm"),
}


def epochs_for(size: int) -> int:
    """Training epochs (passes over the training events) for frames of ``size`` px.

    60 up to the demo's 128 px; 80 beyond: at the seed's 166 px, thin spires through the
    patch stem learn more slowly (validation AUC still rising at 60 epochs, 0.87 at 80;
    bench/README.md). 80 epochs on 400 events take ~11-15 min on a 2-core CPU.
    """
    return 60 if size <= 128 else 80


def input_pool_for(size: int) -> int:
    """The input average-pool for frames of ``size`` px: about 64 px reach the first conv.

    166 px (the seed's geometry) -> 3 (55 px); 128 px (the demo) -> 2; 64 px -> 1. The demo's
    geometry is where the recipe was measured (bench/README.md); pooling the seed's
    frames to the same scale trains as well and costs 9x less per frame.
    """
    return max(1, round(size / 64))


def model_preset(name: str, **overrides: Any) -> ModelConfig:
    """Return the :class:`ModelConfig` of a named preset.

    Parameters
    ----------
    name : str
        One of ``MODEL_PRESETS`` (``projection``, ``light``, ``seed``, ``tiny``).
    **overrides
        Fields to change after the preset is applied (``arch``, ``dropout``, ...).
    """
    if name not in MODEL_PRESETS:
        raise ValueError(
            f"--preset: expected one of {sorted(MODEL_PRESETS)}, received {name!r}"
        )
    values = {"preset": name, **MODEL_PRESETS[name], **overrides}
    return ModelConfig(**values)


_CHOICES = {
    ("data", "nan_policy"): ("reject", "fill"),
    ("data", "scaling"): ("clip", "log"),
    ("model", "arch"): ("projection", "td_lstm", "epfl2d"),
    ("model", "use_cudnn"): ("auto", "true", "false"),
    ("model", "pooling"): ("flatten", "avg", "max", "avgmax"),
    ("model", "motion"): ("none", "differences"),
    ("model", "temporal"): ("lstm", "conv"),
    ("model", "input_stem"): ("average", "patch"),
    ("model", "views"): VIEW_COUNTS,
    ("train", "optimizer"): ("adamw", "sgd"),
    ("train", "schedule"): ("cosine", "exponential", "plateau", "constant"),
    ("train", "precision"): ("float32", "mixed_bfloat16", "mixed_float16"),
    ("train", "jit"): ("auto", "on", "off"),
    ("train", "distribute"): ("none", "mirrored"),
    ("train", "threshold_metric"): ("f1", "recall"),
    ("train", "checkpoint"): ("best", "last"),
}


def _one_view_if_written_before_views(model: dict[str, Any]) -> dict[str, Any]:
    """A full ``model`` section saved before ``views`` existed scored one view.

    Run folders hold every key of the config they were trained with; rebuilding an older
    one with the new default (8 views) would change its scores and void its stored
    threshold. A partial section (written by hand) still takes the defaults.
    """
    others = {field_.name for field_ in dataclasses.fields(ModelConfig)} - {"views"}
    if "views" not in model and others <= set(model):
        return {**model, "views": 1}
    return model


@dataclass(frozen=True)
class JetConfig:
    """The whole configuration: ``data``, ``model`` and ``train`` sections."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        for section in ("data", "model", "train"):
            for field_ in dataclasses.fields(getattr(self, section)):
                value = getattr(getattr(self, section), field_.name)
                choices = _CHOICES.get((section, field_.name))
                if choices is not None and value not in choices:
                    raise ValueError(
                        f"config key `{section}.{field_.name}`: expected one of "
                        f"{list(choices)}, received {value!r}"
                    )
        positive = [("data", "frames"), ("data", "size"), ("data", "pool"),
                    ("train", "epochs"), ("train", "batch_size"), ("model", "lstm_units"),
                    ("model", "input_pool"), ("model", "members"),
                    ("train", "validation_every")]
        for section, name in positive:
            value = getattr(getattr(self, section), name)
            if value < 1:
                raise ValueError(
                    f"config key `{section}.{name}`: expected a positive integer, "
                    f"received {value!r}"
                )
        if not self.model.widths or any(w < 1 for w in self.model.widths):
            raise ValueError(
                "config key `model.widths`: expected a non-empty list of positive "
                f"integers, received {list(self.model.widths)!r}"
            )
        if not 0.0 <= self.train.warmup_fraction < 1.0:
            raise ValueError(
                f"config key `train.warmup_fraction`: expected a value in [0, 1), received "
                f"{self.train.warmup_fraction!r}"
            )
        if self.train.validation_every > 1 and (self.train.checkpoint == "best"
                                                or self.train.schedule == "plateau"):
            raise ValueError(
                f"config key `train.validation_every`: expected 1 with checkpoint "
                f"{self.train.checkpoint!r} and schedule {self.train.schedule!r} (they "
                f"read validation every epoch), received {self.train.validation_every}"
            )
        if not 0.0 <= self.model.dropout < 1.0:
            raise ValueError(
                f"config key `model.dropout`: expected a value in [0, 1), received "
                f"{self.model.dropout!r}"
            )

    # ---------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Serialise to JSON text; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> JetConfig:
        """Build a config from a (possibly partial) nested dictionary.

        Missing keys take their defaults; unknown keys and wrong types raise
        ``ValueError`` naming ``source`` and the key.
        """
        if not isinstance(values, dict):
            raise ValueError(
                f"{source}: expected a JSON object with sections data/model/train, "
                f"received {type(values).__name__}"
            )
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
        unknown = sorted(set(values) - set(sections))
        if unknown:
            raise ValueError(
                f"{source}: unknown section(s) {unknown}; expected a subset of "
                f"{sorted(sections)}"
            )
        built = {}
        for section, klass in sections.items():
            given = values.get(section, {})
            if not isinstance(given, dict):
                raise ValueError(
                    f"{source}: section `{section}` must be an object, received "
                    f"{type(given).__name__}"
                )
            if section == "model":
                given = _one_view_if_written_before_views(given)
            built[section] = _build_section(klass, given, section, source)
        return cls(**built)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> JetConfig:
        """Read a config written by :meth:`to_json` (or a partial one written by hand)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(values, source=str(path))

    def replace(self, **sections: dict[str, Any]) -> JetConfig:
        """Copy with some fields changed: ``config.replace(train={"epochs": 3})``."""
        values = self.to_dict()
        for section, changes in sections.items():
            if section not in values:
                raise ValueError(f"unknown config section {section!r}")
            values[section].update(changes)
        return JetConfig.from_dict(values)


def _build_section(klass, given: dict[str, Any], section: str, source: str):
    hints = typing.get_type_hints(klass)
    known = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(
            f"{source}: unknown key `{section}.{unknown[0]}`; valid keys of `{section}` "
            f"are {sorted(known)}"
        )
    values = {}
    for name, value in given.items():
        values[name] = _coerce(value, hints[name], f"{section}.{name}", source)
    return klass(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against a simple type hint; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(option for option in options if option is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ValueError(
                f"{source}: key `{key}` expected a list of {item_type.__name__}, "
                f"received {value!r}"
            )
        return tuple(_coerce(item, item_type, key, source) for item in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (
        type(value) is not hint
    ):
        raise ValueError(
            f"{source}: key `{key}` expected {hint.__name__}, received "
            f"{type(value).__name__} {value!r}"
        )
    return value
