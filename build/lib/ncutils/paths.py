"""Where the datasets, the results store and the cache live: the checkout's own folders, or user-level ones.

Run from a checkout of this repository, ``ncutils`` keeps the book's layout: ``data/`` (datasets,
git-ignored), ``data/results/`` (the committed results) and ``cache/``. Installed as a library (from
a wheel or a git URL) it never writes into the installed package: everything goes under
``$NCUTILS_HOME`` (default ``$XDG_CACHE_HOME/ncutils``, i.e. ``~/.cache/ncutils``). The environment
variables ``NCUTILS_DATA``, ``NCUTILS_RESULTS`` and ``NCUTILS_CACHE`` override each place.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def checkout() -> Path | None:
    """The repository root when the package runs from a checkout of this project, else None."""
    root = PACKAGE_PARENT
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and (root / "notebooks").is_dir() and 'name = "ncutils"' in pyproject.read_text():
        return root
    return None


def home() -> Path:
    """The user-level folder of an installed ``ncutils``."""
    if os.environ.get("NCUTILS_HOME"):
        return Path(os.environ["NCUTILS_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "ncutils"


def _place(variable: str, in_checkout: str, in_home: str) -> Path:
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser()
    root = checkout()
    return root / in_checkout if root is not None else home() / in_home


def data_root() -> Path:
    """The datasets: ``$NCUTILS_DATA``, else ``data/`` of the checkout, else ``<home>/data``."""
    return _place("NCUTILS_DATA", "data", "data")


def results_root() -> Path:
    """The results store: ``$NCUTILS_RESULTS``, else ``data/results`` of the checkout, else ``<home>/results``."""
    return _place("NCUTILS_RESULTS", "data/results", "results")


def cache_root() -> Path:
    """Checkpoints and job logs: ``$NCUTILS_CACHE``, else ``cache/`` of the checkout, else ``<home>/cache``."""
    return _place("NCUTILS_CACHE", "cache", "cache")
