"""Train-versus-test verdicts (chapter train_vs_test) on hand-built metric tables whose right verdict is known:
models repeated over seeds with a small scatter (decisive), or one run each with jackknife replicates of CDNV
and NC2 and binomial errors of NCC accuracies (NC1 then has no within-run uncertainty)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import nc1_vs_cdnv, train_vs_test
from ncutils.config import RunConfig
from ncutils.results import StudyResults

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
# per measure: the training-split curve, and a test-split curve that collapses less and less as depth grows
TRAIN = {"cdnv_sum": [100, 30, 10, 1], "nc1": [10, 3, 1, 0.1], "nc2": [1.0, 0.6, 0.3, 0.1],
         "ncc_accuracy": [0.4, 0.6, 0.8, 0.9]}
WEAKER = {"cdnv_sum": [100, 35, 20, 10], "nc1": [10, 4, 3, 2], "nc2": [1.0, 0.7, 0.5, 0.5],
          "ncc_accuracy": [0.4, 0.55, 0.6, 0.65]}
# a test split collapsing a little more than the training split, more so in the last layers
STRONGER = {"cdnv_sum": [90, 27, 9, 0.5], "nc1": [9, 2.7, 0.9, 0.05], "nc2": [0.95, 0.5, 0.2, 0.0],
            "ncc_accuracy": [0.42, 0.63, 0.84, 0.98]}
IMAGES = {"train": 1000, "test": 2000}


def found(tests: dict, train_acc: float = 1.0, missing=(), seeds=1, scatter=0.002, jackknife=10) -> StudyResults:
    """Stored results: {model: test-split curves}, every model with the TRAIN curves on its training split, in
    flat and pooled features, ``seeds`` runs each scattered by ``scatter`` (relative; NCC accuracy absolute),
    with ``jackknife`` replicates of CDNV and NC2; rows the claims must not read (penultimate layer, other
    data) carry 1e9."""
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    for model, test in tests.items():
        for seed in range(seeds):
            key = f"{model}-{seed}"
            for split, curves in (("train", TRAIN), ("test", test)):
                for measure, values in curves.items():
                    values = np.asarray(values, float)
                    noise = scatter * rng.normal(size=len(values))
                    values = values + noise if measure == "ncc_accuracy" else values * (1 + noise)
                    named = [(measure, values)]
                    if measure in ("cdnv_sum", "nc2"):
                        named += [(f"{measure}@jk{g}", values * (1 + 0.001 * rng.normal(size=len(values))))
                                  for g in range(jackknife)]
                    for name, curve in named:
                        for i, v in enumerate(list(curve) + [1e9]):
                            base = dict(key=key, model=model, seed=seed, dataset="cifar10", eval_data="cifar10",
                                        inputs="clean", labels="clean", split=split, measure=name, layer_index=i,
                                        num_samples=IMAGES[split], layer="penultimate" if i == len(curve) else f"b{i}")
                            rows += [{**base, "features": f, "value": v} for f in ("flat", "pooled")]
                            rows.append({**base, "eval_data": "other", "features": "flat", "value": 1e9})
            summaries.append(dict(key=key, model=model, size="", seed=seed, dataset="cifar10", n_per_class=100,
                                  epochs=200, train_acc=train_acc, test_acc=0.6, num_train=1000, num_test=2000))
    return StudyResults(pd.DataFrame(rows), pd.DataFrame(summaries), [(RunConfig(m), "missing") for m in missing],
                        None, tuple(RunConfig(m, seed=s) for m in tests for s in range(seeds)))


def test_test_collapse_weaker_and_gap_growing_make_every_claim_hold():
    table = train_vs_test.claims(found({"resnet18": WEAKER, "swin_t": WEAKER}, seeds=3))
    assert len(table) == 17 and set(table.verdict) == {"holds"}, table[["claim", "statistic"]].to_string()


def test_one_run_judges_cdnv_nc2_ncc_by_their_errors_and_nc1_inconclusive():
    table = train_vs_test.claims(found({"resnet18": WEAKER, "swin_t": WEAKER}))
    nc1 = table[table.claim.str.contains("(NC1)", regex=False)]
    assert len(nc1) == 4 and set(nc1.verdict) == {"inconclusive"}
    assert all("no within-run uncertainty for NC1" in s for s in nc1.statistic)
    others = table.drop(nc1.index)
    assert set(others.verdict) == {"holds"}, others[["claim", "statistic"]].to_string()
    ncc = others[others.claim.str.contains("NCC accuracy")].statistic
    assert all("binomial, 1000/2000 images" in s for s in ncc)
    assert all("jackknife over images" in s for s in others[others.claim.str.contains("(CDNV)", regex=False)].statistic)


def test_test_collapse_as_strong_as_train_makes_every_claim_fail():
    table = train_vs_test.claims(found({"resnet18": STRONGER, "swin_t": STRONGER}, train_acc=0.9, seeds=3))
    assert set(table.verdict) == {"does not hold"}, table[["claim", "statistic"]].to_string()


def test_one_model_failing_fails_the_claim_over_models():
    table = train_vs_test.claims(found({"resnet18": WEAKER, "swin_t": STRONGER}, seeds=3))
    gap_rows = table[~table.claim.str.startswith("every run")]
    assert set(gap_rows.verdict) == {"does not hold"}
    assert all("resnet18 " in s and "swin_t " in s for s in gap_rows.statistic)


def test_gap_signs():
    metrics = found({"resnet18": WEAKER}, scatter=0).metrics
    gaps = train_vs_test.gap_rows(metrics, "cdnv_sum")
    assert np.allclose(gaps.value, np.log10(np.array(WEAKER["cdnv_sum"]) / TRAIN["cdnv_sum"]))
    ncc = train_vs_test.gap_rows(metrics, "ncc_accuracy")
    assert np.allclose(ncc.value, np.array(TRAIN["ncc_accuracy"]) - WEAKER["ncc_accuracy"])
    assert train_vs_test.thirds(np.array([0.0, 1, 2, 3, 4, 5, 6])) == (0.5, 5.5)


@pytest.mark.parametrize("measure", ["ncc_accuracy", "cdnv_sum"])
def test_growth_is_the_last_third_minus_the_first(measure):
    runs = nc1_vs_cdnv.by_model(found({"resnet18": WEAKER}, scatter=0), (measure,))["cifar10", "resnet18"]
    gap = train_vs_test.gap(measure, "flat")(runs[0].curves)
    estimate = train_vs_test.growth(runs, measure, "flat")
    assert estimate.value == pytest.approx(gap[-1] - gap[0]) and estimate.se > 0
    if measure == "ncc_accuracy":  # train - test: four binomial errors in quadrature
        assert gap[-1] == pytest.approx(0.25) and estimate.se == pytest.approx(np.sqrt(
            0.9 * 0.1 / 1000 + 0.4 * 0.6 / 1000 + 0.65 * 0.35 / 2000 + 0.4 * 0.6 / 2000))


def test_missing_runs_leave_claims_not_computed_with_what_the_stored_runs_give():
    table = train_vs_test.claims(found({"resnet18": WEAKER}, missing=["swin_b"]))
    assert set(table.verdict) == {"not computed"}
    assert all("not stored yet: swin_b; the stored runs give:" in s for s in table.statistic)


def test_every_claim_quotes_a_sentence_of_its_paper():
    for name, (paper, quote) in train_vs_test.QUOTES.items():
        assert quote in " ".join((PAPERS / paper).read_text().split()), name
    table = train_vs_test.claims(found({"resnet18": WEAKER}))
    quoted = table[~table.claim.str.contains("terminal phase")]
    assert all(any(f'"{q}"' in claim for _, q in train_vs_test.QUOTES.values()) for claim in quoted.claim)


def test_figure_links_point_at_targets_of_the_chapter():
    targets = set(chapter_targets(train_vs_test.CHAPTER))
    for link in train_vs_test.claims(found({"resnet18": WEAKER})).figure:
        page, _, target = link.partition("#")
        assert page == f"{train_vs_test.CHAPTER}.html" and target in targets, link
