"""The section 4.2 label-noise verdicts on hand-built metric tables whose right verdict is known: curves
repeated over seeds with a small (or, for a tie, a large) scatter, or one run with jackknife replicates."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import label_noise
from ncutils.config import RunConfig
from ncutils.frames import VIEWS
from ncutils.results import StudyResults
from ncutils.studies import RANDOM_LABELS

from claim_rows import LEFT_OUT, claim_row

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
PAPER = PAPERS / "zhou-jiang-zhu-2025-are-all-layers-created-equal.md"
LEVELS = ("clean",) + RANDOM_LABELS
FLAT = "train split, flat features"


def found(runs: dict, missing=(), seeds=3, scatter=0.01, jackknife=0) -> StudyResults:
    """Stored results of ``runs`` ({(model, noise): {"cdnv": CDNV under the trained labels per block, "ratio":
    memorization ratio per block (noisy runs), "probe": probe accuracy per block, optionally "train_acc",
    "clean_labels_acc" (a noisy run's train accuracy on the clean labels, 0.5), "test_acc", "seeds", "probe_train"
    (1.0 per block), "converged" (1 per block; None: an SGD probe)}}) in every view, each of ``seeds`` runs
    scattered by ``scatter`` (relative for CDNV and the ratio, absolute for test accuracies), with ``jackknife``
    replicates; rows the claims must not read (test split, penultimate layer) carry 1e9."""
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    for (model, noise), run in runs.items():
        n = len(run["cdnv"])
        for seed in range(run.get("seeds", seeds)):
            cdnv = np.asarray(run["cdnv"], float) * (1 + scatter * rng.normal(size=n))
            groupings = {"clean": cdnv} if noise == "clean" else {
                "noisy": cdnv, "clean": cdnv * np.asarray(run["ratio"]) * (1 + scatter * rng.normal(size=n))}
            base = {"key": f"{model}-{noise}-{seed}", "model": model, "seed": seed, "dataset": "cifar10", "noise": noise, "eval_data": "cifar10",
                    "inputs": "clean", "num_samples": 2000}
            for labels, values in groupings.items():
                names = [("cdnv_sum", values)] + [(f"cdnv_sum@jk{g}", values * (1 + 0.001 * rng.normal(size=n)))
                                                  for g in range(jackknife)]
                for name, curve in names:
                    for i, v in enumerate(list(curve) + [1e9]):
                        layer = {"layer": "penultimate" if i == n else f"block{i}", "layer_index": i,
                                 "labels": labels, "measure": name}
                        rows += [{**base, **layer, "split": split, "features": features,
                                  "value": v if split == "train" else 1e9} for split, features in VIEWS]
            probe = np.clip(np.asarray(run["probe"], float) + scatter * rng.normal(size=n), 0, 1)
            fit = {"probe_train_acc": run.get("probe_train", [1.0] * n),
                   "probe_converged": run.get("converged", [1] * n)}
            for measure, split, values in [("probe_test_acc", "test", probe)] + [(m, "train", v) for m, v in fit.items()
                                                                                 if v is not None]:
                rows += [{**base, "layer": f"block{i}", "layer_index": i, "labels": "clean", "measure": measure,
                          "features": "pooled", "split": split, "value": v} for i, v in enumerate(values)]
            summaries.append((f"{model}-{noise}-{seed}", model, "cifar10", noise, seed, run.get("train_acc", 1.0),
                              run.get("clean_labels_acc", 0.5) if noise != "clean" else np.nan,
                              run.get("test_acc", 0.5) + scatter * rng.normal(), 2000))
    summaries = pd.DataFrame(summaries, columns=["key", "model", "dataset", "noise", "seed", "train_acc",
                                                 "train_acc_clean_labels", "test_acc", "num_test"])
    return StudyResults(pd.DataFrame(rows), summaries, [(RunConfig(m, noise=n), "missing") for m, n in missing], None,
                        tuple(RunConfig(m, noise=n) for m, n in runs))


def study(model="resnet18", n=9, cdnv_means=(10, 20, 30, 40, 50), ratio=None, probe_last=None, probe=None,
          levels=LEVELS):
    """One model's clean and random-label runs: flat CDNV curves at ``cdnv_means``, the same ratio curve for
    every noisy run, probes from 0.3 to ``probe_last`` (one value per noise level) or the curves ``probe``."""
    ratio = ratio if ratio is not None else np.linspace(0.5, 1.3, n)
    probe_last = probe_last or [0.6, 0.55, 0.5, 0.4, 0.3]
    probe = probe or [list(np.linspace(0.3, last, n)) for last in probe_last]
    return {(model, noise): {"cdnv": [mean] * n, "ratio": list(ratio), "probe": p}
            for noise, mean, p in zip(LEVELS, cdnv_means, probe) if noise in levels}


def verdict(results: StudyResults, claim: str, view=FLAT) -> str:
    return claim_row(label_noise.claims(results), claim, view).verdict


def test_cdnv_shifts_up_with_the_noise_in_each_training_view():
    claim = "resnet18, random labels, train split, pooled features: the CDNV curve"
    assert verdict(found(study(cdnv_means=(10, 20, 30, 40, 50))), claim, "pooled") == "holds"
    assert verdict(found(study(cdnv_means=(50, 40, 30, 20, 10))), claim, "pooled") == "does not hold"
    assert verdict(found(study(cdnv_means=(10, 20, 30, 40, 41)), scatter=0.2), claim, "pooled") == "inconclusive"
    table = label_noise.claims(found(study()))
    assert not table.claim.str.contains("test split").any()  # the test images have no noisy labels


def test_memorization_ratio_rises_through_the_layers():
    claim = "resnet18, random labels, train split, flat features: the memorization ratio rises"
    assert verdict(found(study(ratio=np.linspace(0.5, 1.3, 9))), claim) == "holds"
    assert verdict(found(study(ratio=np.linspace(1.3, 0.5, 9))), claim) == "does not hold"


def test_resnet_memorization_layers_only_in_the_last_third():
    claim = "resnet18, random labels, train split, flat features: the memorization ratio exceeds 1"
    last_third = np.r_[np.linspace(0.5, 0.9, 6), 1.1, 1.2, 1.3]
    assert verdict(found(study(ratio=last_third)), claim) == "holds"  # blocks 7-9
    assert verdict(found(study(ratio=np.linspace(0.5, 0.9, 9))), claim) == "does not hold"  # none
    early = last_third.copy()
    early[1] = 1.2
    assert verdict(found(study(ratio=early)), claim) == "does not hold"  # block 2 memorizes too


def test_swin_ratio_stays_below_one():
    claim = "swin_t, random labels, train split, flat features: the memorization ratio stays below 1"
    assert verdict(found(study("swin_t", 12, ratio=np.linspace(0.3, 0.9, 12))), claim) == "holds"
    assert verdict(found(study("swin_t", 12, ratio=np.linspace(0.3, 1.2, 12))), claim) == "does not hold"


def test_probe_gap_widens_in_the_last_layers():
    claim = "resnet18, random labels: the probe-accuracy gap"
    assert verdict(found(study(probe_last=[0.6, 0.55, 0.5, 0.4, 0.3])), claim) == "holds"
    narrowing = [list(np.linspace(a, 0.6, 9)) for a in (0.6, 0.5, 0.4, 0.3, 0.2)]
    assert verdict(found(study(probe=narrowing)), claim) == "does not hold"


def test_more_noise_more_blocks_lose_probe_accuracy():
    claim = "resnet18, random labels: the more noise, the more blocks lose"
    clean = np.linspace(0.3, 0.7, 9)
    def losing(blocks):  # the last ``blocks`` blocks 0.1 below the clean curve
        return [list(clean - 0.1 * (np.arange(9) >= 9 - b)) for b in blocks]
    assert verdict(found(study(probe=losing((0, 2, 4, 6, 8))), seeds=1, scatter=0), claim) == "holds"
    assert verdict(found(study(probe=losing((0, 8, 6, 4, 2))), seeds=1, scatter=0), claim) == "does not hold"
    assert verdict(found(study(probe=losing((0, 4, 4, 4, 4))), seeds=1, scatter=0), claim) == "inconclusive"


def four(resnet18_last, resnet34_last, swin_t_last, swin_s_last, accuracy=None):
    """The four models clean and under random:0.4 (the study below the paper scale), ResNet18 and Swin-T at
    every level; ``accuracy``: {(model, noise): test accuracy}."""
    deeper = ("clean", "random:0.4")
    runs = {**study("resnet18", 9, ratio=np.linspace(0.5, resnet18_last, 9)),
            **study("resnet34", 17, ratio=np.linspace(0.5, resnet34_last, 17), levels=deeper),
            **study("swin_t", 12, ratio=np.linspace(0.3, swin_t_last, 12)),
            **study("swin_s", 24, ratio=np.linspace(0.3, swin_s_last, 24), levels=deeper)}
    for key, run in runs.items():
        run["seeds"] = 3 if key[1] in deeper else 1
        run["test_acc"] = (accuracy or {}).get(key, 0.5)
    return runs


def test_depth_raises_resnet_and_lowers_swin_memorization_at_the_noise_both_ran():
    resnets = "(4) ResNets, train split, flat features: at each noise, the deeper model has the higher"
    swins = "(4) Swin Transformers, train split, flat features: at each noise, the deeper model has the lower"
    up = found(four(1.2, 1.5, 0.9, 0.6))
    assert verdict(up, resnets) == "holds" and verdict(up, swins) == "holds"
    table = label_noise.claims(up)
    row = claim_row(table, "(4) ResNets, train split, flat")
    assert row.statistic.startswith("log10 memorization ratio at the last block, deeper minus shallower model (> 0): "
                                    "random:0.4 resnet34 - resnet18 0.09") and row.statistic.endswith("(3 seeds)")
    down = found(four(1.5, 1.2, 0.6, 0.9))
    assert verdict(down, resnets) == "does not hold" and verdict(down, swins) == "does not hold"


def test_depth_is_not_computed_with_one_depth_per_family():
    table = label_noise.claims(found({**study("resnet18"), **study("swin_t", 12, ratio=np.linspace(0.3, 0.9, 12))}))
    depth = table[table.claim.str.startswith("(4)") | table.claim.str.startswith("(5)")]
    assert len(depth) == 5 and set(depth.verdict) == {"not computed"}
    assert "no two ResNet depths under one noise at this scale (resnet18)" in depth.statistic.iloc[0]


@pytest.mark.parametrize("resnet34_drop, swin_s_drop, scatter, expected", [
    (0.10, 0.00, 0.002, "holds"), (0.00, 0.10, 0.002, "does not hold"), (0.06, 0.04, 0.05, "inconclusive")])
def test_depth_helps_swin_and_hurts_resnet_accuracy_under_noise(resnet34_drop, swin_s_drop, scatter, expected):
    """Under random:0.4 ResNet18 and Swin-T lose 0.05 against their clean runs; ResNet34 and Swin-S lose
    ``resnet34_drop`` and ``swin_s_drop``; clean, the deeper models are 0.01 better."""
    accuracy = {("resnet18", "clean"): 0.60, ("resnet18", "random:0.4"): 0.55,
                ("resnet34", "clean"): 0.61, ("resnet34", "random:0.4"): 0.61 - resnet34_drop,
                ("swin_t", "clean"): 0.50, ("swin_t", "random:0.4"): 0.45,
                ("swin_s", "clean"): 0.51, ("swin_s", "random:0.4"): 0.51 - swin_s_drop}
    results = found(four(1.2, 1.5, 0.9, 0.6, accuracy), scatter=scatter)
    assert verdict(results, "(5) under label noise, depth raises the clean test accuracy") == expected


def test_one_run_is_judged_by_its_jackknife():
    runs = study(ratio=np.linspace(0.5, 1.3, 9))
    table = label_noise.claims(found(runs, seeds=1, jackknife=10))
    row = claim_row(table, "resnet18, random labels, train split, flat features: the memorization ratio rises")
    assert row.verdict == "holds" and "jackknife over images, 10 groups" in row.statistic
    without = label_noise.claims(found(runs, seeds=1))
    row = claim_row(without, "flat features: the memorization ratio rises")
    assert row.verdict == "inconclusive" and "without jackknife replicates" in row.statistic


def test_runs_that_do_not_fit_their_labels_are_left_out_and_listed():
    runs = study()
    runs["resnet18", "random:0.8"].update(train_acc=0.9, seeds=3)
    results = found(runs, seeds=1, scatter=0, jackknife=10)
    results.summaries.loc[(results.summaries.noise == "random:0.8") & (results.summaries.seed > 0), "train_acc"] = 1.0
    table = label_noise.claims(results)
    shift = claim_row(table, f"resnet18, random labels, {FLAT}: the CDNV curve")
    assert shift.verdict == "holds"
    assert "random:0.8 - random:0.6 0.0969 ± 0.00037 (2 seeds; jackknife" in shift.statistic
    assert shift.statistic.endswith(f"; {LEFT_OUT}: resnet18 random:0.8 seed 0 (0.900)")
    results.summaries.loc[results.summaries.noise == "random:0.8", "train_acc"] = 0.9
    table = label_noise.claims(results)
    shift = claim_row(table, f"resnet18, random labels, {FLAT}: the CDNV curve")
    assert shift.verdict == "holds" and "random:0.8 -" not in shift.statistic  # judged on the other levels
    assert shift.statistic.endswith("resnet18 random:0.8 seed 1 (0.900), resnet18 random:0.8 seed 2 (0.900)")
    alone = found(study(levels=("clean", "random:0.2")) | {("resnet18", "random:0.2"): {
        "cdnv": [20] * 9, "ratio": [1.2] * 9, "probe": [0.3] * 9, "train_acc": 0.5}})
    row = label_noise.claims(alone)
    row = claim_row(row, f"{FLAT}: the memorization ratio rises")
    assert row.verdict == "not computed"
    assert row.statistic == (f"no run fits its training labels; {LEFT_OUT}: "
                             "resnet18 random:0.2 seed 0 (0.500), resnet18 random:0.2 seed 1 (0.500), "
                             "resnet18 random:0.2 seed 2 (0.500)")
    shift = label_noise.claims(alone)
    shift = claim_row(shift, f"{FLAT}: the CDNV curve")
    assert shift.verdict == "not computed" and shift.statistic.startswith(
        "mean log10 CDNV over the blocks under the trained labels, each noise minus the next lower one (> 0): nothing "
        "to judge among the runs that fit their training labels; left out")


def test_claims_with_missing_runs_are_not_computed():
    runs = {k: v for k, v in study().items() if k[1] != "random:0.8"}
    table = label_noise.claims(found(runs, missing=[("resnet18", "random:0.8")]))
    row = claim_row(table, f"resnet18, random labels, {FLAT}: the memorization ratio rises")
    assert row.verdict == "not computed"
    assert row.statistic.startswith("not stored yet: resnet18 random:0.8; the stored runs give: slope of log10")
    nothing = label_noise.claims(found({}, missing=[("resnet18", "clean"), ("resnet18", "random:0.2"),
                                                    ("resnet18", "random:0.4")]))
    assert set(nothing.verdict) == {"not computed"} and len(nothing) > 0


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in label_noise.QUOTES.items():
        assert quote in paper, name
    table = label_noise.claims(found(four(1.2, 1.5, 0.9, 0.6)))
    assert all(any(f'"{q}"' in claim for q in label_noise.QUOTES.values()) for claim in table.claim)


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(label_noise.CHAPTER))
    runs = {**four(1.2, 1.5, 0.9, 0.6), **{("resnet18", n): {"cdnv": [10] * 9, "ratio": [0.5] * 9, "probe": [0.3] * 9}
                                           for n in ("cifar10n:aggre", "cifar10n:worse")}}
    table = label_noise.claims(found(runs))
    assert set(table.figure) == {label_noise.RANDOM_FIGURE, label_noise.SETTINGS[1][2], label_noise.ACCURACY}
    for link in table.figure:
        page, _, target = link.partition("#")
        assert page == f"{label_noise.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"


def test_accuracy_table_lists_every_seed_and_whether_it_fits_its_labels():
    runs = study(levels=("clean", "random:0.2"))
    runs["resnet18", "random:0.2"]["train_acc"] = 0.9
    table = label_noise.accuracy_table(found(runs, seeds=2))
    assert list(table.seed) == [0, 1, 0, 1] and list(table["fits its labels"]) == [True, True, False, False]


def test_a_probe_that_did_not_converge_or_underfits_leaves_exactly_the_probe_claims_not_computed():
    good = label_noise.claims(found(study()))
    reads_probe = good.claim.str.contains("probe")
    assert reads_probe.sum() == 2 and "not computed" not in set(good[reads_probe].verdict)  # gap, blocks losing
    for problem, why in (({"converged": [1] * 8 + [0]}, "resnet18 random:0.8 seed 1: the probe did not converge at "
                                                         "block 9"),
                         ({"probe_train": [0.5] * 8 + [0.45]}, "resnet18 random:0.8 seed 0: the last block's probe "
                                                               "fits 0.450 of its training images, the network 0.500")):
        runs = study()
        runs["resnet18", "random:0.8"].update(problem)  # the noisiest run: both probe claims read it
        table = label_noise.claims(found(runs))
        assert set(table[reads_probe].verdict) == {"not computed"}
        assert all(why in s and "fails the probe check" in s for s in table[reads_probe].statistic)
        assert table[~reads_probe].verdict.tolist() == good[~reads_probe].verdict.tolist()
    runs = study()
    runs["resnet18", "random:0.4"].update(converged=[0] * 9)  # read by the blocks losing only, not by the gap
    table = label_noise.claims(found(runs))
    assert table[reads_probe].verdict.tolist() == [good[reads_probe].verdict.iloc[0], "not computed"]


def test_a_noisy_runs_probe_is_compared_with_the_networks_fit_of_the_clean_labels_an_sgd_probe_for_fit_only():
    claim = "resnet18, random labels: the probe-accuracy gap"
    runs = study()
    runs["resnet18", "random:0.8"].update(probe_train=[0.3] * 9, clean_labels_acc=0.3, converged=None)
    assert verdict(found(runs), claim) == "holds"  # 0.3 >= 0.3 - 0.02, far below its fit of its noisy labels (1.0)
    runs["resnet18", "random:0.8"].update(clean_labels_acc=0.35)
    assert verdict(found(runs), claim) == "not computed"  # 0.3 < 0.35 - 0.02
