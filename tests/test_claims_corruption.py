"""The verdicts of appendix A.3 (ncutils.claims.corruption) on hand-built runs whose right verdict is known: curves
repeated over seeds with a small (or, for a tie, a large) scatter, or one run with jackknife replicates."""
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import corruption as claims
from ncutils.config import RunConfig
from ncutils.frames import VIEWS
from ncutils.results import CONFIG_COLUMNS, StudyResults
from ncutils.store import Store

from claim_rows import LEFT_OUT

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
PAPER = PAPERS / "zhou-jiang-zhu-2025-are-all-layers-created-equal.md"
SEVERITY = {1: 1, 2: 3, 3: 5}  # the paper's levels 1-3 on the CIFAR-10-C scale
TAPS = {"resnet18": 5, "resnet34": 7, "swin_t": 6, "swin_s": 8}
TEST_IMAGES = 2000


def spec(name: str, level: int) -> str:
    return "clean" if level == 0 else f"{name}:{SEVERITY[level]}"


def shapes(model, level, holds: bool, depth: float):
    """CDNV, NC2, memorization ratio and probe accuracy per layer. ``holds``: shaped as the paper describes
    (CDNV and NC2 fall through the layers, CDNV up with the level, the ratio dipping then rising, Swin below
    ResNet at the first layer but rising faster, the probe gap widening with depth and the last layer's probe
    falling with the level); otherwise the opposite. ``depth`` scales the ratio."""
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
        probe = 0.5 + 0.05 * layers + 0.01 * level * layers
    return cdnv, nc2, ratio * (1 + 0.05 * level) * depth, probe


def run(model, name, level, seed, rng, *, holds=True, depth=1.0, train_acc=1.0, clean_acc=0.7, scatter=0.001,
        jackknife=0, probe_fit=1.0, clean_fit=1.0, converged=-1):
    """Metric rows (every view; rows the claims must not read carry 1e9) and the summary of one run: its probes
    fit ``probe_fit`` of their training images at every layer and converged (``converged``: -1 at every layer,
    the layer index that did not, or None for an SGD probe); ``clean_fit``: a corrupted run's train accuracy on
    the clean originals of its training images."""
    cdnv, nc2, ratio, probe = shapes(model, level, holds, depth)
    corruption, trained = spec(name, level), "clean" if level == 0 else "corrupted"

    def shaken(values, relative=False):
        noise = scatter * rng.normal(size=len(values))
        return values * (1 + noise) if relative else values + noise

    curves = {("cdnv_sum", trained): shaken(cdnv, True), ("nc2", trained): shaken(nc2)}
    if level:
        curves[("cdnv_sum", "clean")] = shaken(cdnv * ratio, True)
    groups = [(1 + 0.01 * rng.normal(size=len(cdnv)), 1 + 0.01 * rng.normal(size=len(cdnv))) for _ in range(jackknife)]
    rows = []

    def add(measure, values, inputs, views=VIEWS):
        for i, value in enumerate(list(values) + [1e9]):  # the classifier's input: left out
            base = {"model": model, "dataset": "cifar10", "noise": "clean", "corruption": corruption, "seed": seed,
                    "eval_data": "cifar10", "inputs": inputs, "labels": "clean", "measure": measure,
                    "layer": "penultimate" if i == len(values) else f"block{i}", "layer_index": i, "value": value,
                    "num_samples": TEST_IMAGES}
            rows.extend({**base, "split": split, "features": features} for split, features in views)
            rows.append({**base, "split": "train", "features": "flat", "eval_data": "other", "value": 1e9})

    for (measure, inputs), values in curves.items():
        add(measure, values, inputs)
        for g, (cdnv_factor, nc2_factor) in enumerate(groups):  # replicate g: one factor for both inputs' CDNV
            add(f"{measure}@jk{g}", values * (cdnv_factor if measure == "cdnv_sum" else nc2_factor), inputs)
    add("probe_test_acc", shaken(probe), "clean", views=[("test", "pooled")])
    add("probe_train_acc", np.full(len(probe), probe_fit), "clean", views=[("train", "pooled")])
    if converged is not None:
        add("probe_converged", (np.arange(len(probe)) != converged).astype(float), "clean",
            views=[("train", "pooled")])
    summary = {"model": model, "dataset": "cifar10", "corruption": corruption, "seed": seed, "train_acc": train_acc,
               "train_acc_clean_inputs": clean_fit if level else np.nan,
               "test_acc": clean_acc - 0.1 * level + scatter * rng.normal(), "num_test": TEST_IMAGES,
               "test_acc_clean_inputs": clean_acc + scatter * rng.normal() if level else np.nan}
    return rows, summary


