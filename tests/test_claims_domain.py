"""The earlier version's section 4.3 verdicts (ncutils.claims.domain) on hand-built metric tables whose right
verdict is known: every source run repeated over seeds with a small scatter (decisive) or with seeds that
disagree (inconclusive), or one run with jackknife replicates; probes that do not fit, and probes below chance."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncutils.chapter.pages import targets as chapter_targets
from ncutils.claims import VERDICTS
from ncutils.claims import domain as claims
from ncutils.config import RunConfig
from ncutils.results import StudyResults

from claim_rows import claim_row

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "earlier-version-progressive-neural-collapse.md"
PACS = ("art_painting", "cartoon", "photo", "sketch")
TAPS = 9
PROBE_IMAGES = 300


def config(source, seed):
    return RunConfig.at_scale("resnet18", f"pacs:{source}", "smoke", seed=seed,
                              targets=tuple(t for t in PACS if t != source))


def found(curve, seeds=3, scatter=0.01, sources=PACS, missing=(), jackknife=0, probe_train=1.0, converged=1.0,
          train_acc=1.0, seed_curves=None) -> StudyResults:
    """Stored runs of every source of ``sources`` with ``seeds`` seeds: ``curve(source, target, layers) -> (cdnv,
    probe)`` on each target (``seed_curves[seed]`` instead for the seeds it names), scattered by ``scatter``
    (relative for CDNV, absolute / 10 for probes), with ``jackknife`` replicates; plus rows no claim may read
    (the source domain itself, the classifier's input)."""
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    layers = np.arange(TAPS)
    for source in sources:
        for seed in range(seeds):
            base = {"key": f"{source}-{seed}", "model": "resnet18", "dataset": f"pacs:{source}", "seed": seed, "inputs": "clean",
                    "labels": "clean", "num_samples": PROBE_IMAGES}

            def add(eval_data, measure, values, split="test", features="pooled"):
                names = [f"block{i}" for i in range(TAPS)] + ["penultimate"]
                rows.extend({**base, "eval_data": eval_data, "split": split, "features": features, "layer": layer,
                             "layer_index": i, "measure": measure, "value": value}
                            for i, (layer, value) in enumerate(zip(names, list(values) + [1e9])))

            for target in PACS:
                drawn = (seed_curves or {}).get(seed, curve)
                cdnv, probe = (np.asarray(v, float) for v in drawn(source, target, layers))
                cdnv = cdnv * (1 + scatter * rng.normal(size=TAPS))
                probe = probe + scatter / 10 * rng.normal(size=TAPS)
                if target == source:  # the source domain: must not enter any target statistic
                    cdnv, probe = 1e6 * np.ones(TAPS), np.zeros(TAPS)
                for features in ("flat", "pooled"):
                    add(f"pacs:{target}", "cdnv_sum", cdnv, features=features)
                    for g in range(jackknife):
                        add(f"pacs:{target}", f"cdnv_sum@jk{g}", cdnv * (1 + 0.001 * rng.normal(size=TAPS)),
                            features=features)
                add(f"pacs:{target}", "probe_test_acc", probe)
                add(f"pacs:{target}", "probe_train_acc", np.full(TAPS, probe_train), split="train")
                add(f"pacs:{target}", "probe_converged", np.full(TAPS, converged), split="train")
            summaries.append({"key": f"{source}-{seed}", "model": "resnet18", "dataset": f"pacs:{source}", "seed": seed, "train_acc": train_acc,
                              "num_train": 448, "test_acc": 0.6,
                              **{f"test_acc_{t}": 0.3 for t in PACS if t != source}})
    absent = [(config(s, seed), "missing") for s in missing for seed in range(seeds)]
    return StudyResults(pd.DataFrame(rows), pd.DataFrame(summaries), absent, None,
                        tuple(config(s, seed) for s in sources for seed in range(seeds)))


def offset(source):
    return PACS.index(source) / 3  # 0 .. 1: how good a source model is


def agreeing(source, target, layers):
    """Collapse improves through the layers; sources agree early and diverge late; a better source
    (lower CDNV at a layer) probes better."""
    cdnv = 100 * 0.6 ** layers * 10 ** (offset(source) * layers / TAPS)
    return cdnv, 0.9 - 0.1 * np.log10(cdnv)


def disagreeing(source, target, layers):
    """CDNV rises through the layers; sources differ early and agree late; lower CDNV probes worse."""
    cdnv = 100 * 1.5 ** layers * 10 ** (offset(source) * (TAPS - 1 - layers) / TAPS)
    return cdnv, 0.1 + 0.1 * np.log10(cdnv)


CLAIMS = ("CDNV on the target falls", "differs little in the early layers",
          "every (source, target, layer)", "between the source models")


def statistic_row(results: StudyResults, claim: str, view="test split, flat features") -> pd.Series:
    """The one row of ``claim`` in ``view`` (or of a claim about no view)."""
    return claim_row(claims.claims(results), claim, view)


def verdict(results: StudyResults, claim: str, view="test split, flat features") -> str:
    return statistic_row(results, claim, view).verdict


def test_target_rows_leave_out_the_source_domain_and_the_classifier_input():
    rows = claims.target_rows(found(agreeing, seeds=1).metrics, "cdnv_sum")
    assert len(rows) == 4 * 3 * TAPS
    assert (rows.source != rows.target).all() and rows.value.max() < 1e6
    assert sorted(set(rows["layer number"])) == list(range(1, TAPS + 1))


def test_spearman():
    assert claims.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1)
    assert np.isnan(claims.spearman([1, 2, 3], [5, 5, 5]))


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("view", ["test split, flat features", "test split, pooled features"])
def test_verdicts_over_seeds(claim, view):
    assert verdict(found(agreeing), claim, view) == "holds"
    assert verdict(found(disagreeing), claim, view) == "does not hold"
    assert verdict(found(agreeing, seed_curves={1: disagreeing}), claim, view) == "inconclusive"
    assert "(3 seeds)" in statistic_row(found(agreeing), claim, view).statistic


