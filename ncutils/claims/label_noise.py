"""Section 4.2, label noise: the claims of the ``label_noise`` chapter, judged from its study.

Per run, every curve is a measure at each block tap in order (the classifier's input left out): CDNV
(``cdnv_sum``, eq. 4) under the labels the run trained with (a noisy run's noisy labels, the clean run's
true ones); a noisy run's memorization ratio (Definition 1: CDNV under the true labels over CDNV under
the noisy ones; its memorization layers, Definition 2, are the blocks where it exceeds 1); linear-probe
accuracy on the clean test set (pooled features). Only the training images have noisy labels, so every
CDNV and ratio claim is judged in each view of the training split (:data:`VIEWS`), named in the claim.

Every verdict is :mod:`ncutils.verdict`'s. A setting (model and noise) gives its statistic with the
spread over its seeds where it has several (the study's clean and ``DEPTH_NOISE`` runs), else the
jackknife over training images of its one run, the binomial error of an accuracy, or a parametric
bootstrap of its probe accuracies. The ratio's replicate g is CDNV under the true labels without group
g over CDNV under the noisy labels without group g (each grouping forms its groups within its own
classes: the two leave out about, not exactly, the same images). Settings are contrasted with errors
in quadrature, test accuracies seed by seed (a seed's runs train on the same images). A claim about
several noise levels, pairs or views holds when each case holds. Only runs that fit the labels they
trained with (train accuracy >= ``frames.TERMINAL``) are read; each statistic lists those left out.
A probe claim is not computed while a probe it reads did not converge or fits the clean labels of its
training images at the last block more than 0.02 below the network (:func:`ncutils.estimates.check_probes`:
a noisy run's probe is compared with the network's accuracy on those clean labels, not on its noisy ones).
Each claim quotes the sentence it tests (:data:`QUOTES`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from .. import frames
from ..estimates import accuracy_estimate, probe_checked, read_runs
from ..frames import left_out_note, memorization_ratios, split_terminal
from ..studies import CIFAR10N, RANDOM_LABELS, RESNETS, SWINS
from ..verdict import Estimate, binomial, estimate_runs, over_seeds
from . import figure_link, judged, table
from .clean import Judged, view_name

STUDY = "label_noise"
CHAPTER = "label_noise"
RANDOM_FIGURE = figure_link(CHAPTER, "label-noise-random")
ACCURACY = figure_link(CHAPTER, "label-noise-accuracy")
SETTINGS = (("random labels", RANDOM_LABELS, RANDOM_FIGURE),
            ("CIFAR-10N", CIFAR10N, figure_link(CHAPTER, "label-noise-cifar10n")))
NOISY = RANDOM_LABELS + CIFAR10N
VIEWS = tuple(v for v in frames.VIEWS if v[0] == "train")  # the split with noisy labels
LOSS = 0.03  # a block losing probe accuracy to the clean model: by over 3 points (2 SE of a difference, 2000 images)
BOOTSTRAP = 200  # parametric bootstrap draws of the probe accuracies
# (family, its models, the paper's direction of the deeper-minus-shallower memorization ratio and test accuracy)
FAMILIES = (("ResNets", RESNETS, "above", "below"), ("Swin Transformers", SWINS, "below", "above"))
QUOTES = {
    "shift": "as the proportion of noisy data increases, the overall within-class compression curves shift upward",
    "rises": "The results demonstrate a progressive increase in the memorization ratio across layers, irrespective "
             "of network size",
    "resnet_final": "ResNets exhibit memorization ratios exceeding 1 in the final layers",
    "swin_below": "in Swin-Transformers, the memorization ratio consistently remains below 1 across all layers",
    "probe_gap": "the performance gap between models pre-trained with varying degrees of label noise is small in "
                 "the initial layers but widens in the deeper layers",
    "more_layers": "As noise levels increase, more deeper layers exhibit a declining trend in performance on clean "
                   "data",
    "ResNets": "at a specific noise level, increasing the model depth leads to higher memorization ratios in ResNets",
    "Swin Transformers": "deeper Swin-Transformer models demonstrate decreasing memorization ratios",
    "depth_accuracy": "increasing model depth improves the performance of Swin-Transformer models but degrades the "
                      "performance of ResNet models on clean data",
}


def trained_label_rows(metrics: pd.DataFrame, measure: str) -> pd.DataFrame:
    """``measure`` per block under the labels each run trained with (``frames.layer_rows`` rows)."""
    return pd.concat([frames.layer_rows(metrics[metrics.noise == "clean"], measure),
                      frames.layer_rows(metrics[metrics.noise != "clean"], measure, labels="noisy")],
                     ignore_index=True)


def memorization_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The memorization ratio (``value``) per block of each noisy run, by model, noise, seed; train split, flat."""
    out = []
    for (model, noise, seed), run in metrics[metrics.noise != "clean"].groupby(["model", "noise", "seed"]):
        train = run[(run.split == "train") & (run.inputs == "clean") & (run.eval_data == run.dataset)
                    & (run.layer != frames.PENULTIMATE)]
        ratios = memorization_ratios(train, measure="cdnv_sum")
        out.append(ratios[ratios.features == "flat"].assign(model=model, noise=noise, seed=seed,
                                                            value=lambda t: t.ratio))
    columns = ["model", "noise", "layer_index", "value"]
    rows = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)
    rows["layer number"] = rows.layer_index + 1
    return rows


