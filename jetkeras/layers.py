"""The few custom Keras pieces jetkeras needs, all serialisable under ``jetkeras>``.

* :class:`FrameDistributed` applies one layer (the per-frame CNN) to every frame of a
  sequence by folding the frame axis into the batch axis. ``keras.layers.TimeDistributed``
  unrolls a Python loop over a static time axis in Keras 3 (30 traced copies of the CNN,
  convolutions at batch B instead of B*T, BatchNorm statistics updated T times per step;
  pitfalls 6.3); folding runs the CNN once at batch B*T.
* :class:`MotionChannels` standardises each sequence on its own and adds
  running-difference (``x[t] - x[t-1]``) and base-difference (``x[t] - x[0]``) channels
  inside the model, so every runtime (Keras, SavedModel, LiteRT) still takes plain
  frames. A jet is *motion* of a collimated feature; the differences hand that to the
  first convolution instead of asking it to be learnt from one frame at a time, and the
  per-sequence standardisation makes the score blind to exposure and to the DN scale.
* :class:`TemporalProjection` turns those channels into per-pixel maps over the whole
  window -- the largest rise and fall, the flicker, and *when* each pixel brightens and
  fades -- so that one 2-D CNN sees a jet's coherent outward growth in one image
  (the default ``projection`` model).
* :class:`DihedralViews` and :class:`ViewMean` make the score, at inference, the mean
  of the network's logits over the turned and mirrored views of a cutout (test-time
  augmentation inside the graph, so every runtime agrees).
* :class:`LogitPrecision`, :class:`LogitRecall` and :class:`LogitF1Score` are binary
  metrics that take the model's *logits* and threshold the probability at 0.5
  (``sigmoid(logit) > 0.5``, i.e. ``logit > 0``). Keras' ``Precision``/``Recall`` refuse
  thresholds outside [0, 1] and ``F1Score`` refuses a threshold <= 0, so they cannot be
  pointed at logits directly.

Everything is registered with ``keras.saving.register_keras_serializable(package=
"jetkeras")`` so ``keras.saving.load_model(path, safe_mode=True)`` rebuilds a model
without ``custom_objects`` once :mod:`jetkeras.layers` has been imported.
"""

from __future__ import annotations

import copy

import keras
from keras import ops

from jetkeras.config import VIEW_COUNTS

__all__ = ["DihedralViews", "FrameDistributed", "LogitF1Score", "LogitPrecision",
           "LogitRecall", "MotionChannels", "TemporalProjection", "ViewMean"]

MOTION_CHANNELS = ("frame", "running_difference", "base_difference")


