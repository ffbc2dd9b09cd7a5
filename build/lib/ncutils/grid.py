"""A custom grid of runs from a YAML file: models x datasets x label noises x corruptions x seeds at a scale.

    # grid.yaml (python -m ncutils sweep --grid grid.yaml [--dry-run] [--workers 2])
    scale: cpu                         # the sizes and budgets of every run (smoke, cpu, paper)
    models: [resnet18, swin_t]
    datasets: [cifar10]                # default [cifar10]
    noise: [clean, "random:0.4"]       # default [clean]
    corruption: [clean]                # default [clean]
    seeds: [0, 1, 2]                   # default [0]
    fields: {epochs: 100, probe_method: converged}   # any other RunConfig field, for every run

Every run goes through :class:`~ncutils.config.RunConfig`, so a grid's runs share stored results with
the book's studies wherever they coincide.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from .config import RunConfig

AXES = {"models": None, "datasets": ["cifar10"], "noise": ["clean"], "corruption": ["clean"], "seeds": [0]}
KEYS = ("scale", *AXES, "fields")


def grid_configs(spec: dict) -> list[RunConfig]:
    """The runs of a grid given as a dict (the YAML's content), in the order models, datasets, noise,
    corruption, seeds vary (the last fastest); ValueError naming what is wrong and what is valid."""
    if not isinstance(spec, dict):
        raise ValueError(f"a grid is a mapping of {', '.join(KEYS)}; got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown grid keys {unknown}; valid: {', '.join(KEYS)}")
    if "scale" not in spec or "models" not in spec:
        raise ValueError("a grid needs 'scale' (smoke, cpu or paper) and 'models' (a list of model names)")
    axes = {}
    for axis, default in AXES.items():
        values = spec.get(axis, default)
        values = [values] if isinstance(values, (str, int)) else values
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid key {axis!r} must be a non-empty list, got {values!r}")
        axes[axis] = values
    fields = spec.get("fields") or {}
    if not isinstance(fields, dict):
        raise ValueError(f"grid key 'fields' must be a mapping of RunConfig fields, got {fields!r}")
    fixed = sorted(set(fields) & {"model", "dataset", "noise", "corruption", "seed", "scale"})
    if fixed:
        raise ValueError(f"fields {fixed} are axes of the grid: list them under models, datasets, noise, "
                         "corruption, seeds or scale")
    return [RunConfig.at_scale(model, dataset, spec["scale"], noise=noise, corruption=corruption, seed=seed, **fields)
            for model, dataset, noise, corruption, seed in itertools.product(*axes.values())]


def read_grid(path: str | Path) -> list[RunConfig]:
    """The runs of the grid in the YAML file ``path``."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ValueError(f"cannot read the grid file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"the grid file {path} is not valid YAML: {error}".splitlines()[0]) from None
    return grid_configs(spec)