def accuracy_table(found) -> pd.DataFrame:
    """Every run's noise rate and accuracies (each seed's): on the labels it trained with, on the true ones,
    on the test set; and whether it fits its training labels (train accuracy >= ``frames.TERMINAL``)."""
    columns = ["model", "noise", "seed", "noise_rate", "train_acc", "train_acc_clean_labels", "test_acc"]
    table = found.summaries.reindex(columns=columns).copy()
    table["noise_rate"] = table.noise_rate.fillna(0.0)
    table["fits its labels"] = frames.terminal_phase(table)
    return table


@dataclass
class NoiseRun:
    """One stored run, or one jackknife replicate of it: per view of :data:`VIEWS`, CDNV under its training
    labels and (a noisy run) the memorization ratio per block; the probe's test accuracy per block and problems."""

    seed: int = 0
    cdnv: dict = field(default_factory=dict)  # view -> Series over block numbers
    ratio: dict = field(default_factory=dict)
    replicates: list = field(default_factory=list)  # a NoiseRun per jackknife group (curves only)
    probe: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    num_probe_test: int = 0
    probe_problems: list = field(default_factory=list)
    train_acc: float = math.nan
    test_acc: float = math.nan
    num_test: int = 0


def load_runs(found) -> dict[tuple[str, str], list[NoiseRun]]:
    """Per (model, noise), its stored runs in seed order (:func:`ncutils.estimates.read_runs`) with their curves
    and jackknife replicates."""
    runs = {}
    for stored in sorted(read_runs(found).values(), key=lambda r: (r.summary["model"], r.summary["noise"], r.seed)):
        summary = stored.summary
        model, noise, trained = summary["model"], summary["noise"], "clean" if summary["noise"] == "clean" else "noisy"
        run = NoiseRun(seed=stored.seed, train_acc=float(summary["train_acc"]), test_acc=float(summary["test_acc"]),
                       num_test=int(summary["num_test"]),
                       replicates=[NoiseRun(seed=stored.seed) for _ in stored.replicates])
        for view in VIEWS:
            for curves, copy in [(stored.curves, run)] + list(zip(stored.replicates, run.replicates)):
                fitted = stored.selected(curves, *view, labels=trained).get("cdnv_sum")
                if fitted is None:
                    continue
                copy.cdnv[view] = fitted
                if noise != "clean":
                    copy.ratio[view] = stored.selected(curves, *view)["cdnv_sum"] / fitted
        probe = stored.probes()
        if "probe_test_acc" in probe:
            run.probe, run.num_probe_test = probe["probe_test_acc"], stored.probe_images()
        run.probe_problems = stored.probe_problems(f"{model} {noise} seed {stored.seed}")
        runs.setdefault((model, noise), []).append(run)
    return runs


def curve_estimate(runs: list[NoiseRun], curves: str, view, statistic) -> Estimate:
    """``statistic`` of a setting's ``curves`` ("cdnv" or "ratio") in ``view``: over its seeds, else the
    jackknife over images of its one run."""
    def of(run):
        return statistic(getattr(run, curves)[view])
    replicates = runs[0].replicates
    return estimate_runs([of(r) for r in runs],
                         lambda: [of(r) for r in replicates] if all(view in getattr(r, curves) for r in replicates) else [])


