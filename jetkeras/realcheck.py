"""Sim-to-real check: does a model trained on renders see *motion* in real 304 A jets?

``python -m jetkeras.realcheck --model RUN --realjets ../shared/data/realjets``

The folder holds real Solar Jet Hunter jet sequences recovered from the volunteers'
animations (its README says how, and what they are not: not calibrated DN, no real
jet-free sequences). It is for **validation only**: never train on it, never choose a
threshold or a checkpoint with it.

No real negatives exist offline, so each real jet window is scored against copies of the
same pixels with the motion taken out (the folder's README):

frozen
    the window's middle frame repeated ``T`` times, each copy with fresh noise of the
    recovered pixels' noise model, ``sigma = 0.1 DN^0.92`` with a lag-1 spatial
    correlation of 0.38 (display quantisation and dithering, not photon noise);
shuffled
    the window's frames in a random order.

A model that ranks the real jets above both sees jet motion in real pixels. That is what
this check shows, and all it shows: it says nothing of real quiet Sun or of other real
transients, so report it as "real jets vs motion-removed copies".

Windows
    A ``single_*`` subject holds 15 distinct frames: each is used twice, giving the 30
    frames of the seed's window (48 s effective cadence), as the folder's README says. A
    ``chain_*`` sequence is cut into consecutive, non-overlapping 30-frame windows; a
    shorter tail is dropped. Every window is then brought to the model's geometry with
    :func:`jetkeras.preprocess.resample`, exactly as ``predict`` does for a cube of
    another geometry.

Examples
--------
>>> from jetkeras.realcheck import motion_removed  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jetkeras import _cli

__all__ = ["WINDOW_FRAMES", "load_sequences", "load_windows", "main", "motion_removed",
           "real_jet_check"]

WINDOW_FRAMES = 30  # the seed's window: 30 frames, 24 s apart
NOISE_SCALE = 0.1  # recovered pixels' noise: sigma = NOISE_SCALE * DN ** NOISE_POWER
NOISE_POWER = 0.92
NOISE_LAG1 = 0.38  # lag-1 spatial correlation of that noise
# [a, 1, a] smoothing has lag-1 correlation 2a / (1 + 2a^2); a = 0.215 gives 0.38.
_NOISE_TAP = 0.215


def _index(folder: Path):
    import pandas as pd

    index_path = folder / "index.csv"
    if not index_path.is_file():
        raise FileNotFoundError(
            f"--realjets {folder}: expected a folder with index.csv and sequences/ (the "
            f"real-jet validation set), received a folder without index.csv")
    table = pd.read_csv(index_path, dtype=str)
    missing = {"file", "kind", "group", "agreement"} - set(table.columns)
    if missing:
        raise ValueError(f"{index_path}: expected columns file, kind, group, agreement; "
                         f"missing {sorted(missing)}")
    return table


def load_sequences(folder: str | Path) -> list[dict[str, Any]]:
    """Every real sequence of the folder, whole.

    Parameters
    ----------
    folder : path
        The real-jet folder: ``index.csv`` and ``sequences/<name>.npz`` (one uint16 array
        ``frames`` of shape (T, 166, 166), DN-like).

    Returns
    -------
    list of dict
        ``frames`` float32 ``(T, H, W)`` DN-like, ``name``, ``group``, ``agreement``,
        ``kind`` (``single`` or ``chain``).
    """
    folder = Path(folder)
    sequences = []
    for row in _index(folder).itertuples(index=False):
        path = folder / row.file
        try:
            with np.load(path, allow_pickle=False) as archive:
                frames = np.asarray(archive["frames"], dtype=np.float32)
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"{path}: expected an npz with array `frames`, "
                             f"received an unreadable file ({_cli.first_line(error)})") from None
        if frames.ndim != 3:
            raise ValueError(f"{path}: expected `frames` of shape (T, H, W), received "
                             f"{frames.shape}")
        sequences.append({"frames": frames, "name": Path(row.file).stem, "group": row.group,
                          "agreement": row.agreement, "kind": row.kind})
    return sequences


def load_windows(folder: str | Path) -> list[dict[str, Any]]:
    """Cut every real sequence of the folder into 30-frame windows (see module docstring).

    Parameters
    ----------
    folder : path
        The real-jet folder (see :func:`load_sequences`).

    Returns
    -------
    list of dict
        ``frames`` float32 ``(30, H, W)`` DN-like, ``name``, ``group``, ``agreement``,
        ``kind``, ``start`` (first frame of the window in the sequence).
    """
    windows = []
    for sequence in load_sequences(folder):
        frames = sequence["frames"]
        if sequence["kind"] == "single":
            frames = np.repeat(frames, 2, axis=0)  # 15 distinct frames -> 30, each shown twice
        for start in range(0, frames.shape[0] - WINDOW_FRAMES + 1, WINDOW_FRAMES):
            windows.append({**sequence, "frames": frames[start:start + WINDOW_FRAMES],
                            "start": start})
    if not windows:
        raise ValueError(f"--realjets {folder}: no sequence is long enough for a "
                         f"{WINDOW_FRAMES}-frame window")
    return windows


def _correlated_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise with lag-1 spatial correlation :data:`NOISE_LAG1`."""
    from scipy import ndimage

    kernel = np.array([_NOISE_TAP, 1.0, _NOISE_TAP])
    noise = rng.standard_normal(shape)
    noise = ndimage.convolve1d(noise, kernel, axis=-1, mode="wrap")
    noise = ndimage.convolve1d(noise, kernel, axis=-2, mode="wrap")
    return noise / (1.0 + 2.0 * _NOISE_TAP ** 2)  # each pass scales the variance by this


