"""Evaluation figures: ROC, precision-recall, metrics versus threshold, confusion matrix,
an animated GIF of a sequence, the jet timeline of ``predict --timeline``, the
survey's probability-against-date timeline, and a measured jet's picture (its footprint,
base point and direction over the cutout, beside its time-distance diagram).

Like :mod:`jetkeras.plotting`, nothing here touches pyplot's global state: figures are
plain :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas and written
atomically (temporary file, then :func:`os.replace`). Frames are drawn with the sunpy
``sdoaia304`` colormap, one normalisation per sequence, rows south to north.

All functions return the path written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras._files import atomic_output
from jetkeras.plotting import aia304_colormap, frame_normaliser, save_png, frame_indices

__all__ = [
    "confusion_figure",
    "jet_figure",
    "crossval_figure",
    "precision_recall_figure",
    "roc_figure",
    "sequence_gif",
    "survey_timeline_figure",
    "threshold_figure",
    "threshold_sweep",
    "timeline_figure",
]

_DPI = 100


def _check_predictions(labels, probabilities) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    if labels.shape != probabilities.shape or labels.size == 0:
        raise ValueError(f"figures: expected one probability per label, received "
                         f"{labels.size} labels and {probabilities.size} probabilities")
    return labels, probabilities


def _png(path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: expected a .png file name, received suffix {path.suffix!r}")
    return path


def roc_figure(labels, probabilities, path, *, threshold: float | None = None,
               title: str = "ROC") -> Path:
    """ROC curve with its AUC in the legend; the operating point at ``threshold`` marked.

    Parameters
    ----------
    labels : array of {0, 1}, shape (N,)
    probabilities : array of float in [0, 1], shape (N,)
    path : path-like
        Output ``.png`` (640x480 px).
    threshold : float, optional
        Decision threshold whose (false positive rate, recall) point is drawn.
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_auc_score, roc_curve

    path = _png(path)
    labels, probabilities = _check_predictions(labels, probabilities)
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    axes = figure.add_subplot()
    if labels.min() != labels.max():
        false_positive_rate, true_positive_rate, _ = roc_curve(labels, probabilities)
        auc = roc_auc_score(labels, probabilities)
        axes.plot(false_positive_rate, true_positive_rate, label=f"ROC (AUC = {auc:.3f})")
        if threshold is not None:
            predicted = probabilities >= threshold
            point = (predicted[labels == 0].mean(), predicted[labels == 1].mean())
            axes.plot(*point, "o", color="C3", label=f"threshold {threshold:.3f}")
    else:
        axes.text(0.5, 0.5, "one class only: no ROC", ha="center", transform=axes.transAxes)
    axes.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate (recall)")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_title(title)
    axes.legend(loc="lower right")
    return save_png(figure, path)


def precision_recall_figure(labels, probabilities, path, *, threshold: float | None = None,
                            title: str = "Precision-recall") -> Path:
    """Precision versus recall with the average precision; the threshold's point marked."""
    from matplotlib.figure import Figure
    from sklearn.metrics import average_precision_score, precision_recall_curve

    path = _png(path)
    labels, probabilities = _check_predictions(labels, probabilities)
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    axes = figure.add_subplot()
    if labels.min() != labels.max():
        precision, recall, _ = precision_recall_curve(labels, probabilities)
        average = average_precision_score(labels, probabilities)
        axes.plot(recall, precision, drawstyle="steps-post",
                  label=f"AP = {average:.3f}")
        axes.axhline(labels.mean(), ls=":", color="grey", label="chance (jet fraction)")
        if threshold is not None:
            predicted = probabilities >= threshold
            true_positives = np.sum(predicted & (labels == 1))
            point_precision = true_positives / max(predicted.sum(), 1)
            point_recall = true_positives / max((labels == 1).sum(), 1)
            axes.plot(point_recall, point_precision, "o", color="C3",
                      label=f"threshold {threshold:.3f}")
    else:
        axes.text(0.5, 0.5, "one class only", ha="center", transform=axes.transAxes)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_title(title)
    axes.legend(loc="lower left")
    return save_png(figure, path)


