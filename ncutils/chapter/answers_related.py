"""The answers to the questions of the related-results chapters, small_nets (Parker et al. 2023) and train_vs_test
(Hui, Belkin, Nakkiran 2022), each computed from the chapter's stored runs (:mod:`ncutils.chapter.questions`).

Every value is read on the layer taps (the classifier's input left out), features flattened; small_nets on the
training split (where Parker et al. measure), train_vs_test on both splits, each under its own class means.
"""
from __future__ import annotations

import numpy as np

from ..claims import small_nets, train_vs_test
from ..claims.nc1_vs_cdnv import LayerRun, layer_runs
from ..studies import ACTIVATIONS
from .answering import TRAIN_FLAT, cifar10_layer_runs, listing, mean_over, needs

DATASETS = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


# --- small networks (Parker et al. 2023) ---------------------------------------------------------------

def settings(chapter, select, what: str, measures) -> dict[tuple, list[LayerRun]]:
    """{(model, dataset, activation, trained): its stored runs in seed order} of the settings ``select`` picks,
    in Parker et al.'s order, every run of them stored."""
    needs(chapter, lambda c: select(small_nets.setting(c)), what)
    keys, out = small_nets.runs(chapter.every_seed), {}
    for key, run in sorted(layer_runs(chapter.every_seed, measures).items(), key=lambda item: item[1].seed):
        if select(keys[key]):
            out.setdefault(keys[key], []).append(run)
    return dict(sorted(out.items(), key=lambda item: small_nets.order(item[0])))


def curve(runs: list[LayerRun], measure: str) -> np.ndarray:
    """The mean over the seeds of a setting's curve of ``measure`` (training split, flat features)."""
    return np.mean([r.curves[(measure, *TRAIN_FLAT)] for r in runs], axis=0)


def nc1_fall_with_training(chapter) -> str:
    have = settings(chapter, lambda s: s[1] == "cifar10" and s[2] == "relu", "ReLU networks on CIFAR-10", ("nc1",))
    fall = small_nets.fall("nc1")
    parts = []
    for model in dict.fromkeys(s[0] for s in have):
        states = []
        for trained, label in ((True, "after training"), (False, "at initialisation")):
            runs = have.get((model, "cifar10", "relu", trained))
            if runs:
                states.append(f"{mean_over(runs, lambda r: fall(r.curves)):.2f} {label}")
        parts.append(f"{model}: {', '.join(states)}")
    return ("; ".join(parts) + " (decades NC1 falls from the first to the last layer tap, negative where it rises; "
            "training split, flat features, mean over the seeds). Parker et al. expect the fall to come with "
            "training: at initialisation NC1 hardly changes with depth.")


def nc4_zero_layer(chapter) -> str:
    have = settings(chapter, lambda s: s[2] == "relu" and s[3], "trained ReLU networks", ("nc4",))
    parts = []
    for model in dict.fromkeys(s[0] for s in have):
        found = []
        mine = {s[1]: rs for s, rs in have.items() if s[0] == model}
        for dataset in sorted(mine, key=lambda d: (d not in DATASETS, list(DATASETS).index(d) if d in DATASETS else 0)):
            values = curve(mine[dataset], "nc4")
            below = np.flatnonzero(values < small_nets.NC4_ZERO)
            found.append(f"layer {below[0] + 1} of {len(values)} on {DATASETS.get(dataset, dataset)}" if len(below)
                         else f"none of its {len(values)} layers on {DATASETS.get(dataset, dataset)} (lowest "
                              f"{values.min():.3f}, at layer {values.argmin() + 1})")
        parts.append(f"{model}: {', '.join(found)}")
    return ("; ".join(parts) + f" (the first layer tap where NC4 is below {small_nets.NC4_ZERO:g}; NC4: the share "
            "of training images whose nearest class centre in that layer is not the network's prediction, mean "
            "over the seeds). Parker et al. expect it to reach 0 only in the last layers, sooner on the simpler "
            "dataset (Fashion-MNIST).")