def log10(c: pd.Series) -> np.ndarray:
    return np.log10(c.to_numpy(float))


def log_slope(c: pd.Series) -> float:
    """Decades per block of a least-squares line through log10 of the curve."""
    return float(np.polyfit(c.index.to_numpy(float), log10(c), 1)[0])


def last_third(n_blocks: int) -> int:
    """The first block number (1-based) of the last round(n / 3) blocks."""
    return n_blocks - max(1, round(n_blocks / 3)) + 1


def shift_up(got, view):
    j, keys = Judged(), list(got)
    level = {k: curve_estimate(got[k], "cdnv", view, lambda c: log10(c).mean()) for k in keys}
    for low, high in zip(keys, keys[1:]):
        j.add(f"{high[1]} - {low[1]}", level[high] - level[low], 0, "above")
    return j, "mean log10 CDNV over the blocks under the trained labels, each noise minus the next lower one (> 0)"


def rises(got, view):
    j = Judged()
    for (_, noise), runs in got.items():
        j.add(noise, curve_estimate(runs, "ratio", view, log_slope), 0, "above")
    return j, "slope of log10 memorization ratio over the blocks, decades per block (> 0)"


def resnet_final(got, view):
    j = Judged()
    for (_, noise), runs in got.items():
        j.add(f"{noise} last block", curve_estimate(runs, "ratio", view, lambda c: log10(c)[-1]), 0, "above")
        before = curve_estimate(runs, "ratio", view, lambda c: log10(c)[:last_third(len(c)) - 1].max())
        j.add("highest before the last third", before, 0, "below")
    return j, ("log10 memorization ratio at the last block (> 0, a memorization layer) and its highest "
               "before the last third of the blocks (< 0, none there)")


def swin_below(got, view):
    j = Judged()
    for (_, noise), runs in got.items():
        j.add(noise, curve_estimate(runs, "ratio", view, lambda c: log10(c).max()), 0, "below")
    return j, "highest log10 memorization ratio over the blocks (< 0: no memorization layer)"


def probe_gain(runs: list[NoiseRun]) -> Estimate:
    """Probe accuracy at the last block minus at the first: over seeds, else binomial errors in quadrature."""
    if len(runs) >= 2:
        return over_seeds([r.probe.iloc[-1] - r.probe.iloc[0] for r in runs])
    run = runs[0]
    return binomial(run.probe.iloc[-1], run.num_probe_test) - binomial(run.probe.iloc[0], run.num_probe_test)


def probe_gap(got):
    j, (clean, *noisy) = Judged(), list(got)
    if clean[1] == "clean" and noisy:
        j.add(f"{clean[1]} - {noisy[-1][1]}", probe_gain(got[clean]) - probe_gain(got[noisy[-1]]), 0, "above")
    return j, ("probe accuracy gained from the first block to the last, clean minus the noisiest run: the gap "
               "at the last block minus the gap at the first (> 0)")


def probe_draws(runs: list[NoiseRun], rng) -> np.ndarray:
    """Row 0: a setting's probe curve (mean over its runs); then BOOTSTRAP draws of it, each run's accuracies
    drawn binomially on its test images."""
    curves = np.array([r.probe.to_numpy(float) for r in runs])
    n = np.array([r.num_probe_test for r in runs])[:, None, None]
    draws = rng.binomial(n, curves[:, None, :], size=(len(runs), BOOTSTRAP, curves.shape[1])) / n
    return np.vstack([curves.mean(axis=0), draws.mean(axis=0)])


def more_layers(got):
    """Blocks losing more than LOSS probe accuracy against the clean model, per noise; each step up in noise
    must add some (parametric bootstrap of the probe accuracies)."""
    j, rng, (clean, *noisy) = Judged(), np.random.default_rng(0), list(got)
    rule = (f"blocks whose probe accuracy is more than {LOSS} below the clean model's, each noise minus the next "
            "lower one (> 0)")
    if clean[1] != "clean":
        return j, rule
    reference = probe_draws(got[clean], rng)
    losing = {k: (reference - probe_draws(got[k], rng) > LOSS).sum(axis=1) for k in noisy}
    for low, high in zip(noisy, noisy[1:]):
        step = losing[high] - losing[low]
        j.add(f"{high[1]} ({losing[high][0]} blocks) - {low[1]} ({losing[low][0]})",
              Estimate(float(step[0]), float(step[1:].std(ddof=1)), f"parametric bootstrap, {BOOTSTRAP} draws"),
              0, "above")
    return j, rule


