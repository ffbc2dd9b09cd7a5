"""The section 4.1 verdicts on hand-built metric tables whose right verdict is known: curves repeated over
seeds with a small (or, for a tie, a large) scatter, or one run with jackknife replicates."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import clean
from ncutils.config import RunConfig
from ncutils.frames import VIEWS
from ncutils.results import StudyResults

from claim_rows import LEFT_OUT, claim_row

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "zhou-jiang-zhu-2025-are-all-layers-created-equal.md"


def accelerating(n, top=3.0, drop=2.0):
    """CDNV falling faster and faster: log10 = top - drop * x^2 over n blocks."""
    return list(10 ** (top - drop * np.linspace(0, 1, n) ** 2))


def decelerating(n, top=3.0, drop=2.0):
    return list(10 ** (top - drop * np.sqrt(np.linspace(0, 1, n))))


def geometric(n, top=3.0, drop=2.0):
    return list(10 ** (top - drop * np.linspace(0, 1, n)))


def with_plateau(n=17, middle=0.0):
    """One decade down over the early third, ``middle`` decades over the middle, one down over the last."""
    u = round((n - 1) / 3)
    logs = np.concatenate([np.linspace(3, 2, u + 1), np.linspace(2, 2 - middle, n - 2 * u)[1:-1],
                           np.linspace(2 - middle, 1 - middle, u + 1)])
    return list(10 ** logs)


def run(cdnv, nc2=None, probe=None, probe_train=None, converged=None):
    """A run's curves; its probes fit their training images (1.0) and converged at every block by default."""
    n = len(cdnv)
    return {"cdnv_sum": cdnv, "nc2": nc2 or list(np.linspace(1.0, 0.4, n)),
            "probe_test_acc": probe or list(np.linspace(0.3, 0.6, n)), "probe_train_acc": probe_train or [1.0] * n,
            "probe_converged": converged or [1] * n}


def found(runs: dict, accuracy: dict | None = None, missing=(), seeds=3, scatter=0.01, jackknife=0) -> StudyResults:
    """Stored results of ``runs`` ({model: {measure: per-block values}}) in every view, ``seeds`` runs each
    scattered by ``scatter`` (relative for CDNV, absolute for NC2 and accuracies), with ``jackknife``
    replicates (none for the probe's train accuracy and convergence); rows the claims must not read (the
    penultimate layer, other data) carry 1e9."""
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    for model, measures in runs.items():
        for seed in range(seeds):
            for measure, values in measures.items():
                values = np.asarray(values, float)
                if measure == "cdnv_sum":
                    shaken = values * (1 + scatter * rng.normal(size=len(values)))
                elif measure in ("probe_train_acc", "probe_converged"):
                    shaken = values
                else:
                    shaken = values + scatter * rng.normal(size=len(values))
                names = [(measure, shaken)]
                if jackknife and not measure.startswith("probe"):
                    names += [(f"{measure}@jk{g}", shaken * (1 + 0.001 * rng.normal(size=len(values))))
                              for g in range(jackknife)]
                for name, curve in names:
                    for i, v in enumerate(list(curve) + [1e9]):
                        base = {"key": f"{model}-{seed}", "model": model, "seed": seed, "dataset": "cifar10", "noise": "clean",
                                "eval_data": "cifar10", "inputs": "clean", "labels": "clean", "layer_index": i,
                                "measure": name, "layer": "penultimate" if i == len(curve) else f"block{i}",
                                "num_samples": 2000}
                        views = [("test" if measure == "probe_test_acc" else "train", "pooled")] \
                            if measure.startswith("probe") else VIEWS
                        rows += [{**base, "split": split, "features": features, "value": v} for split, features in views]
                        rows.append({**base, "eval_data": "other", "split": "train", "features": "flat", "value": 1e9})
            train, test = (accuracy or {}).get(model, (1.0, 0.6))
            summaries.append((f"{model}-{seed}", "cifar10", model, seed, "clean", train, test + scatter * rng.normal(), 2000))
    summaries = pd.DataFrame(summaries, columns=["key", "dataset", "model", "seed", "noise", "train_acc", "test_acc",
                                                 "num_test"])
    return StudyResults(pd.DataFrame(rows), summaries, [(RunConfig(m), "missing") for m in missing], None,
                        tuple(RunConfig(m) for m in runs))