def study(models=("resnet18", "swin_t"), *, seeds=2, depth=None, drop=(), gaussian_at=None, unfit=None,
          clean_acc=None, probes=None, **options):
    """Every run of ``models`` (Gaussian noise; speckle noise for ResNets) with ``seeds`` seeds, those in ``drop``
    (model, corruption) missing; ``gaussian_at``: {model: its only corrupted level, under Gaussian noise} (the
    deeper models below the paper scale); ``unfit``: {(model, corruption, seed): its train accuracy}; ``probes``:
    {(model, corruption, seed): its probe options of :func:`run`}."""
    rng = np.random.default_rng(0)
    rows, summaries, missing, stored = [], [], [], []
    for model in models:
        names = ("gaussian_noise",) if model.startswith("swin") else ("gaussian_noise", "speckle_noise")
        levels = (1, 2, 3)
        if model in (gaussian_at or {}):
            names, levels = ("gaussian_noise",), (gaussian_at[model],)
        for name, level in [(names[0], 0)] + [(n, k) for n in names for k in levels]:
            for seed in range(seeds):
                config = replace(RunConfig.at_scale(model, "cifar10", "smoke", corruption=spec(name, level)), seed=seed)
                if (model, spec(name, level)) in drop:
                    missing.append((config, "missing"))
                    continue
                more, summary = run(model, name, level, seed, rng, depth=(depth or {}).get(model, 1.0),
                                    train_acc=(unfit or {}).get((model, spec(name, level), seed), 1.0),
                                    clean_acc=(clean_acc or {}).get(model, 0.7),
                                    **options, **(probes or {}).get((model, spec(name, level), seed), {}))
                rows += [{**row, "key": config.key()} for row in more]
                summaries.append({**summary, "key": config.key()})
                stored.append(config)
    return StudyResults(pd.DataFrame(rows), pd.DataFrame(summaries), missing, Store("/nonexistent"), tuple(stored))


def verdicts(rows):
    return [r["verdict"] for r in rows]


def setting(found, model, name):
    return claims.setting_claims(found, claims.stored_runs(found), model, name)


def architecture(found):
    return claims.architecture_claims(found, claims.stored_runs(found))


def depth(found):
    return claims.depth_claims(found, claims.stored_runs(found))


def test_ratio_rows_divide_clean_by_corrupted_cdnv_and_leave_out_the_classifier_input():
    found = study(seeds=1, scatter=0)
    ratios = claims.ratio_rows(found.metrics, "swin_t", "gaussian_noise")
    assert sorted(set(ratios.level)) == [1, 2, 3] and "penultimate" not in set(ratios.layer)
    level3 = ratios[ratios.level == 3].sort_values("layer_index").value.to_numpy()
    np.testing.assert_allclose(level3[[0, 1, -1]], np.array([0.8, 0.7, 2.0]) * 1.15)


def test_accuracy_rows_use_the_clean_run_at_level_0():
    rows = claims.accuracy_rows(study(seeds=1, scatter=0).summaries, "resnet18", "speckle_noise")
    assert sorted(set(rows.level)) == [0, 1, 2, 3]
    level0 = rows[rows.level == 0].set_index("test inputs").accuracy
    assert level0["clean"] == level0["corrupted"] == pytest.approx(0.7)


