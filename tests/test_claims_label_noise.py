"""The section 4.2 label-noise verdicts on hand-built metric tables whose right verdict is known."""
import re

import numpy as np
import pandas as pd

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import label_noise
from ncutils.config import RunConfig
from ncutils.results import StudyResults
from ncutils.studies import RANDOM_LABELS

LEVELS = ("clean",) + RANDOM_LABELS


def found(runs: dict, missing=()) -> StudyResults:
    """Stored results of ``runs`` ({(model, noise): {"cdnv": trained-label CDNV per block, "ratio":
    memorization ratio per block (noisy runs), "probe": probe accuracy per block}}), as the store lays
    them out; rows the claims must not read (test split, penultimate layer) carry a value of 1e9."""
    rows = []
    for (model, noise), run in runs.items():
        n = len(run["cdnv"])
        base = {"model": model, "dataset": "cifar10", "noise": noise, "eval_data": "cifar10", "inputs": "clean",
                "num_samples": 2000}
        groupings = {"clean": run["cdnv"]} if noise == "clean" else {
            "noisy": run["cdnv"], "clean": list(np.multiply(run["cdnv"], run["ratio"]))}
        for labels, values in groupings.items():
            for i, v in enumerate(list(values) + [1e9]):
                layer = {"layer": "penultimate" if i == n else f"block{i}", "layer_index": i, "labels": labels,
                         "measure": "cdnv_sum", "features": "flat"}
                rows += [{**base, **layer, "split": "train", "value": v},
                         {**base, **layer, "split": "test", "value": 1e9}]
        for i, v in enumerate(run["probe"]):
            rows.append({**base, "layer": f"block{i}", "layer_index": i, "labels": "clean", "measure": "probe_test_acc",
                         "features": "pooled", "split": "test", "value": v})
    summaries = pd.DataFrame([(m, "cifar10", n, 1.0, 0.5) for m, n in runs],
                             columns=["model", "dataset", "noise", "train_acc", "test_acc"])
    return StudyResults(pd.DataFrame(rows), summaries, [(RunConfig(m, noise=n), "missing") for m, n in missing], None,
                        tuple(RunConfig(m, noise=n) for m, n in runs))


def study(model="resnet18", n=9, cdnv_means=(10, 20, 30, 40, 50), ratio=None, probe_first=None, probe_last=None):
    """One model's clean and random-label runs: flat CDNV curves at ``cdnv_means``, the same ratio curve for
    every noisy run, probes from ``probe_first`` to ``probe_last`` (one value per noise level)."""
    ratio = ratio if ratio is not None else np.linspace(0.5, 1.3, n)
    probe_first = probe_first or [0.3] * len(LEVELS)
    probe_last = probe_last or [0.6, 0.55, 0.5, 0.4, 0.3]
    return {(model, noise): {"cdnv": [mean] * n, "ratio": list(ratio), "probe": list(np.linspace(a, b, n))}
            for noise, mean, a, b in zip(LEVELS, cdnv_means, probe_first, probe_last)}


def verdict(results: StudyResults, claim: str) -> str:
    table = label_noise.claims(results)
    row = table[table.claim.str.contains(claim, regex=False)]
    assert len(row) == 1, (claim, table.claim.tolist())
    return row.verdict.iloc[0]


def test_cdnv_shifts_up_with_the_noise():
    claim = "resnet18, random labels: the CDNV curve shifts up"
    assert verdict(found(study(cdnv_means=(10, 20, 30, 40, 50))), claim) == "holds"
    assert verdict(found(study(cdnv_means=(50, 40, 30, 20, 10))), claim) == "does not hold"
    assert verdict(found(study(cdnv_means=(10, 30, 20, 40, 50))), claim) == "inconclusive"


def test_memorization_ratio_rises_through_the_layers():
    claim = "resnet18, random labels: the memorization ratio rises"
    assert verdict(found(study(ratio=np.linspace(0.5, 1.3, 9))), claim) == "holds"
    assert verdict(found(study(ratio=np.linspace(1.3, 0.5, 9))), claim) == "does not hold"


def test_resnet_memorization_layers_only_in_the_last_third():
    claim = "resnet18, random labels: the memorization ratio exceeds 1 only in the last layers"
    assert verdict(found(study(ratio=np.linspace(0.5, 1.3, 9))), claim) == "holds"  # blocks 7-9
    assert verdict(found(study(ratio=np.linspace(0.5, 0.9, 9))), claim) == "does not hold"  # none
    early = np.linspace(0.5, 1.3, 9)
    early[1] = 1.2
    assert verdict(found(study(ratio=early)), claim) == "does not hold"  # block 2 memorizes too


