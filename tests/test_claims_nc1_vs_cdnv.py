"""NC1-versus-CDNV verdicts (chapter nc1_vs_cdnv) on hand-built metric tables whose right verdict is known."""

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import nc1_vs_cdnv
from ncutils.config import RunConfig
from ncutils.results import StudyResults

MONOTONE = [1000, 500, 200, 100, 20]
ZIGZAG = [10, 12, 5, 6, 1]  # falls overall, rises twice
RISING = [1, 1.5, 2, 3, 4]


def found(runs: dict, missing=()) -> StudyResults:
    """Stored results: {model: (CDNV curve, NC1 curve)} on CIFAR-10; rows the claims must not read
    (test split, pooled features, penultimate layer) carry 1e9."""
    rows = []
    for model, (cdnv, nc1) in runs.items():
        for measure, values in (("cdnv_sum", cdnv), ("nc1", nc1)):
            for i, v in enumerate(list(values) + [1e9]):
                base = dict(model=model, dataset="cifar10", eval_data="cifar10", inputs="clean", labels="clean",
                            measure=measure, layer_index=i, layer="penultimate" if i == len(values) else f"block{i}")
                rows += [{**base, "split": "train", "features": "flat", "value": float(v)},
                         {**base, "split": "test", "features": "flat", "value": 1e9},
                         {**base, "split": "train", "features": "pooled", "value": 1e9}]
    summaries = pd.DataFrame([dict(model=m, dataset="cifar10", train_acc=1.0, test_acc=0.6) for m in runs])
    return StudyResults(pd.DataFrame(rows), summaries, [(c, "missing") for c in missing], None)


def verdicts(results: StudyResults) -> list[str]:
    """Verdicts of (fewer increases, smaller excess variation, NC1 falls on CIFAR-10)."""
    return nc1_vs_cdnv.claims(results).verdict.tolist()


def test_smooth_cdnv_and_zigzag_nc1_make_the_claims_hold():
    assert verdicts(found({"resnet18": (MONOTONE, ZIGZAG), "swin_t": (MONOTONE, MONOTONE)})) == ["holds"] * 3


def test_zigzag_cdnv_and_smooth_nc1_make_the_stability_claims_fail():
    assert verdicts(found({"resnet18": (ZIGZAG, MONOTONE), "swin_t": (MONOTONE, MONOTONE)})) == \
        ["does not hold", "does not hold", "holds"]


def test_runs_disagreeing_are_inconclusive():
    assert verdicts(found({"resnet18": (MONOTONE, ZIGZAG), "swin_t": (ZIGZAG, MONOTONE)})) == \
        ["inconclusive", "inconclusive", "holds"]
    assert verdicts(found({"resnet18": (MONOTONE, ZIGZAG), "swin_t": (MONOTONE, RISING)}))[2] == "inconclusive"


def test_nc1_rising_on_cifar10_fails_the_progressive_reduction():
    assert verdicts(found({"resnet18": (MONOTONE, RISING), "swin_t": (MONOTONE, RISING)}))[2] == "does not hold"


def test_stability_statistics():
    assert nc1_vs_cdnv.increases(np.array(ZIGZAG)) == 2 and nc1_vs_cdnv.increases(np.array(MONOTONE)) == 0
    assert nc1_vs_cdnv.excess_variation(np.array(MONOTONE)) == 0.0
    assert nc1_vs_cdnv.excess_variation(np.array(RISING)) == 0.0
    # 10 -> 12 -> 5 -> 6 -> 1 travels 2 * (log10 12/10 + log10 6/5) decades beyond its net fall
    assert nc1_vs_cdnv.excess_variation(np.array(ZIGZAG)) == pytest.approx(2 * np.log10(1.2 * 1.2))


def test_missing_runs_leave_claims_not_computed_with_what_the_stored_runs_give():
    table = nc1_vs_cdnv.claims(found({"resnet18": (MONOTONE, ZIGZAG)},
                                     missing=[RunConfig.at_scale("swin_l", "cifar10", "smoke")]))
    assert set(table.verdict) == {"not computed"}
    assert all("not stored yet: swin_l/cifar10; the stored runs give:" in s for s in table.statistic)
    empty = StudyResults(pd.DataFrame(), pd.DataFrame(), [(RunConfig.at_scale("swin_l", "cifar10", "smoke"), "missing")],
                         None)
    assert set(nc1_vs_cdnv.claims(empty).verdict) == {"not computed"}


def test_figure_links_point_at_targets_of_the_chapter():
    targets = set(chapter_targets(nc1_vs_cdnv.CHAPTER))
    for link in nc1_vs_cdnv.claims(found({"resnet18": (MONOTONE, ZIGZAG)})).figure:
        page, _, target = link.partition("#")
        assert page == f"{nc1_vs_cdnv.CHAPTER}.html" and target in targets, link
