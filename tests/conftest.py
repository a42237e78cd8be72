"""Shared fixtures, built from REAL AIA pixels and headers (no invented headers).

Sources shipped with installed packages (no network):

- sunpy's ``aia_171_level1.fits``: 128x128 full-disk AIA 171 A level 1 (~19"/px).
- sunkit-image's ``aia_171_cutout.fits``: 705x769 AIA 171 A level-1 cutout at 0.6"/px,
  Rice-compressed in HDU 1 exactly as JSOC exports it, with its full WCS header.

Factories take sizes so tests stay tiny (e.g. 4 frames of 32x32):

- ``make_aia_frames(n_frames, size, seed)`` -> float32 (T, size, size) DN from the full disk.
- ``make_aia_fits_dir(n_frames, native_size, ...)`` -> a folder of FITS frames cut from the
  real cutout, DATE-OBS ``cadence_s`` apart, shifted by one pixel per frame, scaled and
  Poisson-resampled, the real header kept (CRPIX, DATE-OBS, T_OBS, EXPTIME updated).
- ``make_seed_npz_root(shape, counts, nested)`` -> the seed's folder tree of float64
  ``arr_0`` (H, W, T) files.

Plain fixtures ``aia_fits_dir`` (6 frames of 96x96 native, 32x32 after 3x3 pooling) and
``seed_npz_root`` use the defaults.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

AIA_CUTOUT_START = "2013-03-10T12:00:11.341"


def _aia_cutout_path() -> Path:
    import sunkit_image

    return Path(sunkit_image.__file__).parent / "data" / "test" / "aia_171_cutout.fits"


def _aia_full_disk_path() -> Path:
    from sunpy.data.test import get_test_filepath

    return Path(get_test_filepath("aia_171_level1.fits"))


@pytest.fixture(scope="session")
def aia_cutout():
    """(data float32 (705, 769) DN, header) of sunkit-image's real AIA 171 A cutout."""
    from astropy.io import fits

    with fits.open(_aia_cutout_path()) as hdul:
        return np.asarray(hdul[1].data, dtype=np.float32), hdul[1].header.copy()


