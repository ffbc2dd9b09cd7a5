"""The environment is described once for pip (pyproject.toml) and once for conda (environment.yml)."""
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == declared


def test_jupyter_book_is_pinned_below_2_and_above_1():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "jupyter-book>=1,<2" in deps


def test_cli_lists_its_commands_and_models():
    out = subprocess.run([sys.executable, "-m", "ncutils", "--help"], capture_output=True, text=True, check=True)
    assert "models" in out.stdout and "train" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ncutils", "models", "--scale", "smoke"],
                         capture_output=True, text=True, check=True).stdout
    assert "resnet152" in out and "swin_l" in out
    assert any(line.split()[:2] == ["resnet152", "51"] for line in out.splitlines())
