"""Tests of jetkeras.io: seed npz, jetkeras-cube/1, seed folder tree, AIA FITS directories."""

import json
import os
import warnings
import zipfile

import astropy.units as u
import numpy as np
import pytest

from jetkeras.cube import Cube
from jetkeras.io import (
    CUBE_FORMAT,
    JetkerasWarning,
    list_cubes,
    read_cube,
    read_fits_dir,
    read_npz,
    scan_seed_root,
    write_cube,
)
from jetkeras.preprocess import max_pool

# ----------------------------------------------------------------------------- seed npz


def test_read_seed_npz_transposes_hwt_to_thw(seed_npz_root):
    path = seed_npz_root / "data1" / "0.npz"
    raw = np.load(path, allow_pickle=False)["arr_0"]
    assert raw.shape == (32, 32, 4) and raw.dtype == np.float64
    cube = read_npz(path, frames=4, size=32)
    assert cube.shape == (4, 32, 32)
    assert cube.frames.dtype == np.float32
    np.testing.assert_array_equal(cube.frames[2], raw[:, :, 2].astype(np.float32))
    assert cube.times is None and cube.meta == {"layout": "seed"}
    assert cube.source == str(path)


def test_seed_npz_too_few_frames_reported(tmp_path, make_aia_frames):
    # The seed's short downloads (5-22 of 30 frames) were dropped silently; we say so.
    path = tmp_path / "63.npz"
    np.savez_compressed(path, np.moveaxis(make_aia_frames(n_frames=3, size=16), 0, -1))
    with pytest.raises(ValueError, match=r"63\.npz \[arr_0\]: expected 4 frames, received 3 "
                                         r"\(seed layout"):
        read_npz(path, frames=4)
    with pytest.raises(ValueError, match=r"expected frames of 32x32 pixels, received 16x16"):
        read_npz(path, size=32)


def test_seed_npz_wrong_rank(tmp_path):
    path = tmp_path / "1.npz"
    np.savez_compressed(path, np.zeros((166, 166)))
    with pytest.raises(ValueError, match=r"1\.npz \[arr_0\]: expected frames of shape \(n_frames, "
                                         r"height, width\), received shape \(166, 166\)"):
        read_npz(path)


def test_non_numeric_dtype_refused(tmp_path):
    path = tmp_path / "s.npz"
    np.savez_compressed(path, np.full((2, 2, 2), "x"))
    with pytest.raises(ValueError, match=r"s\.npz \[arr_0\]: expected a real numeric array, "
                                         r"received dtype <U1"):
        read_npz(path)


def test_pickled_object_array_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, arr_0=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match=r"evil\.npz: expected numeric arrays, received a "
                                         r"pickled/object array in key 'arr_0'"):
        read_npz(path)


def test_missing_key_names_keys_found(tmp_path):
    path = tmp_path / "k.npz"
    np.savez_compressed(path, images=np.zeros((2, 4, 4)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"k\.npz: expected key 'arr_0' \(seed layout\) .* "
                                         r"found keys \['images', 'labels'\]"):
        read_npz(path)


def test_missing_file_and_wrong_file_types(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.npz: cube file not found"):
        read_npz(tmp_path / "nope.npz")
    text = tmp_path / "notes.npz"
    text.write_text("hello, I am a CSV\n")
    with pytest.raises(ValueError, match=r"notes\.npz: expected an \.npz \(zip\) archive, received "
                                         r"a file starting with b'hello, I' \(wrong file type\)"):
        read_npz(text)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as handle:
        np.save(handle, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"array\.npz: expected an \.npz archive, received a "
                                         r"single \.npy array"):
        read_npz(npy)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz: expected an \.npz archive, received an "
                                         r"empty file"):
        read_npz(empty)


def test_truncated_npz_refused(tmp_path, make_aia_frames):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, np.moveaxis(make_aia_frames(n_frames=4, size=32), 0, -1))
    data = good.read_bytes()
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.npz: expected a complete npz archive, received a "
                                         r"truncated or corrupt one \(BadZipFile"):
        read_npz(truncated)