@pytest.fixture(scope="session")
def aia_full_disk():
    """(data float32 (128, 128) DN, header) of sunpy's real AIA 171 A full-disk test image."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        with fits.open(_aia_full_disk_path()) as hdul:
            return np.asarray(hdul[0].data, dtype=np.float32), hdul[0].header.copy()


@pytest.fixture(scope="session")
def make_aia_frames(aia_full_disk):
    """Factory: ``(n_frames, size, seed) -> float32 (T, size, size)`` real-AIA DN cube.

    Crops a window of the full-disk image (on the disk, near the centre), shifts it by one
    pixel per frame, scales by 1 + 2 % per frame and draws Poisson counts (seeded).
    """
    data, _ = aia_full_disk

    def make(n_frames: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
        if size + n_frames > 96:
            raise ValueError(
                f"make_aia_frames: expected size + n_frames <= 96, received {size + n_frames}"
            )
        rng = np.random.default_rng(seed)
        origin = 16
        frames = []
        for index in range(n_frames):
            window = data[origin + index: origin + index + size, origin: origin + size]
            expected = np.clip(window, 0, None) * (1.0 + 0.02 * index)
            frames.append(rng.poisson(expected).astype(np.float32))
        return np.stack(frames)

    return make


@pytest.fixture(scope="session")
def make_aia_fits_dir(aia_cutout, tmp_path_factory):
    """Factory: write ``n_frames`` FITS frames cut from the real AIA cutout; return the folder.

    Parameters of the returned callable
    -----------------------------------
    n_frames : int, default 6
    native_size : int, default 96 (32x32 after the reader's 3x3 pooling)
    cadence_s : float, default 24
    gaps_s : list of float, optional -- explicit spacing of consecutive frames (overrides
        cadence_s), e.g. to plant an irregular gap
    exptime_s : float or list, default 2.0 -- EXPTIME written to each frame
    wavelength_angstrom : list of int, optional -- WAVELNTH per frame (default: the real 171)
    compressed : bool, default True -- Rice-compressed image in HDU 1 (as JSOC) or plain
        HDU 0
    suffix : str, default ".fits"
    seed : int, default 0
    directory : path, optional -- where to write (a fresh temporary folder by default)
    """
    import astropy.units as u
    from astropy.io import fits
    from astropy.time import Time

    data, header = aia_cutout

    def make(
        n_frames: int = 6,
        native_size: int = 96,
        cadence_s: float = 24.0,
        gaps_s=None,
        exptime_s=2.0,
        wavelength_angstrom=None,
        compressed: bool = True,
        suffix: str = ".fits",
        seed: int = 0,
        directory=None,
    ) -> Path:
        folder = Path(directory) if directory else tmp_path_factory.mktemp("aia_fits")
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        gaps = list(gaps_s) if gaps_s is not None else [cadence_s] * (n_frames - 1)
        offsets_s = np.concatenate([[0.0], np.cumsum(gaps)])
        exposures = np.broadcast_to(np.asarray(exptime_s, dtype=float), (n_frames,))
        start = Time(AIA_CUTOUT_START, scale="utc")
        # A bright active region sits in the lower left of the cutout.
        row0, column0 = 200, 150
        for index in range(n_frames):
            row, column = row0 + index, column0 + index  # drift 1 px per frame
            window = data[row: row + native_size, column: column + native_size]
            expected = np.clip(window, 0, None) * (1.0 + 0.02 * index)
            counts = rng.poisson(expected).astype(np.int16)
            frame_header = header.copy()
            for key in list(frame_header):
                # Compression bookkeeping of the source file; astropy rewrites it.
                if key.startswith("Z") or key in ("XTENSION", "PCOUNT", "GCOUNT", "EXTNAME"):
                    frame_header.remove(key, ignore_missing=True, remove_all=True)
            frame_header["CRPIX1"] = header["CRPIX1"] - column
            frame_header["CRPIX2"] = header["CRPIX2"] - row
            when = start + offsets_s[index] * u.s
            frame_header["DATE-OBS"] = when.isot
            frame_header["T_OBS"] = (when + 1.0 * u.s).isot + "Z"  # JSOC style
            frame_header["EXPTIME"] = float(exposures[index])
            if wavelength_angstrom is not None:
                frame_header["WAVELNTH"] = int(wavelength_angstrom[index])
            name = folder / f"aia.lev1_euv_12s.{index:03d}.image{suffix}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                if compressed:
                    hdul = fits.HDUList(
                        [fits.PrimaryHDU(), fits.CompImageHDU(counts, header=frame_header)]
                    )
                else:
                    hdul = fits.HDUList([fits.PrimaryHDU(counts, header=frame_header)])
                hdul.writeto(name, overwrite=True, output_verify="silentfix")
        return folder

    return make


@pytest.fixture
def aia_fits_dir(make_aia_fits_dir, tmp_path):
    """6 real-AIA FITS frames (96x96 native, Rice-compressed in HDU 1), 24 s apart."""
    return make_aia_fits_dir(directory=tmp_path / "aia_fits")


@pytest.fixture(scope="session")
def make_seed_npz_root(make_aia_frames, tmp_path_factory):
    """Factory: build the seed's npz tree and return its root.

    Parameters of the returned callable
    -----------------------------------
    shape : (H, W, T), default (32, 32, 4) -- each file's ``arr_0``, float64, real AIA DN
    counts : dict folder -> number of files, default data0: 2, data1: 2, data0_test: 1,
        data1_val: 1 (file names are catalogue rows 0, 1, ... per folder, offset by 10 for
        the _test/_val folders so rows do not collide)
    nested : bool, default False -- put the folders under ``root/data separated/``
    """

    def make(shape=(32, 32, 4), counts=None, nested: bool = False, seed: int = 0) -> Path:
        counts = counts or {"data0": 2, "data1": 2, "data0_test": 1, "data1_val": 1}
        root = tmp_path_factory.mktemp("seed_root")
        base = root / "data separated" if nested else root
        height, width, n_frames = shape
        if height != width:
            raise ValueError(f"make_seed_npz_root: expected square frames, got {shape}")
        for folder_index, (folder, count) in enumerate(counts.items()):
            (base / folder).mkdir(parents=True, exist_ok=True)
            first_row = 10 if "_" in folder else 0
            for offset in range(count):
                frames = make_aia_frames(
                    n_frames=n_frames, size=height, seed=seed + 100 * folder_index + offset
                )
                # The seed's layout: (H, W, T) float64 under arr_0.
                array = np.moveaxis(frames, 0, -1).astype(np.float64)
                np.savez_compressed(base / folder / f"{first_row + offset}.npz", array)
        return root

    return make


@pytest.fixture
def seed_npz_root(make_seed_npz_root):
    """The seed's tree with (32, 32, 4) float64 arr_0 files in data0, data1, data0_test,
    data1_val."""
    return make_seed_npz_root()


TINY_FIELD_OF_VIEW_ARCSEC = 57.6


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run folder of the tiny preset: 24 synthetic sequences of 4 frames of 32x32.

    Returns a dict: ``run`` and ``records`` (Paths) and ``config`` (the JetConfig used).
    About 30 s on 2 cores; shared by the evaluate, predict and export tests.
    """
    from jetkeras.build_records import build_records
    from jetkeras.config import JetConfig, model_preset
    from jetkeras.train import train

    root = tmp_path_factory.mktemp("tiny_run")
    # 57.6" over 32 px is 1.8" per pixel, the seed's pooled AIA scale: the real-AIA FITS
    # fixtures (96 native px, pooled 3x3) then reach the model at its own scale.
    config = JetConfig().replace(data={"frames": 4, "size": 32,
                                       "field_of_view_arcsec": TINY_FIELD_OF_VIEW_ARCSEC},
                                 model=model_preset("tiny").__dict__,
                                 train={"epochs": 1, "batch_size": 4})
    build_records(source="synthetic", out=root / "records", config=config, limit=24, seed=0)
    train(records=root / "records", out=root / "run", config=config, verbose=0)
    return {"run": root / "run", "records": root / "records", "config": config}


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    """``tiny_run`` exported as a SavedModel (jetkeras.export); returns its folder."""
    from jetkeras.export import export_run

    out = tmp_path_factory.mktemp("tiny_export") / "saved_model"
    export_run(run=tiny_run["run"], out=out)
    return out


HEK_PAGES = Path(__file__).parent / "data" / "hek"


class RecordedHEK:
    """An ``opener(url) -> bytes`` answering HEK URLs from ``tests/data/hek``.

    A page is chosen by the query's ``event_starttime`` (its date) and ``page``; every URL
    opened is kept in ``urls``. ``fail_after`` raises ``URLError`` (no network) once that
    many pages were answered.
    """

    def __init__(self, fail_after=None):
        self.urls = []
        self.fail_after = fail_after

    def __call__(self, url):
        import urllib.error
        import urllib.parse

        if self.fail_after is not None and len(self.urls) >= self.fail_after:
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        self.urls.append(url)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        path = HEK_PAGES / f"{query['event_starttime'][:10]}_page{query['page']}.json"
        if not path.is_file():
            return b'{"result": [], "overmax": false}'
        return path.read_bytes()


@pytest.fixture
def recorded_hek():
    """Factory of :class:`RecordedHEK` openers (recorded HEK JSON pages, with paging)."""
    return RecordedHEK
