"""Earlier version, section 4.3 and Figure 3: neural collapse on a shifted target domain (PACS for Office-Home).

Each run trains ResNet50 (ResNet18 below the paper scale, ``ncutils.studies.domain_model``) on one source domain; every layer is measured on each other domain's test
split (CDNV, flat features) and probed with 20 images per class of that domain.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import frames
from ..studies import PACS
from . import figure_link, not_computed, table

STUDY = "domain"
FIGURE = figure_link("domain", "domain-figure")
SCATTER = figure_link("domain", "domain-probe-vs-cdnv")
TABLE = figure_link("domain", "domain-accuracy")
STRONG = 0.5  # |Spearman rho| at or above this is a strong monotone association; below it, a weak one


def target_rows(metrics: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Rows of ``measure`` per layer tap on the target domains, with ``source`` and ``target`` columns.

    NC measures on each target's test split (flat features, the paper's); probes trained on the
    target's limited training data and tested on its test split (pooled features).
    """
    if metrics.empty:
        return pd.DataFrame(columns=["source", "target", "layer number", "value"])
    shifted = metrics[metrics.eval_data != metrics.dataset]
    rows = frames.layer_rows(shifted.assign(source=shifted.dataset, dataset=shifted.eval_data), measure,
                            split="test")
    return rows.assign(source=rows.source.str.partition(":")[2], target=rows.eval_data.str.partition(":")[2])


def accuracy_table(found) -> pd.DataFrame:
    """Per source model: its training images and accuracy, whether it reached the terminal phase, and its
    own classifier's test accuracy on each domain without adaptation (the diagonal: its own test split)."""
    summary = found.summaries
    runs = summary.assign(source=summary.dataset.str.partition(":")[2]).set_index("source")
    accuracy = pd.DataFrame({d: runs.reindex(columns=[f"test_acc_{d}"]).iloc[:, 0] for d in PACS})
    for source in runs.index:
        accuracy.loc[source, source] = runs.test_acc[source]
    table = pd.concat([runs[["num_train", "train_acc"]], accuracy.add_prefix("test on ")], axis=1)
    table["terminal phase"] = frames.terminal_phase(table)
    return table


def spearman(a, b) -> float:
    """Spearman's rank correlation (Pearson's on average ranks); nan when either side is constant."""
    a, b = pd.Series(np.asarray(a, float)).rank(), pd.Series(np.asarray(b, float)).rank()
    return float(a.corr(b)) if a.nunique() > 1 and b.nunique() > 1 else float("nan")


def _strength(rho: float) -> str:
    if np.isnan(rho):
        return "inconclusive"
    return "holds" if rho <= -STRONG else ("does not hold" if rho >= 0 else "inconclusive")


def _all_or_most(flags) -> str:
    """holds when every case agrees, does not hold when fewer than half do, inconclusive in between."""
    flags = list(flags)
    return "holds" if all(flags) else ("does not hold" if sum(flags) < len(flags) / 2 else "inconclusive")


def progressive(metrics: pd.DataFrame) -> dict:
    """Every source model's CDNV on every target falls from the first to the last layer tap."""
    claim = "models pretrained on each source show progressive collapse on the targets (CDNV falls first -> last layer)"
    cdnv = target_rows(metrics, "cdnv_sum")
    if cdnv.empty:
        return not_computed(claim, FIGURE)
    curves = {k: g.sort_values("layer number").value.to_numpy() for k, g in cdnv.groupby(["source", "target"])}
    falls = {k: v[-1] < v[0] for k, v in curves.items()}
    ratios = [v[-1] / v[0] for v in curves.values()]
    return {"claim": claim,
            "statistic": f"falls in {sum(falls.values())} of {len(falls)} (source, target) curves; "
                         f"last/first CDNV {min(ratios):.2g} to {max(ratios):.2g}",
            "verdict": _all_or_most(falls.values()), "figure": FIGURE}


