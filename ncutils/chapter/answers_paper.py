"""The answers to the questions of the paper's chapters (clean, label_noise, corruption, domain, vgg_vit,
nc1_vs_cdnv), each computed from the chapter's stored runs (:mod:`ncutils.chapter.questions` asks them).

Unless a question says otherwise, CDNV is ``cdnv_sum`` on the training split with flattened features (the view
of the chapters' figures).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import corruption, domain, label_noise, nc1_vs_cdnv, vgg_vit
from ..claims.clean import thirds
from ..config import RunConfig
from ..estimates import stored_runs
from ..frames import TERMINAL
from ..studies import DEPTH_LEVEL, DEPTH_NOISE, RESNETS, SWINS
from .answering import (
    TRAIN_FLAT,
    NotComputed,
    cifar10_layer_runs,
    listing,
    mean_over,
    needs,
    number,
)

GAUSSIAN = "gaussian_noise"


# --- clean ---------------------------------------------------------------------------------------------

def cifar10_runs(chapter, models: list[str], what: str) -> dict:
    """{model: its stored runs (``ncutils.estimates.Run``, training split, flat features)} on CIFAR-10."""
    needs(chapter, lambda c: c.model in models and c.dataset == "cifar10", what)
    runs = stored_runs(chapter.every_seed, [TRAIN_FLAT])
    return {m: runs["cifar10", m] for m in models}



def clean_last_third(chapter) -> str:
    resnets = chapter.of(RESNETS)
    runs = cifar10_runs(chapter, resnets, "the chapter's ResNets")

    def fall(r):
        c = np.log10(r.cdnv[TRAIN_FLAT].to_numpy(float))
        return c[thirds(len(c))[1]] - c[-1]
    falls = {m: mean_over(rs, fall) for m, rs in runs.items()}
    top = max(falls, key=falls.get)
    n = len(runs[top][0].cdnv[TRAIN_FLAT])
    start = thirds(n)[1] + 1
    return (f"{top}: its CDNV falls {falls[top]:.2f} decades over its last third of blocks (blocks {start} to {n}, "
            f"{falls[top] / (n - start):.2f} decades per block), the most of the ResNets (decades: {listing(falls)}; "
            "training split, flat features, mean over the seeds). A decade is a tenfold drop; the paper expects the "
            "last blocks to compress fastest.")


def clean_depth_gain(chapter) -> str:
    families = [(name, chapter.of(members)) for name, members in (("ResNets", RESNETS), ("Swin Transformers", SWINS))]
    ends = {name: (ms[0], ms[-1]) for name, ms in families if len(ms) >= 2}
    if not ends:
        raise NotComputed("this chapter has no family with two depths")
    needs(chapter, lambda c: c.dataset == "cifar10" and any(c.model in e for e in ends.values()),
          "the shallowest and deepest model of each family")
    s = chapter.every_seed.summaries
    acc = s[s.dataset == "cifar10"].groupby("model").test_acc.mean()
    parts = [f"{name}: {deep} {acc[deep]:.3f} against {shallow} {acc[shallow]:.3f}, {acc[deep] - acc[shallow]:+.3f}"
             for name, (shallow, deep) in ends.items()]
    return ("; ".join(parts) + " (test accuracy, mean over the seeds). The paper finds that extra depth adds "
            "little once the middle blocks plateau.")


def clean_resnet_vs_swin(chapter) -> str:
    pair = chapter.of(RESNETS)[:1] + chapter.of(SWINS)[:1]
    if len(pair) < 2:
        raise NotComputed("this chapter lacks a ResNet or a Swin Transformer")
    runs = cifar10_runs(chapter, pair, f"{pair[0]} and {pair[1]}")
    last = {m: mean_over(rs, lambda r: float(np.log10(r.cdnv[TRAIN_FLAT].iloc[-1]))) for m, rs in runs.items()}
    low, high = sorted(pair, key=last.get)
    return (f"{low}'s: log10 CDNV at its last block is {last[low]:.2f} against {last[high]:.2f} for {high}, "
            f"{last[high] - last[low]:.2f} decades lower (training split, flat features, mean over the seeds). Lower "
            "CDNV is tighter within-class compression; claim 3 expects the ResNet's to be lower.")


# --- label noise ---------------------------------------------------------------------------------------

def noise_fits(chapter) -> str:
    needs(chapter, lambda c: c.noise != "clean", "label noise")
    s = chapter.every_seed.summaries
    noisy = s[s.noise != "clean"]
    short = noisy[noisy.train_acc < TERMINAL]
    below = "; ".join(f"{r.model} {r.noise} seed {r.seed} ({r.train_acc:.3f})" for r in short.itertuples())
    return (f"{len(noisy) - len(short)} of {len(noisy)} noisy runs fit their noisy labels (train accuracy >= "
            f"{TERMINAL:.0%} on the labels they trained with){'; the others: ' + below if below else ''}. A run that "
            "fits them has memorized every wrong label; only these runs are read by the claims.")


def first_memorization_layer(chapter) -> str:
    needs(chapter, lambda c: c.noise == DEPTH_NOISE, DEPTH_NOISE)
    m = chapter.every_seed.metrics
    ratios = pd.concat([label_noise.memorization_rows(run) for _, run in m[m.noise == DEPTH_NOISE].groupby("seed")])
    mean = ratios.groupby(["model", "layer number"]).value.mean()
    parts = []
    for model in (x for x in chapter.models if x in mean.index.get_level_values(0)):
        curve = mean[model]
        above = curve[curve > 1]
        parts.append(f"{model}: block {above.index[0]} of {len(curve)} (ratio {above.iloc[0]:.2f}; {curve.iloc[-1]:.2f}"
                     " at the last block)" if len(above) else
                     f"{model}: none of its {len(curve)} blocks (highest ratio {curve.max():.2f})")
    return ("; ".join(parts) + " (training split, flat features, mean over the seeds). Above 1, CDNV under the "
            "true labels exceeds CDNV under the noisy ones: the block's features cluster by the noisy labels more "
            "tightly than by the true ones. The paper expects ResNets to memorize in their last blocks and Swin "
            "Transformers in none.")


def noise_cost(chapter) -> str:
    needs(chapter, lambda c: c.model == "resnet18", "resnet18")
    s = chapter.every_seed.summaries
    acc = s[s.model == "resnet18"].groupby("noise").test_acc.mean()
    if "clean" not in acc or len(acc) < 2:
        raise NotComputed("this chapter has no clean and noisy runs of resnet18")
    loss = (acc["clean"] - acc.drop("clean")).sort_values(ascending=False)
    return (f"{loss.index[0]}: resnet18's test accuracy falls from {acc['clean']:.3f} (clean labels) to "
            f"{acc[loss.index[0]]:.3f}, {loss.iloc[0]:.3f} lower (every noise: {listing(loss, digits=3)}; mean over "
            "the seeds). The test labels are clean: the loss is what fitting noisy training labels costs.")


# --- corruption ----------------------------------------------------------------------------------------

def gaussian_at(c: RunConfig, levels) -> bool:
    return corruption.under(c.corruption, GAUSSIAN) and corruption.level(c.corruption) in levels


def ratio_dip(chapter) -> str:
    needs(chapter, lambda c: gaussian_at(c, (DEPTH_LEVEL,)), f"Gaussian noise at level {DEPTH_LEVEL}")
    m = chapter.every_seed.metrics
    parts = []
    for model in chapter.models:
        seeds = [corruption.ratio_rows(run, model, GAUSSIAN) for _, run in m[m.model == model].groupby("seed")]
        rows = pd.concat(seeds) if seeds else pd.DataFrame(columns=corruption.LAYER_COLUMNS)
        curve = rows[rows.level == DEPTH_LEVEL].groupby("layer number").value.mean()
        if len(curve):
            parts.append(f"{model}: lowest at layer {curve.idxmin()} of {len(curve)} ({curve.min():.2f}), "
                         f"{curve.iloc[-1]:.2f} at the last layer")
    return ("; ".join(parts) + " (memorization ratio: CDNV on the clean training images over CDNV on their "
            "corrupted versions, flat features; mean over the seeds). Above 1 a layer memorizes the noise; the "
            "paper expects a dip over the first layers (they filter noise), then a rise.")


def corruption_cost(chapter) -> str:
    needs(chapter, lambda c: gaussian_at(c, (0, DEPTH_LEVEL)), f"the clean runs and Gaussian noise at level "
          f"{DEPTH_LEVEL}")
    s = chapter.every_seed.summaries
    s = s.assign(level=s.corruption.map(corruption.level))
    clean = s[s.level == 0].groupby("model").test_acc.mean()
    noisy = s[(s.level == DEPTH_LEVEL) & s.corruption.map(lambda c: corruption.under(c, GAUSSIAN))]
    loss = (clean - noisy.groupby("model").test_acc_clean_inputs.mean()).dropna().sort_values(ascending=False)
    return (f"{loss.index[0]}: its test accuracy on clean test images falls by {loss.iloc[0]:.3f} (every model: "
            f"{listing(loss, digits=3)}; the clean run minus the run trained at level {DEPTH_LEVEL}, mean over the "
            "seeds). The paper expects depth to cost Swin Transformers accuracy and to help ResNets slightly.")


def corruption_shift(chapter) -> str:
    needs(chapter, lambda c: c.model == "resnet18" and corruption.under(c.corruption, GAUSSIAN),
          "resnet18 under Gaussian noise")
    rows = corruption.trained_rows(chapter.every_seed.metrics, "cdnv_sum", "resnet18", GAUSSIAN)
    level = rows.assign(log=np.log10(rows.value.astype(float))).groupby(["level", "seed"]).log.mean()
    level = level.groupby(level="level").mean()
    steps = {f"level {b}": level[b] - level[a] for a, b in zip(level.index, level.index[1:])}
    return (f"{listing(steps, ' decades')} above the level below (mean log10 CDNV over the layers: "
            f"{listing({f'level {k}': v for k, v in level.items()})}; on the inputs each run trained with, mean over "
            "the seeds). The paper expects each level to shift the curve up: noisier inputs compress less.")


# --- domain --------------------------------------------------------------------------------------------

def last_probes(chapter) -> pd.DataFrame:
    """One row per (source, seed, target): the last layer's probe test accuracy on the target."""
    needs(chapter, lambda c: True, "the source models")
    probes = domain.measured(chapter.every_seed).probe
    return pd.DataFrame([(*key, curve.iloc[-1]) for key, curve in probes.items()],
                        columns=["source", "seed", "target", "accuracy"])