@pytest.mark.parametrize("model,name", [("resnet18", "gaussian_noise"), ("swin_t", "gaussian_noise"),
                                        ("resnet18", "speckle_noise")])
@pytest.mark.parametrize("holds", [True, False])
def test_setting_claims_in_every_view(model, name, holds):
    rows = setting(study(holds=holds), model, name)
    assert len(rows) == 4 * len(VIEWS) + 2
    assert verdicts(rows) == ["holds" if holds else "does not hold"] * len(rows)
    for split, features in VIEWS:
        assert sum(f"{split} split, {features} features" in r["claim"] for r in rows) == 4
    assert all("(2 seeds)" in r["statistic"] for r in rows)


def test_the_ratio_dip_is_judged_at_the_inner_layer_where_the_ratio_is_lowest():
    row = next(r for r in setting(study(), "swin_t", "gaussian_noise")
               if "falls over the first layers" in r["claim"])
    assert "L1 first / layer 2 " in row["statistic"] and "last / layer 2 " in row["statistic"]


def test_a_large_scatter_leaves_a_small_difference_inconclusive():
    models = ("resnet18", "resnet34", "swin_t", "swin_s")
    found = study(models, seeds=3, scatter=0.3, depth={"resnet34": 1.0, "swin_s": 1.02},
                  clean_acc={"resnet34": 0.702, "swin_s": 0.698})
    assert set(verdicts(depth(found))) == {"inconclusive"}
    steady = study(models, seeds=3, scatter=0.001, depth={"resnet34": 1.0, "swin_s": 1.5},
                   clean_acc={"resnet34": 0.72, "swin_s": 0.68})
    assert set(verdicts(depth(steady))) == {"holds"}


def test_one_run_is_judged_by_its_jackknife_whose_ratio_replicates_pair_the_same_group():
    rows = setting(study(seeds=1, scatter=0, jackknife=10), "swin_t", "gaussian_noise")
    by_claim = {r["claim"].partition(": ")[2].partition(": ")[0]: r for r in rows if "train split, flat" in r["claim"]}
    assert set(verdicts(by_claim.values())) == {"holds"}

    def errors(claim):
        statistic = by_claim[claim]["statistic"]
        return [float(se) for se in re.findall(r"± (\S+) \(jackknife over images, 10 groups\)", statistic)]

    ratio = errors("the memorization ratio is larger at the last layer than at the first")
    assert len(ratio) == 3 and max(ratio) < 1e-12  # clean and corrupted CDNV both without group g: the same ratio
    assert min(errors("CDNV and NC2 are lower at the last layer than at the first, at every level")) > 1e-4
    probes = [r for r in rows if "probe accuracy" in r["claim"]]
    assert all("binomial, 2000 images" in r["statistic"] for r in probes)
    without = setting(study(seeds=1, scatter=0), "swin_t", "gaussian_noise")
    assert {r["verdict"] for r in without if "probe accuracy" not in r["claim"]} == {"inconclusive"}
    assert "one run without jackknife replicates" in without[0]["statistic"]


def test_runs_that_do_not_fit_their_inputs_are_left_out_and_listed():
    one = study(unfit={("swin_t", "gaussian_noise:5", 1): 0.9}, jackknife=10)
    rows = setting(one, "swin_t", "gaussian_noise")
    assert "not computed" not in verdicts(rows)
    assert all(f"{LEFT_OUT}: swin_t gaussian_noise:5 seed 1 (0.900)" in r["statistic"] for r in rows)
    assert "jackknife" in rows[2]["statistic"]  # L3 is judged from its one run that fits
    assert "left out" not in setting(one, "resnet18", "gaussian_noise")[0]["statistic"]
    every = study(unfit={("swin_t", "gaussian_noise:3", s): 0.5 for s in (0, 1)})
    rows = setting(every, "swin_t", "gaussian_noise")
    assert set(verdicts(rows)) == {"not computed"}
    assert rows[0]["statistic"].startswith(f"every run of L2 is left out; {LEFT_OUT}: ")