def motion_removed(frames: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A motion-free copy of a real window: ``frozen`` or ``shuffled``.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(T, H, W)`` DN-like.
    kind : {"frozen", "shuffled"}
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        float32 ``(T, H, W)``, clipped at 0 DN.
    """
    if kind == "shuffled":
        return np.ascontiguousarray(frames[rng.permutation(frames.shape[0])])
    if kind != "frozen":
        raise ValueError(f"motion_removed: expected kind 'frozen' or 'shuffled', received "
                         f"{kind!r}")
    still = np.repeat(frames[frames.shape[0] // 2][None], frames.shape[0], axis=0)
    sigma = NOISE_SCALE * np.power(np.maximum(still, 0.0), NOISE_POWER)
    noisy = still + sigma * _correlated_noise(still.shape, rng)
    return np.maximum(noisy, 0.0).astype(np.float32)


def real_jet_check(predictor, folder: str | Path, *, seed: int = 0,
                   batch_size: int = 8) -> dict[str, Any]:
    """Score real jet windows against their motion-removed copies.

    Parameters
    ----------
    predictor : jetkeras.runtime.Predictor
        The model under test (trained on renders only); its stored threshold is used for
        recall.
    folder : path
        The real-jet validation folder (see :func:`load_windows`).
    seed : int
        Seeds the noise of the frozen copies and the shuffles.

    Returns
    -------
    dict
        ``auc`` (jets against both kinds of copies), ``auc_frozen``, ``auc_shuffled``,
        ``recall`` (real jet windows at or above the stored threshold), ``threshold``,
        ``windows``, ``groups``, ``mean_score_agreement80`` and
        ``mean_score_agreement60`` (``mixed`` chains counted in neither), and ``rows``:
        one dict per scored window (``name``, ``group``, ``agreement``, ``start``,
        ``copy`` in {"none", "frozen", "shuffled"}, ``label``, ``probability``).
    """
    from sklearn.metrics import roc_auc_score

    from jetkeras.preprocess import resample

    rng = np.random.default_rng(seed)
    windows = load_windows(folder)
    stacks, rows = [], []
    for window in windows:
        for copy in ("none", "frozen", "shuffled"):
            frames = window["frames"] if copy == "none" else motion_removed(
                window["frames"], copy, rng)
            stacks.append(resample(frames, frames_out=predictor.frames,
                                   size_out=predictor.size))
            rows.append({key: window[key] for key in ("name", "group", "agreement", "start")}
                        | {"copy": copy, "label": int(copy == "none")})
    probabilities = predictor.predict_proba(np.stack(stacks), batch_size=batch_size)
    for row, probability in zip(rows, probabilities):
        row["probability"] = float(probability)
    labels = np.array([row["label"] for row in rows])
    copies = np.array([row["copy"] for row in rows])
    agreements = np.array([row["agreement"] for row in rows])

    def auc(copy: str) -> float:
        keep = (copies == "none") | (copies == copy)
        return float(roc_auc_score(labels[keep], probabilities[keep]))

    jets = probabilities[labels == 1]
    return {
        "auc": float(roc_auc_score(labels, probabilities)),
        "auc_frozen": auc("frozen"),
        "auc_shuffled": auc("shuffled"),
        "recall": float(np.mean(jets >= predictor.threshold)),
        "threshold": float(predictor.threshold),
        "windows": len(windows),
        "groups": len({window["group"] for window in windows}),
        "mean_score_agreement80": float(np.mean(
            probabilities[(labels == 1) & (agreements == "agreement80")])),
        "mean_score_agreement60": float(np.mean(
            probabilities[(labels == 1) & (agreements == "agreement60")])),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    parser = _cli.make_parser(
        "realcheck",
        "Sim-to-real check: score real 304 angstrom jets against copies of the same "
        "pixels with the motion taken out (frozen and shuffled frames), to see whether a "
        "model trained on renders sees jet motion in real data. For validation only; "
        "prints the summary as JSON.",
        ["--model runs/light --realjets ../shared/data/realjets",
         "--model runs/light --realjets ../shared/data/realjets --out realcheck.csv"])
    parser.add_argument("--model", required=True, help="run folder (python -m jetkeras.train) or "
                        "SavedModel export (python -m jetkeras.export)")
    parser.add_argument("--realjets", required=True, type=_cli.existing_folder,
                        help="the real-jet folder (index.csv + sequences/)")
    parser.add_argument("--out", help="write the per-window scores as CSV here; default: print the "
                        "summary only")
    _cli.add_seed_flag(parser)
    args = parser.parse_args(argv)

    def run():
        import pandas as pd

        from jetkeras.runtime import load_predictor

        result = real_jet_check(load_predictor(args.model), args.realjets, seed=args.seed)
        rows = result.pop("rows")
        if args.out:
            from jetkeras._files import atomic_write_text

            atomic_write_text(args.out, pd.DataFrame(rows).to_csv(index=False))
        print(json.dumps(result, indent=2))

    return _cli.run_main(run, "realcheck", resume=_cli.resume_command("realcheck", argv),
                         kept="nothing written (the CSV is written at the end)")


if __name__ == "__main__":
    raise SystemExit(main())
