"""Contact sheets (a few frames of a cube side by side) and training curves, as PNG.

Frames are sampled evenly in time, drawn with the sunpy ``sdoaia304`` colormap and one
:class:`astropy.visualization.ImageNormalize` shared by the whole cube (so brightening
shows), rows south to north (``origin="lower"``), and labelled with their time offset in
seconds (plus the UTC time when the cube carries times) or their frame index.
Nothing here touches pyplot's global state: figures are plain
:class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, and the PNG is
written atomically (temporary file, then :func:`os.replace`).

Examples
--------
>>> from jetkeras.catalogue import load_events
>>> from jetkeras.synthetic import render_event
>>> from jetkeras.plotting import contact_sheet
>>> cube = render_event(load_events().iloc[0], frames=8, size=64)
>>> contact_sheet(cube, "jet.png", stretch="sqrt")  # doctest: +SKIP
PosixPath('jet.png')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras._files import atomic_output
from jetkeras.cube import Cube, check_frames

__all__ = ["STRETCHES", "aia304_colormap", "contact_sheet", "contact_sheets", "frame_indices",
           "frame_normaliser", "save_png", "training_curves"]

STRETCHES = ("sqrt", "log", "linear")
_PANEL_INCHES = 1.6  # side of one frame panel
_DPI = 100


def frame_indices(count: int, max_frames: int) -> np.ndarray:
    """Up to ``max_frames`` frame indices spread evenly over ``count`` frames, first and last included."""
    if count <= max_frames:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, max_frames)).astype(int))


def _check_options(path, max_frames, stretch) -> Path:
    if stretch not in STRETCHES:
        raise ValueError(f"contact sheet: `stretch` expects one of {STRETCHES}, received {stretch!r}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
        raise ValueError(f"contact sheet: `max_frames` expects an integer >= 1, received {max_frames!r}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: expected a .png file name, received suffix {path.suffix!r}")
    return path


def _unpack(cube_or_frames, index: int) -> tuple[np.ndarray, list[str] | None, dict]:
    if isinstance(cube_or_frames, Cube):
        return cube_or_frames.frames, cube_or_frames.times, dict(cube_or_frames.meta)
    frames = check_frames(cube_or_frames, f"contact sheet cube {index}", nan_policy="fill")
    return frames, None, {}


def _labels(times: list[str] | None, indices: np.ndarray) -> list[str]:
    if times is None:
        return [f"frame {index}" for index in indices]
    try:
        parsed = [datetime.fromisoformat(str(times[index])) for index in indices]
        start = datetime.fromisoformat(str(times[0]))
    except ValueError:
        return [f"frame {index}" for index in indices]
    return [f"+{(moment - start).total_seconds():.0f} s\n{moment:%H:%M:%S}" for moment in parsed]


def frame_normaliser(frames: np.ndarray, stretch: str):
    """One brightness normalisation for a whole cube (``stretch``: sqrt, log or linear)."""
    from astropy.visualization import ImageNormalize, LinearStretch, LogStretch, SqrtStretch

    # One normalisation per cube: clip the faintest and brightest 0.5 % so a single
    # hot pixel does not flatten the picture.
    low, high = np.percentile(frames, [0.5, 99.5])
    low = max(float(low), 0.0)
    high = max(float(high), low + 1e-3)
    stretch_object = {"sqrt": SqrtStretch(), "log": LogStretch(), "linear": LinearStretch()}[stretch]
    return ImageNormalize(vmin=low, vmax=high, stretch=stretch_object, clip=True)


def aia304_colormap():
    """SunPy's ``sdoaia304`` colour map."""
    import matplotlib
    import sunpy.visualization.colormaps  # noqa: F401  (registers sdoaia304)

    return matplotlib.colormaps["sdoaia304"]


