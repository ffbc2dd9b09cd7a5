"""The appendix B and C verdicts (ncutils.claims.vgg_vit) on hand-built metric tables whose right verdict is
known: one run per model with jackknife replicates of a small (decisive) or a large (inconclusive) scatter."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import VERDICTS
from ncutils.claims import vgg_vit as claims
from ncutils.config import RunConfig
from ncutils.frames import VIEWS
from ncutils.results import StudyResults

from claim_rows import claim_row

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "zhou-jiang-zhu-2025-are-all-layers-created-equal.md"
TAPS = {"vgg13": 10, "vgg16": 13, "vgg19": 16, "vit_small": 12, "vit_base": 12}
RATE = {"vgg13": 0.3, "vgg16": 0.2, "vgg19": 0.1, "vit_small": 0.05, "vit_base": 0.05}  # decades per layer
TRAIN = 1000  # training images of every run


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


def found(curves: dict, train_acc=None, missing=(), jackknife=10, scatter=0.001) -> StudyResults:
    """One run of each model of ``curves`` ({model: curve}) in every view, with ``jackknife`` replicates
    scattered by ``scatter`` (relative); rows the claims must not read (the classifier's input) carry 1e-9."""
    rng = np.random.default_rng(0)
    rows = []
    for model, curve in curves.items():
        for measure, values in zip(("cdnv_sum", "nc2"), curve(model)):
            names = [(measure, values)] + [(f"{measure}@jk{g}", values * (1 + scatter * rng.normal(size=len(values))))
                                           for g in range(jackknife)]
            for name, series in names:
                for i, value in enumerate(list(series) + [1e-9]):
                    base = {"key": model, "model": model, "seed": 0, "num_samples": 2000, "dataset": "cifar10", "eval_data": "cifar10", "inputs": "clean",
                            "labels": "clean", "layer_index": i, "measure": name, "value": value,
                            "layer": "penultimate" if i == len(series) else f"layer{i}"}
                    rows += [{**base, "split": split, "features": features} for split, features in VIEWS]
    summaries = pd.DataFrame([{"key": m, "model": m, "size": "", "seed": 0, "dataset": "cifar10", "recipe": "sgd",
                               "epochs": 600 if m in claims.VGGS else 200, "n_per_class": 100,
                               "train_acc": (train_acc or {}).get(m, 1.0), "test_acc": 0.6, "num_train": TRAIN,
                               "num_test": 2000} for m in curves])
    return StudyResults(pd.DataFrame(rows), summaries, [(RunConfig(m), "missing") for m in missing], None,
                        tuple(RunConfig(m) for m in curves))


def everything(curve):
    return {m: curve for m in TAPS}


def verdict(results: StudyResults, claim: str, view="train split, flat features") -> str:
    return claim_row(claims.claims(results), claim, view).verdict


def test_log_linear_fit():
    slope, r2 = claims.log_linear_fit(10 ** (2 - 0.5 * np.arange(6)))
    assert slope == pytest.approx(-0.5) and r2 == pytest.approx(1)


@pytest.mark.parametrize("n", [10, 12, 13, 16])
def test_the_plateau_shape_falls_below_the_threshold(n):
    assert 0.5 < claims.plateau_r2(n) < claims.R2_GEOMETRIC


@pytest.mark.parametrize("claim", ["CDNV decays at an almost geometric rate", "CDNV and NC2 both decay"])
def test_geometric_decay_in_every_view(claim):
    for split, features in VIEWS:
        view = f"{split} split, {features} features"
        assert verdict(found(everything(geometric)), claim, view) == "holds"
        assert verdict(found(everything(plateau)), claim, view) == "does not hold"


def test_a_geometric_fit_within_the_jackknife_noise_is_inconclusive():
    barely = {m: (lambda m: (10.0 ** (3 - 0.001 * np.arange(TAPS[m])), 10.0 ** (-0.001 * np.arange(TAPS[m]))))
              for m in TAPS}
    assert verdict(found(barely, scatter=0.05), "CDNV decays at an almost geometric rate") == "inconclusive"


def test_one_run_is_judged_by_its_jackknife():
    table = claims.claims(found(everything(geometric)))
    row = claim_row(table, "almost geometric", "train split, flat")
    assert "jackknife over images, 10 groups" in row.statistic and f"> {claims.R2_GEOMETRIC}" in row.statistic
    without = claims.claims(found(everything(geometric), jackknife=0))
    row = claim_row(without, "almost geometric", "train split, flat")
    assert row.verdict == "inconclusive" and "without jackknife replicates" in row.statistic


@pytest.mark.parametrize("rates, expected", [(RATE, "holds"), ({"vgg13": 0.1, "vgg16": 0.2, "vgg19": 0.3},
                                                               "does not hold"),
                                             ({"vgg13": 0.3, "vgg16": 0.1, "vgg19": 0.2}, "does not hold")])
def test_rate_decreases_with_depth(rates, expected):
    curves = {m: at_rates(rates) for m in claims.VGGS}
    assert verdict(found(curves), "the slower CDNV decays per layer") == expected


@pytest.mark.parametrize("acc, expected", [(0.9, "holds"), (1.0, "does not hold"), (0.988, "inconclusive")])
def test_vit_not_terminal_by_the_binomial_error(acc, expected):
    results = found(everything(geometric), train_acc={"vit_small": acc, "vit_base": acc})
    assert verdict(results, "do not reach the terminal phase") == expected


def test_vit_weaker():
    assert verdict(found(everything(geometric)), "ViT layers compress and separate less") == "holds"
    lower = {**{m: geometric for m in claims.VGGS},
             **{m: (lambda m: (1e-3 * geometric(m)[0], 1e-3 * geometric(m)[1])) for m in claims.VITS}}
    assert verdict(found(lower), "ViT layers compress and separate less") == "does not hold"


def test_claims_table():
    table = claims.claims(found(everything(geometric), train_acc={"vit_small": 0.9, "vit_base": 0.9}))
    assert list(table.columns) == ["claim", "statistic", "verdict", "figure"]
    assert len(table) == 4 * len(VIEWS) + 2
    assert list(table.verdict) == ["holds"] * (len(table) - 1) + ["not computed"]  # the last: ImageNet panels


def test_a_missing_vit_leaves_only_the_vgg_claims_computed():
    table = claims.claims(found({m: geometric for m in claims.VGGS}, missing=claims.VITS))
    vgg_only = table.claim.str.startswith("(B) VGG")
    assert set(table[vgg_only].verdict) == {"holds"} and set(table[~vgg_only].verdict) == {"not computed"}
    reads_vits = table[~vgg_only & ~table.claim.str.contains("ImageNet")]
    assert reads_vits.statistic.str.startswith("not stored yet: vit_small, vit_base").all()


def test_nothing_stored():
    table = claims.claims(StudyResults(pd.DataFrame(), pd.DataFrame(), [], None))
    assert set(table.verdict) == {"not computed"} and set(table.verdict) <= set(VERDICTS)


def test_accuracy_table_shows_the_epochs():
    table = claims.accuracy_table(found(everything(geometric)))
    assert set(table[table.model.isin(claims.VGGS)].epochs) == {600} and table["terminal phase"].all()


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in claims.QUOTES.items():
        assert quote in paper, name
    table = claims.claims(found(everything(geometric)))
    assert all(any(f'"{q}"' in claim for q in claims.QUOTES.values()) for claim in table.claim)


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(claims.CHAPTER))
    for link in claims.claims(found(everything(geometric))).figure:
        page, _, target = link.partition("#")
        assert page == f"{claims.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"