@keras.saving.register_keras_serializable(package="jetkeras")
class FrameDistributed(keras.layers.Wrapper):
    """Apply ``layer`` to every frame: ``(B, T, *frame) -> (B, T, *layer_output)``.

    The frame axis is folded into the batch axis, the wrapped layer runs once on
    ``(B*T, *frame)``, and the result is unfolded. Outputs equal those of
    ``keras.layers.TimeDistributed(layer)`` with the same weights in inference mode.
    In training mode BatchNorm inside ``layer`` sees all B*T frames as one batch
    (one statistics update per step, not T).

    Args:
        layer: a built-or-buildable Keras layer or model taking one frame,
            e.g. ``(H, W, C)`` float32, and returning a tensor per frame.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: tensor of shape ``(B, T, *frame_shape)``; T must be static.
        training: Python bool, passed to ``layer``.

    Returns:
        tensor of shape ``(B, T, *layer_output_shape)``.
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = False

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Wrapper.from_config and Keras deserialisation pop keys from the (nested) dicts
        # they are given; work on a deep copy so the caller's config stays intact.
        return super().from_config(copy.deepcopy(config), custom_objects=custom_objects)

    def _check_input_shape(self, input_shape):
        if len(input_shape) < 3 or input_shape[1] is None:
            raise ValueError(
                "`FrameDistributed` expected inputs of shape (batch, frames, ...) with a "
                f"static number of frames. Received: input_shape={tuple(input_shape)}"
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        frame_shape = (None,) + tuple(input_shape[2:])
        if not self.layer.built:
            self.layer.build(frame_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check_input_shape(input_shape)
        frame_output = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(frame_output[1:])

    def call(self, inputs, training=None):
        frames = inputs.shape[1]
        frame_shape = tuple(inputs.shape[2:])
        # (B, T, H, W, C) -> (B*T, H, W, C): one batched pass instead of T.
        folded = ops.reshape(inputs, (-1,) + frame_shape)
        outputs = self.layer(folded, training=training)
        # (B*T, *F) -> (B, T, *F); -1 keeps the batch size dynamic.
        return ops.reshape(outputs, (-1, frames) + tuple(outputs.shape[1:]))


@keras.saving.register_keras_serializable(package="jetkeras")
class MotionChannels(keras.layers.Layer):
    """Per-sequence standardisation plus difference channels: ``(B, T, H, W, 1) -> (B, T, H, W, C)``.

    Args:
        channels: names out of ``("frame", "running_difference", "base_difference")``, in
            output order. ``running_difference`` is ``x[t] - x[t-1]`` (zero at t = 0),
            ``base_difference`` is ``x[t] - x[0]``.
        standardise: subtract each sequence's mean and divide by its standard deviation
            (over T, H and W) first. A real AIA cutout's level depends on exposure,
            degradation and where it sits on the disk; the jet does not.
        epsilon: added to the standard deviation (inputs are already dimensionless).
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: float tensor ``(B, T, H, W, 1)``; T must be static.

    Returns:
        float tensor ``(B, T, H, W, len(channels))``.
    """

    def __init__(self, channels=MOTION_CHANNELS, standardise=True, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        channels = tuple(channels)
        unknown = [name for name in channels if name not in MOTION_CHANNELS]
        if not channels or unknown:
            raise ValueError(
                f"`MotionChannels` expected channel names out of {list(MOTION_CHANNELS)}. "
                f"Received: channels={list(channels)}"
            )
        self.channels = channels
        self.standardise = bool(standardise)
        self.epsilon = float(epsilon)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (len(self.channels),)

    def call(self, inputs):
        x = inputs
        if self.standardise:
            mean = ops.mean(x, axis=(1, 2, 3, 4), keepdims=True)
            variance = ops.mean(ops.square(x - mean), axis=(1, 2, 3, 4), keepdims=True)
            x = (x - mean) / (ops.sqrt(variance) + self.epsilon)
        outputs = []
        for name in self.channels:
            if name == "frame":
                outputs.append(x)
            elif name == "running_difference":
                difference = x[:, 1:] - x[:, :-1]
                outputs.append(ops.concatenate([ops.zeros_like(x[:, :1]), difference], axis=1))
            else:
                outputs.append(x - x[:, :1])
        return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)

    def get_config(self):
        return {**super().get_config(), "channels": list(self.channels),
                "standardise": self.standardise, "epsilon": self.epsilon}


class _FromLogits:
    """Mixin: feed ``sigmoid(logit)`` to a probability metric's ``update_state``."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        probability = ops.sigmoid(ops.cast(y_pred, "float32"))
        return super().update_state(y_true, probability, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="jetkeras")
class LogitPrecision(_FromLogits, keras.metrics.Precision):
    """Precision of ``sigmoid(logit) > 0.5`` against 0/1 labels.

    Same arguments as ``keras.metrics.Precision`` (default ``name="precision"``); the
    threshold applies to the probability, the metric receives logits of shape (B, 1).
    """

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision",
                 dtype=None):
        super().__init__(thresholds=thresholds, top_k=top_k, class_id=class_id,
                         name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="jetkeras")
