"""What a notebook asks for: the tidy results of a list of runs, computed when missing or listed with the
command that computes them::

    configs = ncutils.studies.study_configs("clean", "cpu")
    frame = ncutils.results.results(configs)                   # computes what is missing
    found = ncutils.results.available(configs, compute=False)  # a book build: what is stored, and what is not
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable

import pandas as pd

from .config import RunConfig
from .experiment import RunRecord
from .store import Store
from .studies import STUDIES, study_configs


class MissingResults(LookupError):
    """Results were asked for with computing disabled and some runs are not stored.

    ``runs``: [(config, status)] of every run that is not stored.
    """

    def __init__(self, runs: list[tuple[RunConfig, str]], store: Store):
        self.runs = runs
        lines = [f"{len(runs)} run(s) are not in the results store {store.root} and computing is disabled:"]
        lines += [f"  {status:12s} {config.describe()}  key={config.key()}" for config, status in runs]
        lines.append("Compute them with")
        lines += [f"  {command}" for command in sweep_commands([c for c, _ in runs], store)]
        lines.append("or in Python: ncutils.results.results(configs, compute=True).")
        restores = [store.restore_command(c) for c, status in runs if status == "corrupt"]
        if any(restores):
            lines.append("Corrupt runs committed to git are restored in a second with")
            lines += [f"  {command}" for command in restores if command]
        super().__init__("\n".join(lines))


def sweep_commands(configs: list[RunConfig], store: Store) -> list[str]:
    """The ``python -m ncutils sweep`` commands that compute ``configs``: for each scale, the smallest
    registered study holding them all, or one per study when no single study does."""
    commands = []
    store_option = "" if store.root == Store().root else f" --store {store.root}"
    for scale in dict.fromkeys(c.scale for c in configs):
        wanted = {c.key() for c in configs if c.scale == scale}
        try:
            holding = {name: {c.key() for c in study_configs(name, scale)} for name in STUDIES}
        except ValueError:  # not a registered scale (a custom config)
            continue
        covering = sorted((len(keys), name) for name, keys in holding.items() if wanted <= keys)
        names = [covering[0][1]] if covering else [n for n, keys in holding.items() if wanted & keys]
        commands += [f"python -m ncutils sweep {name} --scale {scale}{store_option}" for name in names]
    return commands


CONFIG_COLUMNS = ("key", "scale", "model", "size", "dataset", "noise", "corruption", "targets", "seed", "epochs",
                  "n_per_class", "recipe")


def _config_columns(config: RunConfig) -> dict:
    """The config columns joined to every row of :func:`results` (in :data:`CONFIG_COLUMNS` order)."""
    return {"key": config.key(), "scale": config.scale, "model": config.model,
            "size": ",".join(f"{k}={v}" for k, v in config.size), "dataset": config.dataset,
            "noise": config.noise, "corruption": config.corruption, "targets": ",".join(config.targets),
            "seed": config.seed, "epochs": config.epochs, "n_per_class": config.n_per_class,
            "recipe": config.recipe}


def _records(configs: Iterable[RunConfig], compute: bool, store: Store | None, progress: bool) -> list[RunRecord]:
    from tqdm import tqdm

    store = store or Store()
    configs = list(dict.fromkeys(configs))
    statuses = {c: store.status(c) for c in configs}
    absent = [(c, s) for c, s in statuses.items() if s != "stored"]
    if absent and not compute:
        raise MissingResults(absent, store)
    for config, _ in tqdm(absent, desc="runs", unit="run", disable=not progress or not absent):
        store.ensure(config, progress=progress)
    return [store.read(c) for c in configs]


def _joined(records: list[RunRecord], part) -> pd.DataFrame:
    frames = []
    for r in records:
        frame = part(r)
        columns = _config_columns(r.config)
        frames.append(pd.concat([pd.DataFrame({k: [v] * len(frame) for k, v in columns.items()}),
                                 frame.reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CONFIG_COLUMNS))


def results(configs: Iterable[RunConfig], *, compute: bool = True, store: Store | None = None,
            progress: bool = True) -> pd.DataFrame:
    """One tidy DataFrame of the metrics of every run in ``configs``, config columns first.

    Runs not yet stored are computed (in this process, one after the other) when ``compute``;
    otherwise :class:`MissingResults` lists them with the command that computes them. Metric columns:
    eval_data, split, inputs, labels, features, layer, layer_index, measure, value, num_classes,
    num_samples, dim (see :mod:`ncutils.experiment`).
    """
    return _joined(_records(configs, compute, store, progress), lambda r: r.metrics)


def summaries(configs: Iterable[RunConfig], *, compute: bool = True, store: Store | None = None,
              progress: bool = True) -> pd.DataFrame:
    """One row per run: its accuracies (train_acc, test_acc, ...) and measured set sizes."""
    return _joined(_records(configs, compute, store, progress), lambda r: pd.DataFrame([r.summary]))


@dataclass(frozen=True)
class StudyResults:
    """What a chapter shows: the metrics and summaries of the stored runs, the runs still missing (with
    their status), and the configs of the stored runs (the study's grid, to select runs by field rather
    than by the table's string columns)."""

    metrics: pd.DataFrame
    summaries: pd.DataFrame
    missing: list[tuple[RunConfig, str]]
    store: Store
    stored: tuple[RunConfig, ...] = ()

    @property
    def configs(self) -> tuple[RunConfig, ...]:
        """The study's grid: the configs of every run, stored ones first, then the missing ones."""
        return self.stored + tuple(c for c, _ in self.missing)

    def missing_message(self) -> str:
        """Empty when complete; otherwise which runs are missing and the commands that compute them."""
        return str(MissingResults(self.missing, self.store)) if self.missing else ""

    def where(self, keep: Callable[[RunConfig], bool]) -> "StudyResults":
        """The runs (stored and missing) whose config ``keep`` accepts."""
        stored = tuple(c for c in self.stored if keep(c))
        keys = {c.key() for c in stored}
        return StudyResults(self.metrics[self.metrics.key.isin(keys)], self.summaries[self.summaries.key.isin(keys)],
                            [(c, s) for c, s in self.missing if keep(c)], self.store, stored)

    def seed_means(self) -> "StudyResults":
        """The runs that differ only in their seed as one: each metric and summary value is the mean over the
        stored seeds (column ``seeds`` counts them), under the key and config of the lowest seed stored; a
        config is missing when none of its seeds is stored."""
        def averaged(frame: pd.DataFrame, values: list[str]) -> pd.DataFrame:
            if frame.empty:
                return frame.assign(seeds=pd.Series(dtype=int))
            frame = frame.sort_values("seed", kind="stable")
            keys = [c for c in frame.columns if c not in values and c not in ("key", "seed")]
            grouped = frame.groupby(keys, dropna=False, sort=False)
            means = grouped[values].mean().join(grouped[["key", "seed"]].first()).join(grouped.size().rename("seeds"))
            return means.reset_index()[[*frame.columns, "seeds"]]

        summary_values = [c for c in self.summaries.columns
                          if c not in CONFIG_COLUMNS and pd.api.types.is_numeric_dtype(self.summaries[c])]
        first = {}
        for c in sorted(self.stored, key=lambda c: c.seed):
            first.setdefault(replace(c, seed=0), c)
        missing = [(c, s) for c, s in self.missing if replace(c, seed=0) not in first
                   and c.seed == min(m.seed for m, _ in self.missing if replace(m, seed=0) == replace(c, seed=0))]
        return StudyResults(averaged(self.metrics, ["value"]), averaged(self.summaries, summary_values), missing,
                            self.store, tuple(first.values()))


def available(configs: Iterable[RunConfig], *, compute: bool = False, store: Store | None = None,
              progress: bool = True) -> StudyResults:
    """The stored runs of ``configs`` (computing the missing ones first when ``compute``), and the rest.

    A book built from stored results shows what is there and says what is not, instead of failing.
    """
    store = store or Store()
    configs = list(dict.fromkeys(configs))
    if compute:  # every run ends up stored: read each once
        records, missing = _records(configs, True, store, progress), []
    else:
        statuses = {c: store.status(c) for c in configs}
        records = [store.read(c) for c, s in statuses.items() if s == "stored"]
        missing = [(c, s) for c, s in statuses.items() if s != "stored"]
    return StudyResults(_joined(records, lambda r: r.metrics), _joined(records, lambda r: pd.DataFrame([r.summary])),
                        missing, store, tuple(r.config for r in records))
