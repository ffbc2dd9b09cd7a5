"""The section 4.1 verdicts on hand-built metric tables whose right verdict is known."""
import re

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import clean
from ncutils.config import RunConfig
from ncutils.results import StudyResults


def accelerating(n, top=3.0, drop=2.0):
    """CDNV falling faster and faster: log10 = top - drop * x^2 over n blocks."""
    return list(10 ** (top - drop * np.linspace(0, 1, n) ** 2))


def decelerating(n, top=3.0, drop=2.0):
    return list(10 ** (top - drop * np.sqrt(np.linspace(0, 1, n))))


def with_plateau(n=17):
    """One decade down over the early third, flat over the middle, one decade down over the last."""
    u = round((n - 1) / 3)
    logs = np.concatenate([np.linspace(3, 2, u + 1), np.full(n - 2 * u - 2, 2.0), np.linspace(2, 1, u + 1)])
    return list(10 ** logs)


def run(cdnv, nc2=None, probe=None):
    n = len(cdnv)
    return {"cdnv_sum": cdnv, "nc2": nc2 or list(np.linspace(1.0, 0.4, n)),
            "probe_test_acc": probe or list(np.linspace(0.3, 0.6, n))}


def found(runs: dict, accuracy: dict | None = None, missing=()) -> StudyResults:
    """Stored results of ``runs`` ({model: {measure: per-block values}}), as the store lays them out:
    rows the claims must not read (test split, penultimate layer) carry a value of 1e9."""
    rows = []
    for model, measures in runs.items():
        for measure, values in measures.items():
            for i, v in enumerate(list(values) + [1e9]):
                base = {"model": model, "dataset": "cifar10", "noise": "clean", "eval_data": "cifar10",
                        "inputs": "clean", "labels": "clean", "layer_index": i, "measure": measure,
                        "layer": "penultimate" if i == len(values) else f"block{i}", "num_samples": 2000}
                if measure.startswith("probe"):
                    rows.append({**base, "split": "test", "features": "pooled", "value": v})
                else:
                    rows += [{**base, "split": "train", "features": "flat", "value": v},
                             {**base, "split": "test", "features": "flat", "value": 1e9},
                             {**base, "split": "train", "features": "pooled", "value": 1e9}]
    accuracy = accuracy or {}
    summaries = pd.DataFrame([("cifar10", m, "clean", *accuracy.get(m, (1.0, 0.6)), 2000) for m in runs],
                             columns=["dataset", "model", "noise", "train_acc", "test_acc", "num_test"])
    return StudyResults(pd.DataFrame(rows), summaries, [(RunConfig(m), "missing") for m in missing], None,
                        tuple(RunConfig(m) for m in runs))


def verdict(results: StudyResults, claim: str) -> str:
    table = clean.claims(results)
    row = table[table.claim.str.contains(claim, regex=False)]
    assert len(row) == 1, (claim, table.claim.tolist())
    return row.verdict.iloc[0]


def test_layers_improve_from_first_to_last_block():
    good = {"resnet18": run(accelerating(9)), "resnet34": run(accelerating(17))}
    assert verdict(found(good), "ResNets on CIFAR-10: CDNV and NC2 are lower") == "holds"
    worse_nc2 = {**good, "resnet34": run(accelerating(17), nc2=list(np.linspace(0.4, 1.0, 17)))}
    assert verdict(found(worse_nc2), "ResNets on CIFAR-10: CDNV and NC2 are lower") == "inconclusive"
    rising = {m: run(accelerating(n)[::-1]) for m, n in (("resnet18", 9), ("resnet34", 17))}
    assert verdict(found(rising), "ResNets on CIFAR-10: CDNV and NC2 are lower") == "does not hold"


def test_the_last_third_improves_fastest():
    claim = "Swin Transformers on CIFAR-10: CDNV falls faster"
    assert verdict(found({"swin_t": run(accelerating(12)), "swin_s": run(accelerating(24))}), claim) == "holds"
    assert verdict(found({"swin_t": run(decelerating(12)), "swin_s": run(decelerating(24))}), claim) == "does not hold"


