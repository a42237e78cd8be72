"""The sim-to-real check (jetkeras.realcheck) on a small folder in the real-jet layout."""

import numpy as np
import pandas as pd
import pytest

from jetkeras.realcheck import (
    NOISE_LAG1,
    WINDOW_FRAMES,
    load_windows,
    main,
    motion_removed,
    real_jet_check,
)


@pytest.fixture(scope="module")
def realjets(make_aia_frames, tmp_path_factory):
    """Real AIA pixels with a bright bar growing outward: one 15-frame 'single' subject
    and one 65-frame 'chain', in the folder layout of ../shared/data/realjets."""
    root = tmp_path_factory.mktemp("realjets")
    (root / "sequences").mkdir()
    rows = []
    for name, kind, count, agreement in (("single_1", "single", 15, "agreement80"),
                                         ("chain_1", "chain", 65, "agreement60")):
        frames = make_aia_frames(count, 24, seed=len(name)) * 0.5
        for t in range(count):
            frames[t, 10:13, 12:12 + min(11, 2 + t)] += 200.0  # the jet grows outward
        np.savez(root / "sequences" / f"{name}.npz",
                 frames=np.clip(frames, 0, 65535).astype(np.uint16))
        rows.append({"file": f"sequences/{name}.npz", "kind": kind, "frames": count,
                     "group": f"scene_{name}", "agreement": agreement,
                     "subject_ids": "1", "cadence_s": "24"})
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    return root


def test_windows_follow_the_folder_readme(realjets):
    windows = load_windows(realjets)
    # single: 15 frames used twice -> one window; chain: 65 frames -> two (tail dropped).
    assert [(w["name"], w["start"]) for w in windows] == [("single_1", 0), ("chain_1", 0),
                                                          ("chain_1", 30)]
    assert all(w["frames"].shape == (WINDOW_FRAMES, 24, 24) for w in windows)
    single = windows[0]["frames"]
    np.testing.assert_array_equal(single[0], single[1])  # each subject frame twice


def test_motion_removed_copies(realjets):
    frames = load_windows(realjets)[1]["frames"]
    rng = np.random.default_rng(0)
    shuffled = motion_removed(frames, "shuffled", rng)
    assert sorted(map(float, shuffled.sum(axis=(1, 2)))) == sorted(map(float,
                                                                        frames.sum(axis=(1, 2))))
    frozen = motion_removed(frames, "frozen", rng)
    middle = frames[WINDOW_FRAMES // 2]
    noise = frozen - middle[None]
    assert abs(noise.mean()) < 0.5  # fresh zero-mean noise around one still frame
    level = middle > 50
    expected = 0.1 * np.power(middle[level], 0.92)
    assert np.std(noise[:, level] / expected) == pytest.approx(1.0, rel=0.1)
    lag1 = np.corrcoef(noise[:, :, :-1].ravel(), noise[:, :, 1:].ravel())[0, 1]
    assert lag1 == pytest.approx(NOISE_LAG1, abs=0.08)
    with pytest.raises(ValueError, match="expected kind 'frozen' or 'shuffled', received 'x'"):
        motion_removed(frames, "x", rng)


def test_check_scores_each_window_and_its_copies(realjets, tiny_run):
    from jetkeras.runtime import load_predictor

    predictor = load_predictor(tiny_run["run"])
    result = real_jet_check(predictor, realjets, seed=0)
    assert result["windows"] == 3 and result["groups"] == 2
    assert len(result["rows"]) == 9
    assert sorted(r["copy"] for r in result["rows"]) == ["frozen"] * 3 + ["none"] * 3 + \
        ["shuffled"] * 3
    for key in ("auc", "auc_frozen", "auc_shuffled", "recall"):
        assert 0.0 <= result[key] <= 1.0
    jets = [r["probability"] for r in result["rows"] if r["copy"] == "none"]
    assert result["recall"] == pytest.approx(np.mean(np.array(jets) >= result["threshold"]))
    assert result["mean_score_agreement60"] == pytest.approx(np.mean(jets[1:]))


def test_cli_writes_scores_and_names_a_bad_folder(realjets, tiny_run, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["--model", str(tiny_run["run"]), "--realjets", str(realjets),
                 "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 9
    assert main(["--model", str(tiny_run["run"]), "--realjets", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "without index.csv" in error[0]
