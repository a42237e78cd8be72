"""Tests of the contact sheets and training curves (jetkeras.plotting)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jetkeras.cube import Cube
from jetkeras.plotting import contact_sheet, contact_sheets, frame_indices, training_curves


@pytest.fixture(scope="module")
def cube() -> Cube:
    rng = np.random.default_rng(0)
    frames = rng.gamma(2.0, 25.0, (12, 32, 32)).astype(np.float32)
    times = [f"2012-03-04T05:06:{second:02d}.000" for second in range(0, 48, 4)]
    return Cube(frames, source="test", times=times, meta={"event_id": "e1", "label": 1})


def test_frame_indices_are_even_and_keep_the_ends():
    assert frame_indices(30, 10).tolist() == [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]
    assert frame_indices(4, 10).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("stretch", ["sqrt", "log", "linear"])
def test_contact_sheet_writes_a_png(tmp_path, cube, stretch):
    path = contact_sheet(cube, tmp_path / "sub" / "sheet.png", max_frames=5, stretch=stretch,
                         title="jet e1")
    assert path == tmp_path / "sub" / "sheet.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width >= 5 * 100 and 100 <= height < width
    assert pixels.std() > 10  # not a blank picture
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was moved, not left


def test_contact_sheets_stack_rows_of_arrays_and_cubes(tmp_path, cube):
    single = contact_sheet(cube, tmp_path / "one.png")
    several = contact_sheets([cube, cube.frames[:3], cube.frames[:, :16, :16]],
                             tmp_path / "three.png", titles=["a", "b", "c"])
    with Image.open(single) as one, Image.open(several) as three:
        assert three.size[1] > 2.5 * one.size[1]
        assert three.size[0] == one.size[0]


def test_errors_name_the_option(tmp_path, cube):
    with pytest.raises(ValueError, match=r"`stretch` expects one of .* received 'cubic'"):
        contact_sheet(cube, tmp_path / "x.png", stretch="cubic")
    with pytest.raises(ValueError, match=r"`max_frames` expects an integer >= 1, received 0"):
        contact_sheet(cube, tmp_path / "x.png", max_frames=0)
    with pytest.raises(ValueError, match=r"x.jpg: expected a .png file name, received suffix '.jpg'"):
        contact_sheet(cube, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match=r"expected one title per cube \(2\), received 1"):
        contact_sheets([cube, cube], tmp_path / "x.png", titles=["only one"])
    with pytest.raises(ValueError, match=r"expected frames of shape \(n_frames, height, width\)"):
        contact_sheets([np.zeros((4, 4))], tmp_path / "x.png")


def test_training_curves_writes_a_png(tmp_path):
    history = {"epoch": [0, 1, 2], "loss": [0.7, 0.5, 0.4], "val_loss": [0.72, 0.6, float("nan")],
               "auc": [0.5, 0.7, 0.8], "val_auc": [0.5, 0.65, 0.7], "learning_rate": [1e-3] * 3}
    path = training_curves(history, tmp_path / "curves.png", title="run")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 600 and image.size[1] > 200
    with pytest.raises(ValueError, match=r"expected a history with at least one metric"):
        training_curves({"epoch": [0, 1]}, tmp_path / "none.png")