def test_plateau_in_deep_resnets_only():
    claim = "ResNet50/101/152 have a plateau"
    assert verdict(found({"resnet18": run(accelerating(9)), "resnet50": run(with_plateau(17))}), claim) == "holds"
    no_plateau = {"resnet18": run(accelerating(9)), "resnet50": run(accelerating(17))}
    assert verdict(found(no_plateau), claim) == "does not hold"
    both = {"resnet18": run(with_plateau(9)), "resnet50": run(with_plateau(17))}
    assert verdict(found(both), claim) == "inconclusive"  # ResNet18 should have none


def test_deeper_models_improve_less_per_block():
    claim = "ResNets on CIFAR-10: the deeper the model"
    slower = {"resnet18": run(accelerating(9, drop=2)), "resnet34": run(accelerating(17, drop=2))}
    assert verdict(found(slower), claim) == "holds"
    faster = {"resnet18": run(accelerating(9, drop=2)), "resnet34": run(accelerating(17, drop=6))}
    assert verdict(found(faster), claim) == "does not hold"


@pytest.mark.parametrize("accuracies, expected", [((0.600, 0.605, 0.603), "holds"),
                                                   ((0.50, 0.60, 0.70), "does not hold"),
                                                   ((0.60, 0.62, 0.61), "inconclusive")])
def test_extra_depth_adds_little_accuracy(accuracies, expected):
    deep = ("resnet50", "resnet101", "resnet152")
    runs = {m: run(accelerating(17), probe=[0.3] * 16 + [a]) for m, a in zip(deep, accuracies)}
    results = found(runs, {m: (1.0, a) for m, a in zip(deep, accuracies)})
    assert verdict(results, "differ by at most one point in test accuracy") == expected
    assert verdict(results, "differ by at most one point in last-block probe") == expected


def test_resnets_compress_and_separate_more_than_swins():
    low = run(accelerating(9, top=2), nc2=list(np.linspace(0.8, 0.2, 9)))
    high = run(accelerating(12, top=3), nc2=list(np.linspace(1.0, 0.5, 12)))
    assert verdict(found({"resnet18": low, "swin_t": high}), "ResNet blocks compress more") == "holds"
    assert verdict(found({"resnet18": low, "swin_t": high}), "ResNet blocks separate classes more") == "holds"
    assert verdict(found({"resnet18": high, "swin_t": low}), "ResNet blocks compress more") == "does not hold"
    assert verdict(found({"resnet18": high, "swin_t": low}), "ResNet blocks separate classes more") == "does not hold"


def test_lower_cdnv_goes_with_higher_probe_accuracy():
    claim = "lower CDNV goes with higher probe accuracy"
    assert verdict(found({"resnet18": run(accelerating(9))}), claim) == "holds"
    falling_probe = run(accelerating(9), probe=list(np.linspace(0.6, 0.3, 9)))
    assert verdict(found({"resnet18": falling_probe}), claim) == "does not hold"


def test_terminal_phase():
    runs = {"resnet18": run(accelerating(9)), "resnet34": run(accelerating(17))}
    assert verdict(found(runs, {"resnet18": (1.0, 0.6), "resnet34": (0.999, 0.6)}), "terminal phase") == "holds"
    assert verdict(found(runs, {"resnet18": (0.95, 0.6), "resnet34": (0.9, 0.6)}), "terminal phase") == "does not hold"


def test_claims_with_missing_runs_are_not_computed_and_say_what_is_stored():
    table = clean.claims(found({"resnet18": run(accelerating(9))}, missing=("resnet50", "swin_t")))
    assert set(table.verdict) == {"not computed"}
    row = table[table.claim.str.contains("ResNets on CIFAR-10: CDNV and NC2 are lower")].iloc[0]
    assert row.statistic.startswith("not stored yet: resnet50; the stored runs give: first → last block: resnet18")
    nothing = clean.claims(found({}, missing=("resnet18", "swin_t")))
    assert set(nothing.verdict) == {"not computed"} and len(nothing) > 0


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(clean.CHAPTER))
    table = clean.claims(found({"resnet18": run(accelerating(9)), "swin_t": run(accelerating(12))}))
    for link in table.figure:
        page, _, target = link.partition("#")
        assert page == f"{clean.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"