class LogitRecall(_FromLogits, keras.metrics.Recall):
    """Recall of ``sigmoid(logit) > 0.5`` against 0/1 labels (see :class:`LogitPrecision`)."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall",
                 dtype=None):
        super().__init__(thresholds=thresholds, top_k=top_k, class_id=class_id,
                         name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="jetkeras")
class LogitF1Score(keras.metrics.Metric):
    """Binary F1 of ``logit > logit(threshold)`` accumulated over batches.

    F1 = 2 TP / (2 TP + FP + FN), 0 when there is no positive at all (neither
    predicted nor true), like ``sklearn.metrics.f1_score(zero_division=0)``.

    Args:
        threshold: probability threshold in (0, 1). Defaults to `0.5`.
        name: metric name. Defaults to `"f1"`.
        dtype: metric dtype. Defaults to `None` (float32).

    Call arguments:
        y_true: labels 0/1 of shape (B, 1) or (B,).
        y_pred: logits of the same shape (any float dtype).
        sample_weight: optional weights of shape (B,) or (B, 1).
    """

    def __init__(self, threshold=0.5, name="f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        threshold = float(threshold)
        if not 0.0 < threshold < 1.0:
            raise ValueError(
                "`LogitF1Score` expected a probability threshold in (0, 1). "
                f"Received: threshold={threshold}"
            )
        self.threshold = threshold
        self.true_positives = self.add_variable((), initializer="zeros",
                                                name="true_positives")
        self.false_positives = self.add_variable((), initializer="zeros",
                                                 name="false_positives")
        self.false_negatives = self.add_variable((), initializer="zeros",
                                                 name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        probability = ops.sigmoid(ops.reshape(ops.cast(y_pred, "float32"), (-1,)))
        predicted = ops.cast(ops.greater(probability, self.threshold), "float32")
        if sample_weight is None:
            weight = ops.ones_like(y_true)
        else:
            weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        self.true_positives.assign_add(ops.sum(weight * predicted * y_true))
        self.false_positives.assign_add(ops.sum(weight * predicted * (1.0 - y_true)))
        self.false_negatives.assign_add(ops.sum(weight * (1.0 - predicted) * y_true))

    def result(self):
        denominator = (2.0 * self.true_positives + self.false_positives
                       + self.false_negatives)
        return ops.where(denominator > 0,
                         2.0 * self.true_positives / ops.maximum(denominator, 1e-12),
                         0.0)

    def reset_state(self):
        for variable in (self.true_positives, self.false_positives, self.false_negatives):
            variable.assign(0.0)

    def get_config(self):
        return {"threshold": self.threshold, "name": self.name, "dtype": self.dtype}


# The maps TemporalProjection returns, in channel order.
PROJECTION_CHANNELS = ("mean_frame", "max_base_difference", "min_base_difference",
                       "max_running_difference", "min_running_difference",
                       "rms_running_difference", "brightening_time", "fading_time")


@keras.saving.register_keras_serializable(package="jetkeras")
class TemporalProjection(keras.layers.Layer):
    """Per-pixel summaries over the frame axis: ``(B, T, H, W, 3) -> (B, H, W, 8)``.

    A time-distance picture of the whole window in one image: what a solar physicist
    reads off a running-difference movie, as maps a 2-D CNN can take in at once. The
    channels (``PROJECTION_CHANNELS``) are the mean frame; the largest rise and fall of
    each pixel over the window (max and min of the base difference) and between frames
    (of the running difference); the RMS running difference (how much it flickers); and
    two **timing maps** in [0, 1] of the window: *when* each pixel brightens (the centre
    of mass over frames of its positive running difference) and when it fades (of the
    negative part). A jet that grows outward brightens later the higher up its spire,
    so its brightening-time map rises smoothly along it; the same spire with its frames
    out of order gives a speckled map, and a frozen one gives no rise at all.

    Args:
        epsilon: keeps the timing maps finite where a pixel never changes (they go to
            0 there, "no brightening"), and the RMS differentiable at 0.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: float tensor ``(B, T, H, W, 3)``, the output of :class:`MotionChannels`
            (frame, running difference, base difference); T must be static.

    Returns:
        float tensor ``(B, H, W, len(PROJECTION_CHANNELS))``.
    """

    def __init__(self, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[3], len(PROJECTION_CHANNELS))

    def call(self, inputs):
        frames = inputs.shape[1]
        if frames is None or inputs.shape[-1] != len(MOTION_CHANNELS):
            raise ValueError(
                f"`TemporalProjection` expected inputs (B, T, H, W, {len(MOTION_CHANNELS)}) "
                f"with a static T (MotionChannels' output). Received: shape={inputs.shape}"
            )
        frame, running, base = inputs[..., 0], inputs[..., 1], inputs[..., 2]
        # Frame times as fractions of the window, a constant (LiteRT takes it as is).
        fraction = [index / max(frames - 1, 1) for index in range(frames)]
        time = ops.reshape(ops.convert_to_tensor(fraction, dtype=inputs.dtype),
                           (1, frames, 1, 1))

        def centre_of_mass_time(weight):
            return ops.sum(weight * time, axis=1) / (ops.sum(weight, axis=1) + self.epsilon)

        maps = [
            ops.mean(frame, axis=1),
            ops.max(base, axis=1), ops.min(base, axis=1),
            ops.max(running, axis=1), ops.min(running, axis=1),
            ops.sqrt(ops.mean(ops.square(running), axis=1) + self.epsilon),
            centre_of_mass_time(ops.relu(running)), centre_of_mass_time(ops.relu(-running)),
        ]
        return ops.stack(maps, axis=-1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}



def _dihedral(images, views):
    """The first ``views`` symmetries of the square applied to ``(..., H, W, C)`` images.

    In order: identity, half turn (the pair of 2 views), quarter and three-quarter turns
    (4), then each of the four mirrored left to right (8).
    """
    axes = list(range(len(images.shape)))
    axes[-3], axes[-2] = axes[-2], axes[-3]

    def quarter_turn(x):  # rot90 counter-clockwise: transpose, then flip the rows
        return ops.flip(ops.transpose(x, axes), axis=-3)

    turns = [images]
    for _ in range(3):
        turns.append(quarter_turn(turns[-1]))
    ordered = [turns[0], turns[2], turns[1], turns[3]]
    ordered += [ops.flip(turn, axis=-2) for turn in ordered]
    return ordered[:views]


class _InferenceViews(keras.layers.Layer):
    """What :class:`DihedralViews` and :class:`ViewMean` share: ``views``, checked and
    serialised; the batch axis changes size, so the static shape is the input's."""

    def __init__(self, views=8, **kwargs):
        super().__init__(**kwargs)
        if views not in VIEW_COUNTS:
            raise ValueError(f"`{type(self).__name__}` expected `views` in "
                             f"{list(VIEW_COUNTS)}, received {views!r}")
        self.views = int(views)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "views": self.views}


