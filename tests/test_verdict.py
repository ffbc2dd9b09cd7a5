"""The one verdict rule (ncutils.verdict) on constructed data: a clear hold, a clear failure, a tie within
noise, the conjunction of cases, and each kind of uncertainty against its textbook formula."""
import math

import numpy as np
import pytest

from ncutils.estimates import every_run_terminal
from ncutils.verdict import (FAILS, HOLDS, INCONCLUSIVE, Estimate, all_of, binomial, estimate_runs, jackknife, judge,
                             over_seeds)


def test_a_clear_hold_a_clear_failure_and_a_tie_within_noise():
    assert judge(Estimate(0.30, 0.05, "x"), 0.1) == HOLDS  # 4 SE above
    assert judge(Estimate(-0.10, 0.05, "x"), 0.1) == FAILS  # 4 SE below
    assert judge(Estimate(0.15, 0.05, "x"), 0.1) == INCONCLUSIVE  # 1 SE above
    assert judge(Estimate(0.05, 0.05, "x"), 0.1) == INCONCLUSIVE  # 1 SE below
    assert judge(Estimate(0.0, 0.05, "x"), 0.1, "below") == INCONCLUSIVE  # 2 SE exactly: not more than 2
    assert judge(Estimate(-0.01, 0.05, "x"), 0.1, "below") == HOLDS
    assert judge(Estimate(0.5, math.nan, "x"), 0.1) == INCONCLUSIVE  # no uncertainty, no verdict either way


def test_seeds_that_agree_decide_and_seeds_that_scatter_do_not():
    assert judge(over_seeds([0.21, 0.20, 0.22]), 0.1) == HOLDS
    assert judge(over_seeds([0.40, -0.10, 0.05]), 0.1) == INCONCLUSIVE
    assert judge(over_seeds([0.40, 0.30]) - over_seeds([0.10, 0.12]), 0.0) == HOLDS


def test_conjunction_of_cases():
    assert all_of([HOLDS, HOLDS]) == HOLDS
    assert all_of([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert all_of([HOLDS, FAILS, INCONCLUSIVE]) == FAILS
    with pytest.raises(ValueError, match="unknown verdicts"):
        all_of([HOLDS, "maybe"])
    with pytest.raises(ValueError, match="direction must be one of"):
        judge(Estimate(1, 0, "x"), 0, "up")


def test_uncertainties_match_their_textbook_formulas():
    seeds = over_seeds([1.0, 2.0, 4.0])
    assert seeds.value == pytest.approx(7 / 3)
    assert seeds.se == pytest.approx(np.std([1, 2, 4], ddof=1) / math.sqrt(3)) and seeds.kind == "3 seeds"
    assert binomial(0.9, 100).se == pytest.approx(0.03)
    # the jackknife of a mean over G equal groups is the standard error of the mean of the group means
    rng = np.random.default_rng(0)
    groups = rng.normal(size=(10, 50))
    replicates = [np.delete(groups, g, axis=0).mean() for g in range(10)]
    se = jackknife(groups.mean(), replicates).se
    assert se == pytest.approx(groups.mean(1).std(ddof=1) / math.sqrt(10), rel=1e-12)
    difference = Estimate(3, 0.3, "a") - Estimate(1, 0.4, "a")
    assert (difference.value, difference.se, difference.kind) == (2, pytest.approx(0.5), "a")


def test_runs_are_judged_over_seeds_else_by_the_jackknife_of_the_one_run():
    stat = lambda run: run["v"]
    assert estimate_runs([stat({"v": 1.0}), stat({"v": 3.0})]).kind == "2 seeds"
    one = estimate_runs([stat({"v": 2.0})], replicates=lambda: [1.9, 2.1])
    assert one.value == 2.0 and one.kind.startswith("jackknife") and one.se == pytest.approx(0.1)
    assert math.isnan(estimate_runs([stat({"v": 2.0})]).se)
    assert estimate_runs([2.0], replicates=lambda: [1.9]).kind == "one run without jackknife replicates"


def test_every_run_terminal_judges_each_run_exactly_against_the_terminal_phase():
    statistic, verdict = every_run_terminal([("a", 1.0), ("b", 0.995)])
    assert verdict == HOLDS
    assert statistic == "train accuracy, lowest of 2 runs: b 0.995 ± 0 (exact, every training image) (>= 99%); " \
                        "2 of 2 runs reach it"
    statistic, verdict = every_run_terminal([("a", 1.0), ("b", 0.985), ("c", 0.5)])
    assert verdict == FAILS and statistic.endswith("; 1 of 3 runs reach it; below: b 0.9850, c 0.5000")
    assert every_run_terminal([("a", 0.99)])[1] == INCONCLUSIVE  # on the threshold: no side cleared
    with pytest.raises(ValueError, match="at least one run"):
        every_run_terminal([])