def best_source(chapter) -> str:
    mean = last_probes(chapter).groupby("source").accuracy.mean().sort_values(ascending=False)
    return (f"{mean.index[0]}: its last layer's probes reach {mean.iloc[0]:.3f} on the other domains (every "
            f"source: {listing(mean, digits=3)}; mean over its targets and seeds; chance {domain.CHANCE:.3f}). The "
            "probes read the frozen features: this source's features separate the other domains' classes best.")


def hardest_target(chapter) -> str:
    mean = last_probes(chapter).groupby("target").accuracy.mean().sort_values()
    times = mean.iloc[0] / domain.CHANCE
    return (f"{mean.index[0]}: the last layer's probes reach {mean.iloc[0]:.3f} there, {times:.1f} times chance "
            f"(1/7 = {domain.CHANCE:.3f}) (every target: {listing(mean, digits=3)}; mean over the source models and "
            "seeds).")


def adaptation(chapter) -> str:
    probes = last_probes(chapter).accuracy.mean()
    s = chapter.every_seed.summaries
    own = [getattr(r, f"test_acc_{t}") for r in s.itertuples() for t in domain.PACS
           if t != r.dataset.partition(":")[2] and f"test_acc_{t}" in s]
    images = chapter.configs[0].target_n_per_class
    trained = f"{images} target images per class" if images else "the target's training images"
    return (f"{np.mean(own):.3f} for the source models' own classifiers against {probes:.3f} for the last layer's "
            f"probes trained on {trained} (mean over every source, target and seed; "
            f"chance {domain.CHANCE:.3f}). The features transfer better than the classifier on top of them.")