def depth_pairs(models: list[str], study: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(shallower, deeper, noise): consecutive depths of a family at every noise both ran."""
    return [(a, b, n) for a, b in zip(models, models[1:]) for n in NOISY if n in study[a] and n in study[b]]


def deeper_ratio(got, view, pairs, direction):
    j = Judged()
    for shallow, deep, noise in (p for p in pairs if (p[0], p[2]) in got and (p[1], p[2]) in got):
        last = [curve_estimate(got[m, noise], "ratio", view, lambda c: log10(c)[-1]) for m in (deep, shallow)]
        j.add(f"{noise} {deep} - {shallow}", last[0] - last[1], 0, direction)
    return j, (f"log10 memorization ratio at the last block, deeper minus shallower model "
               f"({'> 0' if direction == 'above' else '< 0'})")


def accuracy_contrast(terms: list[tuple[int, list[NoiseRun]]]) -> Estimate:
    """The sum of sign x test accuracy of the settings of ``terms``: seed by seed over the seeds they share
    (two or more), else each setting's own estimate (seeds or binomial) with errors in quadrature."""
    shared = sorted(set.intersection(*({r.seed for r in runs} for _, runs in terms)))
    if len(shared) >= 2:
        return over_seeds([sum(sign * next(r.test_acc for r in runs if r.seed == s) for sign, runs in terms)
                           for s in shared])
    each = [accuracy_estimate(runs, lambda r: r.test_acc, lambda r: r.num_test) for _, runs in terms]
    return Estimate(sum(sign * e.value for (sign, _), e in zip(terms, each)), math.hypot(*(e.se for e in each)),
                    "; ".join(sorted({e.kind for e in each})))


def deeper_accuracy(got, cases):
    """Per (family, shallower, deeper, noise, direction): test accuracy deeper minus shallower under the noise,
    and that minus the same on clean data (each model against its clean run)."""
    j = Judged()
    for family, shallow, deep, noise, direction in cases:
        if not all(k in got for k in ((deep, noise), (shallow, noise), (deep, "clean"), (shallow, "clean"))):
            continue
        noisy = [(1, got[deep, noise]), (-1, got[shallow, noise])]
        clean = [(-1, got[deep, "clean"]), (1, got[shallow, "clean"])]
        j.add(f"{family} {noise} {deep} - {shallow}", accuracy_contrast(noisy), 0, direction)
        j.add("minus the same on clean", accuracy_contrast(noisy + clean), 0, direction)
    return j, ("test accuracy, deeper minus shallower model under the noise, and that minus the same on "
               "clean data (ResNets < 0, Swins > 0)")


@dataclass
class Stored:
    """The runs of the study that fit their training labels, and those left out, per (model, noise)."""

    fit: dict
    left_out: dict

    def row(self, claim, figure, needed, judge, why="", probes=False) -> dict:
        """The claim judged by ``judge({(model, noise): fitting runs}) -> (Judged, rule)`` over ``needed``,
        listing the runs left out; not computed while a needed setting is not stored, when nothing is left
        to judge among the runs that fit their training labels, or (a claim reading ``probes``) while a
        probe of those runs has problems."""
        name = {k: f"{k[0]} {k[1]}" for k in needed}
        note = left_out_note([(f"{name[k]} seed {r.seed}", r.train_acc)
                              for k in needed for r in self.left_out.get(k, [])])

        def judge_fitting():
            got = {k: self.fit[k] for k in needed if self.fit.get(k)}
            if not got:
                return f"no run fits its training labels{note}", "not computed"
            cases, rule = judge(got)
            if not cases.verdicts:
                return f"{rule}: nothing to judge among the runs that fit their training labels{note}", "not computed"
            problems = [p for k in got for r in got[k] for p in r.probe_problems] if probes else []
            statistic, verdict = probe_checked(problems, lambda: cases.result(rule))
            return statistic + note, verdict
        stored = {name[k] for k in needed if self.fit.get(k) or self.left_out.get(k)}
        return judged(claim, figure, list(name.values()), stored, judge_fitting, why)


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote]}"'


