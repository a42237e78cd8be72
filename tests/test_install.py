"""The install layout: TensorFlow comes from exactly one extra, never from the base."""

import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from jetkeras import _cli

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
TENSORFLOW_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu"}


def _tensorflows(requirements, machine, system="Linux"):
    """The TensorFlow distributions these requirements install on one platform."""
    environment = {**default_environment(), "platform_machine": machine,
                   "platform_system": system, "sys_platform": system.lower(), "extra": ""}
    found = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            if requirement.name.lower() in TENSORFLOW_DISTRIBUTIONS:
                found.append(requirement.name.lower())
    return found


@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "AMD64", "arm64"])
def test_each_install_holds_exactly_one_tensorflow(machine):
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    base = project["dependencies"]
    extras = project["optional-dependencies"]
    assert _tensorflows(base, machine) == []  # an extra can add, never remove, a build
    for name in ("cpu", "gpu", "jax-gpu"):
        assert len(_tensorflows(base + extras[name], machine)) == 1, (name, machine)
    assert _tensorflows(extras["gpu"], machine) == ["tensorflow"]  # with [and-cuda]
    assert "and-cuda" in Requirement(extras["gpu"][0]).extras
    # The other extras add no TensorFlow of their own.
    for name in ("dev", "jax", "bench"):
        assert _tensorflows(extras[name], machine) == [], name


def test_missing_tensorflow_is_one_line(capsys):
    def train_without_tensorflow():
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    assert _cli.run_main(train_without_tensorflow, "python -m jetkeras.train") == 2
    error = capsys.readouterr().err.strip()
    assert error == ("python -m jetkeras.train: error: TensorFlow is not installed; install "
                     "exactly one build: pip install 'jetkeras[cpu]' (or 'jetkeras[gpu]' on "
                     "a CUDA machine)")

    def other_missing_module():
        raise ModuleNotFoundError("No module named 'glymur'", name="glymur")

    with pytest.raises(ModuleNotFoundError):
        _cli.run_main(other_missing_module, "x")
