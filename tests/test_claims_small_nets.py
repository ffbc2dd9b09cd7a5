"""Parker et al.'s verdicts (chapter small_nets) on hand-built metric tables whose right verdict is known:
settings repeated over seeds with a small scatter (decisive), or one run each with jackknife replicates of CDNV
and NC2 (Parker et al.'s NC1, equal norms and maximal angle then have no within-run uncertainty)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import small_nets
from ncutils.config import RunConfig
from ncutils.results import StudyResults

from claim_rows import claim_row

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "parker-et-al-2023-intermediate-neural-collapse.md"
MODELS = ("mlp", "vgg11", "resnet18")
DATASETS = ("fashion-mnist", "cifar10")
TRAIN = 1000  # training images of every run

# Curves as Parker et al. describe them after training: NC1 (and CDNV) fall early then plateau, the angles (and
# NC2) keep falling to the last layer, NC4 reaches 0 (earlier on Fashion-MNIST); at initialisation all are flat.
PAPER_CURVES = {"nc1": [10, 1, 0.5, 0.45, 0.44, 0.43], "cdnv_sum": [100, 10, 5, 4.5, 4.4, 4.3],
                "equal_norms": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05], "max_angle": [0.5, 0.45, 0.4, 0.3, 0.1, 0.01],
                "nc2": [0.9, 0.85, 0.8, 0.6, 0.3, 0.1]}
PAPER_NC4 = {"fashion-mnist": [0.5, 0.1, 0, 0, 0, 0], "cifar10": [0.8, 0.5, 0.3, 0.1, 0.05, 0]}
# The opposite: collapse weakens with depth and NC4 rises, more on Fashion-MNIST.
RISING = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
OPPOSITE = {"nc1": [1, 2, 5, 8, 9, 10], "cdnv_sum": [10, 20, 50, 80, 90, 100], "equal_norms": RISING,
            "max_angle": RISING, "nc2": RISING}
OPPOSITE_NC4 = {"fashion-mnist": [0.5, 0.6, 0.7, 0.8, 0.9, 0.9], "cifar10": [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}
# NC1 (CDNV) falls late while the angles (NC2) fall early.
LATE = {**PAPER_CURVES, "nc1": [10, 9.9, 9.8, 5, 2, 1], "cdnv_sum": [100, 99, 98, 50, 20, 10],
        "max_angle": [0.5, 0.05, 0.04, 0.04, 0.04, 0.04], "nc2": [0.9, 0.1, 0.09, 0.09, 0.09, 0.09]}
INIT = {"nc1": [10] * 6, "cdnv_sum": [100] * 6, "equal_norms": [0.5] * 6, "max_angle": [0.5] * 6, "nc2": [0.9] * 6,
        "nc4": [0.9] * 6}
FALLS = "(NC1) after training, {} falls from the first to the last layer"
TRAINING = "(NC1) the fall comes with training: {}"
SHALLOW = "(NC1) after training, {} falls by more decades up to the middle layer"
ETF = "(NC2) the class means approach a simplex ETF: after training, {} is lower"
DEEPER = "a larger share of the log decrease of {}"
PARKERS = [(FALLS, "NC1"), (TRAINING, "NC1"), (SHALLOW, "NC1"), (ETF, "the equal-norms measure"),
           (ETF, "the maximal-angle measure"), (DEEPER, "the maximal-angle measure")]  # no replicates


def found(trained: dict, nc4: dict, init: dict = INIT, train_acc: float = 1.0, missing=(), only=None, seeds=3,
          scatter=0.001, jackknife=10) -> StudyResults:
    """Stored results of every (model, dataset) of ``only`` (default: all, ReLU) trained and at init, ``seeds``
    runs each scattered by ``scatter`` (relative; NC4 absolute), with ``jackknife`` replicates of CDNV and NC2;
    rows the claims must not read (test split, penultimate layer, pooled features) carry 1e9."""
    rng = np.random.default_rng(0)
    rows, summaries, stored = [], [], []
    for model, dataset in only or [(m, d) for m in MODELS for d in DATASETS]:
        for epochs, curves in ((0, init), (150, {**trained, "nc4": nc4[dataset]})):
            for seed in range(seeds):
                config = RunConfig(model, dataset, size={"width": 16}, recipe="parker", epochs=epochs, seed=seed)
                stored.append(config)
                for measure, values in curves.items():
                    values = np.asarray(values, float)
                    noise = scatter * rng.normal(size=len(values))
                    values = np.clip(values + noise, 0, 1) if measure == "nc4" else values * (1 + noise)
                    named = [(measure, values)]
                    if measure in ("cdnv_sum", "nc2"):
                        named += [(f"{measure}@jk{g}", values * (1 + 0.001 * rng.normal(size=len(values))))
                                  for g in range(jackknife)]
                    for name, curve in named:
                        for i, v in enumerate(list(curve) + [1e9]):
                            base = dict(key=config.key(), model=model, size="width=16", dataset=dataset, seed=seed,
                                        epochs=epochs, eval_data=dataset, inputs="clean", labels="clean",
                                        measure=name, layer_index=i, num_samples=TRAIN,
                                        layer="penultimate" if i == len(curve) else f"fc{i + 1}")
                            rows += [{**base, "split": "train", "features": "flat", "value": float(v)},
                                     {**base, "split": "test", "features": "flat", "value": 1e9},
                                     {**base, "split": "train", "features": "pooled", "value": 1e9}]
                summaries.append(dict(key=config.key(), model=model, size="width=16", dataset=dataset, epochs=epochs,
                                      seed=seed, train_acc=train_acc if epochs else 0.1, test_acc=0.5,
                                      num_train=TRAIN, num_test=2000))
    return StudyResults(pd.DataFrame(rows), pd.DataFrame(summaries), [(c, "missing") for c in missing], None,
                        tuple(stored))


def verdicts(results: StudyResults) -> dict[str, str]:
    table = small_nets.claims(results)
    return dict(zip(table.claim, table.verdict))


def pick(results: StudyResults, claim: str):
    return claim_row(small_nets.claims(results), claim)


def test_paper_like_runs_over_seeds_make_every_claim_hold():
    assert set(verdicts(found(PAPER_CURVES, PAPER_NC4)).values()) == {"holds"}


def test_one_run_each_judges_parkers_measures_inconclusive_and_cdnv_nc2_nc4_by_their_errors():
    results = found(PAPER_CURVES, PAPER_NC4, seeds=1)
    table = small_nets.claims(results).set_index("claim")
    parkers = [pick(results, claim.format(measure)).claim for claim, measure in PARKERS]
    assert set(table.loc[parkers, "verdict"]) == {"inconclusive"}
    assert all("no within-run uncertainty for" in s for s in table.loc[parkers, "statistic"])
    assert "no within-run uncertainty for NC1" in pick(results, FALLS.format("NC1")).statistic
    others = table.drop(parkers).reset_index()
    assert set(others.verdict) == {"holds"}, others[["claim", "statistic"]].to_string()
    assert "jackknife over images" in pick(results, FALLS.format("CDNV")).statistic
    assert "binomial, 1000 images" in pick(results, "(NC4) after training").statistic


def test_opposite_runs_make_the_claims_fail():
    v = verdicts(found(OPPOSITE, OPPOSITE_NC4, train_acc=0.5))
    # where nothing falls, the share of the fall after the middle layer is undefined
    deeper = [c for c in v if "a larger share of the log decrease" in c]
    assert len(deeper) == 2 and {v.pop(c) for c in deeper} == {"inconclusive"}
    assert set(v.values()) == {"does not hold"}, v


@pytest.mark.parametrize("measure, angle", [("NC1", "the maximal-angle measure"), ("CDNV", "NC2 (eq. 5)")])
def test_nc1_falling_late_and_angles_falling_early_contradict_the_depth_profile(measure, angle):
    results = found(LATE, PAPER_NC4)
    assert pick(results, SHALLOW.format(measure)).verdict == "does not hold"
    assert pick(results, DEEPER.format(angle)).verdict == "does not hold"
    assert pick(results, FALLS.format(measure)).verdict == "holds"


def test_one_deviating_run_fails_a_claim_over_runs():
    paper, opposite = found(PAPER_CURVES, PAPER_NC4), found(OPPOSITE, OPPOSITE_NC4)
    deviant = (paper.metrics.model == "mlp") & (paper.metrics.dataset == "cifar10")
    metrics = pd.concat([paper.metrics[~deviant], opposite.metrics[deviant.to_numpy()]])
    mixed = StudyResults(metrics, paper.summaries, [], None, paper.stored)
    row = pick(mixed, FALLS.format("CDNV"))
    assert row.verdict == "does not hold"
    assert "mlp/cifar10/relu -1 ± " in row.statistic and "vgg11/cifar10/relu 1.37 ± " in row.statistic


def test_nc1_falling_more_at_initialisation_than_after_training_is_no_effect_of_training():
    init = {**INIT, "nc1": [100, 1, 0.5, 0.45, 0.44, 0.43], "cdnv_sum": [1000, 10, 5, 4.5, 4.4, 4.3]}
    results = found(PAPER_CURVES, PAPER_NC4, init=init)
    assert pick(results, TRAINING.format("NC1")).verdict == pick(results, TRAINING.format("CDNV")).verdict == \
        "does not hold"  # at initialisation they fall a decade more


def test_depth_profile_statistics():
    curves = {("nc1", "train", "flat"): np.array([100, 10, 1, 1, 1])}
    assert small_nets.early_minus_late("nc1")(curves) == pytest.approx(2.0)  # 2 decades by the middle, 0 after
    assert small_nets.fall("nc1")(curves) == pytest.approx(2.0)
    assert small_nets.later_share(np.array([100, 100, 100, 10, 1])) == pytest.approx(1.0)
    assert small_nets.later_share(np.array([100, 10, 1, 1, 1])) == pytest.approx(0.0)
    assert np.isnan(small_nets.later_share(np.array([1, 2, 3])))


def test_activation_comes_from_the_config():
    assert small_nets.activation(RunConfig("mlp", "cifar10", size={"width": 16})) == "relu"
    assert small_nets.activation(RunConfig("mlp", "cifar10", size={"activation": "leaky_relu", "width": 16})) == "leaky_relu"


def test_accuracy_table_lists_every_seed():
    table = small_nets.accuracy_table(found(PAPER_CURVES, PAPER_NC4, only=[("mlp", "cifar10")], seeds=2))
    assert len(table) == 4 and list(table.seed) == [0, 1, 0, 1]
    assert table["terminal phase"].tolist() == [False, False, True, True]


def test_missing_runs_leave_claims_not_computed_with_what_the_stored_runs_give():
    missing = [RunConfig.at_scale("mlp", "cifar10", "smoke", recipe="parker", epochs=e) for e in (0, 2)]
    table = small_nets.claims(found(PAPER_CURVES, PAPER_NC4, missing=missing, only=[("vgg11", "cifar10")]))
    assert set(table.verdict) == {"not computed"}
    row = claim_row(table, FALLS.format("CDNV"))
    assert "mlp/cifar10/relu trained" in row.statistic and "the stored runs give: decades CDNV falls" in row.statistic


def test_missing_init_run_does_not_block_claims_on_trained_runs():
    results = found(PAPER_CURVES, PAPER_NC4)
    init = [c for c in results.stored if (c.model, c.dataset, c.epochs) == ("mlp", "cifar10", 0)]
    keys = {c.key() for c in init}
    results = StudyResults(results.metrics[~results.metrics.key.isin(keys)],
                           results.summaries[~results.summaries.key.isin(keys)], [(c, "missing") for c in init], None,
                           tuple(c for c in results.stored if c not in init))
    assert pick(results, FALLS.format("CDNV")).verdict == "holds"
    assert pick(results, TRAINING.format("CDNV")).verdict == "not computed"


def test_no_stored_runs():
    empty = StudyResults(pd.DataFrame(), pd.DataFrame(columns=["key", "model", "size", "dataset", "epochs"]),
                         [(RunConfig.at_scale("mlp", "cifar10", "smoke", recipe="parker"), "missing")], None)
    assert set(small_nets.claims(empty).verdict) == {"not computed"}


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in small_nets.QUOTES.items():
        assert quote in paper, name
    table = small_nets.claims(found(PAPER_CURVES, PAPER_NC4, seeds=1))
    quoted = table[~table.claim.str.contains("terminal phase")]
    assert all(any(f'"{q}"' in claim for q in small_nets.QUOTES.values()) for claim in quoted.claim)


def test_figure_links_point_at_targets_of_the_chapter():
    targets = set(chapter_targets(small_nets.CHAPTER))
    for link in small_nets.claims(found(PAPER_CURVES, PAPER_NC4, seeds=1)).figure:
        page, _, target = link.partition("#")
        assert page == f"{small_nets.CHAPTER}.html" and target in targets, link