def test_corrupt_member_refused(tmp_path, make_aia_frames):
    # Flip bytes inside the compressed member: the zip directory is intact, the data not.
    good = tmp_path / "good.npz"
    np.savez_compressed(good, np.moveaxis(make_aia_frames(n_frames=4, size=32), 0, -1))
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("arr_0.npy")
    start = info.header_offset + 30 + len(info.filename) + 200
    data[start: start + 64] = bytes(64)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt\.npz: expected a (complete|readable) npz"):
        read_npz(corrupt)


def test_nan_reject_and_fill(tmp_path, make_aia_frames):
    frames = np.moveaxis(make_aia_frames(n_frames=4, size=16), 0, -1).astype(np.float64)
    frames[3, 4, 1] = np.nan
    frames[0, 0, 0] = np.inf
    path = tmp_path / "nan.npz"
    np.savez_compressed(path, frames)
    with pytest.raises(ValueError, match=r"nan\.npz \[arr_0\]: expected finite values, received "
                                         r"2 NaN/Inf pixel\(s\)"):
        read_npz(path)
    with pytest.warns(JetkerasWarning, match=r"nan\.npz \[arr_0\]: replaced 2 NaN/Inf pixel\(s\) "
                                             r"by 0 \(nan_policy='fill'\)"):
        cube = read_npz(path, nan_policy="fill")
    assert cube.frames[1, 3, 4] == 0.0 and cube.frames[0, 0, 0] == 0.0
    assert np.isfinite(cube.frames).all()
    with pytest.raises(ValueError, match=r"nan_policy: expected one of \['reject', 'fill'\], "
                                         r"received 'zero'"):
        read_npz(path, nan_policy="zero")


