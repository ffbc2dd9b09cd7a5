"""ncutils installed from its wheel (not editable) works outside the repository and never writes into the
installed package: `profile` measures a model, `run` keeps its store and cache in the user-level home."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def files_under(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed (without dependencies: the test's environment has them)
    into a fresh folder; returns (site folder, environment running Python from it, a working directory)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # a copy: building in the checkout would leave build/ in it
    shutil.copytree(REPO / "ncutils", source / "ncutils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("ncutils-*.whl"))
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NCUTILS_") or k == "NCUTILS_DATA"}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp / "home-cache"), NCUTILS_DATA=str(
        Path(os.environ.get("NCUTILS_DATA", REPO / "data")).resolve()))
    work = tmp / "elsewhere"
    work.mkdir()
    found = subprocess.run([sys.executable, "-c", "import ncutils; print(ncutils.__file__)"], env=env, cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == str(site / "ncutils" / "__init__.py"), f"imported {found}, not the installed wheel"
    return site, env, work


def test_profile_from_an_installed_wheel_writes_nothing_into_the_package(installed, cifar_root):
    site, env, work = installed
    before = files_under(site)
    out = subprocess.run([sys.executable, "-m", "ncutils", "profile", "mlp", "--n-per-class", "5", "--out", "prof"],
                         env=env, cwd=work, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (work / "prof" / "layers.parquet").is_file() and (work / "prof" / "layers.png").is_file()
    assert "penultimate" in out.stdout
    assert files_under(site) == before


def test_run_from_an_installed_wheel_keeps_its_store_in_the_user_home(installed, cifar_root):
    site, env, work = installed
    before, here = files_under(site), files_under(work)
    command = [sys.executable, "-m", "ncutils", "run", "mlp", "--scale", "smoke", "--epochs", "1", "--n-per-class", "5",
               "--eval-n-per-class", "5", "--no-probe"]
    first = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    home = Path(env["XDG_CACHE_HOME"]) / "ncutils"
    assert len(list((home / "results" / "runs").glob("mlp-cifar10-*"))) == 1
    assert list((home / "cache" / "checkpoints").glob("*.pt"))
    again = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=True)
    assert again.stdout.startswith("stored: ")
    assert files_under(site) == before and files_under(work) == here