def study_runs(found) -> dict[str, list[str]]:
    """Per model of the study, ResNets then Swins, shallow to deep: its noise settings (stored or missing)."""
    pairs = {(c.model, c.noise) for c in found.configs}
    order, noises = list(RESNETS + SWINS), ("clean",) + NOISY
    models = sorted({m for m, _ in pairs}, key=lambda m: (order.index(m) if m in order else len(order), m))
    return {m: [n for n in noises if (m, n) in pairs] for m in models}


def setting_claims(s: Stored, model: str, setting: str, levels: list[str], figure: str) -> list[dict]:
    """The claims on one model under one kind of noise (``levels``: clean first, then least to most noise)."""
    every = [(model, n) for n in levels]
    noisy = every[1:]
    rows = []
    for view in VIEWS:
        seen = f"{model}, {setting}, {view_name(view)}"
        rows.append(s.row(claim_text(f"(1) {seen}: the CDNV curve under the trained labels shifts up as the noise "
                                     "grows", "shift"), figure, every, partial(shift_up, view=view)))
        rows.append(s.row(claim_text(f"(2) {seen}: the memorization ratio rises through the blocks", "rises"),
                          figure, noisy, partial(rises, view=view)))
        if model in RESNETS:
            rows.append(s.row(claim_text(f"(2) {seen}: the memorization ratio exceeds 1 at the last block and not "
                                         "before the last third of the blocks", "resnet_final"), figure, noisy,
                              partial(resnet_final, view=view)))
        elif model in SWINS:
            rows.append(s.row(claim_text(f"(2) {seen}: the memorization ratio stays below 1 at every block",
                                         "swin_below"), figure, noisy, partial(swin_below, view=view)))
    seen = f"{model}, {setting}"
    rows.append(s.row(claim_text(f"(3) {seen}: the probe-accuracy gap between the clean and the noisiest run is "
                                 "wider at the last block than at the first", "probe_gap"), figure,
                      [every[0], noisy[-1]], probe_gap, probes=True))
    rows.append(s.row(claim_text(f"(3) {seen}: the more noise, the more blocks lose probe accuracy against the "
                                 "clean model", "more_layers"), figure, every, more_layers,
                      "" if len(noisy) >= 2 else f"the study runs {model} under one {setting} noise at this scale",
                      probes=True))
    return rows


def claims(found) -> pd.DataFrame:
    """The section 4.2 label-noise claims, judged from every seed's stored run in ``found``
    (a :class:`ncutils.results.StudyResults`)."""
    runs = load_runs(found)
    s = Stored(*split_terminal(runs))
    study = study_runs(found)
    rows = []
    for setting, noises, figure in SETTINGS:
        for model, levels in study.items():
            levels = [n for n in levels if n in ("clean",) + noises]
            if len(levels) >= 2 and levels[0] == "clean":
                rows += setting_claims(s, model, setting, levels, figure)
    cases, lacking = [], []
    for family, members, ratio_direction, accuracy_direction in FAMILIES:
        models = [m for m in study if m in members]
        pairs = depth_pairs(models, study)
        why = "" if pairs else (f"the study has no two {family[:-1]} depths under one noise at this scale"
                                f" ({', '.join(models) or 'none'})")
        lacking += [why] if why else []
        needed = [(m, n) for a, b, n in pairs for m in (a, b)]
        for view in VIEWS:
            rows.append(s.row(claim_text(f"(4) {family}, {view_name(view)}: at each noise, the deeper model has the "
                                         f"{'higher' if ratio_direction == 'above' else 'lower'} memorization ratio "
                                         "at its last block", family), RANDOM_FIGURE, needed,
                              partial(deeper_ratio, view=view, pairs=pairs, direction=ratio_direction), why))
        cases += [(family, a, b, n, accuracy_direction) for a, b, n in pairs]
    needed = list(dict.fromkeys((m, x) for _, a, b, n, _ in cases for m in (a, b) for x in (n, "clean")))
    rows.append(s.row(claim_text("(5) under label noise, depth raises the clean test accuracy of Swin Transformers "
                                 "and lowers that of ResNets, each model against its clean run", "depth_accuracy"),
                      ACCURACY, needed, partial(deeper_accuracy, cases=cases), "; ".join(lacking)))
    return table(rows)
