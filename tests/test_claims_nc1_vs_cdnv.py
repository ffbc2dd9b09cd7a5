"""NC1-versus-CDNV verdicts (chapter nc1_vs_cdnv) on hand-built metric tables whose right verdict is known:
runs repeated over seeds with a small scatter (decisive), or one run with jackknife replicates of CDNV and
NC2 (NC1 has none: its statistics have no within-run uncertainty)."""
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import nc1_vs_cdnv
from ncutils.config import RunConfig
from ncutils.frames import VIEWS
from ncutils.results import StudyResults
from ncutils.verdict import Estimate

from claim_rows import claim_row

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "zhou-jiang-zhu-2025-are-all-layers-created-equal.md"
MONOTONE = [1000, 500, 200, 100, 20]
ZIGZAG = [10, 12, 5, 6, 1]  # falls overall, rises twice
RISING = [1, 1.5, 2, 3, 4]
STEADY = "CDNV is steadier along the depth than NC1, its number of increases"
SMOOTHER = "CDNV is steadier along the depth than NC1, its excess variation"
FALLS = "NC1 (Papyan's, as in [10]) also falls"
SENSITIVE = "ranks their test accuracy more closely than NC2"


def curves(cdnv, nc1, nc2=None, accuracy=0.6):
    return {"cdnv_sum": cdnv, "nc1": nc1, "nc2": nc2 or list(np.linspace(1.0, 0.4, len(cdnv))), "test_acc": accuracy}


def found(runs: dict, seeds=3, scatter=0.01, jackknife=10, spread=0.001, missing=()) -> StudyResults:
    """Stored results of ``runs`` ({model: curves(...)}) on CIFAR-10 in every view, ``seeds`` runs each (values
    scattered by ``scatter``, relative), with ``jackknife`` replicates of CDNV and NC2 scattered by ``spread``;
    rows the claims must not read (the penultimate layer, other data) carry 1e9."""
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    for model, measures in runs.items():
        for seed in range(seeds):
            key = f"{model}-{seed}"
            for measure in ("cdnv_sum", "nc1", "nc2"):
                values = np.asarray(measures[measure], float) * (1 + scatter * rng.normal(size=len(measures[measure])))
                named = [(measure, values)]
                if measure != "nc1":
                    named += [(f"{measure}@jk{g}", values * (1 + spread * rng.normal(size=len(values))))
                              for g in range(jackknife)]
                for name, curve in named:
                    for i, v in enumerate(list(curve) + [1e9]):
                        base = dict(key=key, model=model, seed=seed, dataset="cifar10", eval_data="cifar10",
                                    inputs="clean", labels="clean", measure=name, layer_index=i, num_samples=2000,
                                    layer="penultimate" if i == len(curve) else f"block{i}")
                        rows += [{**base, "split": s, "features": f, "value": v} for s, f in VIEWS]
                        rows.append({**base, "eval_data": "other", "split": "train", "features": "flat", "value": 1e9})
            summaries.append(dict(key=key, model=model, size="", seed=seed, dataset="cifar10", n_per_class=100,
                                  epochs=200, train_acc=1.0, test_acc=measures["test_acc"], num_train=1000,
                                  num_test=2000))
    return StudyResults(pd.DataFrame(rows), pd.DataFrame(summaries), [(RunConfig(m), "missing") for m in missing],
                        None, tuple(RunConfig(m, seed=s) for m in runs for s in range(seeds)))


def verdict(results: StudyResults, claim: str, view="train split, flat features") -> str:
    return row(results, claim, view).verdict


def row(results: StudyResults, claim: str, view="train split, flat features"):
    return claim_row(nc1_vs_cdnv.claims(results), claim, view)


@pytest.mark.parametrize("view", VIEWS)
def test_smooth_cdnv_and_zigzag_nc1_over_seeds_make_the_claims_hold(view):
    results = found({"resnet18": curves(MONOTONE, ZIGZAG), "swin_t": curves(MONOTONE, [20, 30, 10, 12, 2])})
    name = nc1_vs_cdnv.view_name(view)
    assert [verdict(results, c, name) for c in (STEADY, SMOOTHER, FALLS)] == ["holds"] * 3


