"""Tests of jetkeras.evaluate and jetkeras.figures: metrics, report folder, figures, GIFs."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jetkeras import evaluate as evaluate_module
from jetkeras import figures
from jetkeras.metrics import classification_metrics

# Six sequences by hand: predicted at 0.5 -> [1, 1, 0, 1, 0, 0].
LABELS = np.array([1, 1, 1, 0, 0, 0])
PROBABILITIES = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.3])


def test_metrics_match_hand_computed_values():
    metrics = classification_metrics(LABELS, PROBABILITIES, 0.5)
    # tp = 2 (0.9, 0.6), fn = 1 (0.2), fp = 1 (0.7), tn = 2 (0.1, 0.3).
    assert metrics["confusion_matrix"] == [[2, 1], [1, 2]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # Positive-negative pairs ranked right: 0.9 beats 3, 0.6 beats 2, 0.2 beats 1 -> 6 / 9.
    assert metrics["roc_auc"] == pytest.approx(6 / 9)
    # Ranked 0.9 P, 0.7 N, 0.6 P, 0.3 N, 0.2 P: precision at each hit 1, 2/3, 3/5.
    assert metrics["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # At 0.25 the 0.2 jet is still missed, the 0.3 and 0.7 negatives are false alarms.
    low = classification_metrics(LABELS, PROBABILITIES, 0.25)
    assert low["confusion_matrix"] == [[1, 2], [1, 2]]


def test_threshold_sweep_agrees_with_metrics():
    sweep = figures.threshold_sweep(LABELS, PROBABILITIES, thresholds=[0.0, 0.25, 0.5, 0.95])
    assert sweep["f1"][2] == pytest.approx(2 / 3)
    assert sweep["accuracy"][2] == pytest.approx(4 / 6)
    # Everything is a jet at 0: precision 1/2, recall 1, F1 2/3, accuracy 1/2.
    assert sweep["f1"][0] == pytest.approx(2 / 3)
    assert sweep["accuracy"][0] == pytest.approx(0.5)
    assert sweep["accuracy"][1] == pytest.approx(3 / 6)
    # Nothing is a jet at 0.95: F1 0, accuracy 1/2.
    assert sweep["f1"][3] == 0.0 and sweep["accuracy"][3] == pytest.approx(0.5)


def test_figures_are_images_of_the_stated_size(tmp_path):
    roc = figures.roc_figure(LABELS, PROBABILITIES, tmp_path / "roc.png", threshold=0.5)
    pr = figures.precision_recall_figure(LABELS, PROBABILITIES, tmp_path / "pr.png")
    sweep = figures.threshold_figure(LABELS, PROBABILITIES, tmp_path / "t.png", threshold=0.1)
    confusion = figures.confusion_figure([[2, 1], [1, 2]], tmp_path / "c.png")
    for path in (roc, pr, sweep):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (640, 480)
            # Not a blank canvas: lines and text leave many distinct colours.
            assert len(image.convert("RGB").getcolors(1 << 20)) > 20
    with Image.open(confusion) as image:
        assert image.size == (480, 400)
    with pytest.raises(ValueError, match=r"c\.png: expected a 2x2 confusion matrix"):
        figures.confusion_figure([[1, 2, 3]], tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"expected a \.png file name"):
        figures.roc_figure(LABELS, PROBABILITIES, tmp_path / "roc.jpg")


def test_sequence_gif_has_one_image_per_frame(tmp_path, make_aia_frames):
    frames = make_aia_frames(n_frames=5, size=32)
    path = figures.sequence_gif(frames, tmp_path / "seq.gif", title="test", size_px=200)
    with Image.open(path) as image:
        assert image.format == "GIF"
        assert image.size == (200, 200)
        assert image.n_frames == 5
    with pytest.raises(ValueError, match=r"seq\.png: expected a \.gif file name"):
        figures.sequence_gif(frames, tmp_path / "seq.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq.gif"]


def test_evaluate_writes_a_consistent_report(tiny_run, tmp_path):
    from jetkeras.pipeline import iterate_records
    from jetkeras.runtime import load_predictor

    out = tmp_path / "report"
    metrics = evaluate_module.evaluate(run=tiny_run["run"], records=tiny_run["records"],
                                       out=out, max_gifs=1)
    names = sorted(p.name for p in out.iterdir())
    assert [name for name in names if name != "jets"] == [
        "confusion.png", "metrics.json", "misclassified", "precision_recall.png",
        "predictions.csv", "report.md", "roc.png", "threshold.png"]
    stored = json.loads((out / "metrics.json").read_text())
    assert stored == metrics
    with open(out / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    records = list(iterate_records(tiny_run["records"], "test"))
    assert [row["event_id"] for row in rows] == [r["event_id"] for r in records]
    labels = np.array([int(row["label"]) for row in rows])
    probabilities = np.array([float(row["probability"]) for row in rows])
    assert labels.tolist() == [r["label"] for r in records]
    # The probabilities are the predictor's on the records' DN frames.
    predictor = load_predictor(tiny_run["run"])
    expected = predictor.predict_proba(np.stack([r["frames"][..., 0] for r in records]))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    threshold = json.loads((tiny_run["run"] / "threshold.json").read_text())["threshold"]
    assert stored["threshold"] == pytest.approx(threshold)
    recomputed = classification_metrics(labels, probabilities, threshold)
    for key in ("accuracy", "precision", "recall", "f1", "confusion_matrix", "count"):
        assert stored[key] == recomputed[key]
    assert stored["at_0.5"] == classification_metrics(labels, probabilities, 0.5)
    wrong = int(np.sum((probabilities >= threshold).astype(int) != labels))
    assert stored["misclassified"] == wrong
    gifs = list((out / "misclassified").glob("*.gif"))
    assert len(gifs) == min(1, wrong)
    for gif in gifs:
        with Image.open(gif) as image:
            assert image.n_frames == tiny_run["config"].data.frames
    report = (out / "report.md").read_text()
    # The most confident sequence called a jet is measured and drawn; only jets carry
    # the measurement columns.
    called = [row for row in rows if row["predicted"] == "1"]
    assert all(row["length_arcsec"] != "" for row in called)
    assert all(row["base_row"] == "" for row in rows if row["predicted"] == "0")
    pictures = list((out / "jets").glob("*.png")) if "jets" in names else []
    assert len(pictures) == min(1, len(called))
    best = max(called, key=lambda row: float(row["probability"]), default=None)
    if best is not None:
        assert pictures[0].name == f"{best['event_id']}.png"
        assert f"![{best['event_id']}](jets/{best['event_id']}.png)" in report
    assert "![ROC](roc.png)" in report and "[[110, 18], [2, 130]]" in report
    assert "HEK event" in report and "0.923" in report


def test_evaluate_refuses_bad_input_and_leaves_nothing(tiny_run, tmp_path, monkeypatch,
                                                       capsys):
    out = tmp_path / "report"
    out.mkdir()
    code = evaluate_module.main(["--run", str(tiny_run["run"]), "--records",
                                 str(tiny_run["records"]), "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"evaluate: error: {out}: already exists; pass --overwrite to replace it or "
        f"choose another folder")
    code = evaluate_module.main(["--run", str(tmp_path / "missing"), "--records",
                                 str(tiny_run["records"]), "--out", str(tmp_path / "r2")])
    assert code == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'missing'}: run folder or SavedModel not found" in error
    assert "--model" not in error  # evaluate takes --run: the library names the folder
    with pytest.raises(ValueError, match=r"--max-gifs: expected an integer >= 0"):
        evaluate_module.evaluate(run=tiny_run["run"], records=tiny_run["records"],
                                 out=tmp_path / "r3", max_gifs=-1)

    # A failure while writing the figures leaves no half-written report behind.
    def broken(*args, **kwargs):
        raise ValueError("confusion figure failed")

    monkeypatch.setattr(figures, "confusion_figure", broken)
    with pytest.raises(ValueError, match="confusion figure failed"):
        evaluate_module.evaluate(run=tiny_run["run"], records=tiny_run["records"],
                                 out=tmp_path / "r4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
