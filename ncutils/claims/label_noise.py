"""Section 4.2, label noise: the claims of the ``label_noise`` chapter, judged from its study.

Per run, every curve is a measure at each block tap in order (the classifier's input left out), on
the training set with flattened features:

- CDNV under the labels the run trained with (``cdnv_sum``, eq. 4; the noisy labels of a noisy run,
  the true labels of the clean run);
- the memorization ratio of a noisy run (Definition 1): CDNV under the true labels over CDNV under
  the noisy ones, block by block; its memorization layers (Definition 2) are the blocks where it
  exceeds 1;
- linear-probe accuracy on the clean test set (pooled features).

A claim about several runs holds when it holds for each, does not hold when it holds for none, and
is inconclusive otherwise (each judge says where it differs). A claim whose runs are not all stored
is not computed; its statistic then shows what the stored runs give.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from .. import frames
from ..frames import memorization_ratios
from ..studies import CIFAR10N, RANDOM_LABELS, RESNETS, SWINS
from . import figure_link, judged, table

STUDY = "label_noise"
CHAPTER = "label_noise"
RANDOM_FIGURE = figure_link(CHAPTER, "label-noise-random")
SETTINGS = (("random labels", RANDOM_LABELS, RANDOM_FIGURE),
            ("CIFAR-10N", CIFAR10N, figure_link(CHAPTER, "label-noise-cifar10n")))
NOISY = RANDOM_LABELS + CIFAR10N


def consensus(flags) -> str:
    """'holds' if every flag is true, 'does not hold' if none is, 'inconclusive' otherwise."""
    flags = list(flags)
    return "holds" if all(flags) else "does not hold" if not any(flags) else "inconclusive"


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (nan if one is constant)."""
    ra, rb = pd.Series(np.asarray(a, float)).rank(), pd.Series(np.asarray(b, float)).rank()
    return float(ra.corr(rb)) if ra.nunique() > 1 and rb.nunique() > 1 else float("nan")


def geometric_mean(c: pd.Series) -> float:
    return float(10 ** np.log10(c.to_numpy(float)).mean())


def trained_label_rows(metrics: pd.DataFrame, measure: str) -> pd.DataFrame:
    """``measure`` per block under the labels each run trained with (``frames.layer_rows`` rows)."""
    return pd.concat([frames.layer_rows(metrics[metrics.noise == "clean"], measure),
                      frames.layer_rows(metrics[metrics.noise != "clean"], measure, labels="noisy")],
                     ignore_index=True)


def memorization_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The memorization ratio (``value``) per block of every noisy run, with model, noise, layer number."""
    out = []
    for (model, noise), run in metrics[metrics.noise != "clean"].groupby(["model", "noise"]):
        train = run[(run.split == "train") & (run.inputs == "clean") & (run.eval_data == run.dataset)
                    & (run.layer != frames.PENULTIMATE)]
        ratios = memorization_ratios(train, measure="cdnv_sum")
        out.append(ratios[ratios.features == "flat"].assign(model=model, noise=noise, value=lambda t: t.ratio))
    columns = ["model", "noise", "layer_index", "value"]
    rows = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)
    rows["layer number"] = rows.layer_index + 1
    return rows


def accuracy_table(found) -> pd.DataFrame:
    """Every run's noise rate and accuracies: on the labels it trained with, on the true ones, on the test set."""
    columns = ["model", "noise", "noise_rate", "train_acc", "train_acc_clean_labels", "test_acc"]
    table = found.summaries.reindex(columns=columns).copy()
    table["noise_rate"] = table.noise_rate.fillna(0.0)
    return table