def threshold_sweep(labels, probabilities, thresholds=None) -> dict[str, np.ndarray]:
    """F1 and accuracy at each threshold (the seed's sweep, ``linspace(0, 1, 101)``).

    Returns
    -------
    dict
        ``threshold``, ``f1``, ``accuracy``, ``precision``, ``recall``: float64 ``(K,)``.
    """
    labels, probabilities = _check_predictions(labels, probabilities)
    thresholds = np.linspace(0.0, 1.0, 101) if thresholds is None else np.asarray(thresholds)
    predicted = probabilities[None, :] >= thresholds[:, None]  # (K, N)
    positives = labels[None, :] == 1
    true_positives = np.sum(predicted & positives, axis=1)
    false_positives = np.sum(predicted & ~positives, axis=1)
    false_negatives = np.sum(~predicted & positives, axis=1)
    accuracy = np.mean(predicted == positives, axis=1)
    denominator = 2 * true_positives + false_positives + false_negatives
    f1 = np.divide(2.0 * true_positives, denominator, out=np.zeros(len(thresholds)),
                   where=denominator > 0)
    precision = np.divide(true_positives, true_positives + false_positives,
                          out=np.zeros(len(thresholds)),
                          where=(true_positives + false_positives) > 0)
    recall = np.divide(true_positives, true_positives + false_negatives,
                       out=np.zeros(len(thresholds)),
                       where=(true_positives + false_negatives) > 0)
    return {"threshold": thresholds.astype(np.float64), "f1": f1, "accuracy": accuracy,
            "precision": precision, "recall": recall}


def threshold_figure(labels, probabilities, path, *, threshold: float,
                     title: str = "F1 and accuracy versus threshold") -> Path:
    """The seed's Figure 4: F1 and accuracy against the threshold, the chosen one marked."""
    from matplotlib.figure import Figure

    path = _png(path)
    sweep = threshold_sweep(labels, probabilities)
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(sweep["threshold"], sweep["f1"], label="F1")
    axes.plot(sweep["threshold"], sweep["accuracy"], label="accuracy")
    axes.plot(sweep["threshold"], sweep["recall"], ":", label="recall")
    axes.axvline(threshold, color="C3", ls="--", label=f"chosen threshold {threshold:.3f}")
    axes.set_xlabel("threshold on P(jet)")
    axes.set_ylabel("score")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.legend(loc="lower center")
    return save_png(figure, path)


def confusion_figure(confusion: Sequence[Sequence[int]], path, *,
                     title: str = "Confusion matrix") -> Path:
    """A 2x2 confusion matrix ``[[tn, fp], [fn, tp]]`` with counts and row fractions."""
    from matplotlib.figure import Figure

    path = _png(path)
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.shape != (2, 2):
        raise ValueError(f"{path}: expected a 2x2 confusion matrix, received shape "
                         f"{matrix.shape}")
    rows = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, rows, out=np.zeros((2, 2)), where=rows > 0)
    figure = Figure(figsize=(4.8, 4.0), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for row in range(2):
        for column in range(2):
            colour = "white" if fractions[row, column] > 0.6 else "black"
            axes.text(column, row, f"{matrix[row, column]}\n({fractions[row, column]:.0%})",
                      ha="center", va="center", color=colour)
    axes.set_xticks([0, 1], ["no jet", "jet"])
    axes.set_yticks([0, 1], ["no jet", "jet"])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    return save_png(figure, path)


def crossval_figure(rows: Sequence[dict[str, Any]], path, *,
                    metrics: Sequence[tuple[str, str]] = (("roc_auc", "ROC AUC"), ("f1", "F1"),
                                                          ("recall", "recall")),
                    title: str = "Cross-validation") -> Path:
    """Per-fold bars of test metrics, each metric's mean over the folds as a dashed line.

    Parameters
    ----------
    rows : sequence of dict
        One per fold (``folds.csv`` of :mod:`jetkeras.crossval`): ``fold`` and each
        metric's value in [0, 1] (None or NaN: no bar).
    path : path-like
        Output ``.png``; written atomically.
    metrics : sequence of (key, label)
        Which metrics to draw, and their legend labels. Defaults to ROC AUC, F1, recall.
    title : str
        Title of the figure.
    """
    from matplotlib.figure import Figure

    path = _png(path)
    if not rows:
        raise ValueError(f"{path}: expected at least one fold, received none")
    folds = [int(row["fold"]) for row in rows]
    positions = np.arange(len(rows), dtype=np.float64)
    width = 0.8 / len(metrics)
    figure = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2.5), 4.2), layout="constrained")
    axes = figure.add_subplot()
    for index, (key, label) in enumerate(metrics):
        values = np.array([np.nan if row.get(key) is None else float(row[key])
                           for row in rows])
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if finite.size else np.nan
        spread = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        colour = f"C{index}"
        offset = (index - (len(metrics) - 1) / 2) * width
        axes.bar(positions + offset, np.nan_to_num(values), width, color=colour,
                 label=f"{label} {mean:.3f} ± {spread:.3f}")
        if np.isfinite(mean):
            axes.axhline(mean, color=colour, ls="--", lw=1)
    axes.set_xticks(positions, [f"fold {fold}" for fold in folds])
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("test score (dashed: mean over folds)")
    axes.set_title(title)
    figure.legend(loc="outside lower center", ncols=len(metrics), fontsize=8,
                  title="mean ± std over folds", title_fontsize=8)
    return save_png(figure, path)


