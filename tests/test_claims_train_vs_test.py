"""Train-versus-test verdicts (chapter train_vs_test) on hand-built metric tables whose right verdict is known."""

import numpy as np
import pandas as pd

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import train_vs_test
from ncutils.config import RunConfig
from ncutils.results import StudyResults

# per measure: the training-split curve, and a test-split curve that collapses less and less as depth grows
TRAIN = {"cdnv_sum": [100, 30, 10, 1], "nc1": [10, 3, 1, 0.1], "nc2": [1.0, 0.6, 0.3, 0.1],
         "ncc_accuracy": [0.4, 0.6, 0.8, 0.9]}
WEAKER = {"cdnv_sum": [100, 35, 20, 10], "nc1": [10, 4, 3, 2], "nc2": [1.0, 0.7, 0.5, 0.5],
          "ncc_accuracy": [0.4, 0.55, 0.6, 0.65]}
# a test split collapsing a little more than the training split, as much or more in the last layers
STRONGER = {"cdnv_sum": [90, 27, 9, 0.9], "nc1": [9, 2.7, 0.9, 0.09], "nc2": [0.9, 0.5, 0.2, 0.0],
            "ncc_accuracy": [0.42, 0.63, 0.84, 0.96]}


def found(tests: dict, train_acc: float = 1.0, missing=()) -> StudyResults:
    """Stored results: {model: test-split curves}, every model with the TRAIN curves on its training split;
    rows the claims must not read (pooled features, penultimate layer) carry 1e9."""
    rows = []
    for model, test in tests.items():
        for split, curves in (("train", TRAIN), ("test", test)):
            for measure, values in curves.items():
                for i, v in enumerate(list(values) + [1e9]):
                    base = dict(model=model, dataset="cifar10", eval_data="cifar10", inputs="clean", labels="clean",
                                split=split, measure=measure, layer_index=i,
                                layer="penultimate" if i == len(values) else f"block{i}")
                    rows += [{**base, "features": "flat", "value": float(v)},
                             {**base, "features": "pooled", "value": 1e9}]
    summaries = pd.DataFrame([dict(model=m, dataset="cifar10", train_acc=train_acc, test_acc=0.6) for m in tests])
    return StudyResults(pd.DataFrame(rows), summaries, [(c, "missing") for c in missing], None)


def test_test_collapse_weaker_and_gap_growing_make_every_claim_hold():
    table = train_vs_test.claims(found({"resnet18": WEAKER, "swin_t": WEAKER}))
    assert set(table.verdict) == {"holds"}, table[["claim", "statistic"]].to_string()


def test_test_collapse_as_strong_as_train_makes_every_claim_fail():
    table = train_vs_test.claims(found({"resnet18": STRONGER, "swin_t": STRONGER}, train_acc=0.9))
    assert set(table.verdict) == {"does not hold"}, table[["claim", "statistic"]].to_string()


def test_models_disagreeing_make_the_claims_inconclusive():
    table = train_vs_test.claims(found({"resnet18": WEAKER, "swin_t": STRONGER}))
    gap_rows = table[~table.claim.str.startswith("every run")]
    assert set(gap_rows.verdict) == {"inconclusive"}


def test_gap_signs():
    gaps = train_vs_test.gap_rows(found({"resnet18": WEAKER}).metrics, "cdnv_sum")
    assert np.allclose(gaps.value, np.log10(np.array(WEAKER["cdnv_sum"]) / TRAIN["cdnv_sum"]))
    ncc = train_vs_test.gap_rows(found({"resnet18": WEAKER}).metrics, "ncc_accuracy")
    assert np.allclose(ncc.value, np.array(TRAIN["ncc_accuracy"]) - WEAKER["ncc_accuracy"])
    assert train_vs_test.thirds(np.array([0.0, 1, 2, 3, 4, 5, 6])) == (0.5, 5.5)


def test_missing_runs_leave_claims_not_computed_with_what_the_stored_runs_give():
    table = train_vs_test.claims(found({"resnet18": WEAKER}, missing=[RunConfig.at_scale("swin_b", "cifar10", "smoke")]))
    assert set(table.verdict) == {"not computed"}
    assert all("not stored yet: swin_b; the stored runs give: 1 of 1 models" in s for s in table.statistic)


def test_figure_links_point_at_targets_of_the_chapter():
    targets = set(chapter_targets(train_vs_test.CHAPTER))
    for link in train_vs_test.claims(found({"resnet18": WEAKER})).figure:
        page, _, target = link.partition("#")
        assert page == f"{train_vs_test.CHAPTER}.html" and target in targets, link