def verdict(results: StudyResults, claim: str, view="train split, flat features") -> str:
    return claim_row(clean.claims(results), claim, view).verdict


def test_layers_improve_from_first_to_last_block_in_every_view():
    good = {"resnet18": run(accelerating(9)), "resnet34": run(accelerating(17))}
    for split, features in VIEWS:
        view = f"{split} split, {features} features"
        assert verdict(found(good), "ResNets on CIFAR-10, " + view + ": CDNV and NC2 are lower", view) == "holds"
    worse_nc2 = {**good, "resnet34": run(accelerating(17), nc2=list(np.linspace(0.4, 1.0, 17)))}
    assert verdict(found(worse_nc2), "CDNV and NC2 are lower") == "does not hold"  # one model contradicts
    tiny_drop = {m: run(list(np.linspace(100, 99.9, n))) for m, n in (("resnet18", 9), ("resnet34", 17))}
    assert verdict(found(tiny_drop, scatter=0.05), "CDNV and NC2 are lower") == "inconclusive"  # within noise


def test_the_last_third_improves_fastest():
    claim = "Swin Transformers on CIFAR-10, train split, flat features: CDNV falls faster"
    assert verdict(found({"swin_t": run(accelerating(12)), "swin_s": run(accelerating(24))}), claim) == "holds"
    assert verdict(found({"swin_t": run(decelerating(12)), "swin_s": run(decelerating(24))}), claim) == "does not hold"


def test_plateau_in_deep_resnets_only_and_a_rise_is_no_plateau():
    claim = "ResNet50/101/152 have a plateau"
    assert verdict(found({"resnet18": run(accelerating(9)), "resnet50": run(with_plateau(17))}), claim) == "holds"
    no_plateau = {"resnet18": run(accelerating(9)), "resnet50": run(geometric(17))}
    assert verdict(found(no_plateau), claim) == "does not hold"
    both = {"resnet18": run(with_plateau(9)), "resnet50": run(with_plateau(17))}
    assert verdict(found(both), claim) == "does not hold"  # ResNet18 should have none
    rising = {"resnet18": run(accelerating(9)), "resnet50": run(with_plateau(17, middle=-0.5))}
    table = clean.claims(found(rising))
    row = claim_row(table, claim, "train split, flat")
    assert row.verdict == "does not hold" and "CDNV rises in the middle third" in row.statistic


def test_deeper_models_improve_less_per_block():
    claim = "ResNets on CIFAR-10, train split, flat features: the deeper the model"
    slower = {"resnet18": run(accelerating(9, drop=2)), "resnet34": run(accelerating(17, drop=2))}
    assert verdict(found(slower), claim) == "holds"
    faster = {"resnet18": run(accelerating(9, drop=2)), "resnet34": run(accelerating(17, drop=6))}
    assert verdict(found(faster), claim) == "does not hold"


def test_geometric_decay_of_resnet18():
    claim = "ResNet18 on CIFAR-10, train split, flat features: CDNV decays geometrically"
    assert verdict(found({"resnet18": run(geometric(9))}), claim) == "holds"
    assert verdict(found({"resnet18": run(with_plateau(9, middle=-1.0))}), claim) == "does not hold"


@pytest.mark.parametrize("accuracies, scatter, expected", [((0.600, 0.603, 0.601), 0.001, "holds"),
                                                            ((0.50, 0.60, 0.70), 0.001, "does not hold"),
                                                            ((0.60, 0.61, 0.605), 0.02, "inconclusive")])
def test_extra_depth_adds_little_accuracy(accuracies, scatter, expected):
    deep = ("resnet50", "resnet101", "resnet152")
    runs = {m: run(accelerating(17), probe=[0.3] * 16 + [a]) for m, a in zip(deep, accuracies)}
    results = found(runs, {m: (1.0, a) for m, a in zip(deep, accuracies)}, scatter=scatter)
    assert verdict(results, "differ by at most one point in test accuracy") == expected
    assert verdict(results, "differ by at most one point in last-block probe") == expected