@keras.saving.register_keras_serializable(package="jetkeras")
class DihedralViews(_InferenceViews):
    """At inference, stack ``views`` turned and mirrored copies of the images in the batch.

    ``(B, ..., H, W, C) -> (views * B, ..., H, W, C)``, view-major; in training the input
    passes unchanged (the data pipeline already draws one random turn and flip per
    sequence). With :class:`ViewMean` after the logit, the network's score is the mean
    of its logits over the views: test-time augmentation inside the graph, so every
    runtime (Keras, SavedModel, LiteRT) gives the same score, and the decision threshold
    chosen on validation is chosen for that score. A jet's probability then no longer
    depends on how the cutout is turned (real cutouts come in any orientation), and the
    mean of views is steadier than one view on pictures unlike the training renders.

    In the ``projection`` model the views are taken of the timing maps, after
    :class:`TemporalProjection`: the front end works pixel by pixel (plus one
    whole-sequence standardisation), so turning the maps equals turning the frames, and
    only the (cheap) 2-D CNN runs ``views`` times.

    Args:
        views: 1, 2, 4 or 8 (``VIEW_COUNTS``; 8 is the whole symmetry group of the square).
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: float tensor ``(B, ..., H, W, C)`` with H == W.
        training: bool; views are taken only when it is false or None (inference).
    """

    def call(self, inputs, training=None):
        if training or self.views == 1:
            return inputs
        return ops.concatenate(_dihedral(inputs, self.views), axis=0)


@keras.saving.register_keras_serializable(package="jetkeras")
class ViewMean(_InferenceViews):
    """At inference, average the ``views`` rows that :class:`DihedralViews` made of each
    sample: ``(views * B, F) -> (B, F)``; in training the input passes unchanged.

    Args:
        views: as the :class:`DihedralViews` upstream.
        **kwargs: base ``Layer`` arguments.
    """

    def call(self, inputs, training=None):
        if training or self.views == 1:
            return inputs
        return ops.mean(ops.reshape(inputs, (self.views, -1, inputs.shape[-1])), axis=0)