def test_zigzag_cdnv_and_smooth_nc1_make_the_stability_claims_fail():
    results = found({"resnet18": curves(ZIGZAG, MONOTONE), "swin_t": curves(MONOTONE, ZIGZAG)})
    assert verdict(results, STEADY) == verdict(results, SMOOTHER) == "does not hold"
    assert verdict(results, FALLS) == "holds"


def test_nc1_rising_on_cifar10_fails_the_progressive_reduction():
    assert verdict(found({"resnet18": curves(MONOTONE, RISING)}), FALLS) == "does not hold"


def test_one_run_has_no_within_run_uncertainty_for_nc1():
    results = found({"resnet18": curves(MONOTONE, ZIGZAG), "swin_t": curves(MONOTONE, ZIGZAG)}, seeds=1)
    for claim in (STEADY, SMOOTHER, FALLS):
        chosen = row(results, claim)
        assert chosen.verdict == "inconclusive"
        assert "no within-run uncertainty for NC1" in chosen.statistic, chosen.statistic


ACCURACIES = (0.6, 0.7, 0.8, 0.9)


def ranked(cdnv_last, nc2_last, accuracies=ACCURACIES):
    """Four models: last-layer CDNV ``cdnv_last`` and NC2 ``nc2_last``, test accuracies ``accuracies``."""
    return {model: curves([1000, 100, c], [10, 5, 1], [1.0, 0.8, n], a)
            for model, c, n, a in zip(("resnet18", "resnet34", "swin_t", "swin_s"), cdnv_last, nc2_last, accuracies)}


@pytest.mark.parametrize("cdnv, nc2, accuracies, expected", [
    ((10, 1, 0.1, 0.01), (0.1, 0.2, 0.3, 0.4), ACCURACIES, "holds"),  # CDNV ranks them, NC2 the other way round
    ((0.01, 0.1, 1, 10), (0.4, 0.3, 0.2, 0.1), ACCURACIES, "does not hold"),
    ((10, 1, 0.1, 0.01), (0.1, 0.2, 0.3, 0.4), (0.6, 0.601, 0.602, 0.603), "inconclusive"),  # within binomial errors
])
def test_nc1_the_more_sensitive_indicator_by_rank_correlation(cdnv, nc2, accuracies, expected):
    results = found(ranked(cdnv, nc2, accuracies), seeds=1, scatter=0)
    chosen = row(results, SENSITIVE)
    assert chosen.verdict == expected, chosen.statistic
    assert "parametric bootstrap" in chosen.statistic


def test_the_rank_correlation_needs_three_models():
    table = nc1_vs_cdnv.claims(found(ranked((10, 1), (0.1, 0.2)), seeds=1))
    assert set(table[table.claim.str.contains(SENSITIVE, regex=False)].verdict) == {"not computed"}


def test_spearman():
    assert nc1_vs_cdnv.spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 40.0]))[0] == pytest.approx(1)
    assert nc1_vs_cdnv.spearman(np.array([1, 2, 3.0]), np.array([3, 2, 1.0]))[0] == pytest.approx(-1)
    rows = nc1_vs_cdnv.spearman(np.array([[1, 2, 3.0], [1, 2, 3.0]]), np.array([[1, 3, 2.0], [1, 2, 2.0]]))
    assert rows == pytest.approx([0.5, math.sqrt(3) / 2])  # the second with a tie (average ranks)


