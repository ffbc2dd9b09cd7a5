"""Parker et al.'s verdicts (chapter small_nets) on hand-built metric tables whose right verdict is known."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import small_nets
from ncutils.config import RunConfig
from ncutils.results import StudyResults

MODELS = ("mlp", "vgg11", "resnet18")
DATASETS = ("fashion-mnist", "cifar10")

# Curves as Parker et al. describe them after training: NC1 falls early then plateaus, the angles keep
# falling to the last layer, NC4 reaches 0 (earlier on Fashion-MNIST); at initialisation all are flat.
PAPER = {"nc1": [10, 1, 0.5, 0.45, 0.44, 0.43], "equal_norms": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05],
         "max_angle": [0.5, 0.45, 0.4, 0.3, 0.1, 0.01]}
PAPER_NC4 = {"fashion-mnist": [0.5, 0.1, 0, 0, 0, 0], "cifar10": [0.8, 0.5, 0.3, 0.1, 0.05, 0]}
# The opposite: collapse weakens with depth and NC4 rises, more on Fashion-MNIST.
OPPOSITE = {"nc1": [1, 2, 5, 8, 9, 10], "equal_norms": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "max_angle": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}
OPPOSITE_NC4 = {"fashion-mnist": [0.5, 0.6, 0.7, 0.8, 0.9, 0.9], "cifar10": [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}
# NC1 falls late while the angles fall early.
LATE = {**PAPER, "nc1": [10, 9.9, 9.8, 5, 2, 1], "max_angle": [0.5, 0.05, 0.04, 0.04, 0.04, 0.04]}
SHALLOW = ("(NC1) almost all of the reduction happens in the shallower layers: more than half of NC1's log decrease "
           "is reached by the middle layer (index (L-1)//2) after training")
DEEPER = ("(NC2) angular separation keeps improving in the deeper layers, unlike NC1: the share of the log decrease "
          "after the middle layer is larger for the maximal angle than for NC1")
INIT = {"nc1": [10] * 6, "equal_norms": [0.5] * 6, "max_angle": [0.5] * 6, "nc4": [0.9] * 6}


def found(trained: dict, nc4: dict, init: dict = INIT, train_acc: float = 1.0, missing=(),
          only=None) -> StudyResults:
    """Stored results of every (model, dataset) of ``only`` (default: all, ReLU) trained and at init;
    rows the claims must not read (test split, penultimate layer, pooled features) carry 1e9."""
    rows, summaries, stored = [], [], []
    for model, dataset in only or [(m, d) for m in MODELS for d in DATASETS]:
        for epochs, curves in ((0, init), (150, {**trained, "nc4": nc4[dataset]})):
            size = "width=16"
            config = RunConfig(model, dataset, size={"width": 16}, recipe="parker", epochs=epochs)
            stored.append(config)
            for measure, values in curves.items():
                for i, v in enumerate(list(values) + [1e9]):
                    base = dict(key=config.key(), model=model, size=size, dataset=dataset, epochs=epochs, eval_data=dataset,
                                inputs="clean", labels="clean", measure=measure, layer_index=i,
                                layer="penultimate" if i == len(values) else f"fc{i + 1}")
                    rows += [{**base, "split": "train", "features": "flat", "value": float(v)},
                             {**base, "split": "test", "features": "flat", "value": 1e9},
                             {**base, "split": "train", "features": "pooled", "value": 1e9}]
            summaries.append(dict(key=config.key(), model=model, size=size, dataset=dataset, epochs=epochs,
                                  train_acc=train_acc if epochs else 0.1, test_acc=0.5))
    return StudyResults(pd.DataFrame(rows), pd.DataFrame(summaries), [(c, "missing") for c in missing], None,
                        tuple(stored))


def verdicts(results: StudyResults) -> dict[str, str]:
    table = small_nets.claims(results)
    return dict(zip(table.claim, table.verdict))


def test_paper_like_runs_make_every_claim_hold():
    assert set(verdicts(found(PAPER, PAPER_NC4)).values()) == {"holds"}


def test_opposite_runs_make_the_claims_fail():
    v = verdicts(found(OPPOSITE, OPPOSITE_NC4, train_acc=0.5))
    # where NC1 never falls, the share of its fall reached early has nothing to judge
    assert v.pop(SHALLOW) == v.pop(DEEPER) == "not computed"
    assert set(v.values()) == {"does not hold"}, v


def test_nc1_falling_late_and_angles_falling_early_contradict_the_depth_profile():
    v = verdicts(found(LATE, PAPER_NC4))
    assert v[SHALLOW] == v[DEEPER] == "does not hold"
    assert v["(NC1) after training, NC1 falls from the first to the last layer"] == "holds"


def test_a_minority_of_deviating_runs_leaves_the_claim_standing():
    paper, opposite = found(PAPER, PAPER_NC4), found(OPPOSITE, OPPOSITE_NC4)
    metrics = pd.concat([paper.metrics[paper.metrics.model != "mlp"], opposite.metrics[opposite.metrics.model == "mlp"]])
    mixed = replace(paper, metrics=metrics)
    claim = "(NC1) after training, NC1 falls from the first to the last layer"
    table = small_nets.claims(mixed).set_index("claim")
    assert table.loc[claim, "verdict"] == "holds"  # 4 of 6
    assert "mlp/cifar10/relu" in table.loc[claim, "statistic"] and "4 of 6" in table.loc[claim, "statistic"]


@pytest.mark.parametrize("passed, total, expected", [(2, 3, "holds"), (1, 3, "does not hold"),
                                                     (1, 2, "inconclusive"), (0, 1, "does not hold")])
def test_most_runs_rule(passed, total, expected):
    assert small_nets.verdict(passed, total) == expected


def test_nc1_falling_at_initialisation_as_much_as_after_training_is_no_effect_of_training():
    init = {**INIT, "nc1": PAPER["nc1"]}
    v = verdicts(found(PAPER, PAPER_NC4, init=init))
    assert v["(NC1) the fall comes with training: after training NC1 falls from the first to the last layer, "
             "and by more decades than at initialisation"] == "does not hold"


def test_first_half_share():
    assert small_nets.first_half_share(np.array([100, 10, 1, 1, 1])) == pytest.approx(1.0)
    assert small_nets.first_half_share(np.array([100, 100, 100, 10, 1])) == pytest.approx(0.0)
    assert np.isnan(small_nets.first_half_share(np.array([1, 2, 3])))


def test_activation_comes_from_the_config():
    assert small_nets.activation(RunConfig("mlp", "cifar10", size={"width": 16})) == "relu"
    assert small_nets.activation(RunConfig("mlp", "cifar10", size={"activation": "leaky_relu", "width": 16})) == "leaky_relu"


def test_missing_runs_leave_claims_not_computed_with_what_the_stored_runs_give():
    missing = [RunConfig.at_scale("mlp", "cifar10", "smoke", recipe="parker", epochs=2)]
    table = small_nets.claims(found(PAPER, PAPER_NC4, missing=missing, only=[("vgg11", "cifar10")]))
    assert set(table.verdict) == {"not computed"}
    row = table[table.claim == "(NC1) after training, NC1 falls from the first to the last layer"].iloc[0]
    assert "mlp/cifar10/relu trained" in row.statistic and "the stored runs give: 1 of 1" in row.statistic


def test_missing_init_run_does_not_block_claims_on_trained_runs():
    missing = [RunConfig.at_scale("mlp", "cifar10", "smoke", recipe="parker", epochs=0)]
    v = verdicts(found(PAPER, PAPER_NC4, missing=missing))
    assert v["(NC1) after training, NC1 falls from the first to the last layer"] == "holds"
    assert v["(NC1) the fall comes with training: after training NC1 falls from the first to the last layer, "
             "and by more decades than at initialisation"] == "not computed"


def test_no_stored_runs():
    empty = StudyResults(pd.DataFrame(), pd.DataFrame(columns=["model", "size", "dataset", "epochs"]),
                         [(RunConfig.at_scale("mlp", "cifar10", "smoke", recipe="parker"), "missing")], None)
    assert set(small_nets.claims(empty).verdict) == {"not computed"}


def test_figure_links_point_at_targets_of_the_chapter():
    targets = set(chapter_targets(small_nets.CHAPTER))
    for link in small_nets.claims(found(PAPER, PAPER_NC4)).figure:
        page, _, target = link.partition("#")
        assert page == f"{small_nets.CHAPTER}.html" and target in targets, link
