"""Realism benchmark: synthetic renders set beside the real 304 A jet sequences.

Renders ``--renders`` catalogue events (half jets, half negatives, drawn with ``--seed``
from :func:`jetkeras.catalogue.load_events`) at the seed geometry, 30 frames of 166x166,
and reads the real Solar Jet Hunter sequences of ``--realjets`` as they are (uint16
``frames`` of shape (T, 166, 166), T = 15 to 90, DN-like). The real folder is for
validation only: here its frames are the "real" side of two-sample comparisons that
measure how realistic the renders look; nothing is trained on them except the
real-vs-render classifier of section 6, whose only job is to measure that gap.

What it measures, real against renders (the ratio column is renders / real):

1. intensity: pixels divided by their frame's median; the 1, 50 and 99 % quantiles and
   the Kolmogorov-Smirnov statistic and Wasserstein distance of the pooled samples;
2. spatial power: the radially averaged power spectrum of each frame (Hann window,
   normalised to unit total power), its log-log slope over 0.04-0.25 cycles/px and the
   mean absolute log10 difference of the two mean curves;
3. time: std of frame-to-frame differences over std of the frames, excess kurtosis of
   the differences, lag-1 temporal autocorrelation of the pixels;
4. noise: a robust high-pass estimate (MAD of the 5-point Laplacian) binned by the local
   level and fitted as ``sigma = a DN^b``; the same estimator read on each side's noise
   model (the real folder's README: ``0.1 DN^0.92``, lag-1 correlation 0.38; the
   renderer's Poisson noise at ``PHOTONS_PER_DN`` plus read noise) on flat 50 DN frames;
5. the moving structure of jet sequences: the largest connected region of
   ``|frame_t - frame_0| > 5`` robust sigmas at the frame where it is largest, its major
   and minor axis lengths from second moments (pixels). The sigma is local (the frame's
   quadrants) so that a bright evolving disk beside near-empty sky does not pass as one
   structure (16 px blocks were tried and missed wide jets: they set their own sigma);
6. a classifier two-sample test: scale-free features of one random 64x64 crop per frame
   (intensity quantiles, power-spectrum bands, gradient statistics) fed to scikit-learn's
   ``HistGradientBoostingClassifier``; the held-out ROC AUC over 5 folds grouped by scene
   (real ``group``) or catalogue group (renders) is the realism gap, 0.5 meaning
   indistinguishable.

It prints one markdown table and writes ``realism.json``, ``side_by_side.png`` (4 real
sequences and 4 rendered jets, 6 frames each, asinh stretch), ``structures.png`` (the
regions measured in 5), ``histograms.png``, ``power_spectra.png`` and ``noise.png`` into
``--out``.

Caveats: the real pixels are GIF renders turned back into a DN-like scale (display
quantisation, per-frame gain divided out, varied fields of view area-averaged to
166x166), so pixel lengths are not arcsec on the real side and their noise is not photon
noise. Real cadence is 24 or 36 s; renders use 24 s.

Examples::

    python bench/realism.py                                   # 60 renders, real folder
    python bench/realism.py --renders 20 --out /tmp/realism   # a quicker look
    python bench/realism.py --realjets ../shared/data/realjets --seed 1
"""

from __future__ import annotations

import os

# One thread each for BLAS and OpenMP (scikit-learn's boosting): on a shared, loaded
# machine spinning worker threads cost more than they give. Set before NumPy is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from jetkeras._cli import add_seed_flag, run_main

__all__ = [
    "axis_lengths",
    "fit_power_law",
    "frame_features",
    "intensity_sample",
    "intensity_summary",
    "laplacian_residuals",
    "local_spread",
    "load_real_sequences",
    "main",
    "moving_structure",
    "noise_curve",
    "power_law_slope",
    "radial_power_spectrum",
    "render_sequences",
    "run_benchmark",
    "temporal_statistics",
    "two_sample_auc",
]

# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REALJETS = REPO_ROOT.parent / "shared" / "data" / "realjets"
DEFAULT_OUT = REPO_ROOT / "bench" / "realism_out"
RENDER_FRAMES = 30  # the seed's window
RENDER_SIZE = 166  # the seed's pooled frame size
QUANTILES = (0.01, 0.50, 0.99)  # of intensity / frame median
PIXELS_PER_FRAME = 1000  # random pixels per frame pooled for the intensity distances
SLOPE_RANGE = (0.04, 0.25)  # cycles/px: wavelengths of 4-25 px, above noise, below the frame
STRUCTURE_SIGMAS = 5.0  # base-difference threshold, robust local sigmas
STRUCTURE_BLOCK_PX = 83  # blocks of the local robust spread: quadrants of 166 px frames
NOISE_LEVEL_DN = 50.0  # level at which noise is compared (the data's mean)
NOISE_EDGES_DN = np.geomspace(5.0, 2000.0, 17)  # level bins of the noise curve
NOISE_MIN_COUNT = 500  # samples needed in a level bin
README_NOISE = (0.1, 0.92)  # real folder's noise model: sigma = 0.1 DN^0.92
README_NOISE_TAP = 0.215  # [a, 1, a] smoothing with lag-1 correlation 0.38
CROP = 64  # pixels per side of the classifier's crops
FOLDS = 5
SIDE_ROWS = 4  # sequences per side in side_by_side.png
SIDE_FRAMES = 6  # frames per row
STRETCH_A = 0.05  # asinh stretch softening (astropy's AsinhStretch a)
_MAD_TO_SIGMA = 1.4826
_LAPLACIAN_GAIN = np.sqrt(20.0)  # std of the 5-point Laplacian of unit white noise

# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------


def load_real_sequences(folder):
    """The real sequences, whole: :func:`jetkeras.realcheck.load_sequences`."""
    from jetkeras.realcheck import load_sequences

    return load_sequences(folder)