def test_run_estimate_over_seeds_else_jackknife_else_no_uncertainty():
    results = found({"resnet18": curves(MONOTONE, ZIGZAG)}, seeds=1)
    runs = nc1_vs_cdnv.by_model(results, ("cdnv_sum", "nc1"))["cifar10", "resnet18"]
    assert len(runs) == 1 and len(runs[0].replicates) == 10
    last = nc1_vs_cdnv.run_estimate(runs, lambda c: c["cdnv_sum", "train", "flat"][-1], ("cdnv_sum",))
    assert last.kind.startswith("jackknife") and 0 < last.se < 0.1
    bare = nc1_vs_cdnv.run_estimate(runs, lambda c: c["nc1", "train", "flat"][-1], ("nc1",))
    assert math.isnan(bare.se) and bare.kind.startswith("no within-run uncertainty for NC1")
    seeded = nc1_vs_cdnv.by_model(found({"resnet18": curves(MONOTONE, ZIGZAG)}), ("nc1",))["cifar10", "resnet18"]
    assert nc1_vs_cdnv.run_estimate(seeded, lambda c: c["nc1", "train", "flat"][-1], ("nc1",)).kind == "3 seeds"


def test_cases_list_values_without_uncertainty_and_stay_inconclusive():
    cases = nc1_vs_cdnv.Cases()
    cases.add("a", Estimate(1.0, 0.1, "3 seeds"), 0, "above")
    bare = "no within-run uncertainty for NC1 (one run; no replicates)"
    cases.add("b", Estimate(2.0, math.nan, bare), 0, "above")
    statistic, verdict = cases.result("rule")
    assert verdict == "inconclusive"
    assert statistic == f"rule: a 1 ± 0.1 (3 seeds); b 2; {bare}"


def test_stability_statistics():
    assert nc1_vs_cdnv.increases(np.array(ZIGZAG)) == 2 and nc1_vs_cdnv.increases(np.array(MONOTONE)) == 0
    assert nc1_vs_cdnv.excess_variation(np.array(MONOTONE)) == 0.0
    assert nc1_vs_cdnv.excess_variation(np.array(RISING)) == 0.0
    # 10 -> 12 -> 5 -> 6 -> 1 travels 2 * (log10 12/10 + log10 6/5) decades beyond its net fall
    assert nc1_vs_cdnv.excess_variation(np.array(ZIGZAG)) == pytest.approx(2 * np.log10(1.2 * 1.2))


def test_stability_table_and_indicators_read_the_seed_means():
    results = found({"resnet18": curves(MONOTONE, ZIGZAG), "swin_t": curves(ZIGZAG, MONOTONE, accuracy=0.7)},
                    seeds=1, scatter=0).seed_means()
    shapes = nc1_vs_cdnv.stability(results.metrics)
    assert shapes.loc["resnet18/cifar10", "number of increases along the depth: NC1"] == 2
    table = nc1_vs_cdnv.indicators(results)
    assert table.loc[("cifar10", "swin_t"), "rank: test_acc"] == 1
    assert table.loc[("cifar10", "swin_t"), "last-layer CDNV"] == pytest.approx(1)


def test_missing_runs_leave_claims_not_computed_with_what_the_stored_runs_give():
    table = nc1_vs_cdnv.claims(found({"resnet18": curves(MONOTONE, ZIGZAG), "swin_t": curves(MONOTONE, ZIGZAG)},
                                     missing=["swin_l"]))
    assert set(table.verdict) == {"not computed"}
    assert all("not stored yet: swin_l; the stored runs give:" in s for s in table.statistic)
    empty = StudyResults(pd.DataFrame(), pd.DataFrame(), [(RunConfig("swin_l"), "missing")], None)
    assert set(nc1_vs_cdnv.claims(empty).verdict) == {"not computed"}


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in nc1_vs_cdnv.QUOTES.items():
        assert quote in paper, name
    table = nc1_vs_cdnv.claims(found(ranked((10, 1, 0.1, 0.01), (0.1, 0.2, 0.3, 0.4)), seeds=1))
    assert all(any(f'"{q}"' in claim for q in nc1_vs_cdnv.QUOTES.values()) for claim in table.claim)


def test_figure_links_point_at_targets_of_the_chapter():
    targets = set(chapter_targets(nc1_vs_cdnv.CHAPTER))
    for link in nc1_vs_cdnv.claims(found(ranked((10, 1, 0.1, 0.01), (0.1, 0.2, 0.3, 0.4)), seeds=1)).figure:
        page, _, target = link.partition("#")
        assert page == f"{nc1_vs_cdnv.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), target
