"""Queries on the tidy results table: one measure per layer, memorization ratios, the terminal phase of
each run."""
from __future__ import annotations

import pandas as pd

from .streaming import PENULTIMATE

TERMINAL = 0.99  # training accuracy (on the labels and inputs trained with) of the terminal phase
VIEWS = (("train", "flat"), ("test", "flat"), ("train", "pooled"), ("test", "pooled"))  # (split, features) measured


def terminal_phase(summaries: pd.DataFrame) -> pd.Series:
    """Whether each run of a summaries table reached the terminal phase (train accuracy >= :data:`TERMINAL`)."""
    return summaries["train_acc"] >= TERMINAL


def split_terminal(groups: dict) -> tuple[dict, dict]:
    """``groups`` (key -> runs, each with a ``train_acc``) split into the runs in the terminal phase, which a
    claim reads, and those left out, per key."""
    return ({k: [r for r in rs if r.train_acc >= TERMINAL] for k, rs in groups.items()},
            {k: [r for r in rs if not r.train_acc >= TERMINAL] for k, rs in groups.items()})


def left_out_note(runs: list[tuple[str, float]]) -> str:
    """The end of a statistic naming the runs, (name, train accuracy), that it left out for falling short of
    the terminal phase; empty when there are none."""
    return (f"; left out (train accuracy < {TERMINAL:.0%} on the labels and inputs trained with): "
            + ", ".join(f"{name} ({accuracy:.3f})" for name, accuracy in runs)) if runs else ""


RUN_COLUMNS = ("model", "size", "dataset", "n_per_class", "epochs", "train_acc", "test_acc")


def run_table(summaries: pd.DataFrame, columns=RUN_COLUMNS) -> pd.DataFrame:
    """``columns`` of each run's summary, and whether it reached the terminal phase."""
    table = summaries[list(columns)].copy()
    table["terminal phase"] = terminal_phase(table)
    return table


def layer_rows(metrics: pd.DataFrame, measure: str, *, split: str = "train", labels: str = "clean",
               inputs: str = "clean", features: str | None = None) -> pd.DataFrame:
    """Rows of one measure per layer tap (the classifier's input left out), with a 1-based ``layer``
    number; probes are always on pooled features and their own split, the NC measures on ``split``
    with flat features (the paper's) unless ``features`` says otherwise."""
    if measure.startswith("probe_"):
        selected = metrics[(metrics.measure == measure) & (metrics.eval_data == metrics.dataset)]
    else:
        selected = metrics[(metrics.measure == measure) & (metrics.split == split) & (metrics.labels == labels)
                           & (metrics.inputs == inputs) & (metrics.features == (features or "flat"))
                           & (metrics.eval_data == metrics.dataset)]
    selected = selected[selected.layer != PENULTIMATE].copy()
    selected["layer number"] = selected.layer_index + 1
    return selected


def memorization_ratios(results: pd.DataFrame, clean: str = "clean", noisy: str = "noisy",
                        measure: str = "cdnv_sum") -> pd.DataFrame:
    """Memorization ratio per layer (paper Definition 1) from one :func:`ncutils.streaming.measure` run with two
    label groupings: ``measure`` under the clean labels over it under the noisy labels."""
    return memorization_ratios_between(results[results["labels"] == clean], results[results["labels"] == noisy],
                                       measure)


def memorization_ratios_between(clean: pd.DataFrame, noisy: pd.DataFrame, measure: str = "cdnv_sum") -> pd.DataFrame:
    """Memorization ratio per layer (Definition 1) from two :func:`ncutils.streaming.measure` runs, e.g. on clean and
    on corrupted inputs, each with one label grouping.

    Returns layer, layer_index, features, clean, noisy, ratio and memorization (ratio > 1, the
    memorization layers of Definition 2).
    """
    keys = ["layer", "layer_index", "features"]
    sides = []
    for name, frame in (("clean", clean), ("noisy", noisy)):
        frame = frame[frame["measure"] == measure]
        if frame.empty:
            raise ValueError(f"the {name} results have no rows of measure {measure!r} (or of that label grouping)")
        if frame["labels"].nunique() != 1:
            raise ValueError(f"the {name} results hold several label groupings {sorted(frame['labels'].unique())}; "
                             "select one, e.g. results[results.labels == 'y']")
        sides.append(frame[keys + ["value"]].rename(columns={"value": name}))
    table = sides[0].merge(sides[1], on=keys, validate="one_to_one")
    table["ratio"] = table["clean"] / table["noisy"]
    table["memorization"] = table["ratio"] > 1
    return table.sort_values(["features", "layer_index"], ignore_index=True)
