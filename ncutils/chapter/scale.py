"""The scale chapter's tables: the size of every run of the book, its cost (estimated and measured), whether
it reached the terminal phase, and the provenance of the data it read."""
from __future__ import annotations

import pandas as pd

from ..config import RunConfig
from ..estimate import measured_seconds, plan
from ..experiment import RunRecord
from ..frames import TERMINAL
from ..results import StudyResults

WORKERS = 2  # runs computed at a time, one thread each
BUDGET_HOURS, BUDGET_RUN_MINUTES = 12, 60
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
                 "wall min": r.provenance["seconds"]["total"] / 60, "threads": r.provenance["torch_threads"],
                 "device": r.provenance["device"]} for c, r in runs.items()]
    table = estimate.merge(pd.DataFrame(measured, columns=["key", "measured min", "wall min", "threads", "device"]),
                           on="key", how="left")
    table["estimated min"] = table.hours * 60
    minutes = table["measured min"].fillna(table["estimated min"])
    hours = minutes.sum() / 60
    line = (f"whole {scale} scale: {hours:.1f} h of runs (measured where stored, estimated otherwise), about "
            f"{hours / WORKERS:.1f} h of the machine {WORKERS} at a time (budget {BUDGET_HOURS} h); longest run "
            f"{minutes.max():.0f} min (budget {BUDGET_RUN_MINUTES} min); {table['measured min'].notna().sum()} of "
            f"{len(table)} runs measured")
    return line, table[["status", "run", "estimated min", "measured min", "wall min", "threads"]].round(1)


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