def shallow_share(chapter) -> str:
    have = settings(chapter, lambda s: s[3], "the trained networks", ("nc1",))
    shares, left_out = {}, []
    for s, runs in have.items():
        share = 1 - np.mean([small_nets.later_share(r.curves[("nc1", *TRAIN_FLAT)]) for r in runs])
        if np.isfinite(share):
            shares.setdefault(s[2], []).append(float(share))
        else:
            left_out.append("/".join(s[:3]))
    mean = {a: float(np.mean(shares[a])) for a in (*ACTIVATIONS, *shares) if a in shares}
    reading = ("the share of the decades NC1 falls from the first to the last layer tap that it falls up to the "
               "middle tap, index (L - 1) // 2 of L taps counting from 0; training split, flat features, mean over "
               "the seeds")
    expected = ("Parker et al. find most of the fall in the shallower layers (a share above 0.5), with every "
                "activation.")
    if not mean:
        return (f"none: NC1 falls from the first to the last layer tap in none of the {len(have)} trained networks, "
                f"so no share is defined ({reading}). {expected}")
    counts = ", ".join(f"{len(shares[a])} {a}" for a in mean)
    return (f"{listing(mean)} ({reading}; mean over the trained networks of each activation: {counts}"
            + (f"; left out, NC1 not falling overall: {', '.join(left_out)}" if left_out else "") + f"). {expected}")


# --- training versus test split (Hui, Belkin, Nakkiran 2022) ---------------------------------------------

CDNV_GAP = train_vs_test.gap("cdnv_sum", "flat")  # log10(test / train) per layer tap


def last_cdnv_gap(chapter) -> str:
    runs = cifar10_layer_runs(chapter, ("cdnv_sum",))
    gaps = {m: mean_over(rs, lambda r: float(CDNV_GAP(r.curves)[-1])) for m, rs in runs.items()}
    weaker = sum(v > 0 for v in gaps.values())
    return (f"{listing(gaps, ' decades')} (log10 of CDNV on the test split over CDNV on the training split at the "
            "last layer tap, each split under its own class means; flat features, mean over the seeds). Positive, "
            f"as in {weaker} of the {len(gaps)} models, means the test images collapse less than the training "
            "images, as Hui et al. find.")


def cdnv_gap_growth(chapter) -> str:
    runs = cifar10_layer_runs(chapter, ("cdnv_sum",))

    def growth(r):
        first, final = train_vs_test.thirds(CDNV_GAP(r.curves))
        return final - first
    grows = dict(sorted(((m, mean_over(rs, growth)) for m, rs in runs.items()), key=lambda kv: -kv[1]))
    top = next(iter(grows))
    return (f"{top}: {grows[top]:+.2f} decades (every model: {listing(grows, ' decades')}; the mean CDNV gap over "
            "the last third of the layer taps minus over the first third, a third being at least one tap; flat "
            f"features, mean over the seeds). The gap grows in {sum(v > 0 for v in grows.values())} of the "
            f"{len(grows)} models; the chapter's second claim expects it to grow in every model.")


def ncc_train_test(chapter) -> str:
    runs = cifar10_layer_runs(chapter, ("ncc_accuracy",))
    parts = []
    for model, rs in runs.items():
        train, test = (mean_over(rs, lambda r, s=split: float(r.curves["ncc_accuracy", s, "flat"][-1]))
                       for split in ("train", "test"))
        network = mean_over(rs, lambda r: float(r.summary["test_acc"]))
        parts.append(f"{model}: {train:.3f} on the training split, {test:.3f} on the test split ({train - test:+.3f}); "
                     f"the network {network:.3f} on the test split")
    return ("; ".join(parts) + " (the nearest-class-centre classifier at the last layer tap, with the class means of "
            "the split it classifies; flat features, mean over the seeds). Where collapse carries over to the test "
            "set, the nearest class centre classifies test images as well as training images.")
