"""Statements in the README and docstrings that the code can contradict, checked."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_names_exactly_the_commands_that_take_seed(capsys):
    """The README once said every command takes --seed; evaluate, export, predict, fetch do not."""
    import importlib

    readme = (ROOT / "README.md").read_text()
    sentence = re.search(r"The commands that draw random numbers take `--seed`:(.*?)\.",
                         readme, re.S)
    assert sentence, "README: the sentence naming the commands that take --seed is gone"
    said = set(re.findall(r"`(\w+)`", sentence.group(1)))
    commands = ["build_records", "bundle", "calibrate", "crossval", "demo", "ensemble", "evaluate",
                "export", "fetch", "predict", "realcheck", "train", "tune"]
    taking = set()
    for command in commands:
        try:
            importlib.import_module(f"jetkeras.{command}").main(["--help"])
        except SystemExit:
            pass
        if "--seed" in capsys.readouterr().out:
            taking.add(command)
    assert said == taking


def test_synthetic_docstring_states_the_contrast_law_of_the_code():
    from jetkeras import synthetic

    text = " ".join(synthetic.__doc__.split())
    stated = re.search(r"``contrast`` log-normal \(median ([\d.]+), sigma ([\d.]+)\)", text)
    assert stated, "synthetic: the docstring no longer states the contrast law"
    assert float(stated.group(1)) == synthetic.JET_CONTRAST_MEDIAN
    assert float(stated.group(2)) == synthetic.CONTRAST_SIGMA


def test_demo_docstring_and_flags_describe_what_runs(capsys):
    from jetkeras import demo

    assert "about 9 minutes" in demo.__doc__  # 30 frames of 128 px, 60 epochs, 2 cores
    try:
        demo.main(["--help"])
    except SystemExit:
        pass
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--workers WORKERS threads rendering sequences" in help_text
    assert "Dask" not in help_text


def test_catalogue_docstring_names_functions_that_exist():
    from jetkeras import catalogue

    for name in re.findall(r":func:`(\w+)`", catalogue.__doc__):
        assert callable(getattr(catalogue, name, None)), name
    assert "times(frame)" not in catalogue.__doc__


def _markdown_table(text: str, heading: str) -> dict[str, str]:
    """``| `name` | meaning |`` rows of the table under ``## heading``."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([^`]+)` \| (.*) \|$", section, re.M))


def test_rows_doc_lists_every_column_and_flag_as_the_code_defines_them():
    from jetkeras.quality import FLAGS
    from jetkeras.rows import COLUMNS, ROW_SCHEMA

    text = (ROOT / "docs" / "rows.md").read_text()
    assert f"`{ROW_SCHEMA}`" in text.splitlines()[0]
    assert _markdown_table(text, "Columns") == COLUMNS
    assert _markdown_table(text, "Quality flags") == FLAGS
    card = (ROOT / "docs" / "model_card.md").read_text()
    assert "docs/rows.md" in card or "rows.md" in card
    assert all(f"`{flag}`" in card for flag in FLAGS)
