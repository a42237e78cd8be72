"""Every command's --help: plain text, an example line, a default on every flag that has one."""

import importlib
import re

import pytest

from jetkeras import _cli

COMMANDS = ["build_records", "train", "tune", "evaluate", "export", "predict", "crossval",
            "demo", "bundle", "realcheck", "ensemble", "fetch", "hek", "survey", "calibrate"]


def _help(name, capsys, monkeypatch):
    """``(text, parser)`` of ``python -m jetkeras.<name> --help``, run in this process."""
    monkeypatch.setenv("COLUMNS", "80")
    built = []
    original = _cli.make_parser

    def keep(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(_cli, "make_parser", keep)
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"jetkeras.{name}").main(["--help"])
    assert exit_info.value.code == 0
    assert len(built) == 1, f"{name}: expected its parser from _cli.make_parser"
    return capsys.readouterr().out, built[0]


def _options(text):
    """``{"--flag": "its help text"}`` from the "options:" section of a --help page."""
    section = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    options, current = {}, None
    for line in section.splitlines():
        found = re.match(r"  (-\w, )?(--[\w-]+)(?: \S+)*(?:  +(.*))?$", line)
        if found:
            current = found.group(2)
            options[current] = found.group(3) or ""
        elif current:
            options[current] += " " + line.strip()
    return options


@pytest.mark.parametrize("name", COMMANDS)
def test_help_is_plain_text_with_an_example(name, capsys, monkeypatch):
    text, _ = _help(name, capsys, monkeypatch)
    for markup in ("``", ":func:", ":mod:", ":class:", ":meth:"):
        assert markup not in text, f"{name} --help shows reST markup {markup!r}"
    assert text.startswith(f"usage: python -m jetkeras.{name} ")
    description = text.split("\n\n")[1]
    assert len(description.split()) >= 8, description  # says what the command does
    examples = text.split("\nexamples:\n", 1)[1]
    assert re.search(rf"^  python -m jetkeras\.{name} --?\w", examples, re.MULTILINE), examples
    assert max(len(line) for line in (description + "\n" + examples).splitlines()) <= 80


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_with_a_default_says_it(name, capsys, monkeypatch):
    text, parser = _help(name, capsys, monkeypatch)
    options = _options(text)
    missing = []
    for action in parser._actions:
        flags = [flag for flag in action.option_strings if flag.startswith("--")]
        if not flags or flags[0] == "--help":
            continue
        assert flags[0] in options, (flags[0], sorted(options))
        if action.default not in (None, False) and "default" not in options[flags[0]]:
            missing.append(f"{flags[0]} (default {action.default!r})")
    assert not missing, f"{name}: no default in the help of {missing}"


def test_predict_stride_is_given_in_grid_steps_and_seconds(capsys, monkeypatch):
    stride = _options(_help("predict", capsys, monkeypatch)[0])["--stride"]
    assert "grid steps between window starts" in stride
    assert "default 1 = 24 s" in stride


def test_long_examples_break_before_a_flag_and_keep_its_value():
    text = _cli._example_lines("python -m jetkeras.tune --records tfrecords/seed --space "
                               "tuning/seed_grid.json --tuner grid --out tuning/runs/x", 60)
    assert text.splitlines() == [
        "  python -m jetkeras.tune --records tfrecords/seed \\",
        "      --space tuning/seed_grid.json --tuner grid \\",
        "      --out tuning/runs/x",
    ]