def test_a_probe_that_did_not_converge_or_underfits_leaves_exactly_the_probe_claims_not_computed():
    good = setting(study(), "swin_t", "gaussian_noise")
    reads_probe = ["probe accuracy" in r["claim"] for r in good]
    assert sum(reads_probe) == 2 and set(verdicts(good)) == {"holds"}  # the gap widening, the last layer declining
    for options, why in (({"converged": 2}, "swin_t gaussian_noise:3 seed 1: the probe did not converge at block 3"),
                         ({"probe_fit": 0.97}, "swin_t gaussian_noise:3 seed 1: the last block's probe fits 0.970 of "
                                               "its training images, the network 1.000")):
        rows = setting(study(probes={("swin_t", "gaussian_noise:3", 1): options}), "swin_t", "gaussian_noise")
        assert verdicts(rows) == ["not computed" if probe else "holds" for probe in reads_probe]
        assert all(why in r["statistic"] and "fails the probe check" in r["statistic"]
                   for r, probe in zip(rows, reads_probe) if probe)
    left_out = study(unfit={("swin_t", "gaussian_noise:3", 1): 0.9},
                     probes={("swin_t", "gaussian_noise:3", 1): {"converged": 2}})
    assert "not computed" not in verdicts(setting(left_out, "swin_t", "gaussian_noise"))  # a run left out: not read


def test_a_corrupted_runs_probe_is_compared_with_its_fit_of_the_clean_inputs_an_sgd_probe_for_fit_only():
    def probe_verdicts(**options):
        runs = {("swin_t", "gaussian_noise:5", seed): options for seed in (0, 1)}
        return {r["verdict"] for r in setting(study(probes=runs), "swin_t", "gaussian_noise")
                if "probe accuracy" in r["claim"]}
    assert probe_verdicts(probe_fit=0.6, clean_fit=0.61) == {"holds"}  # train accuracy 1.0 on its corrupted inputs
    assert probe_verdicts(probe_fit=0.6, clean_fit=0.63) == {"not computed"}
    assert probe_verdicts(probe_fit=0.6, clean_fit=0.61, converged=None) == {"holds"}
    assert probe_verdicts(probe_fit=0.6, clean_fit=0.63, converged=None) == {"not computed"}

def test_setting_claims_need_every_level():
    found = study(drop={("swin_t", "gaussian_noise:5")})
    rows = setting(found, "swin_t", "gaussian_noise")
    assert verdicts(rows) == ["not computed"] * len(rows)
    assert rows[0]["statistic"].startswith("not stored yet: L3; the stored runs give: ")
    assert set(verdicts(setting(found, "resnet18", "gaussian_noise"))) == {"holds"}


def test_a_missing_run_still_names_its_setting():
    found = study(models=("resnet18",))
    missing = [(RunConfig.at_scale("swin_t", "cifar10", "smoke", corruption="gaussian_noise:level1"), "missing")]
    found = replace(found, missing=missing)
    assert ("swin_t", "gaussian_noise") in claims.settings(found)
    assert set(verdicts(setting(found, "swin_t", "gaussian_noise"))) == {"not computed"}
    assert set(verdicts(architecture(found))) == {"not computed"}


@pytest.mark.parametrize("holds", [True, False])
def test_architecture_claims(holds):
    rows = architecture(study(holds=holds))
    assert len(rows) == 2 * len(VIEWS)
    assert verdicts(rows) == ["holds" if holds else "does not hold"] * len(rows)


def test_depth_claims_need_two_depths_per_family():
    rows = depth(study())
    assert verdicts(rows) == ["not computed"] * (len(VIEWS) + 1)
    assert "two depths of each family" in rows[0]["statistic"]


