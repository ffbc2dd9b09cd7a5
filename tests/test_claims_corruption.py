"""The verdicts of appendix A.3 (ncutils.claims.corruption) on hand-built runs whose right verdict is known."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ncutils.claims import corruption as claims
from ncutils.config import RunConfig
from ncutils.results import CONFIG_COLUMNS, StudyResults
from ncutils.store import Store

SEVERITY = {1: 1, 2: 3, 3: 5}  # the paper's levels 1-3 on the CIFAR-10-C scale
TAPS = {"resnet18": 5, "resnet34": 7, "swin_t": 6, "swin_s": 8}


def spec(name: str, level: int) -> str:
    return "clean" if level == 0 else f"{name}:{SEVERITY[level]}"


def run(model, name, level, *, holds: bool, depth: float = 1.0, train_acc: float = 1.0, clean_acc: float = 0.7):
    """Metric rows and summary of one run. ``holds``: curves shaped as the paper describes (CDNV and NC2
    fall through the layers, CDNV up with the level, ratio dipping then rising, Swin below ResNet first
    but rising faster, probe gap widening with depth); otherwise the opposite. ``depth`` scales the ratio."""
    layers = np.arange(TAPS[model])
    tail = (layers - 1).clip(0) / (len(layers) - 2)  # 0 at the second layer, 1 at the last
    swin = model.startswith("swin")
    if holds:
        cdnv = 100 * 0.5 ** layers * (1 + 0.3 * level)
        nc2 = 0.9 - 0.1 * layers
        low, high, first = (0.7, 2.0, 0.8) if swin else (1.0, 1.5, 1.2)
        ratio = np.where(layers == 0, first, low + (high - low) * tail)
        probe = 0.5 + 0.05 * layers - 0.01 * level * layers
    else:
        cdnv = 100 * 2.0 ** layers * (1 - 0.2 * level)
        nc2 = 0.5 + 0.1 * layers
        ratio = np.linspace(2.0, 1.0, len(layers)) if swin else np.linspace(1.5, 1.0, len(layers))
        probe = 0.5 + 0.05 * layers - 0.01 * level * (len(layers) - 1 - layers)
    ratio = ratio * (1 + 0.05 * level) * depth
    corruption = spec(name, level)
    trained = "clean" if level == 0 else "corrupted"
    rows = []

    def add(measure, values, inputs, split="train", features="flat"):
        names = [f"block{i}" for i in layers] + ["penultimate"]
        for i, (layer, value) in enumerate(zip(names, list(values) + [1e9])):  # the classifier's input: left out
            rows.append({"model": model, "dataset": "cifar10", "noise": "clean", "corruption": corruption,
                         "eval_data": "cifar10", "split": split, "inputs": inputs, "labels": "clean",
                         "features": features, "layer": layer, "layer_index": i, "measure": measure,
                         "value": value})

    add("cdnv_sum", cdnv, trained)
    add("nc2", nc2, trained)
    add("probe_test_acc", probe, "clean", split="test", features="pooled")
    if level:
        add("cdnv_sum", cdnv * ratio, "clean")
        add("nc2", nc2 + 0.3, "clean")
    summary = {"model": model, "corruption": corruption, "train_acc": train_acc, "test_acc": clean_acc - 0.1 * level,
               "test_acc_clean_inputs": clean_acc if level else np.nan}
    return pd.DataFrame(rows), summary


def study(models=("resnet18", "swin_t"), *, holds=True, depth=None, drop=(), gaussian_at=None, **summary):
    """Every run of ``models`` (Gaussian noise; speckle noise for ResNets), those in ``drop`` (model,
    corruption) missing; ``gaussian_at``: {model: its only corrupted level, under Gaussian noise} (the
    deeper models below the paper scale)."""
    frames, summaries, missing, stored = [], [], [], []
    for model in models:
        names = ("gaussian_noise",) if model.startswith("swin") else ("gaussian_noise", "speckle_noise")
        levels = (1, 2, 3)
        if model in (gaussian_at or {}):
            names, levels = ("gaussian_noise",), (gaussian_at[model],)
        for name, level in [(names[0], 0)] + [(n, k) for n in names for k in levels]:
            if (model, spec(name, level)) in drop:
                missing.append((RunConfig.at_scale(model, "cifar10", "smoke", corruption=spec(name, level)), "missing"))
                continue
            frame, row = run(model, name, level, holds=holds, depth=(depth or {}).get(model, 1.0), **summary)
            stored.append(RunConfig.at_scale(model, "cifar10", "smoke", corruption=spec(name, level)))
            frames.append(frame)
            summaries.append(row)
    return StudyResults(pd.concat(frames, ignore_index=True), pd.DataFrame(summaries), missing, Store("/nonexistent"),
                        tuple(stored))


def verdicts(rows):
    return [r["verdict"] for r in rows]


def test_ratio_rows_divide_clean_by_corrupted_cdnv_and_leave_out_the_classifier_input():
    found = study()
    ratios = claims.ratio_rows(found.metrics, "swin_t", "gaussian_noise")
    assert sorted(set(ratios.level)) == [1, 2, 3] and "penultimate" not in set(ratios.layer)
    level3 = ratios[ratios.level == 3].sort_values("layer_index").value.to_numpy()
    np.testing.assert_allclose(level3[[0, 1, -1]], np.array([0.8, 0.7, 2.0]) * 1.15)


def test_accuracy_rows_use_the_clean_run_at_level_0():
    rows = claims.accuracy_rows(study().summaries, "resnet18", "speckle_noise")
    assert sorted(set(rows.level)) == [0, 1, 2, 3]
    level0 = rows[rows.level == 0].set_index("test inputs").accuracy
    assert level0["clean"] == level0["corrupted"] == pytest.approx(0.7)


@pytest.mark.parametrize("model,name", [("resnet18", "gaussian_noise"), ("swin_t", "gaussian_noise"),
                                        ("resnet18", "speckle_noise")])
@pytest.mark.parametrize("holds", [True, False])
def test_setting_claims(model, name, holds):
    rows = claims.setting_claims(study(holds=holds), model, name)
    assert len(rows) == 6
    assert verdicts(rows) == ["holds" if holds else "does not hold"] * 6


def test_setting_claims_need_every_level():
    found = study(drop={("swin_t", "gaussian_noise:5")})
    rows = claims.setting_claims(found, "swin_t", "gaussian_noise")
    assert verdicts(rows) == ["not computed"] * 6
    assert "levels stored: [0, 1, 2]" in rows[0]["statistic"]
    assert set(verdicts(claims.setting_claims(found, "resnet18", "gaussian_noise"))) == {"holds"}


def test_a_missing_run_still_names_its_setting():
    found = study(models=("resnet18",))
    missing = [(RunConfig.at_scale("swin_t", "cifar10", "smoke", corruption="gaussian_noise:level1"), "missing")]
    found = replace(found, missing=missing)
    assert ("swin_t", "gaussian_noise") in claims.settings(found)
    assert set(verdicts(claims.setting_claims(found, "swin_t", "gaussian_noise"))) == {"not computed"}
    assert set(verdicts(claims.architecture_claims(found))) == {"not computed"}


@pytest.mark.parametrize("holds", [True, False])
def test_architecture_claims(holds):
    rows = claims.architecture_claims(study(holds=holds))
    assert verdicts(rows) == ["holds" if holds else "does not hold"] * 2


def test_depth_claims_need_two_depths_per_family():
    rows = claims.depth_claims(study())
    assert verdicts(rows) == ["not computed"] * 2
    assert "one depth per family" in rows[0]["statistic"]


@pytest.mark.parametrize("holds", [True, False])
def test_depth_claims(holds):
    models = ("resnet18", "resnet34", "swin_t", "swin_s")
    depth = {"resnet34": 1.05, "swin_s": 1.5} if holds else {"resnet34": 1.3, "swin_s": 0.8}
    found = study(models, depth=depth)
    summaries = found.summaries.copy()
    deeper = {"resnet34": 0.02, "swin_s": -0.02} if holds else {"resnet34": -0.02, "swin_s": 0.02}
    summaries["test_acc_clean_inputs"] += summaries.model.map(deeper).fillna(0.0)
    rows = claims.depth_claims(replace(found, summaries=summaries))
    assert verdicts(rows) == ["holds" if holds else "does not hold"] * 2


@pytest.mark.parametrize("train_acc,verdict", [(1.0, "holds"), (0.5, "does not hold")])
def test_terminal_claim(train_acc, verdict):
    assert claims.terminal_claim(study(train_acc=train_acc))["verdict"] == verdict


@pytest.mark.parametrize("train_acc,verdict", [(1.0, "not computed"), (0.5, "does not hold")])
def test_terminal_claim_with_runs_missing(train_acc, verdict):
    found = study(train_acc=train_acc)
    missing = [(RunConfig.at_scale("swin_s", "cifar10", "smoke"), "missing")]
    row = claims.terminal_claim(replace(found, missing=missing))
    assert row["verdict"] == verdict and "1 runs not stored yet" in row["statistic"]


def test_claims_table_and_nothing_stored():
    table = claims.claims(study())
    assert list(table.columns) == ["claim", "statistic", "verdict", "figure"]
    assert set(table.verdict) == {"holds", "not computed"}
    assert table.figure.str.startswith("corruption.html#corruption-").all()
    configs = [RunConfig.at_scale("resnet18", "cifar10", "smoke", corruption=c) for c in ("clean", "gaussian_noise:1")]
    nothing = pd.DataFrame(columns=list(CONFIG_COLUMNS))  # what available() reads when no run is stored
    empty = StudyResults(nothing, nothing, [(c, "missing") for c in configs], Store("/nonexistent"))
    assert set(claims.claims(empty).verdict) == {"not computed"}


@pytest.mark.parametrize("values,rising,verdict", [
    ([1, 2, 3, 4], True, "holds"), ([1, 3, 2, 4], True, "inconclusive"), ([4, 3, 2, 1], True, "does not hold"),
    ([4, 3, 2, 1], False, "holds"), ([1, 1, 1, 1], False, "does not hold")])
def test_monotone(values, rising, verdict):
    assert claims.monotone(values, rising) == verdict


def test_deeper_models_at_one_level_are_judged_at_the_levels_they_ran():
    """Below the paper scale ResNet34 and Swin-S run Gaussian noise at one level (studies.DEPTH_LEVEL)."""
    models = ("resnet18", "resnet34", "swin_t", "swin_s")
    found = study(models, depth={"resnet34": 1.05, "swin_s": 1.2}, gaussian_at={"resnet34": 3, "swin_s": 3})
    for model in ("resnet34", "swin_s"):
        rows = claims.setting_claims(found, model, "gaussian_noise")
        assert "not computed" not in verdicts(rows)
        means = rows[1]["statistic"]  # the CDNV means of the levels the model ran
        assert means.startswith("geometric mean of CDNV over the layers: L0 ") and " L3 " in means
        assert " L1 " not in means
    architecture = claims.architecture_claims(found)
    assert verdicts(architecture) == ["holds"] * 2
    assert "L3: resnet18 " in architecture[0]["statistic"] and "swin_s" in architecture[0]["statistic"]
    assert "L1: resnet18 " in architecture[0]["statistic"]
    depth = claims.depth_claims(found)
    assert verdicts(depth) == ["holds", "does not hold"]  # the accuracies of the fixture do not change with depth
    assert depth[0]["statistic"] == ("last-layer ratio deeper / shallower: L3: resnet34/resnet18 1.05, "
                                     "swin_s/swin_t 1.2")
    assert depth[1]["statistic"].startswith("mean clean-input test accuracy over levels 3: ")
    missing = study(models, gaussian_at={"resnet34": 3, "swin_s": 3}, drop={("swin_s", "gaussian_noise:5")})
    assert set(verdicts(claims.depth_claims(missing))) == {"not computed"}
    assert set(verdicts(claims.setting_claims(missing, "swin_s", "gaussian_noise"))) == {"not computed"}