def save_png(figure, path: Path) -> Path:
    """Render ``figure`` to a PNG at ``path`` atomically, without a display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=_DPI)
    return path


def _row_title(meta: dict, given: str | None) -> str:
    if given is not None:
        return given
    if "event_id" in meta:
        label = {1: "jet", 0: "no jet"}.get(meta.get("label"), "")
        return f"{meta['event_id']} {label}".strip()
    return ""


def contact_sheets(
    cubes: Sequence[Any],
    path: str | Path,
    *,
    max_frames: int = 10,
    stretch: str = "sqrt",
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write one PNG with one row of evenly sampled frames per cube.

    Parameters
    ----------
    cubes : sequence of Cube or numpy.ndarray
        Cubes or ``(T, H, W)`` frame arrays in DN; they may differ in T, H and W.
    path : str or Path
        Output ``.png``; parent folders are created; written atomically.
    max_frames : int
        Most frames shown per row (first and last always among them). Defaults to 10.
    stretch : {"sqrt", "log", "linear"}
        Intensity stretch of the shared normalisation. Defaults to ``"sqrt"``.
    titles : sequence of str, optional
        One title per row; defaults to ``<event_id> jet|no jet`` from the cube metadata.
    title : str, optional
        Title of the whole sheet.

    Returns
    -------
    Path
        The PNG written.

    Raises
    ------
    ValueError
        Bad ``stretch``, ``max_frames``, suffix, cube shape, or a titles count mismatch.
    """
    path = _check_options(path, max_frames, stretch)
    cubes = list(cubes)
    if not cubes:
        raise ValueError(f"{path}: expected at least one cube, received none")
    if titles is not None and len(titles) != len(cubes):
        raise ValueError(
            f"{path}: expected one title per cube ({len(cubes)}), received {len(titles)}"
        )
    from matplotlib.figure import Figure

    unpacked = [_unpack(cube, index) for index, cube in enumerate(cubes)]
    columns = max(len(frame_indices(frames.shape[0], max_frames)) for frames, _, _ in unpacked)
    row_inches = _PANEL_INCHES + 0.55  # room for the row title and the time labels
    top_inches = 0.6 if title else 0.25
    # The last row's time labels hang below its panels: keep room for them.
    bottom_inches = 0.35
    figure = Figure(figsize=(columns * _PANEL_INCHES,
                             len(cubes) * row_inches + top_inches + bottom_inches))
    colormap = aia304_colormap()
    grid = figure.add_gridspec(len(cubes), columns, left=0.01, right=0.99,
                               bottom=bottom_inches / figure.get_figheight(),
                               top=1.0 - top_inches / figure.get_figheight(),
                               hspace=0.55, wspace=0.05)
    for row, (frames, times, meta) in enumerate(unpacked):
        indices = frame_indices(frames.shape[0], max_frames)
        normaliser = frame_normaliser(frames, stretch)
        labels = _labels(times, indices)
        for column, (index, label) in enumerate(zip(indices, labels)):
            axes = figure.add_subplot(grid[row, column])
            axes.imshow(frames[index], origin="lower", cmap=colormap, norm=normaliser,
                        interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_xlabel(label, fontsize=7, labelpad=2)
            if column == 0:
                row_title = _row_title(meta, titles[row] if titles is not None else None)
                axes.set_title(row_title, fontsize=8, loc="left", pad=3)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_png(figure, path)


def contact_sheet(
    cube_or_frames,
    path: str | Path,
    *,
    max_frames: int = 10,
    stretch: str = "sqrt",
    title: str | None = None,
) -> Path:
    """Write a PNG of up to ``max_frames`` frames of one cube, side by side.

    Parameters
    ----------
    cube_or_frames : Cube or numpy.ndarray
        A :class:`~jetkeras.cube.Cube` (frames labelled with their time offset in seconds
        and UTC time) or ``(T, H, W)`` frames in DN (labelled with their index).
    path : str or Path
        Output ``.png``; parent folders are created; written atomically.
    max_frames : int
        Most frames shown, evenly spaced in time. Defaults to 10.
    stretch : {"sqrt", "log", "linear"}
        Intensity stretch (astropy SqrtStretch, LogStretch or LinearStretch). Defaults to
        ``"sqrt"``.
    title : str, optional
        Sheet title; defaults to the event id and class when the cube has them.

    Returns
    -------
    Path
        The PNG written.
    """
    return contact_sheets([cube_or_frames], path, max_frames=max_frames, stretch=stretch,
                          title=title)


def training_curves(history: dict[str, Sequence[float]], path: str | Path, *,
                    title: str | None = None) -> Path:
    """Write a PNG of per-epoch training curves, one panel per metric.

    Parameters
    ----------
    history : dict of str to sequence of float
        Keras-style history: ``loss``, ``val_loss``, ``auc``, ``val_auc``, ... one value per
        epoch. ``val_<name>`` is drawn in the panel of ``<name>``; an ``epoch`` key, when
        present, gives the x axis (0-based epochs are shown 1-based).
    path : str or Path
        Output ``.png``; parent folders are created; written atomically.
    title : str, optional
        Title of the figure.

    Returns
    -------
    Path
        The PNG written.

    Raises
    ------
    ValueError
        When ``history`` holds no metric or the suffix is not ``.png``.
    """
    path = _check_options(path, 1, "linear")
    series = {str(key): np.asarray(values, dtype=np.float64).reshape(-1)
              for key, values in history.items() if str(key) != "epoch"}
    series = {key: values for key, values in series.items() if values.size}
    if not series:
        raise ValueError(f"{path}: expected a history with at least one metric, received "
                         f"keys {sorted(map(str, history))}")
    names = []
    for key in series:
        base = key.removeprefix("val_")
        if base not in names:
            names.append(base)
    # The headline metrics first, whatever order the history came in.
    order = ["loss", "auc", "f1"] + list(names)
    names = sorted(names, key=order.index)
    from matplotlib.figure import Figure

    columns = min(len(names), 3)
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(4.0 * columns, 3.0 * rows + (0.4 if title else 0.0)),
                    layout="constrained")
    for panel, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, panel + 1)
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in series:
                values = series[key]
                if "epoch" in history and len(history["epoch"]) == values.size:
                    epochs = np.asarray(history["epoch"], dtype=np.float64) + 1
                else:
                    epochs = np.arange(1, values.size + 1)
                label = "validation" if key.startswith("val_") else "training"
                finite = np.isfinite(values)  # epochs without a validation pass are NaN
                axes.plot(epochs[finite], values[finite], style, marker="o", markersize=3,
                          label=label)
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("epoch", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_png(figure, path)