@pytest.mark.parametrize("holds", [True, False])
def test_depth_claims(holds):
    models = ("resnet18", "resnet34", "swin_t", "swin_s")
    ratio = {"resnet34": 1.05, "swin_s": 1.5} if holds else {"resnet34": 1.3, "swin_s": 0.8}
    accuracy = {"resnet34": 0.72, "swin_s": 0.68} if holds else {"resnet34": 0.68, "swin_s": 0.72}
    rows = depth(study(models, seeds=3, depth=ratio, clean_acc=accuracy))
    assert verdicts(rows) == ["holds" if holds else "does not hold"] * (len(VIEWS) + 1)
    assert "3 seeds" in rows[0]["statistic"]


@pytest.mark.parametrize("train_acc,verdict", [(1.0, "holds"), (0.5, "does not hold")])
def test_terminal_claim(train_acc, verdict):
    found = study()
    found = replace(found, summaries=found.summaries.assign(train_acc=train_acc))
    assert claims.terminal_claim(found)["verdict"] == verdict


@pytest.mark.parametrize("train_acc,verdict", [(1.0, "not computed"), (0.5, "does not hold")])
def test_terminal_claim_with_runs_missing(train_acc, verdict):
    found = study()
    missing = [(RunConfig.at_scale("swin_s", "cifar10", "smoke"), "missing")]
    row = claims.terminal_claim(replace(found, summaries=found.summaries.assign(train_acc=train_acc), missing=missing))
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


def test_deeper_models_at_one_level_are_judged_at_the_levels_they_ran():
    """Below the paper scale ResNet34 and Swin-S run Gaussian noise at one level (studies.DEPTH_LEVEL)."""
    models = ("resnet18", "resnet34", "swin_t", "swin_s")
    found = study(models, depth={"resnet34": 1.05, "swin_s": 1.2}, gaussian_at={"resnet34": 3, "swin_s": 3})
    for model in ("resnet34", "swin_s"):
        rows = setting(found, model, "gaussian_noise")
        assert "not computed" not in verdicts(rows)
        shift = next(r["statistic"] for r in rows if "the CDNV curve lies higher" in r["claim"])  # levels it ran
        assert shift.startswith("mean over the layers of log10 CDNV") and "L3 - L0 " in shift and "L1" not in shift
    rows = architecture(found)
    assert verdicts(rows) == ["holds"] * len(rows)
    assert "L1 swin_t L1 - resnet18 L1" not in rows[0]["statistic"]
    assert "swin_s L3 - resnet34 L3" in rows[0]["statistic"] and "swin_t L1 - resnet18 L1" in rows[0]["statistic"]
    ratio, accuracy = depth(found)[0], depth(found)[-1]
    assert ratio["verdict"] == "holds" and "(swin_s L3 - swin_t L3) - (resnet34 L3 - resnet18 L3)" in ratio["statistic"]
    assert accuracy["verdict"] == "inconclusive"  # the fixture's clean accuracies do not change with depth
    assert "L1" not in ratio["statistic"] + accuracy["statistic"]
    missing = study(models, gaussian_at={"resnet34": 3, "swin_s": 3}, drop={("swin_s", "gaussian_noise:5")})
    assert set(verdicts(depth(missing))) == {"not computed"}
    assert set(verdicts(setting(missing, "swin_s", "gaussian_noise"))) == {"not computed"}


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in claims.QUOTES.items():
        assert quote in paper, name
    table = claims.claims(study())
    quoted = table[~table.claim.str.contains("terminal phase")]
    assert all(any(f'"{q}"' in claim for q in claims.QUOTES.values()) for claim in quoted.claim)


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(claims.CHAPTER))
    for link in claims.claims(study()).figure:
        page, _, target = link.partition("#")
        assert page == f"{claims.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"