def test_one_run_is_judged_by_its_jackknife():
    for claim in CLAIMS:
        row = statistic_row(found(agreeing, seeds=1, jackknife=10), claim)
        assert row.verdict == "holds" and "jackknife over images, 10 groups" in row.statistic
    row = statistic_row(found(agreeing, seeds=1), CLAIMS[0])
    assert row.verdict == "inconclusive" and "without jackknife replicates" in row.statistic


def probe_statistics(results: StudyResults) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The claims reading the target probes, and the others."""
    table = claims.claims(results)
    reading = table.figure.str.endswith("domain-probe-vs-cdnv")
    return table[reading], table[~reading]


def test_a_probe_that_does_not_converge_leaves_the_probe_claims_not_computed():
    probes, others = probe_statistics(found(agreeing, converged=0.0))
    assert set(probes.verdict) == {"not computed"} and set(others.verdict) == {"holds"}
    for said in ("36 of 36 (source run, target) probes fail the probe check",
                 "art_painting seed 0 → cartoon: the probe did not converge at blocks 1, 2"):
        assert probes.statistic.str.contains(said, regex=False).all(), said


def test_a_probe_fitting_less_than_the_network_classifies_its_domain_leaves_the_probe_claims_not_computed():
    """The network classifies 0.3 of each target (``found``): a last-layer probe fitting 0.25 of its training
    images fails the probe check; one fitting 0.29 is within its tolerance."""
    probes, others = probe_statistics(found(agreeing, probe_train=0.25))
    assert set(probes.verdict) == {"not computed"} and set(others.verdict) == {"holds"}
    for said in ("36 of 36 (source run, target) probes fail the probe check",
                 "the last block's probe fits 0.250 of its training images, the network 0.300"):
        assert probes.statistic.str.contains(said, regex=False).all(), said
    assert set(claims.claims(found(agreeing, probe_train=0.29)).verdict) == {"holds"}


def test_a_converged_probe_fitting_short_is_named_beside_its_verdict():
    table = claims.claims(found(agreeing, probe_train=0.9))
    probes = table.figure.str.endswith("domain-probe-vs-cdnv")
    assert set(table.verdict) == {"holds"}
    named = "converged last-layer probes fitting below 0.98 of their training images: 36, art_painting seed 0"
    assert table[probes].statistic.str.contains(named).all()
    assert not claims.claims(found(agreeing)).statistic.str.contains("fitting below").any()


def test_probes_below_chance_are_flagged():
    chance = f"chance {1 / 7:.3f} (1/7)"
    row = statistic_row(found(agreeing), CLAIMS[2])
    assert chance in row.statistic and "binomial standard errors: none" in row.statistic
    row = statistic_row(found(lambda s, t, layers: (agreeing(s, t, layers)[0], 0.3 - 0.1 * layers / TAPS
                                                    - 0.2 * (layers == 4))), CLAIMS[2])
    assert "binomial standard errors: 36, art_painting seed 0 → cartoon layer 5 0.0" in row.statistic
    table = claims.probe_table(found(agreeing))
    assert len(table) == 4 * 3 * 3 and (table["layers below chance by > 3 SE"] == 0).all()
    assert (table.converged == TAPS).all() and (table["lowest train accuracy"] == 1).all()


@pytest.mark.parametrize("train_acc, expected", [(1.0, "holds"), (0.9, "does not hold")])
def test_terminal(train_acc, expected):
    assert verdict(found(agreeing, train_acc=train_acc), "reached the terminal phase") == expected


def test_accuracy_table_has_a_row_per_source_run():
    table = claims.accuracy_table(found(agreeing))
    assert len(table) == 12 and table.index.names == ["source", "seed"]
    assert table.loc[("photo", 1), "test on photo"] == 0.6 and table.loc[("photo", 1), "test on sketch"] == 0.3


def test_a_missing_source_leaves_every_claim_not_computed():
    table = claims.claims(found(agreeing, sources=PACS[:3], missing=PACS[3:]))
    assert set(table.verdict) == {"not computed"}
    assert table.statistic.str.contains("source pacs:sketch seed 0").all()


def test_nothing_stored():
    empty = StudyResults(pd.DataFrame(), pd.DataFrame(), [], None)
    table = claims.claims(empty)
    assert set(table.verdict) == {"not computed"} and set(table.verdict) <= set(VERDICTS)


def test_every_claim_quotes_a_sentence_of_the_paper():
    paper = " ".join(PAPER.read_text().split())
    for name, quote in claims.QUOTES.items():
        assert quote in paper, name
    table = claims.claims(found(agreeing, seeds=2))
    quoted = table[~table.claim.str.contains("terminal phase")]
    assert all(any(f'"{q}"' in claim for q in claims.QUOTES.values()) for claim in quoted.claim)


def test_every_figure_link_points_to_a_target_before_a_heading_of_the_chapter():
    targets = set(chapter_targets(claims.CHAPTER))
    for link in claims.claims(found(agreeing, seeds=2)).figure:
        page, _, target = link.partition("#")
        assert page == f"{claims.CHAPTER}.html" and target in targets, link
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", target), f"{target} is not its own HTML id"
