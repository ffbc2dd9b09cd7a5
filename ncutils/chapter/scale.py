"""The scale chapter's tables: the size of every run of the book, its cost (estimated and measured), whether
it reached the terminal phase, and the provenance of the data it read."""
from __future__ import annotations

import pandas as pd

from ..config import RunConfig
from ..estimate import measured_by_cpu, measured_seconds, plan
from ..experiment import RunRecord
from ..frames import TERMINAL
from ..results import StudyResults
from ..studies import STUDIES

WORKERS = 2  # runs computed at a time, one thread each
BUDGET_HOURS, BUDGET_RUN_MINUTES = 20, 90  # CPU-hours of the book's runs, and of its longest (issue 15)
LADDER_BUDGET_HOURS, LADDER_RUN_MINUTES = 6, 150  # the data-scale study's own runs (issue 19)
LADDER = "data_scale"
CLASSES = 10  # of the CIFAR and Fashion-MNIST runs


def records(found: StudyResults) -> dict[RunConfig, RunRecord]:
    """Every stored run, read once."""
    return {c: found.store.read(c) for c in found.stored}


def steps(c: RunConfig) -> int | None:
    """SGD steps of a run on a class-balanced subset (the last partial batch is dropped); None otherwise."""
    n = c.n_per_class * CLASSES if c.n_per_class else None
    return c.epochs * (n // c.batch_size) if n else None


def sizes(configs: list[RunConfig], scale: str) -> tuple[str, pd.DataFrame]:
    """(a line counting runs and models, one row per distinct model size and budget)."""
    rows = [{"model": c.model, "size": ", ".join(f"{k}={v}" for k, v in c.size) or "paper",
             "dataset": c.dataset, "images/class": c.n_per_class or "all", "image size": c.image_size or "stored",
             "epochs": c.epochs, "batch": c.batch_size, "recipe": c.recipe,
             "SGD steps": steps(c) if not c.targets else "-"}
            for c in configs]
    table = pd.DataFrame(rows).drop_duplicates().reset_index(drop=True)
    line = f"{scale} scale: {len(configs)} runs of {table.model.nunique()} models"
    return line, table.drop_duplicates(subset=["model", "size", "dataset", "epochs", "batch", "recipe"])


def cost(configs: list[RunConfig], found: StudyResults, runs: dict[RunConfig, RunRecord],
         scale: str) -> tuple[str, pd.DataFrame]:
    """(the whole scale's hours against the budget, one row per run of ``configs``: estimated and measured
    minutes; the estimate calibrated by the stored runs of one thread)."""
    estimate = plan(configs, found.store, threads=1)
    measured = [{"key": c.key(), "measured min": measured_seconds(r) / 60,
                 "measured by": "CPU time" if measured_by_cpu(r) else "wall time",
                 "wall min": r.provenance["seconds"]["total"] / 60, "threads": r.provenance["torch_threads"],
                 "device": r.provenance["device"]} for c, r in runs.items()]
    columns = ["key", "measured min", "measured by", "wall min", "threads", "device"]
    table = estimate.merge(pd.DataFrame(measured, columns=columns), on="key", how="left")
    table["estimated min"] = table.hours * 60
    table["minutes"] = table["measured min"].astype(float).fillna(table["estimated min"])
    ladder = set(ladder_only(configs, scale))
    table["part"] = ["data-scale ladder" if c in ladder else "the book" for c in plan_configs(configs)]
    line = (f"{scale} scale, measured where stored and estimated otherwise: " + budget_lines(table, "minutes")
            + f"; {table['measured min'].notna().sum()} of {len(table)} runs measured "
              f"({(table['measured by'] == 'CPU time').sum()} by their CPU time, "
              f"{(table['measured by'] == 'wall time').sum()} by wall time, which counts any wait for a shared "
              f"core); {WORKERS} runs at a time take about {table.minutes.sum() / 60 / WORKERS:.1f} h of the machine. "
              f"By the estimate alone: {budget_lines(table, 'estimated min')}{calibration(table)}")
    columns = ["status", "run", "part", "estimated min", "measured min", "measured by", "wall min", "threads"]
    return line, table[columns].round(1)


def budget_lines(table: pd.DataFrame, minutes: str) -> str:
    """Each part's CPU-hours and longest run by the ``minutes`` column of a :func:`cost` table, against its budgets."""
    lines = []
    for part, budget, longest in (("the book", BUDGET_HOURS, BUDGET_RUN_MINUTES),
                                  ("data-scale ladder", LADDER_BUDGET_HOURS, LADDER_RUN_MINUTES)):
        spent = table[minutes][table.part == part]
        if len(spent):
            lines.append(f"{part}: {spent.sum() / 60:.1f} CPU-hours over {len(spent)} runs (budget {budget} h), "
                         f"longest {spent.max():.0f} min (budget {longest} min)")
    return "; ".join(lines)


def calibration(table: pd.DataFrame) -> str:
    """How the estimate compares with the runs of a :func:`cost` table measured by their CPU time and by wall time
    (their measured minutes over their estimated ones)."""
    out = []
    for by in ("CPU time", "wall time"):
        runs = table[table["measured by"] == by]
        if len(runs):
            ratio = runs["measured min"].sum() / runs["estimated min"].sum()
            out.append(f"the {len(runs)} runs measured by {by} took {ratio:.2f} times their estimate")
    return f" ({', '.join(out)})" if out else ""


def ladder_only(configs: list[RunConfig], scale: str) -> list[RunConfig]:
    """The runs of ``configs`` that only the data-scale study has (its larger rungs)."""
    others = {c for name, study in STUDIES.items() if name not in (LADDER, "all_runs") for c in study(scale)}
    return [c for c in dict.fromkeys(configs) if c in set(STUDIES[LADDER](scale)) and c not in others]


def plan_configs(configs: list[RunConfig]) -> list[RunConfig]:
    """``configs`` once each, in order: the rows of :func:`ncutils.estimate.plan`."""
    return list(dict.fromkeys(configs))


def rung_cost(configs: list[RunConfig], cost_table: pd.DataFrame, scale: str, summaries: pd.DataFrame) -> pd.DataFrame:
    """Per rung of the data-scale ladder (training images per class): its runs, epochs, SGD steps, minutes
    (measured where stored), from :func:`cost`'s table, and the lowest training accuracy of its stored runs
    on the labels they trained with (``summaries``: the stored runs' rows), against :data:`TERMINAL`."""
    rows = cost_table.assign(config=plan_configs(configs))
    rows = rows[rows.config.isin(set(STUDIES[LADDER](scale)))]
    fit = summaries.set_index("key").train_acc if not summaries.empty else pd.Series(dtype=float)
    rows = rows.assign(train_acc=rows.config.map(lambda c: fit.get(c.key())))
    return pd.DataFrame([{"images per class": n or "all", "runs": len(group),
                          "epochs": ", ".join(sorted({str(c.epochs) for c in group.config})),
                          "SGD steps": ", ".join(sorted({str(steps(c)) for c in group.config})),
                          "measured min": group["measured min"].sum(),
                          "runs measured": group["measured min"].notna().sum(),
                          "estimated min (all runs)": group["estimated min"].sum(),
                          "lowest train accuracy": group.train_acc.min(),
                          f"runs below {TERMINAL:.0%}": int((group.train_acc < TERMINAL).sum())}
                         for n, group in rows.groupby(rows.config.map(lambda c: c.n_per_class or 10**9))]).round(
        {"measured min": 1, "estimated min (all runs)": 1, "lowest train accuracy": 3})


def terminal(summaries: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(how many clean trained runs fall short of the terminal phase, every run's accuracies)."""
    if summaries.empty:
        return "no stored runs yet", pd.DataFrame()
    table = summaries.reindex(columns=["model", "size", "dataset", "noise", "corruption", "recipe", "epochs",
                                       "train_acc", "test_acc"]).copy()
    clean = (table.noise == "clean") & (table.corruption == "clean") & (table.epochs > 0)
    table["terminal phase"] = (table.train_acc >= TERMINAL).map({True: "yes", False: "no"})
    table.loc[table.epochs == 0, "terminal phase"] = "at initialisation"
    short = table[clean & (table.train_acc < TERMINAL)]
    line = (f"{int(clean.sum())} clean trained runs stored; {len(short)} short of {TERMINAL:.0%} training accuracy"
            + ("" if short.empty else ": " + ", ".join(f"{r.model} {r.dataset} ({r.train_acc:.3f})"
                                                       for r in short.itertuples())))
    return line, table.round(4)


def training_logs(runs: dict[RunConfig, RunRecord]) -> pd.DataFrame:
    """The per-epoch training log of every trained run, with a ``run`` column naming it and its ``model``."""
    logs = [r.train_log.assign(run=f"{c.model} {c.dataset}" + ("" if c.noise == "clean" else f" {c.noise}")
                                   + ("" if c.corruption == "clean" else f" {c.corruption}") + f" seed {c.seed}",
                               model=c.model)
            for c, r in runs.items() if c.epochs > 0]
    return pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()


def provenance(runs: dict[RunConfig, RunRecord]) -> pd.DataFrame:
    """Per dataset read: whether its files matched the official checksums, else the copy's note."""
    notes = {}
    for r in runs.values():
        for info in r.provenance["data"].values():
            notes.setdefault(info["name"], set()).add(info.get("note", "official checksums") if not
                                                     info.get("official_checksums", True) else "official checksums")
    return pd.DataFrame([{"dataset": k, "provenance": "; ".join(sorted(v))} for k, v in sorted(notes.items())])