def test_deeper_resnets_beat_resnet18_and_the_probe_gains_little_at_the_end():
    runs = {"resnet18": run(accelerating(9)), "resnet50": run(accelerating(17))}
    assert verdict(found(runs, {"resnet18": (1.0, 0.5), "resnet50": (1.0, 0.6)}), "higher test accuracy") == "holds"
    assert verdict(found(runs, {"resnet18": (1.0, 0.6), "resnet50": (1.0, 0.5)}), "higher test accuracy") == \
        "does not hold"
    flat_end = {m: run(accelerating(n), probe=list(np.minimum(np.linspace(0.3, 0.9, n), 0.6)))  # flat from mid-way
                for m, n in (("resnet18", 9), ("resnet50", 17))}
    assert verdict(found(flat_end, scatter=0.002), "the probe gains little") == "holds"
    assert verdict(found(runs), "the probe gains little") == "does not hold"  # probe climbs 0.3 -> 0.6 linearly


def test_resnets_compress_and_separate_more_than_swins():
    low = run(accelerating(9, top=2), nc2=list(np.linspace(0.8, 0.2, 9)))
    high = run(accelerating(12, top=3), nc2=list(np.linspace(1.0, 0.5, 12)))
    assert verdict(found({"resnet18": low, "swin_t": high}), "ResNet blocks compress more") == "holds"
    assert verdict(found({"resnet18": low, "swin_t": high}), "ResNet blocks separate classes more") == "holds"
    assert verdict(found({"resnet18": high, "swin_t": low}), "ResNet blocks compress more") == "does not hold"
    assert verdict(found({"resnet18": high, "swin_t": low}), "ResNet blocks separate classes more") == "does not hold"


def test_one_curve_per_architecture():
    def on_line(cdnv, offset=0.0):
        return run(cdnv, probe=list(0.8 - 0.1 * np.log10(cdnv) + offset))
    claim = "one probe-accuracy curve"
    shared = {"resnet18": on_line(accelerating(9)), "resnet34": on_line(accelerating(17, top=2.5))}
    assert verdict(found(shared, seeds=1, scatter=0), claim) == "holds"
    apart = {"resnet18": on_line(accelerating(9)), "resnet34": on_line(accelerating(17), offset=0.15)}
    assert verdict(found(apart, seeds=1, scatter=0), claim) == "does not hold"


def test_one_run_is_judged_by_its_jackknife():
    table = clean.claims(found({"resnet18": run(geometric(9))}, seeds=1, jackknife=10))
    row = claim_row(table, "decays geometrically", "train split, flat")
    assert row.verdict == "holds" and "jackknife over images, 10 groups" in row.statistic
    without = clean.claims(found({"resnet18": run(geometric(9))}, seeds=1))
    row = claim_row(without, "decays geometrically", "train split, flat")
    assert row.verdict == "inconclusive" and "without jackknife replicates" in row.statistic


def test_terminal_phase():
    runs = {"resnet18": run(accelerating(9)), "resnet34": run(accelerating(17))}
    assert verdict(found(runs, {"resnet18": (1.0, 0.6), "resnet34": (0.999, 0.6)}), "terminal phase") == "holds"
    assert verdict(found(runs, {"resnet18": (0.95, 0.6), "resnet34": (0.9, 0.6)}), "terminal phase") == "does not hold"


def test_claims_with_missing_runs_are_not_computed_and_say_what_is_stored():
    table = clean.claims(found({"resnet18": run(accelerating(9))}, missing=("resnet50", "swin_t")))
    alone = table.claim.str.contains("ResNet18 on CIFAR-10")  # footnote 2 reads ResNet18 only
    assert set(table[~alone].verdict) == {"not computed"} and "not computed" not in set(table[alone].verdict)
    row = claim_row(table, "ResNets on CIFAR-10, train split, flat features: CDNV and NC2")
    assert row.statistic.startswith("not stored yet: resnet50; the stored runs give: decades CDNV falls")
    nothing = clean.claims(found({}, missing=("resnet18", "swin_t")))
    assert set(nothing.verdict) == {"not computed"} and len(nothing) > 0


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in clean.QUOTES.items():
        assert quote in paper, name
    table = clean.claims(found({"resnet18": run(accelerating(9)), "swin_t": run(accelerating(12))}))
    quoted = table[~table.claim.str.contains("terminal phase")]
    assert all(any(f'"{q}"' in claim for q in clean.QUOTES.values()) for claim in quoted.claim)


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(clean.CHAPTER))
    table = clean.claims(found({"resnet18": run(accelerating(9)), "swin_t": run(accelerating(12))}))
    for link in table.figure:
        page, _, target = link.partition("#")
        assert page == f"{clean.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"