def sequence_gif(frames: np.ndarray, path, *, title: str = "", times=None,
                 fps: float = 4.0, size_px: int = 320) -> Path:
    """An animated GIF of one sequence in DN, ``sdoaia304`` colours, one frame per frame.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(T, H, W)`` in DN.
    path : path-like
        Output ``.gif``; written atomically.
    title : str
        Drawn above every frame (e.g. the event id, truth and probability).
    times : sequence of str, optional
        ISO UTC time of each frame, shown under the title.
    fps : float
        Frames per second of the animation. Defaults to 4.
    size_px : int
        Width and height of the GIF in pixels. Defaults to 320.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path}: expected a .gif file name, received suffix {path.suffix!r}")
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ValueError(f"{path}: expected frames of shape (n_frames, height, width), "
                         f"received shape {frames.shape}")
    inches = size_px / _DPI
    figure = Figure(figsize=(inches, inches), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 0.86))
    axes.set_axis_off()
    image = axes.imshow(frames[0], origin="lower", cmap=aia304_colormap(),
                        norm=frame_normaliser(frames, "sqrt"), interpolation="nearest")
    caption = figure.text(0.5, 0.965, "", ha="center", va="top", fontsize=7)

    def draw(index):
        image.set_data(frames[index])
        when = f"  {times[index]}" if times is not None else ""
        caption.set_text(f"{title}\nframe {index + 1}/{frames.shape[0]}{when}")
        return image, caption

    animation = FuncAnimation(figure, draw, frames=frames.shape[0], blit=False)
    with atomic_output(path, suffix=".gif") as temporary:
        animation.save(temporary, writer=PillowWriter(fps=fps), dpi=_DPI)
    return path


def timeline_figure(frames: np.ndarray, offsets_s: np.ndarray, rows: list[dict[str, Any]],
                    path, *, frames_per_window: int, title: str = "",
                    strip_frames: int = 8) -> Path:
    """Probability of a jet per window start over a strip of the sequence's frames.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(T, H, W)`` in DN, the whole sequence.
    offsets_s : numpy.ndarray
        ``(T,)`` seconds of each frame from the first (the model's time grid).
    rows : list of dict
        ``start_s``, ``probability``, ``threshold`` per window (from
        :func:`jetkeras.predict.predict_timeline`).
    frames_per_window : int
        The model's window, frames (the probability is drawn at the window's centre).
    strip_frames : int
        Frames shown in the strip, evenly spaced. Defaults to 8.
    """
    from matplotlib.figure import Figure

    path = _png(path)
    offsets_s = np.asarray(offsets_s, dtype=np.float64)
    indices = frame_indices(frames.shape[0], strip_frames)
    figure = Figure(figsize=(1.3 * len(indices) + 0.6, 5.0), layout="constrained")
    grid = figure.add_gridspec(2, len(indices), height_ratios=(2.2, 1.0))
    axes = figure.add_subplot(grid[0, :])
    # Each row's window starts at a grid frame: find it from the row's start time.
    starts = np.searchsorted(offsets_s, [row["start_s"] for row in rows])
    centres = offsets_s[starts] + (offsets_s[starts + frames_per_window - 1]
                                   - offsets_s[starts]) / 2.0
    probabilities = np.array([row["probability"] for row in rows])
    axes.plot(centres, probabilities, "o-", markersize=3, label="P(jet), window centre")
    axes.axhline(rows[0]["threshold"], color="C3", ls="--",
                 label=f"threshold {rows[0]['threshold']:.3f}")
    axes.set_xlim(offsets_s[0], max(offsets_s[-1], offsets_s[0] + 1.0))
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("time from the first frame (s)")
    axes.set_ylabel("probability of a jet")
    axes.legend(fontsize=7, loc="upper right")
    if title:
        axes.set_title(title, fontsize=9)
    colormap, normaliser = aia304_colormap(), frame_normaliser(frames, "sqrt")
    for column, index in enumerate(indices):
        panel = figure.add_subplot(grid[1, column])
        panel.imshow(frames[index], origin="lower", cmap=colormap, norm=normaliser,
                     interpolation="nearest")
        panel.set_xticks([])
        panel.set_yticks([])
        panel.set_xlabel(f"+{offsets_s[index]:.0f} s", fontsize=7)
    return save_png(figure, path)


def survey_timeline_figure(dates: Sequence[str], probabilities: Sequence[float], path, *,
                           threshold: float, labels: Sequence[str] | None = None,
                           missing_dates: Sequence[str] = (), title: str = "") -> Path:
    """Probability of a jet against the event's start date, one point per event.

    Parameters
    ----------
    dates : sequence of str
        ISO UTC start time of each predicted event.
    probabilities : sequence of float
        Probability of a jet of each event, in [0, 1].
    path : path-like
        Output ``.png``; written atomically.
    threshold : float
        Decision threshold, drawn as a dashed line; points above it are filled.
    labels : sequence of str, optional
        Short names written beside the points (the top candidates, say); "" for none.
    missing_dates : sequence of str
        Start times of events without a cube (download failed), drawn as ticks at the
        bottom so gaps in the survey show.
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    path = _png(path)
    when = np.array([np.datetime64(str(d)[:19]) for d in dates], dtype="datetime64[s]")
    probability = np.asarray(probabilities, dtype=np.float64)
    if when.shape != probability.shape:
        raise ValueError(f"{path}: expected one probability per date, received "
                         f"{probability.shape[0]} for {when.shape[0]}")
    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    axes = figure.add_subplot()
    above = probability >= threshold
    times = when.astype("O")
    axes.scatter(times[~above], probability[~above], s=14, facecolors="none",
                 edgecolors="C0", label=f"no jet: below threshold ({int((~above).sum())})")
    axes.scatter(times[above], probability[above], s=18, color="C3",
                 label=f"jet: at or above threshold ({int(above.sum())})")
    if len(missing_dates):
        missing = np.array([np.datetime64(str(d)[:19]) for d in missing_dates],
                           dtype="datetime64[s]").astype("O")
        axes.plot(missing, np.full(len(missing), -0.04), "|", color="0.5", markersize=8,
                  label=f"no cube ({len(missing)})")
    axes.axhline(threshold, color="C3", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    for time, value, label in zip(times, probability, labels or []):
        if label:
            axes.annotate(label, (time, value), textcoords="offset points", xytext=(3, 3),
                          fontsize=6)
    axes.set_ylim(-0.08, 1.05)
    axes.set_ylabel("probability of a jet")
    axes.set_xlabel("event start (UTC)")
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        axes.set_title(title, fontsize=9)
    return save_png(figure, path)


def jet_figure(frames: np.ndarray, measurement, evidence, path, *, seconds_per_frame: float,
               pixel_scale_arcsec: float, km_per_arcsec: float, title: str = "") -> Path:
    """A measured jet at a glance: where, which way, how far and how fast.

    Left, the frame where the jet is longest, with its footprint (contour), base point
    (cross) and direction (arrow as long as the spire). Right, the time-distance diagram
    along the spire (excess brightness in noise levels), the front found in each frame
    (dots), and the line fitted while it grows, labelled with its speed.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(T, H, W)`` in DN: the window as the model saw it.
    measurement : jetkeras.localise.Measurement
        In pixels and frames of ``frames``.
    evidence : jetkeras.localise.Evidence
        The time-distance diagram, front and footprint behind ``measurement``.
    seconds_per_frame, pixel_scale_arcsec, km_per_arcsec : float
        The window's time step (s), pixel scale (arcsec) and the Sun's km per arcsec.
    title : str
        Drawn above both panels.
    """
    import math

    from matplotlib.figure import Figure

    path = _png(path)
    count = frames.shape[0]
    timed = math.isfinite(measurement.peak_frame) and math.isfinite(measurement.onset_frame)
    # A front that never left the base has no timing: show the brightest frame.
    peak = (int(np.clip(round(measurement.peak_frame), 0, count - 1)) if timed
            else int(np.argmax(frames.reshape(count, -1).max(axis=1))))
    figure = Figure(figsize=(9.0, 4.2), layout="constrained")
    image_axes, diagram_axes = figure.subplots(1, 2, width_ratios=(1.0, 1.25))
    image_axes.imshow(frames[peak], origin="lower", cmap=aia304_colormap(),
                      norm=frame_normaliser(frames, "sqrt"), interpolation="nearest")
    if evidence.footprint.any():
        image_axes.contour(evidence.footprint.astype(float), levels=[0.5], colors="cyan",
                           linewidths=0.8)
    angle = math.radians(measurement.direction_deg)
    reach = max(measurement.length_px, 10.0)
    image_axes.plot(measurement.base_col, measurement.base_row, "x", color="white",
                    markersize=9, markeredgewidth=2)
    image_axes.annotate("", xy=(measurement.base_col + reach * math.cos(angle),
                                measurement.base_row + reach * math.sin(angle)),
                        xytext=(measurement.base_col, measurement.base_row),
                        arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.5})
    image_axes.set_xlim(-0.5, frames.shape[2] - 0.5)
    image_axes.set_ylim(-0.5, frames.shape[1] - 0.5)
    image_axes.set_xlabel("column (px, as scored)")
    image_axes.set_ylabel("row (px, as scored)")
    image_axes.set_title(f"frame {peak} (longest); base, direction "
                         f"{measurement.direction_deg:.0f} deg", fontsize=8)

    times = np.arange(count) * seconds_per_frame
    distances = evidence.distances * pixel_scale_arcsec
    shown = distances <= max(2.0 * measurement.length_px * pixel_scale_arcsec, 30.0)
    diagram_axes.imshow(evidence.diagram[:, shown].T, origin="lower", aspect="auto",
                        cmap="magma", vmin=0.0, vmax=max(float(np.percentile(
                            evidence.diagram[:, shown], 99)), 3.0),
                        extent=(times[0] - seconds_per_frame / 2,
                                times[-1] + seconds_per_frame / 2,
                                distances[shown][0], distances[shown][-1]))
    diagram_axes.plot(times, evidence.front * pixel_scale_arcsec, "o", color="cyan",
                      markersize=3, label="front")
    speed_arcsec_s = measurement.speed_px_per_frame * pixel_scale_arcsec / seconds_per_frame
    if speed_arcsec_s > 0 and timed:
        fitted = np.linspace(measurement.onset_frame, measurement.peak_frame, 20)
        diagram_axes.plot(fitted * seconds_per_frame,
                          (fitted - measurement.onset_frame) * measurement.speed_px_per_frame
                          * pixel_scale_arcsec, "-", color="white",
                          label=f"{speed_arcsec_s * km_per_arcsec:.0f} km/s")
    diagram_axes.set_xlim(times[0] - seconds_per_frame / 2, times[-1] + seconds_per_frame / 2)
    diagram_axes.set_ylim(distances[shown][0], distances[shown][-1])
    diagram_axes.set_xlabel("time from the window's first frame (s)")
    diagram_axes.set_ylabel("distance from the base along the spire (arcsec)")
    onset = (f"onset {measurement.onset_frame * seconds_per_frame:+.0f} s" if timed
             else "no front left the base")
    diagram_axes.set_title(f"length {measurement.length_px * pixel_scale_arcsec:.0f} arcsec, "
                           f"width {measurement.width_px * pixel_scale_arcsec:.0f} arcsec, "
                           f"{onset}", fontsize=8)
    diagram_axes.legend(fontsize=7, loc="upper left")
    if title:
        figure.suptitle(title, fontsize=9)
    return save_png(figure, path)