def test_fill_without_nan_does_not_warn(seed_npz_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error", JetkerasWarning)
        read_npz(seed_npz_root / "data0" / "0.npz", nan_policy="fill")


# --------------------------------------------------------------------- jetkeras-cube/1


def test_write_cube_round_trip_and_format(tmp_path, make_aia_frames):
    frames = make_aia_frames(n_frames=4, size=32)
    times = [f"2013-03-10T12:0{i}:00.000" for i in range(4)]
    meta = {"event_id": "sjh_2013-03-10T12_1", "label": np.int64(1), "scale": np.float32(0.5)}
    cube = Cube(frames=frames, source="test", times=times, meta=meta)
    written = write_cube(tmp_path / "out" / "event", cube)  # .npz appended, folder created
    assert written == tmp_path / "out" / "event.npz"
    assert sorted(os.listdir(tmp_path / "out")) == ["event.npz"]  # no temporary left
    with np.load(written, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["format", "frames", "meta_json", "times"]
        assert archive["format"][()] == CUBE_FORMAT and archive["format"].ndim == 0
        assert archive["frames"].dtype == np.float32
        assert archive["times"].dtype.kind == "U"
        assert json.loads(archive["meta_json"][()])["label"] == 1
    back = read_npz(written, frames=4, size=32)
    np.testing.assert_array_equal(back.frames, frames)
    assert back.times == times
    assert back.meta == {"event_id": "sjh_2013-03-10T12_1", "label": 1, "scale": 0.5,
                         "layout": CUBE_FORMAT}


def test_write_cube_without_times(tmp_path, make_aia_frames):
    cube = Cube(frames=make_aia_frames(n_frames=2, size=8))
    back = read_npz(write_cube(tmp_path / "c.npz", cube))
    assert back.times is None
    np.testing.assert_array_equal(back.frames, cube.frames)


def _write_raw(path, **arrays):
    np.savez_compressed(path, **arrays)
    return path


def test_jetkeras_format_errors(tmp_path):
    frames = np.zeros((2, 4, 4), dtype=np.float32)
    good = {"format": np.array(CUBE_FORMAT), "frames": frames, "times": np.array(["a", "b"]),
            "meta_json": np.array("{}")}
    path = _write_raw(tmp_path / "v2.npz", **{**good, "format": np.array("jetkeras-cube/2")})
    with pytest.raises(ValueError, match=r"v2\.npz: expected format 'jetkeras-cube/1', "
                                         r"received 'jetkeras-cube/2'"):
        read_npz(path)
    partial = {key: value for key, value in good.items() if key != "times"}
    path = _write_raw(tmp_path / "partial.npz", **partial)
    with pytest.raises(ValueError, match=r"partial\.npz: expected keys format/frames/times/"
                                         r"meta_json \(jetkeras-cube/1\), missing \['times'\]"):
        read_npz(path)
    path = _write_raw(tmp_path / "list.npz", **{**good, "meta_json": np.array("[1, 2]")})
    with pytest.raises(ValueError, match=r"list\.npz: expected meta_json to hold a JSON object, "
                                         r"received list"):
        read_npz(path)
    path = _write_raw(tmp_path / "times.npz", **{**good, "times": np.array(["a"])})
    with pytest.raises(ValueError, match=r"expected one time per frame \(2\), received 1"):
        read_npz(path)


# --------------------------------------------------------------------- seed folder tree


def test_scan_seed_root_flat(seed_npz_root):
    table = scan_seed_root(seed_npz_root)
    assert list(table.columns) == ["path", "label", "row", "seed_split"]
    assert len(table) == 6
    assert table["seed_split"].tolist() == ["train"] * 4 + ["val", "test"]
    assert table[["label", "row"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1],
                                                        [1, 10], [0, 10]]
    assert table.loc[table["seed_split"] == "val", "path"].iloc[0].endswith(
        os.path.join("data1_val", "10.npz"))
    # Every indexed path is readable as a 4-frame cube.
    assert read_npz(table["path"].iloc[-1], frames=4).shape == (4, 32, 32)


def test_scan_seed_root_nested_data_separated(make_seed_npz_root):
    root = make_seed_npz_root(counts={"data1": 1, "data0_test": 2}, nested=True)
    table = scan_seed_root(root)
    assert table["seed_split"].tolist() == ["train", "test", "test"]
    assert table["label"].tolist() == [1, 0, 0]
    assert all("data separated" in path for path in table["path"])


def test_scan_seed_root_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing: seed data root not found"):
        scan_seed_root(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match=r"expected seed folders data0/, data1/ .* found none"):
        scan_seed_root(tmp_path)
    (tmp_path / "data1").mkdir()
    with pytest.raises(ValueError, match=r"expected <row>\.npz files in \['data1'\], found none"):
        scan_seed_root(tmp_path)
    np.savez_compressed(tmp_path / "data1" / "jet_7.npz", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"jet_7\.npz: expected a file named <catalogue row>\.npz "
                                         r"\(an integer\), received name 'jet_7\.npz'"):
        scan_seed_root(tmp_path)


# ------------------------------------------------------------------------ FITS folders


def test_read_fits_dir_real_aia_frames(aia_fits_dir, aia_cutout):
    cube = read_fits_dir(aia_fits_dir, frames=6, size=32)
    assert cube.shape == (6, 32, 32)
    assert cube.frames.dtype == np.float32
    assert cube.times[0] == "2013-03-10T12:00:11.341"
    assert cube.times[-1] == "2013-03-10T12:02:11.341"
    meta = cube.meta
    assert meta["wavelength_angstrom"] == 171
    assert meta["instrument"] == "AIA_3"
    assert meta["exposure_s"] == [2.0] * 6
    assert meta["cadence_s"] == pytest.approx(24.0)
    assert meta["wcs"]["CDELT1"] == pytest.approx(0.599488974)
    assert meta["pixel_scale_arcsec"] == pytest.approx(3 * 0.599488974)
    assert meta["wcs"]["CTYPE1"] == "HPLN-TAN"
    # Pixels are the real cutout's (Poisson-resampled): frame 0 tracks the source window.
    data, _ = aia_cutout
    expected = max_pool(data[None, 200:296, 150:246], 3)[0]
    correlation = np.corrcoef(cube.frames[0].ravel(), expected.ravel())[0, 1]
    assert correlation > 0.95
    # The fixture scales frame t by 1 + 2 % t.
    assert cube.frames[5].mean() / cube.frames[0].mean() == pytest.approx(1.10, abs=0.03)


def test_read_fits_dir_sorts_by_date_obs_not_name(make_aia_fits_dir, tmp_path):
    folder = make_aia_fits_dir(n_frames=3, native_size=30, directory=tmp_path / "f")
    files = sorted(folder.iterdir())
    # Rename so that alphabetical order is the reverse of time order.
    for index, file in enumerate(files):
        file.rename(folder / f"z{9 - index}.fits")
    cube = read_fits_dir(folder, pool=3)
    assert cube.meta["files"] == ["z9.fits", "z8.fits", "z7.fits"]
    assert cube.times == sorted(cube.times)


def test_read_fits_dir_exposure_normalise_and_plain_hdu(make_aia_fits_dir, tmp_path):
    folder = make_aia_fits_dir(n_frames=2, native_size=30, exptime_s=[2.0, 4.0],
                               compressed=False, suffix=".fts", directory=tmp_path / "p")
    raw = read_fits_dir(folder, pool=1)
    per_second = read_fits_dir(folder, pool=1, exposure_normalise=True)
    assert per_second.meta["exposure_normalised"] is True
    np.testing.assert_allclose(per_second.frames[0], raw.frames[0] / 2.0, rtol=1e-6)
    np.testing.assert_allclose(per_second.frames[1], raw.frames[1] / 4.0, rtol=1e-6)


def test_read_fits_dir_cadence_gap_names_files(make_aia_fits_dir, tmp_path):
    folder = make_aia_fits_dir(n_frames=4, native_size=30, gaps_s=[24, 48, 24],
                               directory=tmp_path / "gap")
    with pytest.raises(ValueError, match=r"gap: expected frames 24 \+- 6 s apart, received a gap "
                                         r"of 48\.0 s between aia\.lev1_euv_12s\.001\.image\.fits "
                                         r"and aia\.lev1_euv_12s\.002\.image\.fits"):
        read_fits_dir(folder)
    # A looser tolerance accepts it.
    assert read_fits_dir(folder, cadence_tolerance_s=30.0).shape == (4, 10, 10)


def test_read_fits_dir_frame_count_and_shape_errors(make_aia_fits_dir, tmp_path):
    folder = make_aia_fits_dir(n_frames=3, native_size=30, directory=tmp_path / "short")
    with pytest.raises(ValueError, match=r"short: expected 30 frames, received 3"):
        read_fits_dir(folder, frames=30)
    make_aia_fits_dir(n_frames=1, native_size=33, directory=tmp_path / "odd")
    (tmp_path / "odd" / "aia.lev1_euv_12s.000.image.fits").rename(folder / "later.fits")
    # later.fits has the first frame's time: sorted first or second, its shape differs.
    with pytest.raises(ValueError, match=r"expected every frame of .*short to be 3\dx3\d pixels"):
        read_fits_dir(folder)


def test_read_fits_dir_refuses_mixed_wavelengths(make_aia_fits_dir, tmp_path):
    folder = make_aia_fits_dir(n_frames=3, native_size=30, wavelength_angstrom=[171, 171, 304],
                               directory=tmp_path / "mixed")
    with pytest.raises(ValueError, match=r"002\.image\.fits: expected every frame of .*mixed at "
                                         r"WAVELNTH 171 \(as aia\.lev1_euv_12s\.000\.image"
                                         r"\.fits\), received 304"):
        read_fits_dir(folder)


def test_read_fits_dir_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent: FITS directory not found"):
        read_fits_dir(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: expected FITS frames \(\*\.fits, \*\.fits\.gz, "
                                         r"\*\.fts\), found none"):
        read_fits_dir(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "frame.fits").write_text("not a FITS file at all")
    with pytest.raises(ValueError, match=r"frame\.fits: expected a readable FITS file, received an "
                                         r"unreadable one"):
        read_fits_dir(tmp_path / "bad")


def test_read_fits_dir_full_disk_test_image(tmp_path):
    # sunpy's full-disk file: float data in HDU 0, T_OBS with a trailing Z.
    import shutil

    from sunpy.data.test import get_test_filepath

    (tmp_path / "disk").mkdir()
    shutil.copy(get_test_filepath("aia_171_level1.fits"), tmp_path / "disk" / "a.fits")
    cube = read_fits_dir(tmp_path / "disk", pool=4)
    assert cube.shape == (1, 32, 32)
    assert cube.times == ["2011-02-15T00:00:00.340"]
    assert cube.meta["wcs"]["CDELT1"] == pytest.approx(19.183648)


# ----------------------------------------------------------------------- dispatching


def test_read_cube_dispatch(aia_fits_dir, seed_npz_root, tmp_path):
    fits_cube = read_cube(aia_fits_dir, frames=6, cadence_s=24.0, pool=3)
    assert fits_cube.shape == (6, 32, 32)
    # FITS-only keywords are ignored for npz files.
    npz_cube = read_cube(seed_npz_root / "data0" / "1.npz", frames=4, pool=3, cadence_s=24.0)
    assert npz_cube.shape == (4, 32, 32)
    other = tmp_path / "cube.h5"
    other.write_bytes(b"\x89HDF")
    with pytest.raises(ValueError, match=r"cube\.h5: expected a \.npz cube or a directory of FITS "
                                         r"frames, received a '\.h5' file"):
        read_cube(other)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['frame'\]"):
        read_cube(other, frame=3)


def test_list_cubes_expands_arguments(aia_fits_dir, seed_npz_root, tmp_path):
    data0 = seed_npz_root / "data0"
    single = seed_npz_root / "data1" / "0.npz"
    found = list_cubes([data0, aia_fits_dir, single, single])
    assert found == [data0 / "0.npz", data0 / "1.npz", aia_fits_dir, single]
    assert list_cubes(str(single)) == [single]
    # A root of FITS event folders (as build_records --fits-root reads): one cube each.
    assert list_cubes([aia_fits_dir.parent]) == [aia_fits_dir]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match=r"nothing: expected \.npz cubes, FITS frames or "
                                         r"folders of FITS frames in this directory, found "
                                         r"none"):
        list_cubes([tmp_path / "nothing"])
    with pytest.raises(FileNotFoundError, match=r"ghost\.npz: cube not found"):
        list_cubes([tmp_path / "ghost.npz"])


# ----------------------------------------------------------------------- sunpy maps


def test_map_sequence_round_trip(aia_fits_dir):
    import sunpy.map

    from jetkeras.io import read_maps, to_map_sequence

    files = sorted(aia_fits_dir.iterdir())
    sequence = sunpy.map.Map([str(file) for file in files], sequence=True)
    assert isinstance(sequence, sunpy.map.MapSequence)
    from_sequence = read_maps(sequence, frames=6, size=32)
    from_folder = read_fits_dir(aia_fits_dir, frames=6, size=32)
    np.testing.assert_array_equal(from_sequence.frames, from_folder.frames)
    assert from_sequence.times == from_folder.times
    assert from_sequence.meta["wavelength_angstrom"] == 171.0
    assert from_sequence.meta["observatory"] == "SDO"
    # A plain list of maps, in reverse order, is sorted by time.
    reversed_list = read_maps(list(reversed(sequence.maps)), pool=3)
    np.testing.assert_array_equal(reversed_list.frames, from_folder.frames)

    # Cube -> MapSequence -> cube gives the cube back, pixels, times and coordinates.
    maps = to_map_sequence(from_folder)
    assert len(maps.maps) == 6 and maps.maps[0].data.shape == (32, 32)
    again = read_maps(maps, pool=1)
    np.testing.assert_array_equal(again.frames, from_folder.frames)
    assert again.times == from_folder.times
    assert again.meta["wavelength_angstrom"] == 171.0
    assert again.meta["exposure_s"] == [2.0] * 6
    # The pooled map's world coordinates point where the native pixels did.
    native = sequence.maps[0]
    pooled = maps.maps[0]
    assert pooled.scale.axis1.value == pytest.approx(3 * native.scale.axis1.value)
    centre_native = native.pixel_to_world(*(np.array([47.5, 47.5]) * u.pix))  # 96 px
    centre_pooled = pooled.pixel_to_world(*(np.array([15.5, 15.5]) * u.pix))  # 32 px
    assert centre_pooled.Tx.to_value(u.arcsec) == pytest.approx(
        centre_native.Tx.to_value(u.arcsec), abs=0.01)
    assert centre_pooled.Ty.to_value(u.arcsec) == pytest.approx(
        centre_native.Ty.to_value(u.arcsec), abs=0.01)


def test_read_maps_refuses_what_is_not_maps(aia_fits_dir):
    from jetkeras.io import read_maps

    with pytest.raises(ValueError, match=r"maps: expected a sunpy.map.MapSequence or a list of "
                                         r"sunpy Maps, received ndarray"):
        read_maps(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match=r"maps: expected one or more sunpy Maps, received "
                                         r"\['str'\]"):
        read_maps([str(aia_fits_dir)])
