"""Parker et al. 2023, intermediate neural collapse in MLP6, VGG11 and ResNet18 (chapter small_nets).

A *setting* is one (model, dataset, activation) at initialisation (``epochs == 0``) or trained; its runs are
its seeds (one each in the study). Every statistic reads one value per layer tap (the classifier's input
left out) in :data:`VIEW`, the training split with flat features, where Parker et al. measure ("passing all
the training samples through it", their section 2.2): their claims are about the training set, so they are
not judged on the test split or pooled features.

Every verdict is :mod:`ncutils.verdict`'s: per setting (or pair of settings), the statistic with its standard
error against the claim's threshold, stated in its statistic; a claim over several settings is their
conjunction: it holds when each holds, does not hold when one does not (Parker et al. describe "most"
settings; the conjunction asks it of each). The uncertainty is what the runs allow
(:func:`ncutils.claims.nc1_vs_cdnv.run_estimate`): the spread over seeds should a setting have several; else
the jackknife over images of one run's CDNV and NC2 (eq. 4 and 5 of Zhou et al.), or the binomial error of
NC4 (a share of the training images) and of an accuracy. Parker et al.'s NC1, equal norms and maximal angle
have no replicates: on one run each they have no within-run uncertainty, their rows say so and are
inconclusive. Each NC1 claim is therefore also judged on CDNV (within-class variability relative to the
distances between class means) and each NC2 claim on NC2 of eq. 5 (the class means' distance to a simplex
ETF), which have jackknife replicates. Each claim quotes the sentence of Parker et al. it tests (:data:`QUOTES`).

The middle layer of a network with L taps is tap index (L - 1) // 2 (0-based).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..frames import TERMINAL
from ..results import StudyResults
from . import figure_link, judged, table
from .nc1_vs_cdnv import Cases, LayerRun, layer_runs, run_estimate, share_estimate, terminal

STUDY = "small_nets"
CHAPTER = "small_nets"
VIEW = ("train", "flat")
NC4_ZERO = 0.01  # NC4 at most this: the network's decision is the nearest class centre's
ORDER = {"mlp": 0, "vgg11": 1, "resnet18": 2}
MEASURES = ("nc1", "equal_norms", "max_angle", "nc4", "cdnv_sum", "nc2")
FIGURES = {"nc1": "small-nets-nc1", "cdnv_sum": "small-nets-cdnv", "equal_norms": "small-nets-equal-norms",
           "max_angle": "small-nets-max-angle", "nc2": "small-nets-nc2", "nc4": "small-nets-nc4"}
NAMES = {"nc1": "NC1", "cdnv_sum": "CDNV", "equal_norms": "the equal-norms measure",
         "max_angle": "the maximal-angle measure", "nc2": "NC2 (eq. 5)"}
QUOTES = {
    "depth": "the degree of collapse in any given layer is typically positively correlated with the depth of that "
             "layer in the neural network",
    "training": "phenomenon occurs throughout most of the hidden layers of classification neural networks trained "
                "through the terminal phase of training (TPT)",
    "shallow": "almost all of the reduction in intra-class variance in the samples occurs in the shallower layers of "
               "the networks",
    "etf": "the convergence of class means to equal norms and to maximal equal angles, also exhibit a somewhat "
           "linear relationship between the degree of collapse in any given hidden layer and that layer's depth in "
           "the network",
    "deeper": "the collapse continues to strengthen even in the deeper layers of the network, rather than plateauing "
              "after the first few layers; this is more prevalent for the angular separation between different "
              "class means than for the similarity between their norms",
    "nc4": "the NCC mismatch only reaches zero in the final layers",
    "simpler": "simple datasets require only the shallower layers of the networks to fully learn them, whereas more "
               "difficult ones require the entire network",
}


def activation(config) -> str:
    """The activation of a run's config (ReLU unless its size sets another)."""
    return dict(config.size).get("activation", "relu")


def setting(config) -> tuple[str, str, str, bool]:
    """(model, dataset, activation, trained) of a run's config."""
    return config.model, config.dataset, activation(config), config.epochs > 0