def test_swin_ratio_stays_below_one():
    claim = "swin_t, random labels: the memorization ratio stays below 1"
    assert verdict(found(study("swin_t", 12, ratio=np.linspace(0.3, 0.9, 12))), claim) == "holds"
    assert verdict(found(study("swin_t", 12, ratio=np.linspace(0.3, 1.2, 12))), claim) == "does not hold"


def test_probe_gap_widens_in_the_last_layers():
    claim = "resnet18, random labels: probe accuracies of the noise levels differ more"
    assert verdict(found(study(probe_first=[0.3] * 5, probe_last=[0.6, 0.55, 0.5, 0.4, 0.3])), claim) == "holds"
    assert verdict(found(study(probe_first=[0.6, 0.5, 0.4, 0.3, 0.2], probe_last=[0.6] * 5)), claim) == "does not hold"


def test_depth_raises_resnet_and_lowers_swin_memorization():
    resnets = "(4) ResNets: at each noise, the deeper model has the higher"
    swins = "(4) Swin Transformers: at each noise, the deeper model has the lower"
    def four(resnet18_last, resnet34_last, swin_t_last, swin_s_last):
        return {**study("resnet18", 9, ratio=np.linspace(0.5, resnet18_last, 9)),
                **study("resnet34", 17, ratio=np.linspace(0.5, resnet34_last, 17)),
                **study("swin_t", 12, ratio=np.linspace(0.3, swin_t_last, 12)),
                **study("swin_s", 24, ratio=np.linspace(0.3, swin_s_last, 24))}

    up = four(1.2, 1.5, 0.9, 0.6)
    assert verdict(found(up), resnets) == "holds"
    assert verdict(found(up), swins) == "holds"
    down = four(1.5, 1.2, 0.6, 0.9)
    assert verdict(found(down), resnets) == "does not hold"
    assert verdict(found(down), swins) == "does not hold"


def test_depth_is_judged_at_the_noises_every_depth_ran():
    """Below the paper scale the deeper models run one noise (studies.DEPTH_NOISE): depth is judged there."""
    def deeper(model, n, last):
        runs = study(model, n, ratio=np.linspace(0.5, last, n))
        return {k: v for k, v in runs.items() if k[1] in ("clean", "random:0.4")}

    runs = {**study("resnet18", 9, ratio=np.linspace(0.5, 1.2, 9)), **deeper("resnet34", 17, 1.5)}
    table = label_noise.claims(found(runs))
    row = table[table.claim.str.startswith("(4) ResNets")].iloc[0]
    assert row.verdict == "holds"
    assert row.statistic == ("memorization ratio at the last block, shallow vs deep: "
                             "random:0.4 resnet18 1.2 vs resnet34 1.5")
    assert verdict(found({**runs, **deeper("resnet34", 17, 1.0)}), "(4) ResNets") == "does not hold"


def test_depth_is_not_computed_with_one_depth_per_family():
    table = label_noise.claims(found({**study("resnet18"), **study("swin_t", 12, ratio=np.linspace(0.3, 0.9, 12))}))
    depth = table[table.claim.str.startswith("(4)")]
    assert list(depth.verdict) == ["not computed"] * 2
    assert "one ResNet depth at this scale (resnet18)" in depth.statistic.iloc[0]


def test_claims_with_missing_runs_are_not_computed():
    runs = {k: v for k, v in study().items() if k[1] != "random:0.8"}
    table = label_noise.claims(found(runs, missing=[("resnet18", "random:0.8")]))
    row = table[table.claim.str.contains("resnet18, random labels: the memorization ratio rises")].iloc[0]
    assert row.verdict == "not computed"
    assert row.statistic.startswith("not stored yet: resnet18 random:0.8; the stored runs give: memorization ratio")
    nothing = label_noise.claims(found({}, missing=[("resnet18", "clean"), ("resnet18", "random:0.2")]))
    assert set(nothing.verdict) == {"not computed"} and len(nothing) > 0


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(label_noise.CHAPTER))
    runs = {**study(), **{("resnet18", n): {"cdnv": [10] * 9, "ratio": [0.5] * 9, "probe": [0.3] * 9}
                          for n in ("cifar10n:aggre", "cifar10n:worse")}}
    table = label_noise.claims(found(runs))
    assert set(table.figure) == {label_noise.RANDOM_FIGURE, label_noise.SETTINGS[1][2]}
    for link in table.figure:
        page, _, target = link.partition("#")
        assert page == f"{label_noise.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"
