"""Verdicts of the earlier version's section 4.3 (ncutils.claims.domain) on hand-built runs of known verdict."""
import numpy as np
import pandas as pd
import pytest

from ncutils.claims import VERDICTS
from ncutils.claims import domain as claims
from ncutils.config import RunConfig
from ncutils.results import StudyResults
from ncutils.store import Store

PACS = ("art_painting", "cartoon", "photo", "sketch")
TAPS = 9


def run(source: str, curve) -> pd.DataFrame:
    """Metric rows of one source model: ``curve(source, target, layers) -> (cdnv, probe)`` on each target,
    plus rows that must be ignored (the source domain itself, the classifier's input, other splits)."""
    rows = []

    def add(eval_data, measure, values, split="test", features="flat"):
        names = [f"block{i}" for i in range(TAPS)] + ["penultimate"]
        for i, (layer, value) in enumerate(zip(names, list(values) + [1e9])):
            rows.append({"model": "resnet50", "dataset": f"pacs:{source}", "eval_data": eval_data, "split": split,
                         "inputs": "clean", "labels": "clean", "features": features, "layer": layer,
                         "layer_index": i, "measure": measure, "value": value})

    layers = np.arange(TAPS)
    for target in PACS:
        cdnv, probe = curve(source, target, layers)
        eval_data = f"pacs:{target}"
        if target == source:  # the source domain: must not enter any target statistic
            cdnv, probe = 1e6 * np.ones(TAPS), np.zeros(TAPS)
        add(eval_data, "cdnv_sum", cdnv)
        add(eval_data, "cdnv_sum", 1e6 * np.ones(TAPS), features="pooled")
        add(eval_data, "probe_test_acc", probe, features="pooled")
        add(eval_data, "probe_train_acc", np.ones(TAPS), split="train", features="pooled")
    return pd.DataFrame(rows)


def study(curve, train_acc=1.0, sources=PACS, missing=()):
    metrics = pd.concat([run(s, curve) for s in sources], ignore_index=True)
    summaries = pd.DataFrame([{"model": "resnet50", "dataset": f"pacs:{s}", "train_acc": train_acc} for s in sources])
    absent = [(RunConfig.at_scale("resnet50", f"pacs:{s}", "smoke", targets=tuple(t for t in PACS if t != s)),
               "missing") for s in missing]
    return StudyResults(metrics, summaries, absent, Store("/nonexistent"))


def offset(source):
    return PACS.index(source) / 3  # 0 .. 1: how good a source model is


def agreeing(source, target, layers):
    """Collapse improves through the layers; sources agree early and diverge late; a better source
    (lower CDNV at a layer) probes better."""
    cdnv = 100 * 0.6 ** layers * 10 ** (offset(source) * layers / TAPS)
    probe = 0.9 - 0.1 * np.log10(cdnv)
    return cdnv, probe


def disagreeing(source, target, layers):
    """CDNV rises through the layers; sources differ early and agree late; lower CDNV probes worse."""
    cdnv = 100 * 1.5 ** layers * 10 ** (offset(source) * (TAPS - 1 - layers) / TAPS)
    probe = 0.1 + 0.1 * np.log10(cdnv)
    return cdnv, probe


def test_target_rows_leave_out_the_source_domain_and_the_classifier_input():
    rows = claims.target_rows(study(agreeing).metrics, "cdnv_sum")
    assert len(rows) == 4 * 3 * TAPS
    assert (rows.source != rows.target).all() and rows.value.max() < 1e6
    assert sorted(set(rows["layer number"])) == list(range(1, TAPS + 1))


def test_spearman():
    assert claims.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1)
    assert np.isnan(claims.spearman([1, 2, 3], [5, 5, 5]))


@pytest.mark.parametrize("judge", [claims.progressive, claims.spread, claims.collapse_vs_probe,
                                   claims.collapse_vs_probe_between_sources])
@pytest.mark.parametrize("holds", [True, False])
def test_verdicts(judge, holds):
    row = judge(study(agreeing if holds else disagreeing).metrics)
    assert row["verdict"] == ("holds" if holds else "does not hold"), row["statistic"]


def test_spread_compares_the_first_and_last_thirds():
    table = claims.source_spread(study(agreeing).metrics)
    assert list(table.target) == list(PACS) and (table["taps per third"] == TAPS // 3).all()
    assert (table.deep > table.early).all()


def test_comparisons_between_sources_need_two_of_them():
    metrics = study(agreeing, sources=("photo",)).metrics
    assert claims.spread(metrics)["verdict"] == "not computed"
    assert claims.collapse_vs_probe_between_sources(metrics)["verdict"] == "not computed"


@pytest.mark.parametrize("train_acc,verdict", [(1.0, "holds"), (0.9, "does not hold")])
def test_terminal(train_acc, verdict):
    assert claims.terminal(study(agreeing, train_acc=train_acc).summaries)["verdict"] == verdict


def test_claims_table():
    table = claims.claims(study(agreeing))
    assert list(table.columns) == ["claim", "statistic", "verdict", "figure"]
    assert set(table.verdict) == {"holds"}
    assert table.figure.str.startswith("domain.html#").all()


def test_a_missing_source_leaves_every_claim_not_computed():
    table = claims.claims(study(agreeing, sources=PACS[:3], missing=PACS[3:]))
    assert set(table.verdict) == {"not computed"}
    assert table.statistic.str.contains("pacs:sketch").all()


def test_nothing_stored():
    empty = StudyResults(pd.DataFrame(), pd.DataFrame(), [], Store("/nonexistent"))
    table = claims.claims(empty)
    assert set(table.verdict) == {"not computed"} and set(table.verdict) <= set(VERDICTS)