def runs(found: StudyResults) -> dict[str, tuple[str, str, str, bool]]:
    """{key: (model, dataset, activation, trained)} of every stored run."""
    return {c.key(): setting(c) for c in found.stored}


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies with its activation, and whether a trained run reached the terminal phase."""
    summary, stored = found.summaries, runs(found)
    table = summary.assign(activation=summary.key.map(lambda k: stored[k][2]))
    table = table.reindex(columns=["model", "size", "activation", "dataset", "epochs", "seed", "train_acc",
                                   "test_acc"])
    table["terminal phase"] = (table.train_acc >= TERMINAL) & (table.epochs > 0)
    return table.sort_values(["dataset", "model", "activation", "epochs", "seed"])


def logs(curves, measure: str) -> np.ndarray:
    return np.log10(curves[(measure, *VIEW)])


def fall(measure: str):
    """Decades ``measure`` falls from the first to the last layer."""
    return lambda c: float(logs(c, measure)[0] - logs(c, measure)[-1])


def early_minus_late(measure: str):
    """Decades ``measure`` falls up to the middle layer minus the decades it falls after it."""
    def statistic(c):
        v = logs(c, measure)
        middle = (len(v) - 1) // 2
        return float((v[0] - v[middle]) - (v[middle] - v[-1]))
    return statistic


def later_share(values: np.ndarray) -> float:
    """Share of the log10 decrease from the first to the last layer made after the middle layer (index
    (L - 1) // 2); nan unless the values fall overall."""
    v = np.log10(values)
    total = v[0] - v[-1]
    return float((v[(len(v) - 1) // 2] - v[-1]) / total) if total > 0 else float("nan")


def last(measure: str):
    return lambda c: float(c[(measure, *VIEW)][-1])


def first_minus_last(measure: str):
    return lambda c: float(c[(measure, *VIEW)][0] - c[(measure, *VIEW)][-1])


def name(s: tuple) -> str:
    return "/".join(s[:3]) + (" trained" if s[3] else " at init")


def order(s: tuple) -> tuple:
    """Settings by dataset, then MLP6, VGG11, ResNet18, then activation, at init before trained."""
    return s[1], ORDER.get(s[0], len(ORDER)), s[0], s[2], s[3]


def each_trained(rule: str, statistic, reads, threshold: float, direction: str):
    """A judge of ``statistic`` of every trained setting against ``threshold``."""
    def judge(have):
        j = Cases()
        for s, rs in have.items():
            j.add("/".join(s[:3]), run_estimate(rs, statistic, reads), threshold, direction)
        return j.result(rule)
    return judge


def each_pair(rule: str, cases):
    """A judge over every (model, dataset, activation) stored trained and at init: ``cases(trained runs, init
    runs)`` gives its (label, estimate, threshold, direction)."""
    def judge(have):
        j = Cases()
        for s in (s for s in have if s[3] and (*s[:3], False) in have):
            for label, estimate, threshold, direction in cases(have[s], have[(*s[:3], False)]):
                j.add(f"{'/'.join(s[:3])} {label}".strip(), estimate, threshold, direction)
        return j.result(rule)
    return judge


def trained_vs_init(measure: str):
    return lambda trained, init: [("", run_estimate(trained, fall(measure), (measure,))
                                   - run_estimate(init, fall(measure), (measure,)), 0, "above")]


def towards_etf(measure: str):
    def cases(trained, init):
        return [("first - last", run_estimate(trained, first_minus_last(measure), (measure,)), 0, "above"),
                ("at init - trained, last layer", run_estimate(init, last(measure), (measure,))
                 - run_estimate(trained, last(measure), (measure,)), 0, "above")]
    return cases


def nc4_falls(have):
    j, key = Cases(), ("nc4", *VIEW)
    for s, rs in have.items():
        j.add(f"{'/'.join(s[:3])} first - last", share_estimate(rs, [(1, key, 0), (-1, key, -1)]), 0, "above")
        j.add("last", share_estimate(rs, [(1, key, -1)]), NC4_ZERO, "below")
    return j.result(f"NC4 at the first minus at the last layer (> 0), and at the last layer (< {NC4_ZERO:g}); binomial "
                    "errors on the training images (of a difference of layers, in quadrature)")


def simpler_dataset(have):
    j, key = Cases(), ("nc4", *VIEW)
    for s in (s for s in have if s[1] == "fashion-mnist" and (s[0], "cifar10", s[2], True) in have):
        j.add(f"{s[0]}/{s[2]}", share_estimate(have[s], [(1, key, slice(None))])
              - share_estimate(have[(s[0], "cifar10", s[2], True)], [(1, key, slice(None))]), 0, "below")
    return j.result("mean NC4 over the layers, Fashion-MNIST minus CIFAR-10 (< 0); binomial error of each mean share "
                    "on its training images (an upper bound)")


def fitted(have):
    return terminal({"/".join(s[:3]): rs for s, rs in have.items()})


def deeper_than(angle: str, nc1: str):
    """A judge of "angular separation keeps improving after NC1 has": per trained setting, the share of the
    log decrease after the middle layer of ``angle`` minus that of ``nc1`` (> 0)."""
    return each_trained(f"share of the log10 decrease after the middle layer, {NAMES[angle]} minus {NAMES[nc1]} (> 0)",
                        lambda c: later_share(c[(angle, *VIEW)]) - later_share(c[(nc1, *VIEW)]), (angle, nc1),
                        0, "above")


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote]}"'


def claims(found: StudyResults) -> pd.DataFrame:
    """Parker et al.'s claims, judged from every seed's stored run in ``found`` (a :class:`StudyResults`)."""
    settings = sorted(dict.fromkeys(setting(c) for c in found.configs), key=order)
    keys = runs(found)
    stored: dict[tuple, list[LayerRun]] = {}
    for key, run in sorted(layer_runs(found, MEASURES).items(), key=lambda item: item[1].seed):
        stored.setdefault(keys[key], []).append(run)
    trained = [s for s in settings if s[3]]
    paired = [x for s in trained if (*s[:3], False) in settings for x in (s, (*s[:3], False))]
    by_name = {name(s): rs for s, rs in stored.items()}
    both_datasets = [x for s in trained if s[1] == "fashion-mnist" and (s[0], "cifar10", s[2], True) in trained
                     for x in (s, (s[0], "cifar10", s[2], True))]

    def row(claim, target, needed, judge):
        return judged(claim, figure_link(CHAPTER, FIGURES.get(target, target)), [name(s) for s in needed], by_name,
                      lambda: judge({s: stored[s] for s in needed if s in stored}),
                      "" if needed else "the study has no runs this claim compares at this scale")

    rows = []
    for measure in ("nc1", "cdnv_sum"):
        m = NAMES[measure]
        rows.append(row(claim_text(f"(NC1) after training, {m} falls from the first to the last layer", "depth"),
                        measure, trained, each_trained(f"decades {m} falls from the first to the last layer (> 0)",
                                                       fall(measure), (measure,), 0, "above")))
        rows.append(row(claim_text(f"(NC1) the fall comes with training: {m} falls by more decades from the first to "
                                   "the last layer after training than at initialisation", "training"), measure,
                        paired, each_pair(f"decades {m} falls from the first to the last layer, trained minus at "
                                          "initialisation (> 0)", trained_vs_init(measure))))
        rows.append(row(claim_text(f"(NC1) after training, {m} falls by more decades up to the middle layer than "
                                   "after it", "shallow"), measure, trained,
                        each_trained(f"decades {m} falls up to the middle layer minus after it (> 0)",
                                     early_minus_late(measure), (measure,), 0, "above")))
    for measure in ("equal_norms", "max_angle", "nc2"):
        m = NAMES[measure]
        rows.append(row(claim_text(f"(NC2) the class means approach a simplex ETF: after training, {m} is lower at "
                                   "the last layer than at the first, and than at the last layer at initialisation",
                                   "etf"), measure, paired,
                        each_pair(f"{m}, trained: first minus last layer (> 0); last layer, at initialisation minus "
                                  "trained (> 0)", towards_etf(measure))))
    for angle, nc1 in (("max_angle", "nc1"), ("nc2", "cdnv_sum")):
        rows.append(row(claim_text(f"(NC2) separation keeps improving in the deeper layers, unlike NC1: a larger "
                                   f"share of the log decrease of {NAMES[angle]} than of {NAMES[nc1]} comes after the "
                                   "middle layer, after training", "deeper"), angle, trained, deeper_than(angle, nc1)))
    rows.append(row(claim_text(f"(NC4) after training, NC4 falls through the layers to below {NC4_ZERO:g} at the last "
                               "layer", "nc4"), "nc4", trained, nc4_falls))
    rows.append(row(claim_text("(NC4) the simpler dataset needs fewer layers: after training, mean NC4 over the layers "
                               "is lower on Fashion-MNIST than on CIFAR-10 (same model and activation)", "simpler"),
                    "nc4", both_datasets, simpler_dataset))
    rows.append(row(f"every trained run reached the terminal phase (train accuracy >= {TERMINAL:.0%})",
                    "small-nets-accuracy", trained, fitted))
    return table(rows)