def render_sequences(count, *, seed=0, frames=RENDER_FRAMES, size=RENDER_SIZE):
    """Render ``count`` catalogue events, ``count // 2`` jets then the rest negatives.

    Parameters
    ----------
    count : int
        Number of renders (>= 2).
    seed : int
        Seed of the draw from :func:`jetkeras.catalogue.load_events` and of the renders.
    frames, size : int
        Geometry of each render: ``frames`` frames of ``size x size`` pixels.

    Returns
    -------
    list of dict
        ``frames`` float32 (frames, size, size) DN, ``name`` (event id), ``group``
        (``render:`` + catalogue group), ``label`` (1 jet, 0 negative).
    """
    from jetkeras.catalogue import load_events
    from jetkeras.synthetic import render_event

    if count < 2:
        raise ValueError(f"--renders: expected at least 2 (one jet, one negative), "
                         f"received {count}")
    events = load_events()
    jets = events[events["label"] == 1].sample(n=count // 2, random_state=seed)
    negatives = events[events["label"] == 0].sample(n=count - count // 2, random_state=seed)
    sequences = []
    for table in (jets, negatives):
        for _, row in table.iterrows():
            cube = render_event(row, frames=frames, size=size, seed=seed)
            sequences.append({"frames": np.asarray(cube.frames, dtype=np.float32),
                              "name": str(row["event_id"]), "group": f"render:{row['group']}",
                              "label": int(row["label"])})
    return sequences


# ----------------------------------------------------------------------------------------
# 1. Intensity distribution
# ----------------------------------------------------------------------------------------


def _frame_medians(frames):
    """Per-frame medians, (T, 1, 1), floored at 1 DN so dark off-limb frames stay finite."""
    return np.maximum(np.median(frames.reshape(len(frames), -1), axis=1), 1.0)[:, None, None]


def intensity_sample(frames, rng, per_frame=PIXELS_PER_FRAME):
    """Random pixels of each frame divided by that frame's median.

    Parameters
    ----------
    frames : numpy.ndarray
        (T, H, W) intensities, DN.
    rng : numpy.random.Generator
    per_frame : int
        Pixels drawn (with replacement) per frame.

    Returns
    -------
    numpy.ndarray
        float32 (T * per_frame,), dimensionless (1 = the frame's median).
    """
    frames = np.asarray(frames, dtype=np.float32)
    ratio = frames / _frame_medians(frames)
    flat = ratio.reshape(len(frames), -1)
    picks = rng.integers(0, flat.shape[1], size=(len(frames), per_frame))
    return np.take_along_axis(flat, picks, axis=1).ravel()


def intensity_summary(sample_real, sample_render, quantiles=QUANTILES):
    """Quantiles of two pooled intensity samples and their two-sample distances.

    Parameters
    ----------
    sample_real, sample_render : numpy.ndarray
        (N,) and (M,) intensities over the frame median (dimensionless).
    quantiles : sequence of float
        Probabilities in [0, 1].

    Returns
    -------
    dict
        ``quantiles_real`` / ``quantiles_render`` {"q01": ...}, ``ks_statistic`` (0-1),
        ``wasserstein`` (in units of the frame median).
    """
    names = [f"q{round(100 * q):02d}" for q in quantiles]
    return {
        "quantiles_real": dict(zip(names, np.quantile(sample_real, quantiles).tolist())),
        "quantiles_render": dict(zip(names, np.quantile(sample_render, quantiles).tolist())),
        "ks_statistic": float(stats.ks_2samp(sample_real, sample_render).statistic),
        "wasserstein": float(stats.wasserstein_distance(sample_real, sample_render)),
    }


# ----------------------------------------------------------------------------------------
# 2. Spatial power spectrum
# ----------------------------------------------------------------------------------------


def radial_power_spectrum(frames):
    """Radially averaged spatial power spectrum, mean over frames, unit total power.

    Each frame has its mean removed and a 2-D Hann window applied (so the frame edges do
    not leak a k^-2 tail), and its spectrum is divided by its total power before the
    frames are averaged.

    Parameters
    ----------
    frames : numpy.ndarray
        (T, H, W) intensities (any unit); H and W >= 8.

    Returns
    -------
    k : numpy.ndarray
        (min(H, W) // 2,) spatial frequency, cycles/px, 1/n to 1/2 in steps of 1/n with
        n = min(H, W).
    power : numpy.ndarray
        (min(H, W) // 2,) mean fraction of the power per frequency ring (dimensionless).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or min(frames.shape[1:]) < 8:
        raise ValueError(f"radial_power_spectrum: expected frames (T, H, W) with H, W >= 8, "
                         f"received {frames.shape}")
    _, height, width = frames.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    centred = (frames - frames.mean(axis=(1, 2), keepdims=True)) * window
    power = np.abs(np.fft.fft2(centred)) ** 2  # (T, H, W)
    total = power.sum(axis=(1, 2), keepdims=True)
    power = power / np.where(total > 0, total, 1.0)
    ky = np.fft.fftfreq(height)[:, None]
    kx = np.fft.fftfreq(width)[None, :]
    n = min(height, width)
    ring = np.rint(np.hypot(ky, kx) * n).astype(int).ravel()  # (H * W,) ring index
    mean_power = power.mean(axis=0).ravel()
    sums = np.bincount(ring, weights=mean_power, minlength=n)
    counts = np.bincount(ring, minlength=n)
    rings = np.arange(1, n // 2 + 1)
    return rings / n, sums[rings] / np.maximum(counts[rings], 1)


def power_law_slope(k, power, k_range=SLOPE_RANGE):
    """Least-squares slope of log10(power) against log10(k) within ``k_range``.

    Parameters
    ----------
    k : numpy.ndarray
        (K,) spatial frequency, cycles/px.
    power : numpy.ndarray
        (K,) power (any unit, > 0).
    k_range : (float, float)
        Inclusive frequency range of the fit, cycles/px.

    Returns
    -------
    float
        The exponent beta of power ~ k^beta (negative for red spectra).
    """
    k = np.asarray(k, dtype=float)
    power = np.asarray(power, dtype=float)
    keep = (k >= k_range[0]) & (k <= k_range[1]) & (power > 0)
    if keep.sum() < 3:
        raise ValueError(f"power_law_slope: expected at least 3 frequencies in {k_range}, "
                         f"received {int(keep.sum())}")
    return float(np.polyfit(np.log10(k[keep]), np.log10(power[keep]), 1)[0])


# ----------------------------------------------------------------------------------------
# 3. Frame-to-frame differences
# ----------------------------------------------------------------------------------------


def temporal_statistics(frames):
    """Statistics of the changes between consecutive frames of one sequence.

    Parameters
    ----------
    frames : numpy.ndarray
        (T, H, W) intensities (any unit), T >= 3.

    Returns
    -------
    dict
        ``diff_std_ratio``: std of ``frame[t+1] - frame[t]`` over std of the frames
        (dimensionless; sqrt(2) for independent frames, 0 for a still scene);
        ``diff_kurtosis``: excess kurtosis of those differences (0 for Gaussian);
        ``lag1_autocorrelation``: lag-1 autocorrelation of each pixel's series about its
        temporal mean, pooled over pixels (1 = frozen, ~0 = white in time).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or len(frames) < 3:
        raise ValueError(f"temporal_statistics: expected frames (T, H, W) with T >= 3, "
                         f"received {frames.shape}")
    differences = np.diff(frames, axis=0)  # (T - 1, H, W)
    frame_std = frames.std()
    anomalies = frames - frames.mean(axis=0, keepdims=True)
    variance = np.sum(anomalies ** 2)
    return {
        "diff_std_ratio": float(differences.std() / frame_std) if frame_std > 0 else float("nan"),
        "diff_kurtosis": float(stats.kurtosis(differences.ravel(), fisher=True)),
        "lag1_autocorrelation": (float(np.sum(anomalies[1:] * anomalies[:-1]) / variance)
                                 if variance > 0 else float("nan")),
    }


# ----------------------------------------------------------------------------------------
# 4. Noise
# ----------------------------------------------------------------------------------------


def laplacian_residuals(frames, rng=None, per_frame=None, level_px=5):
    """High-pass residuals and the local level of every interior pixel.

    The residual is the 5-point Laplacian divided by sqrt(20), so that its robust spread
    is the noise standard deviation for white noise (correlated noise reads lower, and
    fine structure higher: compare sides through the same estimator).

    Parameters
    ----------
    frames : numpy.ndarray
        (T, H, W) intensities, DN.
    rng : numpy.random.Generator, optional
        With ``per_frame``, draws that many pixels per frame; None keeps all.
    per_frame : int, optional
    level_px : int
        Side of the box that averages the local level, px.

    Returns
    -------
    level : numpy.ndarray
        (N,) local mean level, DN.
    residual : numpy.ndarray
        (N,) Laplacian / sqrt(20), DN.
    """
    frames = np.asarray(frames, dtype=np.float32)
    core = frames[:, 1:-1, 1:-1]
    laplacian = (frames[:, :-2, 1:-1] + frames[:, 2:, 1:-1] + frames[:, 1:-1, :-2]
                 + frames[:, 1:-1, 2:] - 4.0 * core) / _LAPLACIAN_GAIN  # (T, H-2, W-2)
    level = ndimage.uniform_filter(frames, size=(1, level_px, level_px))[:, 1:-1, 1:-1]
    if per_frame is None:
        return level.ravel(), laplacian.ravel()
    flat = laplacian.reshape(len(frames), -1)
    picks = rng.integers(0, flat.shape[1], size=(len(frames), per_frame))
    return (np.take_along_axis(level.reshape(len(frames), -1), picks, axis=1).ravel(),
            np.take_along_axis(flat, picks, axis=1).ravel())


def noise_curve(level, residual, edges=NOISE_EDGES_DN, min_count=NOISE_MIN_COUNT):
    """Robust noise sigma (1.4826 MAD of the residuals) in bins of local level.

    Parameters
    ----------
    level, residual : numpy.ndarray
        (N,) local level and high-pass residual, DN (from :func:`laplacian_residuals`).
    edges : numpy.ndarray
        (B + 1,) bin edges of the level, DN.
    min_count : int
        Bins with fewer samples are dropped.

    Returns
    -------
    centres : numpy.ndarray
        (B',) geometric bin centres, DN.
    sigma : numpy.ndarray
        (B',) robust noise standard deviation, DN.
    counts : numpy.ndarray
        (B',) samples per kept bin.
    """
    bins = np.digitize(level, edges) - 1
    centres, sigmas, counts = [], [], []
    for index in range(len(edges) - 1):
        values = residual[bins == index]
        if len(values) < min_count:
            continue
        centres.append(np.sqrt(edges[index] * edges[index + 1]))
        sigmas.append(_MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))
        counts.append(len(values))
    return np.array(centres), np.array(sigmas), np.array(counts)


def fit_power_law(x, y):
    """Fit ``y = a x^b`` by least squares in log-log; returns ``(a, b)``.

    Parameters
    ----------
    x, y : numpy.ndarray
        (N,) positive values, N >= 2.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)
    return float(np.exp(intercept)), float(slope)


def _readme_noise(level, shape, rng):
    """The real folder's noise model on a flat frame: 0.1 DN^0.92, lag-1 correlation 0.38."""
    kernel = np.array([README_NOISE_TAP, 1.0, README_NOISE_TAP])
    noise = rng.standard_normal(shape)
    noise = ndimage.convolve1d(noise, kernel, axis=-1, mode="wrap")
    noise = ndimage.convolve1d(noise, kernel, axis=-2, mode="wrap")
    noise /= 1.0 + 2.0 * README_NOISE_TAP ** 2
    return level + README_NOISE[0] * level ** README_NOISE[1] * noise


def _render_noise(level, shape, rng):
    """The renderer's noise on a flat frame: Poisson at PHOTONS_PER_DN plus read noise."""
    from jetkeras.synthetic import PHOTONS_PER_DN, READ_NOISE_DN

    photons = rng.poisson(level * PHOTONS_PER_DN, size=shape)
    return photons / PHOTONS_PER_DN + READ_NOISE_DN * rng.standard_normal(shape)


def _model_noise_reading(make_noise, rng, level=NOISE_LEVEL_DN):
    """What the Laplacian-MAD estimator reads on flat ``level`` frames of a noise model."""
    frames = make_noise(level, (4, 96, 96), rng).astype(np.float32)
    _, residual = laplacian_residuals(frames)
    return float(_MAD_TO_SIGMA * np.median(np.abs(residual - np.median(residual))))


# ----------------------------------------------------------------------------------------
# 5. Length and width of the moving structure
# ----------------------------------------------------------------------------------------


def axis_lengths(mask):
    """Major and minor axis lengths of a region from its second moments.

    The lengths are those of the uniform rectangle with the same moments,
    ``sqrt(12 lambda + 1)`` for each eigenvalue lambda of the pixel-centre covariance, so
    an axis-aligned L x W bar of pixels gives exactly (L, W).

    Parameters
    ----------
    mask : numpy.ndarray
        (H, W) boolean, the region.

    Returns
    -------
    (float, float)
        Major and minor axis lengths, px; (nan, nan) for an empty mask.
    """
    rows, columns = np.nonzero(mask)
    if len(rows) == 0:
        return float("nan"), float("nan")
    covariance = np.cov(np.stack([rows, columns]).astype(float), bias=True).reshape(2, 2)
    eigenvalues = np.clip(np.linalg.eigvalsh(covariance), 0.0, None)  # ascending
    return (float(np.sqrt(12.0 * eigenvalues[1] + 1.0)),
            float(np.sqrt(12.0 * eigenvalues[0] + 1.0)))


def local_spread(difference, block_px=STRUCTURE_BLOCK_PX):
    """Robust local standard deviation of a difference image, floored at its global one.

    The image is cut into ``block_px`` squares; in each, 1.4826 times the median absolute
    deviation from the image's median is taken, and the block values are interpolated
    back to full size (linear). Where a block spreads less than the whole image (dark
    sky, quantised to whole DN), the image's own robust spread is used.

    Parameters
    ----------
    difference : numpy.ndarray
        (H, W) values, any unit; H, W >= ``block_px``.
    block_px : int
        Side of the blocks, px.

    Returns
    -------
    numpy.ndarray
        float32 (H, W), same unit as ``difference``, > 0.
    """
    difference = np.asarray(difference, dtype=np.float32)
    height, width = difference.shape
    deviation = np.abs(difference - np.median(difference))
    overall = _MAD_TO_SIGMA * float(np.median(deviation))
    if overall <= 0:
        overall = max(float(deviation.mean()), 1e-12)
    rows, columns = height // block_px, width // block_px
    if rows < 1 or columns < 1:
        return np.full((height, width), overall, dtype=np.float32)
    blocks = deviation[:rows * block_px, :columns * block_px].reshape(
        rows, block_px, columns, block_px)
    block_spread = _MAD_TO_SIGMA * np.median(blocks.transpose(0, 2, 1, 3).reshape(
        rows, columns, -1), axis=-1)  # (rows, columns)
    spread = ndimage.zoom(block_spread, (height / rows, width / columns), order=1,
                          mode="nearest", grid_mode=True)
    return np.maximum(spread[:height, :width], overall).astype(np.float32)


def moving_structure(frames, threshold_sigmas=STRUCTURE_SIGMAS, block_px=STRUCTURE_BLOCK_PX):
    """Size of the largest region that changed since the first frame.

    For each frame t the base difference ``frame_t - frame_0`` is divided by its robust
    local spread (:func:`local_spread`, ``block_px`` blocks: a bright, evolving disk and
    near-empty sky each get their own scale) and its absolute value thresholded at
    ``threshold_sigmas``; the largest 8-connected component is kept, and at the frame
    where it is largest its axes are measured (:func:`axis_lengths`).

    Parameters
    ----------
    frames : numpy.ndarray
        (T, H, W) intensities (any unit), T >= 2.
    threshold_sigmas : float
        Threshold in robust local standard deviations of the base difference.
    block_px : int
        Side of the blocks of the local spread, px.

    Returns
    -------
    dict
        ``length_px``, ``width_px`` (major and minor axis, px), ``area_px`` (pixels),
        ``frame`` (index of the frame of maximum area); NaN lengths and frame -1 when
        nothing passes the threshold.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or len(frames) < 2:
        raise ValueError(f"moving_structure: expected frames (T, H, W) with T >= 2, "
                         f"received {frames.shape}")
    structure = np.ones((3, 3), dtype=bool)
    best_area, best_mask, best_frame = 0, None, -1
    for index in range(1, len(frames)):
        difference = frames[index] - frames[0]
        changed = (np.abs(difference - np.median(difference))
                   > threshold_sigmas * local_spread(difference, block_px))
        labels, count = ndimage.label(changed, structure=structure)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        largest = int(np.argmax(sizes))
        if sizes[largest] > best_area:
            best_area, best_mask, best_frame = int(sizes[largest]), labels == largest + 1, index
    if best_mask is None:
        return {"length_px": float("nan"), "width_px": float("nan"), "area_px": 0, "frame": -1,
                "mask": None}
    length, width = axis_lengths(best_mask)
    return {"length_px": length, "width_px": width, "area_px": best_area, "frame": best_frame,
            "mask": best_mask}


# ----------------------------------------------------------------------------------------
# 6. Classifier two-sample test
# ----------------------------------------------------------------------------------------

FEATURE_NAMES = (
    [f"intensity_q{q:02d}" for q in (1, 5, 10, 25, 75, 90, 95, 99)]
    + ["intensity_std", "intensity_skew"]
    + [f"power_band{band}" for band in range(6)]
    + ["gradient_mean", "gradient_std", "gradient_kurtosis", "laplacian_mad",
       "gradient_over_std"]
)
TEXTURE_FEATURES = tuple(f"power_band{band}" for band in range(6)) + (
    "gradient_kurtosis", "gradient_over_std")  # blind to the intensity distribution


def frame_features(frames, rng, crop=CROP):
    """Scale-free features of one random ``crop x crop`` window of each frame.

    The window is divided by its median (floored at 1), so absolute level never enters:
    intensity quantiles and moments, log10 power in 6 log-spaced frequency bands (unit
    total power), and gradient statistics (mean and std of the gradient magnitude,
    kurtosis of the x gradient, MAD of the Laplacian, gradient std over intensity std).

    Parameters
    ----------
    frames : numpy.ndarray
        (T, H, W) intensities, DN; H, W >= ``crop``.
    rng : numpy.random.Generator
        Draws the crop positions.
    crop : int
        Side of the window, px.

    Returns
    -------
    numpy.ndarray
        float64 (T, len(FEATURE_NAMES)).
    """
    frames = np.asarray(frames, dtype=np.float64)
    count, height, width = frames.shape
    if min(height, width) < crop:
        raise ValueError(f"frame_features: expected frames of at least {crop}x{crop}, "
                         f"received {frames.shape}")
    tops = rng.integers(0, height - crop + 1, size=count)
    lefts = rng.integers(0, width - crop + 1, size=count)
    windows = np.stack([frames[t, top:top + crop, left:left + crop]
                        for t, (top, left) in enumerate(zip(tops, lefts))])  # (T, crop, crop)
    windows /= _frame_medians(windows)
    flat = windows.reshape(count, -1)
    quantiles = np.quantile(flat, [0.01, 0.05, 0.10, 0.25, 0.75, 0.90, 0.95, 0.99], axis=1).T
    std = flat.std(axis=1)
    skew = stats.skew(flat, axis=1)
    # Power in 6 log-spaced bands of |k| (cycles/px), per frame.
    window = np.outer(np.hanning(crop), np.hanning(crop))
    centred = (windows - windows.mean(axis=(1, 2), keepdims=True)) * window
    power = np.abs(np.fft.fft2(centred)) ** 2
    power /= np.maximum(power.sum(axis=(1, 2), keepdims=True), 1e-30)
    frequency = np.hypot(np.fft.fftfreq(crop)[:, None], np.fft.fftfreq(crop)[None, :])
    edges = np.geomspace(1.0 / crop, 0.5 * np.sqrt(2.0) + 1e-9, 7)
    bands = np.stack([power[:, (frequency >= low) & (frequency < high)].sum(axis=1)
                      for low, high in zip(edges[:-1], edges[1:])], axis=1)
    bands = np.log10(bands + 1e-12)
    gradient_y, gradient_x = np.gradient(windows, axis=(1, 2))
    magnitude = np.hypot(gradient_x, gradient_y).reshape(count, -1)
    laplacian = (windows[:, :-2, 1:-1] + windows[:, 2:, 1:-1] + windows[:, 1:-1, :-2]
                 + windows[:, 1:-1, 2:] - 4.0 * windows[:, 1:-1, 1:-1]).reshape(count, -1)
    laplacian_mad = np.median(np.abs(laplacian - np.median(laplacian, axis=1, keepdims=True)),
                              axis=1)
    gradient_std = magnitude.std(axis=1)
    features = np.column_stack([
        quantiles, std, skew, bands,
        magnitude.mean(axis=1), gradient_std,
        stats.kurtosis(gradient_x.reshape(count, -1), axis=1),
        laplacian_mad, gradient_std / np.maximum(std, 1e-12),
    ])
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)


def two_sample_auc(features_a, features_b, groups_a, groups_b, *, folds=FOLDS, seed=0,
                   max_iter=100):
    """Held-out ROC AUC of a classifier telling sample ``a`` from sample ``b``.

    ``HistGradientBoostingClassifier`` is trained on ``folds - 1`` folds and scored on
    the last, the folds grouped (``StratifiedGroupKFold``) so no group (sequence or
    scene) has rows on both sides of a split. 0.5 means the samples are
    indistinguishable to it; 1.0 means perfectly separable.

    Parameters
    ----------
    features_a, features_b : numpy.ndarray
        (N, F) and (M, F) feature rows; ``a`` is the positive class.
    groups_a, groups_b : sequence
        (N,) and (M,) group keys; a key shared by ``a`` and ``b`` is kept apart.
    folds : int
        Number of grouped folds (>= 2); each side needs at least that many groups.
    seed : int
        Seed of the fold shuffle and the classifier.
    max_iter : int
        Boosting iterations.

    Returns
    -------
    dict
        ``auc_mean``, ``auc_std`` over the folds, ``auc_folds`` (list), and
        ``univariate`` (feature index -> max(AUC, 1 - AUC) of that feature alone).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    features = np.vstack([features_a, features_b])
    labels = np.r_[np.ones(len(features_a), int), np.zeros(len(features_b), int)]
    groups = np.array([f"a:{g}" for g in groups_a] + [f"b:{g}" for g in groups_b])
    for name, side in (("a", groups_a), ("b", groups_b)):
        if len(set(side)) < folds:
            raise ValueError(f"two_sample_auc: expected at least {folds} groups in sample "
                             f"{name}, received {len(set(side))}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs = []
    for train, test in splitter.split(features, labels, groups):
        model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
        model.fit(features[train], labels[train])
        aucs.append(float(roc_auc_score(labels[test], model.predict_proba(features[test])[:, 1])))
    univariate = {}
    for column in range(features.shape[1]):
        auc = roc_auc_score(labels, features[:, column])
        univariate[column] = float(max(auc, 1.0 - auc))
    return {"auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
            "auc_folds": aucs, "univariate": univariate}


# ----------------------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------------------


def _stretch(frames):
    """Asinh stretch of a sequence to [0, 1] between its 0.5 and 99.5 % points."""
    low, high = np.percentile(frames, [0.5, 99.5])
    scaled = np.clip((frames - low) / max(high - low, 1e-6), 0.0, 1.0)
    return np.arcsinh(scaled / STRETCH_A) / np.arcsinh(1.0 / STRETCH_A)


def _example_rows(real, renders, rng):
    """The sequences pictured: SIDE_ROWS random real ones, then the first rendered jets.

    Returns a list of (sequence, side, origin): real frames have row 0 at the top, renders
    run south to north (FITS order), so each is drawn the right way up.
    """
    chosen = sorted(rng.choice(len(real), min(SIDE_ROWS, len(real)), replace=False))
    jets = [sequence for sequence in renders if sequence["label"] == 1][:SIDE_ROWS]
    return ([(real[i], "real", "upper") for i in chosen]
            + [(sequence, "render", "lower") for sequence in jets])


def _plot_side_by_side(rows, path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(rows), SIDE_FRAMES,
                                figsize=(2.0 * SIDE_FRAMES, 2.1 * len(rows)), squeeze=False)
    for row_axes, (sequence, side, origin) in zip(axes, rows):
        frames = sequence["frames"]
        picks = np.linspace(0, len(frames) - 1, SIDE_FRAMES).round().astype(int)
        stretched = _stretch(frames[picks])
        for axis, index, image in zip(row_axes, picks, stretched):
            axis.imshow(image, cmap="afmhot", origin=origin, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"t={index}", fontsize=8)
        row_axes[0].set_ylabel(f"{side}\n{sequence['name'][:16]}", fontsize=8)
    figure.suptitle("real 304 A jets (top) and rendered jets (bottom), asinh stretch per row")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_structures(rows, structures, masks, path):
    """Each pictured sequence at its frame of largest change, the measured region outlined."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, SIDE_ROWS, figsize=(2.6 * SIDE_ROWS, 5.6), squeeze=False)
    for axis, (sequence, side, origin) in zip(axes.ravel(), rows):
        structure = structures.get(sequence["name"], {})
        frame = max(structure.get("frame", 0), 0)
        axis.imshow(_stretch(sequence["frames"][frame]), cmap="afmhot", origin=origin)
        mask = masks.get(sequence["name"])
        if mask is not None:
            axis.contour(mask, levels=[0.5], colors="cyan", linewidths=0.8)
        axis.set_title(f"{side} t={frame}: {structure.get('length_px', np.nan):.0f} x "
                       f"{structure.get('width_px', np.nan):.0f} px", fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"largest region with |frame_t - frame_0| > {STRUCTURE_SIGMAS:g} local "
                    f"robust sigmas")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_histograms(sample_real, sample_render, path):
    import matplotlib.pyplot as plt

    bins = np.linspace(-2.0, 2.5, 181)
    figure, axis = plt.subplots(figsize=(6, 4))
    for sample, name in ((sample_real, "real"), (sample_render, "renders")):
        values = np.log10(np.clip(sample, 10 ** bins[0], 10 ** bins[-1]))
        axis.hist(values, bins=bins, density=True, histtype="step", label=name)
    axis.set_yscale("log")
    axis.set_xlabel("log10(intensity / frame median); <= 0.01 (and negative) in the first bin")
    axis.set_ylabel("density")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _plot_power(k_real, power_real, k_render, power_render, path):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.loglog(k_real, power_real, label="real")
    axis.loglog(k_render, power_render, label="renders")
    axis.axvspan(*SLOPE_RANGE, color="0.9", label="slope fit")
    axis.set_xlabel("spatial frequency, cycles/px")
    axis.set_ylabel("fraction of power per ring")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _plot_noise(curves, path):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, (centres, sigma) in curves.items():
        axis.loglog(centres, sigma, "o-", label=name)
    level = np.geomspace(5, 2000, 50)
    axis.loglog(level, README_NOISE[0] * level ** README_NOISE[1], "k--",
                label="README model 0.1 DN^0.92")
    axis.set_xlabel("local level, DN")
    axis.set_ylabel("Laplacian-MAD noise, DN")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


# ----------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------


def _median(values):
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    return float(np.median(values)) if len(values) else float("nan")


def _ratio(render, real):
    return render / real if real not in (0, 0.0) and np.isfinite(real) else float("nan")


def _git_state():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "jetkeras/synthetic.py"],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return {"commit": commit, "synthetic_py_modified": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "synthetic_py_modified": None}


def _side_statistics(sequences, rng):
    """Sections 1-5 on one side: a dict of pooled samples and per-sequence figures."""
    samples, levels, residuals, temporal, means, contrasts = [], [], [], [], [], []
    spectra, weights = [], []
    for sequence in sequences:
        frames = sequence["frames"]
        samples.append(intensity_sample(frames, rng))
        level, residual = laplacian_residuals(frames, rng, per_frame=2000)
        levels.append(level)
        residuals.append(residual)
        temporal.append(temporal_statistics(frames))
        frame_means = frames.mean(axis=(1, 2))
        means.extend(frame_means.tolist())
        contrasts.extend((frames.std(axis=(1, 2)) / np.maximum(frame_means, 1e-6)).tolist())
        k, power = radial_power_spectrum(frames)
        spectra.append(power)
        weights.append(len(frames))
    power = np.average(np.stack(spectra), axis=0, weights=weights)  # frame-weighted mean
    centres, sigma, _ = noise_curve(np.concatenate(levels), np.concatenate(residuals))
    fit_range = (centres >= 10) & (centres <= 500)
    noise_a, noise_b = fit_power_law(centres[fit_range], sigma[fit_range])
    return {
        "sample": np.concatenate(samples), "k": k, "power": power,
        "slope": power_law_slope(k, power),
        "frame_mean_dn": _median(means), "frame_contrast": _median(contrasts),
        "diff_std_ratio": _median([t["diff_std_ratio"] for t in temporal]),
        "diff_kurtosis": _median([t["diff_kurtosis"] for t in temporal]),
        "lag1_autocorrelation": _median([t["lag1_autocorrelation"] for t in temporal]),
        "noise_centres": centres, "noise_sigma": sigma, "noise_a": noise_a, "noise_b": noise_b,
        "noise_at_level": noise_a * NOISE_LEVEL_DN ** noise_b,
    }


def _table(rows):
    lines = ["| statistic | real | renders | renders / real, or distance |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {real} | {render} | {compare} |" for name, real, render, compare in rows]
    return "\n".join(lines)


def run_benchmark(*, renders=60, seed=0, realjets=DEFAULT_REALJETS, out=DEFAULT_OUT):
    """Compare ``renders`` synthetic sequences with the real ones; print and return figures.

    Parameters
    ----------
    renders : int
        Synthetic sequences (half jets, half negatives) of 30 frames of 166x166.
    seed : int
        Seed of the event draw, the renders, pixel sampling, crops and folds.
    realjets : path
        The real-jet folder (``index.csv`` and ``sequences/``).
    out : path
        Folder for ``realism.json`` and the pictures (created).

    Returns
    -------
    dict
        Every figure of the table (also written to ``realism.json``).
    """
    import matplotlib

    matplotlib.use("Agg")
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    real = load_real_sequences(realjets)
    synthetic = render_sequences(renders, seed=seed)
    render_seconds = time.perf_counter() - start
    print(f"read {len(real)} real sequences ({sum(len(s['frames']) for s in real)} frames), "
          f"rendered {len(synthetic)} ({render_seconds:.1f} s)")

    stages = {"read_and_render": render_seconds}
    mark = time.perf_counter()
    side_real = _side_statistics(real, rng)
    side_render = _side_statistics(synthetic, rng)
    intensity = intensity_summary(side_real["sample"], side_render["sample"])
    power_on_real_k = np.interp(side_real["k"], side_render["k"], side_render["power"])
    log_difference = float(np.mean(np.abs(np.log10(side_real["power"])
                                          - np.log10(power_on_real_k))))

    jets = [s for s in synthetic if s["label"] == 1]
    stages["distributions_spectra_time_noise"] = time.perf_counter() - mark
    mark = time.perf_counter()
    structures_real = [moving_structure(s["frames"]) | {"name": s["name"],
                                                       "agreement": s["agreement"]}
                       for s in real]
    structures_render = [moving_structure(s["frames"]) | {"name": s["name"]} for s in jets]
    masks = {s["name"]: structure.pop("mask")
             for s, structure in zip(real + jets, structures_real + structures_render)}

    def structure_median(structures, key):
        return _median([s[key] for s in structures])

    def aspect_median(structures):
        return _median([s["length_px"] / s["width_px"] for s in structures])

    stages["moving_structure"] = time.perf_counter() - mark
    mark = time.perf_counter()
    features_real = np.vstack([frame_features(s["frames"], rng) for s in real])
    features_render = np.vstack([frame_features(s["frames"], rng) for s in synthetic])
    groups_real = [s["group"] for s in real for _ in range(len(s["frames"]))]
    groups_render = [s["group"] for s in synthetic for _ in range(len(s["frames"]))]
    classifier = two_sample_auc(features_real, features_render, groups_real, groups_render,
                                seed=seed)
    top = sorted(classifier["univariate"].items(), key=lambda item: -item[1])[:3]
    top_features = {FEATURE_NAMES[column]: auc for column, auc in top}
    # The same test blind to the intensity distribution: spectral shape and texture only.
    texture = [FEATURE_NAMES.index(name) for name in TEXTURE_FEATURES]
    classifier_texture = two_sample_auc(features_real[:, texture], features_render[:, texture],
                                        groups_real, groups_render, seed=seed)

    stages["classifier"] = time.perf_counter() - mark
    noise_model_real = _model_noise_reading(_readme_noise, rng)
    noise_model_render = _model_noise_reading(_render_noise, rng)

    results = {
        "config": {"renders": renders, "seed": seed, "realjets": str(realjets),
                   "render_geometry": [RENDER_FRAMES, RENDER_SIZE, RENDER_SIZE],
                   "slope_range_cycles_per_px": list(SLOPE_RANGE),
                   "structure_sigmas": STRUCTURE_SIGMAS, "crop_px": CROP, "folds": FOLDS,
                   **_git_state()},
        "counts": {"real_sequences": len(real), "real_frames": len(features_real),
                   "render_sequences": len(synthetic), "render_frames": len(features_render),
                   "render_jets": len(structures_render)},
        "frame_mean_dn": {"real": side_real["frame_mean_dn"],
                          "render": side_render["frame_mean_dn"]},
        "frame_std_over_mean": {"real": side_real["frame_contrast"],
                                "render": side_render["frame_contrast"]},
        "intensity": intensity,
        "power_spectrum": {"slope_real": side_real["slope"], "slope_render": side_render["slope"],
                           "mean_abs_log10_difference": log_difference,
                           "k_cycles_per_px": side_real["k"].tolist(),
                           "power_real": side_real["power"].tolist(),
                           "power_render": power_on_real_k.tolist()},
        "temporal": {key: {"real": side_real[key], "render": side_render[key]}
                     for key in ("diff_std_ratio", "diff_kurtosis", "lag1_autocorrelation")},
        "noise": {"sigma_at_50dn_real": side_real["noise_at_level"],
                  "sigma_at_50dn_render": side_render["noise_at_level"],
                  "exponent_real": side_real["noise_b"], "exponent_render": side_render["noise_b"],
                  "model_read_at_50dn_real": noise_model_real,
                  "model_read_at_50dn_render": noise_model_render,
                  "readme_model_at_50dn": README_NOISE[0] * NOISE_LEVEL_DN ** README_NOISE[1],
                  "curve_real": {"level_dn": side_real["noise_centres"].tolist(),
                                 "sigma_dn": side_real["noise_sigma"].tolist()},
                  "curve_render": {"level_dn": side_render["noise_centres"].tolist(),
                                   "sigma_dn": side_render["noise_sigma"].tolist()}},
        "structure": {
            "length_px_real": structure_median(structures_real, "length_px"),
            "length_px_render": structure_median(structures_render, "length_px"),
            "width_px_real": structure_median(structures_real, "width_px"),
            "width_px_render": structure_median(structures_render, "width_px"),
            "aspect_real": aspect_median(structures_real),
            "aspect_render": aspect_median(structures_render),
            "area_px_real": structure_median(structures_real, "area_px"),
            "area_px_render": structure_median(structures_render, "area_px"),
            "per_sequence_real": structures_real, "per_sequence_render": structures_render},
        "classifier": {"auc_mean": classifier["auc_mean"], "auc_std": classifier["auc_std"],
                       "auc_folds": classifier["auc_folds"], "top_univariate": top_features,
                       "features": FEATURE_NAMES,
                       "texture_only": {"features": list(TEXTURE_FEATURES),
                                        "auc_mean": classifier_texture["auc_mean"],
                                        "auc_std": classifier_texture["auc_std"],
                                        "auc_folds": classifier_texture["auc_folds"]}},
    }

    q_real, q_render = intensity["quantiles_real"], intensity["quantiles_render"]
    noise, structure = results["noise"], results["structure"]
    temporal = results["temporal"]

    def row(name, real_value, render_value, digits=3):
        return (name, f"{real_value:.{digits}g}", f"{render_value:.{digits}g}",
                f"{_ratio(render_value, real_value):.2f}")

    rows = [
        ("sequences / frames", f"{len(real)} / {len(features_real)}",
         f"{len(synthetic)} / {len(features_render)}", ""),
        row("frame mean, DN (median over frames)", side_real["frame_mean_dn"],
            side_render["frame_mean_dn"]),
        row("frame std / mean (median over frames)", side_real["frame_contrast"],
            side_render["frame_contrast"]),
        row("intensity / frame median, 1 % quantile", q_real["q01"], q_render["q01"]),
        row("intensity / frame median, 50 % quantile", q_real["q50"], q_render["q50"]),
        row("intensity / frame median, 99 % quantile", q_real["q99"], q_render["q99"]),
        ("intensity / frame median, pooled", "", "",
         f"KS {intensity['ks_statistic']:.3f}, Wasserstein {intensity['wasserstein']:.3f}"),
        row(f"power-spectrum slope, {SLOPE_RANGE[0]}-{SLOPE_RANGE[1]} cycles/px",
            side_real["slope"], side_render["slope"]),
        ("power spectra, mean abs log10 difference", "", "",
         f"{log_difference:.3f} (x{10 ** log_difference:.2f})"),
        row("std(frame diff) / std(frame)", temporal["diff_std_ratio"]["real"],
            temporal["diff_std_ratio"]["render"]),
        row("excess kurtosis of frame diffs", temporal["diff_kurtosis"]["real"],
            temporal["diff_kurtosis"]["render"]),
        row("lag-1 temporal autocorrelation of pixels", temporal["lag1_autocorrelation"]["real"],
            temporal["lag1_autocorrelation"]["render"]),
        row("noise at 50 DN (Laplacian MAD), DN", noise["sigma_at_50dn_real"],
            noise["sigma_at_50dn_render"]),
        ("noise model read the same way at 50 DN, DN",
         f"{noise_model_real:.3g} (README 0.1 DN^0.92: {noise['readme_model_at_50dn']:.3g})",
         f"{noise_model_render:.3g} (Poisson + read)",
         f"{_ratio(noise_model_render, noise_model_real):.2f}"),
        row("noise exponent b, sigma ~ DN^b (10-500 DN)", noise["exponent_real"],
            noise["exponent_render"]),
        row("moving structure length, px (median, jets)", structure["length_px_real"],
            structure["length_px_render"]),
        row("moving structure width, px (median, jets)", structure["width_px_real"],
            structure["width_px_render"]),
        row("moving structure length / width (median)", structure["aspect_real"],
            structure["aspect_render"]),
        row("moving structure area, px (median)", structure["area_px_real"],
            structure["area_px_render"]),
        ("classifier two-sample ROC AUC, 5 grouped folds", f"{len(features_real)} frames",
         f"{len(features_render)} frames",
         f"{classifier['auc_mean']:.3f} ± {classifier['auc_std']:.3f}"),
        ("the same, texture only (6 power bands, gradient kurtosis, gradient/intensity std)",
         "", "", f"{classifier_texture['auc_mean']:.3f} ± {classifier_texture['auc_std']:.3f}"),
    ]
    table = _table(rows)
    results["table_markdown"] = table
    print(table)
    print("most separating single features (max(AUC, 1 - AUC)): "
          + ", ".join(f"{name} {auc:.3f}" for name, auc in top_features.items()))

    mark = time.perf_counter()
    rows = _example_rows(real, synthetic, rng)
    _plot_side_by_side(rows, out / "side_by_side.png")
    _plot_structures(rows, {s["name"]: s for s in structures_real + structures_render}, masks,
                     out / "structures.png")
    _plot_histograms(side_real["sample"], side_render["sample"], out / "histograms.png")
    _plot_power(side_real["k"], side_real["power"], side_render["k"], side_render["power"],
                out / "power_spectra.png")
    _plot_noise({"real": (side_real["noise_centres"], side_real["noise_sigma"]),
                 "renders": (side_render["noise_centres"], side_render["noise_sigma"])},
                out / "noise.png")
    stages["pictures"] = time.perf_counter() - mark
    results["seconds"] = time.perf_counter() - start
    results["seconds_by_stage"] = stages
    print("seconds by stage: " + ", ".join(f"{name} {value:.1f}" for name, value in
                                            stages.items()))
    (out / "realism.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {out / 'realism.json'} and 5 pictures ({results['seconds']:.1f} s)")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench/realism.py", description=__doc__.split("\n")[0])
    parser.add_argument("--renders", type=int, default=60,
                        help="synthetic sequences of 30x166x166, half jets, half negatives; "
                             "default 60")
    parser.add_argument("--realjets", type=Path, default=DEFAULT_REALJETS,
                        help="real-jet folder with index.csv and sequences/; default "
                             "../shared/data/realjets from the repository root")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for realism.json and the pictures; default "
                             "bench/realism_out")
    add_seed_flag(parser)
    args = parser.parse_args(argv)
    return run_main(lambda: run_benchmark(renders=args.renders, seed=args.seed,
                                          realjets=args.realjets, out=args.out),
                    "bench/realism.py")


if __name__ == "__main__":
    raise SystemExit(main())