def _curves(rows: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """Per (model, noise): ``value`` indexed by layer number."""
    rows = rows.sort_values("layer number")
    return {key: g.set_index("layer number").value for key, g in rows.groupby(["model", "noise"])}


@dataclass
class Runs:
    """The stored curves of one model's runs, per noise setting (in the order of the study)."""

    cdnv: dict[str, pd.Series]  # under the trained labels; clean and noisy runs
    ratio: dict[str, pd.Series]  # noisy runs only
    probe: dict[str, pd.Series]

    def only(self, noises) -> Runs:
        def keep(d):
            return {n: d[n] for n in noises if n in d}
        return Runs(keep(self.cdnv), keep(self.ratio), keep(self.probe))


def shift_up(r: Runs) -> tuple[str, str]:
    """(1) The geometric mean of CDNV over the blocks strictly grows with the noise: holds; grows in
    rank (Spearman's rho with the noise order > 0) but not strictly: inconclusive; else does not hold."""
    means = {n: geometric_mean(c) for n, c in r.cdnv.items()}
    rho = spearman(range(len(means)), list(means.values()))
    statistic = ("geometric mean of CDNV over blocks, least to most noise: "
                 + "; ".join(f"{n} {v:.3g}" for n, v in means.items())
                 + f" (Spearman's rho with noise order {rho:.2f})")
    verdict = "holds" if np.all(np.diff(list(means.values())) > 0) else "inconclusive" if rho > 0 else "does not hold"
    return statistic, verdict


def rises(r: Runs) -> tuple[str, str]:
    """(2) Per noisy run: the ratio is higher at the last block than at the first, and Spearman's rho
    between block number and ratio is positive."""
    parts, flags = [], []
    for n, q in r.ratio.items():
        rho = spearman(q.index, q.to_numpy())
        flags.append(q.iloc[-1] > q.iloc[0] and rho > 0)
        parts.append(f"{n} {q.iloc[0]:.3g} → {q.iloc[-1]:.3g} (rho {rho:.2f})")
    return ("memorization ratio first → last block (Spearman's rho with block number): " + "; ".join(parts),
            consensus(flags))


def last_third(n_blocks: int) -> int:
    """The first block number (1-based) of the last round(n / 3) blocks."""
    return n_blocks - max(1, round(n_blocks / 3)) + 1


def only_last_layers(r: Runs) -> tuple[str, str]:
    """(2), ResNets: per noisy run, memorization layers exist, include the last block and all lie in
    the last third of the blocks."""
    parts, flags = [], []
    for n, q in r.ratio.items():
        layers = [int(b) for b in q.index[q.to_numpy() > 1]]
        start, last = last_third(len(q)), int(q.index[-1])
        flags.append(bool(layers) and last in layers and min(layers) >= start)
        parts.append(f"{n} {', '.join(map(str, layers)) or 'none'} (last third: blocks {start}-{last})")
    return "memorization layers (blocks with ratio > 1): " + "; ".join(parts), consensus(flags)


def below_one(r: Runs) -> tuple[str, str]:
    """(2), Swin Transformers: per noisy run, the ratio is at most 1 at every block."""
    parts, flags = [], []
    for n, q in r.ratio.items():
        flags.append(bool((q <= 1).all()))
        parts.append(f"{n} {q.max():.3g} at block {int(q.idxmax())} of {len(q)}")
    return "largest memorization ratio over blocks: " + "; ".join(parts), consensus(flags)


def probe_gap(r: Runs) -> tuple[str, str]:
    """(3) The spread (max - min) of probe accuracy over the runs is larger at the last block than at
    the first: holds, else does not hold."""
    first = [p.iloc[0] for p in r.probe.values()]
    last = [p.iloc[-1] for p in r.probe.values()]
    spread_first, spread_last = np.ptp(first), np.ptp(last)
    statistic = (f"spread of probe test accuracy over {', '.join(r.probe)}: first block"
                 f" {100 * spread_first:.1f} points ({min(first):.3f}-{max(first):.3f}), last block"
                 f" {100 * spread_last:.1f} points ({min(last):.3f}-{max(last):.3f})")
    return statistic, "holds" if spread_last > spread_first else "does not hold"


def depth(runs: dict[str, Runs], deeper_higher: bool) -> tuple[str, str]:
    """(4) At each noise setting of every model, the last-block ratio strictly grows (``deeper_higher``)
    or strictly falls with depth (models shallow to deep)."""
    parts, flags = [], []
    noises = [n for n in NOISY if all(n in r.ratio for r in runs.values())]
    for n in noises:
        last = [float(r.ratio[n].iloc[-1]) for r in runs.values()]
        steps = np.diff(last)
        flags.append(bool(np.all(steps > 0) if deeper_higher else np.all(steps < 0)))
        parts.append(f"{n} " + " vs ".join(f"{m} {v:.3g}" for m, v in zip(runs, last)))
    return "memorization ratio at the last block, shallow vs deep: " + "; ".join(parts), consensus(flags)


def _row(claim: str, figure: str, stored: set[str], needed: list[str], judge: Callable[[], tuple[str, str]],
         why: str = "") -> dict:
    """The claim judged by ``judge()`` once every run of ``needed`` is stored (:func:`judged`)."""
    return judged(claim, figure, needed, stored, judge, why)


def study_runs(found) -> dict[str, list[str]]:
    """Per model of the study, ResNets then Swins, shallow to deep: its noise settings (stored or missing)."""
    pairs = {(c.model, c.noise) for c in found.configs}
    order, noises = list(RESNETS + SWINS), ("clean",) + NOISY
    models = sorted({m for m, _ in pairs}, key=lambda m: (order.index(m) if m in order else len(order), m))
    return {m: [n for n in noises if (m, n) in pairs] for m in models}


def claims(found) -> pd.DataFrame:
    """The section 4.2 label-noise claims, judged from the stored runs of ``found``
    (a :class:`ncutils.runs.StudyResults`)."""
    metrics = found.metrics
    cdnv, ratio, probe = ({}, {}, {}) if metrics.empty else (
        _curves(trained_label_rows(metrics, "cdnv_sum")), _curves(memorization_rows(metrics)),
        _curves(frames.layer_rows(metrics, "probe_test_acc")))
    stored = {f"{m} {n}" for m, n in cdnv}
    study = study_runs(found)
    runs = {m: Runs(*({n: d[m, n] for n in noises if (m, n) in d} for d in (cdnv, ratio, probe)))
            for m, noises in study.items()}
    rows = []
    for setting, settings, figure in SETTINGS:
        for m, noises in study.items():
            with_clean = [n for n in noises if n in ("clean",) + settings]
            noisy = [n for n in with_clean if n != "clean"]
            if not noisy:  # the study has no run of this setting for this model
                continue
            all_runs, noisy_runs = runs[m].only(with_clean), runs[m].only(noisy)
            need, need_noisy = [f"{m} {n}" for n in with_clean], [f"{m} {n}" for n in noisy]
            rows.append(_row(f"(1) {m}, {setting}: the CDNV curve shifts up as the noise grows", figure, stored,
                             need, partial(shift_up, all_runs)))
            rows.append(_row(f"(2) {m}, {setting}: the memorization ratio rises through the layers", figure,
                             stored, need_noisy, partial(rises, noisy_runs)))
            if m in RESNETS:
                rows.append(_row(f"(2) {m}, {setting}: the memorization ratio exceeds 1 only in the last layers"
                                 " (memorization layers exist, include the last block, lie in the last third)",
                                 figure, stored, need_noisy, partial(only_last_layers, noisy_runs)))
            elif m in SWINS:
                rows.append(_row(f"(2) {m}, {setting}: the memorization ratio stays below 1 at every block"
                                 " (no memorization layer)", figure, stored, need_noisy,
                                 partial(below_one, noisy_runs)))
            rows.append(_row(f"(3) {m}, {setting}: probe accuracies of the noise levels differ more at the last"
                             " block than at the first", figure, stored, need, partial(probe_gap, all_runs)))
    for family, members, higher in (("ResNets", RESNETS, True), ("Swin Transformers", SWINS, False)):
        models = [m for m in study if m in members]
        claim = (f"(4) {family}: at each noise, the deeper model has the {'higher' if higher else 'lower'}"
                 " memorization ratio at its last block")
        why = "" if len(models) >= 2 else (
            f"the study has one {family[:-1]} depth at this scale ({', '.join(models) or 'none'}): comparing depths"
            " needs two (the paper scale has ResNet18/34 and Swin-T/S)")
        need = [f"{m} {n}" for m in models for n in study[m] if n != "clean"]
        rows.append(_row(claim, RANDOM_FIGURE, stored, need, partial(depth, {m: runs[m] for m in models}, higher), why))
    return table(rows)