def test_a_probe_that_did_not_converge_or_underfits_leaves_exactly_the_probe_claims_not_computed():
    def deep(**probe):
        return {m: run(accelerating(17), probe=[0.3] * 16 + [0.6], **probe) for m in ("resnet18", "resnet50",
                                                                                        "resnet101")}
    good = clean.claims(found(deep()))
    reads_probe = good.claim.str.contains("probe")
    assert reads_probe.sum() == 3 and "not computed" not in set(good[reads_probe].verdict)  # 4.1 (1), (2), Fig. 7
    stuck = [1] * 5 + [0] + [1] * 11  # block 6 did not converge
    for problem, why in ((dict(converged=stuck), "resnet50 seed 0: the probe did not converge at block 6"),
                         (dict(probe_train=[1.0] * 16 + [0.97]), "resnet50 seed 0: the last block's probe fits "
                                                                  "0.970 of its training images, the network 1.000")):
        table = clean.claims(found({**deep(), "resnet50": deep(**problem)["resnet50"]}))
        assert set(table[reads_probe].verdict) == {"not computed"}
        assert all(why in s and "fails the probe check" in s for s in table[reads_probe].statistic)
        assert table[~reads_probe].verdict.tolist() == good[~reads_probe].verdict.tolist()


def test_the_last_probe_fits_within_two_points_of_the_network_and_an_sgd_probe_is_checked_for_fit_only():
    claim = "the probe gains little"  # the probe climbs 0.3 -> 0.6 over the last third: does not hold
    fits = {m: run(accelerating(17), probe=[0.3] * 16 + [0.6], probe_train=[0.5] * 16 + [0.975])
            for m in ("resnet18", "resnet50")}
    network = {m: (0.99, 0.6) for m in fits}
    assert verdict(found(fits, network), claim) == "does not hold"  # 0.975 >= 0.99 - 0.02
    assert verdict(found(fits), claim) == "not computed"  # 0.975 < 1.0 - 0.02
    stuck = {m: {**r, "probe_converged": [0] * 17} for m, r in fits.items()}
    sgd = found(stuck, network)
    assert verdict(sgd, claim) == "not computed"
    sgd.metrics.drop(sgd.metrics.index[sgd.metrics.measure == "probe_converged"], inplace=True)  # no such rows
    assert verdict(sgd, claim) == "does not hold"


def test_only_runs_in_the_terminal_phase_are_judged_and_the_others_listed():
    runs = {"resnet18": run(geometric(9)), "resnet50": run(with_plateau(17))}
    results = found(runs, accuracy={"resnet18": (0.9, 0.6)})
    claim = "CDNV and NC2 are lower at the last block"
    row = claim_row(clean.claims(results), claim, "train split, flat")
    assert row.verdict == "not computed"
    assert row.statistic == (f"no run of resnet18 reached the terminal phase; {LEFT_OUT}: "
                             "resnet18 seed 0 (0.900), resnet18 seed 1 (0.900), resnet18 seed 2 (0.900)")
    results.summaries.loc[results.summaries.seed > 0, "train_acc"] = 1.0
    row = claim_row(clean.claims(results), claim, "train split, flat")
    assert row.verdict == "holds" and "resnet18 CDNV" in row.statistic and "(2 seeds)" in row.statistic
    assert row.statistic.endswith(f"; {LEFT_OUT}: resnet18 seed 0 (0.900)")
    every = claim_row(clean.claims(results), "reached the terminal phase")
    assert every.verdict == "does not hold" and "below: resnet18 seed 0 0.9000" in every.statistic
