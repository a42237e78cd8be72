"""bench/lofo.py end to end on tiny settings: a family left out of training, its renders
scored alone, one whole JSON line per finished cell, and a rerun that skips it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_leave_one_family_out_smoke_run_writes_and_resumes(tmp_path):
    out = tmp_path / "lofo.jsonl"
    command = [sys.executable, str(ROOT / "bench" / "lofo.py"), "--smoke", "--families",
               "loop", "--seeds", "0", "--work", str(tmp_path / "work"), "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    [cell] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (cell["family"], cell["seed"]) == ("loop", 0)
    assert 0.0 <= cell["held_out_flagged"] <= 1.0 and 0.0 <= cell["jet_recall"] <= 1.0
    assert cell["held_out_windows"] > 0 and cell["jets"] > 0
    build = json.loads((tmp_path / "work" / "loop_s0" / "records" / "build.json").read_text())
    assert "loop" not in build["nuisance"]["confuser_kinds"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert again.returncode == 0 and len(out.read_text().splitlines()) == 1