# --- VGG and ViT ---------------------------------------------------------------------------------------

def vgg_decay(chapter) -> str:
    vggs = chapter.of(vgg_vit.VGGS)
    runs = cifar10_runs(chapter, vggs, "the VGGs")
    fits = {m: [vgg_vit.log_linear_fit(r.cdnv[TRAIN_FLAT]) for r in rs] for m, rs in runs.items()}
    rate = {m: -float(np.mean([f[0] for f in fs])) for m, fs in fits.items()}
    r2 = {m: float(np.mean([f[1] for f in fs])) for m, fs in fits.items()}
    top = max(rate, key=rate.get)
    return (f"{top}: its CDNV falls {rate[top]:.3f} decades per layer (every VGG: {listing(rate, digits=3)}; R² of "
            f"the line: {listing(r2)}; training split, flat features). The closer R² is to 1, the closer the decay "
            "is to geometric; the paper expects the rate to fall as the VGG gets deeper.")


def vit_terminal(chapter) -> str:
    vits = chapter.of(vgg_vit.VITS)
    needs(chapter, lambda c: c.model in vits, "the ViTs")
    acc = chapter.every_seed.summaries.groupby("model").train_acc.mean()[vits]
    parts = [f"{m} {a:.3f} ({'in' if a >= TERMINAL else 'not in'} the terminal phase)" for m, a in acc.items()]
    return ("; ".join(parts) + f" (training accuracy; the terminal phase: >= {TERMINAL:.0%}). The paper finds ViTs "
            "do not reach it on CIFAR-10 (appendix C).")


