"""Verdicts of appendices B and C (ncutils.claims.vgg_vit) on hand-built runs of known verdict."""
import numpy as np
import pandas as pd
import pytest

from ncutils.claims import VERDICTS
from ncutils.claims import vgg_vit as claims
from ncutils.config import RunConfig
from ncutils.results import StudyResults
from ncutils.store import Store

TAPS = {"vgg13": 10, "vgg16": 13, "vgg19": 16, "vit_small": 12, "vit_base": 12}
RATE = {"vgg13": 0.3, "vgg16": 0.2, "vgg19": 0.1, "vit_small": 0.05, "vit_base": 0.05}  # decades per layer


def at_rates(rates):
    """CDNV and NC2 falling geometrically, ``rates[model]`` decades per layer."""
    return lambda model: (10.0 ** (3 - rates[model] * np.arange(TAPS[model])),
                          10.0 ** (-rates[model] * np.arange(TAPS[model])))


geometric = at_rates(RATE)


def plateau(model):
    """Flat over the first two thirds, then falling: not geometric."""
    n = TAPS[model]
    fall = np.clip(np.arange(n) - (n - n // 3), 0, None)
    return 10.0 ** (3 - fall), 10.0 ** (-0.1 * fall)


def run(model, curve) -> pd.DataFrame:
    cdnv, nc2 = curve(model)
    rows = []
    for measure, values in (("cdnv_sum", cdnv), ("nc2", nc2)):
        names = [f"layer{i}" for i in range(TAPS[model])] + ["penultimate"]
        for i, (layer, value) in enumerate(zip(names, list(values) + [1e-9])):  # the classifier's input: left out
            for split in ("train", "test"):
                rows.append({"model": model, "dataset": "cifar10", "eval_data": "cifar10", "split": split,
                             "inputs": "clean", "labels": "clean", "features": "flat", "layer": layer,
                             "layer_index": i, "measure": measure,
                             "value": value if split == "train" else 1.0})  # the test split must be ignored
    return pd.DataFrame(rows)


def study(curves: dict, train_acc=None, missing=()):
    metrics = pd.concat([run(m, c) for m, c in curves.items()], ignore_index=True)
    summaries = pd.DataFrame([{"model": m, "dataset": "cifar10", "train_acc": (train_acc or {}).get(m, 1.0)}
                              for m in curves])
    absent = [(RunConfig.at_scale(m, "cifar10", "smoke"), "missing") for m in missing]
    return StudyResults(metrics, summaries, absent, Store("/nonexistent"))


def everything(curve):
    return {m: curve for m in TAPS}


def test_log_linear_fit():
    slope, r2 = claims.log_linear_fit(10 ** (2 - 0.5 * np.arange(6)))
    assert slope == pytest.approx(-0.5) and r2 == pytest.approx(1)


@pytest.mark.parametrize("n", [10, 12, 13, 16])
def test_the_plateau_shape_falls_below_the_threshold(n):
    assert 0.5 < claims.plateau_r2(n) < claims.R2_GEOMETRIC


def test_curves_use_the_training_split_and_leave_out_the_classifier_input():
    found = claims.curves(study(everything(geometric)).metrics, claims.VGGS)
    assert [len(v) for v in found.values()] == [10, 13, 16]
    np.testing.assert_allclose(found["vgg13"], geometric("vgg13")[0])


@pytest.mark.parametrize("judge", [claims.vgg_geometric, claims.vit_geometric])
@pytest.mark.parametrize("holds", [True, False])
def test_geometric_decay(judge, holds):
    row = judge(study(everything(geometric if holds else plateau)).metrics)
    assert row["verdict"] == ("holds" if holds else "does not hold"), row["statistic"]


@pytest.mark.parametrize("holds", [True, False])
def test_rate_decreases_with_depth(holds):
    curve = geometric if holds else at_rates({"vgg13": 0.1, "vgg16": 0.2, "vgg19": 0.3})
    curves = {m: curve for m in claims.VGGS}
    assert claims.vgg_rate_vs_depth(study(curves).metrics)["verdict"] == ("holds" if holds else "does not hold")


@pytest.mark.parametrize("acc,verdict", [(0.9, "holds"), (1.0, "does not hold")])
def test_vit_not_terminal(acc, verdict):
    found = study(everything(geometric), train_acc={"vit_small": acc, "vit_base": acc})
    assert claims.vit_not_terminal(found.summaries)["verdict"] == verdict


@pytest.mark.parametrize("holds", [True, False])
def test_vit_weaker(holds):
    vit = geometric if holds else (lambda m: (1e-3 * geometric(m)[0], 1e-3 * geometric(m)[1]))
    curves = {**{m: geometric for m in claims.VGGS}, **{m: vit for m in claims.VITS}}
    # geometric: the ViTs' slower decay keeps them above the VGGs on average
    assert claims.vit_weaker(study(curves).metrics)["verdict"] == ("holds" if holds else "does not hold")


def test_claims_table():
    table = claims.claims(study(everything(geometric), train_acc={"vit_small": 0.9, "vit_base": 0.9}))
    assert list(table.columns) == ["claim", "statistic", "verdict", "figure"]
    assert list(table.verdict) == ["holds"] * 5 + ["not computed"]  # the last: ImageNet panels
    assert table.figure.str.startswith("vgg_vit.html#").all()


def test_a_missing_vit_leaves_only_the_vgg_claims_computed():
    curves = {m: geometric for m in claims.VGGS}
    table = claims.claims(study(curves, missing=claims.VITS))
    assert list(table.verdict) == ["holds"] * 2 + ["not computed"] * 4
    assert table.statistic[2:5].str.contains("vit_small").all()


def test_nothing_stored():
    table = claims.claims(StudyResults(pd.DataFrame(), pd.DataFrame(), [], Store("/nonexistent")))
    assert set(table.verdict) == {"not computed"} and set(table.verdict) <= set(VERDICTS)