def source_spread(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per target with >= 2 sources: the range across sources of log10 CDNV (decades), averaged over
    the first and over the last third of the layer taps."""
    cdnv = target_rows(metrics, "cdnv_sum")
    out = []
    for target, frame in cdnv.groupby("target"):
        if frame.source.nunique() < 2:
            continue
        spread = frame.assign(log=np.log10(frame.value)).groupby("layer number").log.agg(lambda v: v.max() - v.min())
        spread = spread.sort_index().to_numpy()
        third = max(1, len(spread) // 3)
        out.append({"target": target, "sources": frame.source.nunique(), "early": spread[:third].mean(),
                    "deep": spread[-third:].mean(), "taps per third": third})
    return pd.DataFrame(out, columns=["target", "sources", "early", "deep", "taps per third"])


def spread(metrics: pd.DataFrame) -> dict:
    """Source models differ little in the early layers and more in the deep ones (target CDNV)."""
    claim = "models pretrained on different sources differ little in early layers and more in deep layers (target CDNV)"
    table_ = source_spread(metrics)
    if table_.empty:
        return not_computed(claim, FIGURE, "needs runs of at least two source domains")
    third = int(table_["taps per third"].iloc[0])
    return {"claim": claim,
            "statistic": f"range of log10 CDNV across sources, mean over the first vs the last {third} taps: "
                         + ", ".join(f"{r.target} {r.early:.2f} vs {r.deep:.2f} decades" for r in table_.itertuples()),
            "verdict": _all_or_most(table_.deep > table_.early), "figure": FIGURE}


def _joined(metrics: pd.DataFrame) -> pd.DataFrame:
    keys = ["source", "target", "layer number"]
    cdnv = target_rows(metrics, "cdnv_sum")[keys + ["value"]].rename(columns={"value": "cdnv"})
    probe = target_rows(metrics, "probe_test_acc")[keys + ["value"]].rename(columns={"value": "probe"})
    return cdnv.merge(probe, on=keys)


def collapse_vs_probe(metrics: pd.DataFrame) -> dict:
    """Lower target CDNV goes with higher probe accuracy, over every (source, target, layer)."""
    claim = "better collapse on the target (lower CDNV) goes with better probe accuracy: all (source, target, layer)"
    joined = _joined(metrics)
    if len(joined) < 3:
        return not_computed(claim, SCATTER)
    rho = spearman(joined.cdnv, joined.probe)
    return {"claim": claim,
            "statistic": f"Spearman rho(CDNV, probe accuracy) = {rho:.2f} over {len(joined)} points "
                         f"(source models: {joined.source.nunique()}); holds at rho <= -{STRONG}",
            "verdict": _strength(rho), "figure": SCATTER}


def collapse_vs_probe_between_sources(metrics: pd.DataFrame) -> dict:
    """The same, comparing source models at one target and layer (removes the depth and target effects)."""
    claim = "... and between source models at the same target and layer"
    joined = _joined(metrics)
    groups = [g for _, g in joined.groupby(["target", "layer number"]) if g.source.nunique() >= 2]
    if not groups:
        return not_computed(claim, SCATTER, "needs runs of at least two source domains")
    rhos = np.array([spearman(g.cdnv, g.probe) for g in groups])
    defined = rhos[~np.isnan(rhos)]
    mean = float(defined.mean()) if len(defined) else float("nan")
    last = joined[joined["layer number"] == joined["layer number"].max()]
    last_rho = [spearman(g.cdnv, g.probe) for _, g in last.groupby("target") if g.source.nunique() >= 2]
    return {"claim": claim,
            "statistic": f"mean Spearman rho across sources over {len(defined)} (target, layer) pairs = {mean:.2f} "
                         f"({int((defined < 0).sum())} negative, {int((defined > 0).sum())} positive"
                         f"{f', {len(rhos) - len(defined)} undefined' if len(defined) < len(rhos) else ''}); "
                         f"last layer, per target: {', '.join(f'{r:.2f}' for r in last_rho)}; holds at <= -{STRONG}",
            "verdict": _strength(mean), "figure": SCATTER}


def terminal(summaries: pd.DataFrame) -> dict:
    """The source models fit their source domain (terminal phase: train accuracy >= 99%)."""
    claim = "every source model reached the terminal phase (train accuracy >= 99%)"
    if summaries.empty:
        return not_computed(claim, TABLE)
    fits = summaries.train_acc >= frames.TERMINAL
    return {"claim": claim,
            "statistic": ", ".join(f"{d.partition(':')[2]}: {a:.3f}"
                                   for d, a in zip(summaries.dataset, summaries.train_acc)),
            "verdict": "holds" if fits.all() else "does not hold", "figure": TABLE}


def claims(found) -> pd.DataFrame:
    """The earlier version's section 4.3 claims, judged from the stored domain-shift runs (every claim
    compares or quantifies over all source models, so each needs all of them)."""
    metrics = found.metrics
    rows = [progressive(metrics), spread(metrics), collapse_vs_probe(metrics),
            collapse_vs_probe_between_sources(metrics), terminal(found.summaries)]
    if found.missing:
        why = "not stored yet: " + ", ".join(f"source {c.dataset} ({status})" for c, status in found.missing)
        rows = [not_computed(r["claim"], r["figure"], why) for r in rows]
    return table(rows)