def mean_compression(chapter) -> str:
    models = chapter.models
    runs = cifar10_runs(chapter, models, "the chapter's models")
    level = pd.Series({m: mean_over(rs, lambda r: float(np.log10(r.cdnv[TRAIN_FLAT].to_numpy(float)).mean()))
                       for m, rs in runs.items()}).sort_values()
    return (f"lowest: {level.index[0]} ({level.iloc[0]:.2f}); highest: {level.index[-1]} ({level.iloc[-1]:.2f}) "
            f"(mean log10 CDNV over the layers, training split, flat features: {listing(level)}). The paper reads "
            "the ViTs' higher CDNV as weaker compression on a small dataset.")



# --- NC1 or CDNV ---------------------------------------------------------------------------------------

def per_model(runs: dict, statistic, measure: str) -> dict[str, float]:
    """{model: ``statistic`` of its curve of ``measure`` (training split, flat features), mean over its seeds}."""
    return {m: mean_over(rs, lambda r: statistic(r.curves[(measure, *TRAIN_FLAT)])) for m, rs in runs.items()}


def rises(chapter) -> str:
    runs = cifar10_layer_runs(chapter, ("cdnv_sum", "nc1"))
    nc1, cdnv = (per_model(runs, nc1_vs_cdnv.increases, m) for m in ("nc1", "cdnv_sum"))
    steps = {m: len(rs[0].curves["nc1", *TRAIN_FLAT]) - 1 for m, rs in runs.items()}
    fewer = sum(cdnv[m] < nc1[m] for m in runs)
    parts = [f"{m}: NC1 rises at {number(nc1[m])} of its {steps[m]} steps, CDNV at {number(cdnv[m])}" for m in runs]
    return ("; ".join(parts) + f" (steps from one layer to the next; training split, flat features on CIFAR-10, mean "
            f"over the seeds). CDNV rises less often than NC1 in {fewer} of the {len(runs)} models; a monotone curve "
            "never rises, and the paper calls CDNV the steadier measure.")


def back_and_forth(chapter) -> str:
    runs = cifar10_layer_runs(chapter, ("cdnv_sum", "nc1"))
    nc1, cdnv = (per_model(runs, nc1_vs_cdnv.excess_variation, m) for m in ("nc1", "cdnv_sum"))
    top = max(nc1, key=nc1.get)
    return (f"{top}: its NC1 curve travels {nc1[top]:.2f} decades beyond its net change, its CDNV curve "
            f"{cdnv[top]:.2f} (excess variation, NC1: {listing(nc1)}; CDNV: {listing(cdnv)}; training split, flat "
            "features on CIFAR-10, mean over the seeds). A monotone curve travels 0 decades beyond its net change: "
            "the rest is back-and-forth movement along the depth.")


def sensitivity(chapter) -> str:
    runs = cifar10_layer_runs(chapter, ("cdnv_sum", "nc2"))
    if len(runs) < 3:
        raise NotComputed(f"a rank correlation needs at least three models; this chapter has {len(runs)}")
    accuracy = np.array([mean_over(rs, lambda r: float(r.summary["test_acc"])) for rs in runs.values()])
    rho = {name: float(nc1_vs_cdnv.spearman(accuracy, -np.array(list(
               per_model(runs, lambda v: float(v[-1]), measure).values())))[0])
           for name, measure in (("CDNV", "cdnv_sum"), ("NC2", "nc2"))}
    closer = "CDNV" if rho["CDNV"] > rho["NC2"] else "NC2" if rho["NC2"] > rho["CDNV"] else "neither"
    return (f"{closer}: Spearman's correlation of test accuracy with minus the last-layer CDNV is {rho['CDNV']:.2f}, "
            f"with minus the last-layer NC2 {rho['NC2']:.2f} (over the {len(runs)} models, each the mean over its "
            "seeds; training split, flat features on CIFAR-10). 1 is the same order: the most accurate model has "
            "the lowest value. The 2025 version expects CDNV (its NC_1) to be the more sensitive indicator.")
