"""The paper chapters' questions (ncutils.chapter.questions): every answer on hand-built runs whose right answer
is known (the tables of the claims tests), "not computed" while a run it reads is missing, and the notebooks
stating each registered question above its hidden answer."""
import re
from dataclasses import replace

import jupytext
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import test_claims_clean as clean_runs
import test_claims_corruption as corruption_runs
import test_claims_domain as domain_runs
import test_claims_label_noise as noise_runs
import test_claims_nc1_vs_cdnv as nc1_runs
import test_claims_small_nets as small_runs
import test_claims_train_vs_test as split_runs
import test_claims_vgg_vit as vgg_vit_runs
from ncutils.chapter import Chapter, open_chapter
from ncutils.chapter.pages import NOTEBOOKS
from ncutils.chapter.questions import QUESTIONS
from ncutils.config import RunConfig
from ncutils.results import StudyResults

CHAPTERS = ("clean", "label_noise", "corruption", "domain", "vgg_vit", "nc1_vs_cdnv", "small_nets",
            "train_vs_test")
ANSWER = re.compile(r'^print\(chapter\.answer\("([^"]+)"\)\)$')


def chapter(name: str, found) -> Chapter:
    """A chapter showing the hand-built runs ``found`` (what ``open_chapter`` gives from stored runs)."""
    return Chapter(name, "smoke", False, configs=list(found.configs), every_seed=found)


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return float(found.group(1))


# --- clean ---------------------------------------------------------------------------------------------

def test_clean_which_resnet_falls_most_over_its_last_third():
    found = clean_runs.found({"resnet18": clean_runs.run(clean_runs.accelerating(9)),
                              "resnet34": clean_runs.run(clean_runs.geometric(17))})
    answer = chapter("clean", found).answer("clean-1")
    # log10 CDNV = 3 - 2 x^2: over blocks 6-9 of 9 it falls 2 (1 - (5/8)^2) = 1.22 decades; the straight line
    # of resnet34 falls 2 x 5/16 = 0.63 over blocks 12-17
    assert answer.startswith("resnet18: its CDNV falls 1.22 decades over its last third of blocks (blocks 6 to 9")
    assert number(r"resnet34 ([0-9.]+)", answer) == pytest.approx(0.625, abs=0.01)


def test_clean_depth_gain_per_family():
    accuracy = {"resnet18": (1.0, 0.6), "resnet34": (1.0, 0.65), "resnet50": (1.0, 0.7), "swin_t": (1.0, 0.5),
                "swin_s": (1.0, 0.55)}
    found = clean_runs.found({m: clean_runs.run(clean_runs.geometric(9)) for m in accuracy}, accuracy, scatter=0)
    answer = chapter("clean", found).answer("clean-2")
    assert answer.startswith("ResNets: resnet50 0.700 against resnet18 0.600, +0.100; "
                             "Swin Transformers: swin_s 0.550 against swin_t 0.500, +0.050")


@pytest.mark.parametrize("swin_top,lower,decades", [(3.5, "resnet18", "0.50"), (2.0, "swin_t", "1.00")])
def test_clean_resnet_or_swin_lower_at_the_last_block(swin_top, lower, decades):
    found = clean_runs.found({"resnet18": clean_runs.run(clean_runs.accelerating(9)),  # last block: 10^1
                              "swin_t": clean_runs.run(clean_runs.accelerating(12, top=swin_top))})
    answer = chapter("clean", found).answer("clean-3")
    assert answer.startswith(f"{lower}'s: ") and f", {decades} decades lower" in answer


def test_clean_answers_need_only_their_own_runs():
    found = clean_runs.found({"resnet18": clean_runs.run(clean_runs.accelerating(9)),
                              "swin_t": clean_runs.run(clean_runs.accelerating(12))}, missing=("resnet34",))
    ready = chapter("clean", found)
    assert ready.answer("clean-1") == (
        "not computed: 1 of the 2 runs of the chapter's ResNets are not stored yet at the smoke scale "
        "(resnet34 seed 0); the chapter's first cell says how to compute them")
    assert ready.answer("clean-3").startswith("resnet18's: ")  # resnet34 is not read


# --- label noise ---------------------------------------------------------------------------------------

def test_label_noise_runs_that_fit_their_labels():
    runs = noise_runs.study()
    runs["resnet18", "random:0.8"]["train_acc"] = 0.9
    answer = chapter("label_noise", noise_runs.found(runs, scatter=0)).answer("label_noise-1")
    assert answer.startswith("9 of 12 noisy runs fit their noisy labels")
    assert "the others: resnet18 random:0.8 seed 0 (0.900); resnet18 random:0.8 seed 1 (0.900)" in answer


def test_label_noise_first_memorization_layer():
    found = noise_runs.found(noise_runs.four(1.2, 1.5, 0.9, 0.6), scatter=0)
    answer = chapter("label_noise", found).answer("label_noise-2")
    # ratio = linspace(0.5, last, blocks): above 1 from block 7 of 9 (1.2) and 10 of 17 (1.5); Swins never
    assert answer.startswith("resnet18: block 7 of 9 (ratio ")
    assert "; 1.20 at the last block); resnet34: block 10 of 17" in answer
    assert number(r"of 9 \(ratio ([0-9.]+);", answer) == pytest.approx(0.5 + 6 * 0.7 / 8, abs=0.006)
    assert ("swin_t: none of its 12 blocks (highest ratio 0.90); "
            "swin_s: none of its 24 blocks (highest ratio 0.60)") in answer


def test_label_noise_cost_in_test_accuracy():
    accuracy = {("resnet18", n): a for n, a in zip(noise_runs.LEVELS, (0.7, 0.65, 0.6, 0.5, 0.3))}
    found = noise_runs.found(noise_runs.four(1.2, 1.5, 0.9, 0.6, accuracy), scatter=0)
    answer = chapter("label_noise", found).answer("label_noise-3")
    assert answer.startswith("random:0.8: resnet18's test accuracy falls from 0.700 (clean labels) to 0.300, "
                             "0.400 lower")
    assert "random:0.2 0.050" in answer


# --- corruption ----------------------------------------------------------------------------------------

MODELS = ("resnet18", "swin_t")


def test_corruption_ratio_lowest_layer_and_last():
    answer = chapter("corruption", corruption_runs.study(MODELS, scatter=0)).answer("corruption-1")
    # level 3 scales every ratio by 1.15: ResNet18 1.2, 1.0, ..., 1.5; Swin-T 0.8, 0.7, ..., 2.0
    assert answer.startswith("resnet18: lowest at layer 2 of 5 (1.15), ")
    assert number(r"of 5 \(1.15\), ([0-9.]+) at", answer) == pytest.approx(1.5 * 1.15, abs=0.006)
    assert number(r"swin_t: lowest at layer 2 of 6 \(([0-9.]+)\)", answer) == pytest.approx(0.7 * 1.15, abs=0.006)
    assert "), 2.30 at the last layer (" in answer


def test_corruption_cost_on_clean_test_images():
    found = corruption_runs.study(MODELS, scatter=0)
    level3 = found.summaries.corruption == "gaussian_noise:5"
    found.summaries.loc[level3 & (found.summaries.model == "swin_t"), "test_acc_clean_inputs"] = 0.5
    answer = chapter("corruption", found).answer("corruption-2")
    assert answer.startswith("swin_t: its test accuracy on clean test images falls by 0.200 (every model: "
                             "swin_t 0.200, resnet18 0.000")


def test_corruption_shift_of_the_cdnv_curve():
    answer = chapter("corruption", corruption_runs.study(MODELS, scatter=0)).answer("corruption-3")
    # CDNV x (1 + 0.3 level): log10(1.3), log10(1.6 / 1.3), log10(1.9 / 1.6)
    assert answer.startswith("level 1 0.11 decades, level 2 0.09 decades, level 3 0.07 decades above the level below")


def test_corruption_answers_name_the_missing_runs():
    found = corruption_runs.study(MODELS, drop={("swin_t", "gaussian_noise:5")})
    answer = chapter("corruption", found).answer("corruption-1")
    assert answer.startswith("not computed: 2 of the 4 runs of Gaussian noise at level 3 are not stored yet at the "
                             "smoke scale (swin_t gaussian_noise:5 seed 0, swin_t gaussian_noise:5 seed 1)")
    assert chapter("corruption", found).answer("corruption-3").startswith("level 1 ")  # ResNet18 is complete


# --- domain --------------------------------------------------------------------------------------------

def last_probe(offset: float) -> float:
    """The last layer's probe accuracy of ``domain_runs.agreeing`` for a source of this offset."""
    return 0.9 - 0.1 * (2 + 8 * np.log10(0.6) + offset * 8 / domain_runs.TAPS)


def test_domain_best_source_and_hardest_target():
    ready = chapter("domain", domain_runs.found(domain_runs.agreeing))
    best = ready.answer("domain-1")
    assert best.startswith("art_painting: its last layer's probes reach ")  # the source of offset 0
    assert number(r"reach ([0-9.]+) on", best) == pytest.approx(last_probe(0), abs=0.002)
    hardest = ready.answer("domain-2")
    assert hardest.startswith("art_painting: ")  # the only target without the best source
    assert number(r"reach ([0-9.]+) there", hardest) == pytest.approx(last_probe(2 / 3), abs=0.002)


def test_domain_own_classifiers_against_probes():
    answer = chapter("domain", domain_runs.found(domain_runs.agreeing)).answer("domain-3")
    mean_probe = np.mean([last_probe(o) for o in (0, 1 / 3, 2 / 3, 1)])
    assert answer.startswith("0.300 for the source models' own classifiers against ")
    assert number(r"against ([0-9.]+) for", answer) == pytest.approx(mean_probe, abs=0.002)


def test_domain_answers_need_every_source():
    found = domain_runs.found(domain_runs.agreeing, sources=domain_runs.PACS[:3], missing=("sketch",))
    assert chapter("domain", found).answer("domain-1").startswith(
        "not computed: 3 of the 12 runs of the source models are not stored yet")


# --- VGG and ViT ---------------------------------------------------------------------------------------

RATES = {**vgg_vit_runs.RATE, "vit_base": 0.04}


def test_vgg_decay_rates():
    answer = chapter("vgg_vit", vgg_vit_runs.found(vgg_vit_runs.everything(vgg_vit_runs.at_rates(RATES))))
    assert answer.answer("vgg_vit-1").startswith(
        "vgg13: its CDNV falls 0.300 decades per layer (every VGG: vgg13 0.300, vgg16 0.200, vgg19 0.100; "
        "R² of the line: vgg13 1.00, vgg16 1.00, vgg19 1.00; training split, flat features)")


def test_vit_terminal_phase():
    found = vgg_vit_runs.found(vgg_vit_runs.everything(vgg_vit_runs.geometric), train_acc={"vit_small": 0.9})
    assert chapter("vgg_vit", found).answer("vgg_vit-2").startswith(
        "vit_small 0.900 (not in the terminal phase); vit_base 1.000 (in the terminal phase)")


def test_lowest_and_highest_mean_cdnv():
    answer = chapter("vgg_vit", vgg_vit_runs.found(vgg_vit_runs.everything(vgg_vit_runs.at_rates(RATES))))
    # mean log10 CDNV = 3 - rate (layers - 1) / 2
    assert answer.answer("vgg_vit-3").startswith("lowest: vgg13 (1.65); highest: vit_base (2.78)")


# --- NC1 or CDNV ---------------------------------------------------------------------------------------

def increases(values) -> int:
    return sum(b > a for a, b in zip(values, values[1:]))


def excess(values) -> float:
    logs = np.log10(values)
    return float(np.abs(np.diff(logs)).sum() - abs(logs[-1] - logs[0]))


def test_nc1_vs_cdnv_rises_along_the_depth():
    found = nc1_runs.found({"resnet18": nc1_runs.curves(nc1_runs.MONOTONE, nc1_runs.ZIGZAG),
                            "swin_t": nc1_runs.curves(nc1_runs.ZIGZAG, nc1_runs.MONOTONE)}, scatter=0)
    answer = chapter("nc1_vs_cdnv", found).answer("nc1_vs_cdnv-1")
    assert increases(nc1_runs.ZIGZAG) == 2 and increases(nc1_runs.MONOTONE) == 0
    assert answer.startswith("resnet18: NC1 rises at 2 of its 4 steps, CDNV at 0; "
                             "swin_t: NC1 rises at 0 of its 4 steps, CDNV at 2 (")
    assert "CDNV rises less often than NC1 in 1 of the 2 models" in answer


def test_nc1_vs_cdnv_excess_variation():
    wider = [10, 20, 2, 6, 1]
    found = nc1_runs.found({"resnet18": nc1_runs.curves(nc1_runs.MONOTONE, nc1_runs.ZIGZAG),
                            "swin_t": nc1_runs.curves(nc1_runs.ZIGZAG, wider)}, scatter=0)
    answer = chapter("nc1_vs_cdnv", found).answer("nc1_vs_cdnv-2")
    assert answer.startswith(f"swin_t: its NC1 curve travels {excess(wider):.2f} decades beyond its net change, "
                             f"its CDNV curve {excess(nc1_runs.ZIGZAG):.2f} (")
    assert f"NC1: resnet18 {excess(nc1_runs.ZIGZAG):.2f}, swin_t {excess(wider):.2f}; CDNV: resnet18 0.00" in answer


def test_nc1_vs_cdnv_rank_correlations():
    last = {"resnet18": (5, 0.5, 0.7), "resnet34": (1, 0.3, 0.9), "resnet50": (3, 0.1, 0.6), "swin_t": (8, 0.2, 0.5)}
    runs = {m: nc1_runs.curves([100, 50, 20, 10, c], nc1_runs.ZIGZAG, [1.0, 0.8, 0.6, 0.5, n], accuracy=a)
            for m, (c, n, a) in last.items()}
    answer = chapter("nc1_vs_cdnv", nc1_runs.found(runs, scatter=0)).answer("nc1_vs_cdnv-3")
    accuracy, cdnv, nc2 = (np.array([v[i] for v in last.values()]) for i in (2, 0, 1))
    rho_cdnv, rho_nc2 = spearmanr(accuracy, -cdnv).statistic, spearmanr(accuracy, -nc2).statistic
    assert rho_cdnv > rho_nc2
    assert answer.startswith(f"CDNV: Spearman's correlation of test accuracy with minus the last-layer CDNV is "
                             f"{rho_cdnv:.2f}, with minus the last-layer NC2 {rho_nc2:.2f} (over the 4 models")


def test_nc1_vs_cdnv_rank_correlation_needs_three_models():
    found = nc1_runs.found({m: nc1_runs.curves(nc1_runs.MONOTONE, nc1_runs.ZIGZAG) for m in ("resnet18", "swin_t")})
    assert chapter("nc1_vs_cdnv", found).answer("nc1_vs_cdnv-3") == (
        "not computed: a rank correlation needs at least three models; this chapter has 2")
    missing = nc1_runs.found({"resnet18": nc1_runs.curves(nc1_runs.MONOTONE, nc1_runs.ZIGZAG)}, missing=("swin_t",))
    assert chapter("nc1_vs_cdnv", missing).answer("nc1_vs_cdnv-1").startswith(
        "not computed: 1 of the 4 runs of the chapter's models are not stored yet at the smoke scale (swin_t seed 0)")


# --- small networks ------------------------------------------------------------------------------------

def with_activation(found: StudyResults, activation: str) -> StudyResults:
    """The runs of ``found`` as if their networks used ``activation`` (their configs and keys changed)."""
    configs = {c.key(): replace(c, size={**dict(c.size), "activation": activation}) for c in found.stored}
    keys = {old: c.key() for old, c in configs.items()}
    return StudyResults(found.metrics.assign(key=found.metrics.key.map(keys)),
                        found.summaries.assign(key=found.summaries.key.map(keys)), [], None, tuple(configs.values()))


def joined(*parts: StudyResults) -> StudyResults:
    return StudyResults(pd.concat([p.metrics for p in parts], ignore_index=True),
                        pd.concat([p.summaries for p in parts], ignore_index=True),
                        [m for p in parts for m in p.missing], None, sum((p.stored for p in parts), ()))


def decades(values) -> float:
    return float(np.log10(values[0] / values[-1]))


def test_small_nets_nc1_falls_with_training_not_at_initialisation():
    rising = [10, 10, 10, 12, 15, 20]
    found = small_runs.found(small_runs.PAPER_CURVES, small_runs.PAPER_NC4, {**small_runs.INIT, "nc1": rising},
                             seeds=1, scatter=0)
    trained, init = decades(small_runs.PAPER_CURVES["nc1"]), decades(rising)
    answer = chapter("small_nets", found).answer("small_nets-1")
    each = f"{trained:.2f} after training, {init:.2f} at initialisation"
    assert init < 0 and answer.startswith(f"mlp: {each}; vgg11: {each}; resnet18: {each} (")


def test_small_nets_first_layer_where_nc4_is_zero():
    nc4 = {"fashion-mnist": small_runs.PAPER_NC4["fashion-mnist"], "cifar10": [0.8, 0.5, 0.3, 0.1, 0.05, 0.02]}
    answer = chapter("small_nets", small_runs.found(small_runs.PAPER_CURVES, nc4, seeds=1, scatter=0)).answer(
        "small_nets-2")
    first = next(i for i, v in enumerate(nc4["fashion-mnist"]) if v < 0.01) + 1
    each = f"layer {first} of 6 on Fashion-MNIST, none of its 6 layers on CIFAR-10 (lowest 0.020, at layer 6)"
    assert answer.startswith(f"mlp: {each}; vgg11: {each}; resnet18: {each} (")


def test_small_nets_share_of_the_nc1_fall_by_the_middle_layer_per_activation():
    relu = small_runs.found(small_runs.PAPER_CURVES, small_runs.PAPER_NC4, seeds=2, scatter=0)
    tanh = with_activation(small_runs.found(small_runs.LATE, small_runs.PAPER_NC4, seeds=2, scatter=0), "tanh")
    answer = chapter("small_nets", joined(relu, tanh)).answer("small_nets-3")

    def early(values):  # the middle of 6 layer taps is index 2
        return float(np.log10(values[0] / values[2]) / np.log10(values[0] / values[-1]))
    assert early(small_runs.PAPER_CURVES["nc1"]) > 0.9 and early(small_runs.LATE["nc1"]) < 0.01
    assert answer.startswith(f"relu {early(small_runs.PAPER_CURVES['nc1']):.2f}, tanh "
                             f"{early(small_runs.LATE['nc1']):.2f} (")
    assert "each activation: 6 relu, 6 tanh)" in answer
    rising = chapter("small_nets", small_runs.found(small_runs.OPPOSITE, small_runs.PAPER_NC4, seeds=1, scatter=0))
    assert rising.answer("small_nets-3").startswith("none: NC1 falls from the first to the last layer tap in none of "
                                                    "the 6 trained networks, so no share is defined (")


def test_small_nets_answers_need_only_their_own_runs():
    fashion = [RunConfig(m, "fashion-mnist", size={"width": 16}, recipe="parker", epochs=e)
               for m in small_runs.MODELS for e in (0, 150)]
    found = small_runs.found(small_runs.PAPER_CURVES, small_runs.PAPER_NC4, seeds=1, scatter=0,
                             only=[(m, "cifar10") for m in small_runs.MODELS], missing=fashion)
    ready = chapter("small_nets", found)
    assert ready.answer("small_nets-1").startswith("mlp: ")  # CIFAR-10 only
    assert ready.answer("small_nets-2").startswith(
        "not computed: 3 of the 6 runs of trained ReLU networks are not stored yet at the smoke scale (mlp "
        "fashion-mnist seed 0, vgg11 fashion-mnist seed 0, resnet18 fashion-mnist seed 0)")


# --- training versus test split ------------------------------------------------------------------------

def test_train_vs_test_last_layer_cdnv_gap():
    found = split_runs.found({"resnet18": split_runs.WEAKER, "swin_t": split_runs.STRONGER}, scatter=0)
    answer = chapter("train_vs_test", found).answer("train_vs_test-1")
    weaker, stronger = (np.log10(t["cdnv_sum"][-1] / split_runs.TRAIN["cdnv_sum"][-1])
                        for t in (split_runs.WEAKER, split_runs.STRONGER))
    assert answer.startswith(f"resnet18 {weaker:.2f} decades, swin_t {stronger:.2f} decades (")
    assert "as in 1 of the 2 models" in answer


def test_train_vs_test_gap_growth():
    found = split_runs.found({"resnet18": split_runs.STRONGER, "swin_t": split_runs.WEAKER}, seeds=2, scatter=0)
    answer = chapter("train_vs_test", found).answer("train_vs_test-2")

    def growth(test):  # four layer taps: a third is one tap
        gap = np.log10(np.array(test["cdnv_sum"]) / split_runs.TRAIN["cdnv_sum"])
        return gap[-1] - gap[0]
    assert answer.startswith(f"swin_t: {growth(split_runs.WEAKER):+.2f} decades (every model: swin_t "
                             f"{growth(split_runs.WEAKER):.2f} decades, resnet18 {growth(split_runs.STRONGER):.2f} "
                             "decades;")
    assert "The gap grows in 1 of the 2 models" in answer


def test_train_vs_test_nearest_class_centre_accuracy():
    found = split_runs.found({"resnet18": split_runs.WEAKER}, scatter=0)
    answer = chapter("train_vs_test", found).answer("train_vs_test-3")
    train, test = split_runs.TRAIN["ncc_accuracy"][-1], split_runs.WEAKER["ncc_accuracy"][-1]
    assert answer.startswith(f"resnet18: {train:.3f} on the training split, {test:.3f} on the test split "
                             f"({train - test:+.3f}); the network 0.600 on the test split (")


def test_train_vs_test_answers_name_the_missing_runs():
    found = split_runs.found({"resnet18": split_runs.WEAKER}, missing=("swin_s",))
    assert chapter("train_vs_test", found).answer("train_vs_test-1") == (
        "not computed: 1 of the 2 runs of the chapter's models are not stored yet at the smoke scale (swin_s seed 0); "
        "the chapter's first cell says how to compute them")


# --- every chapter -------------------------------------------------------------------------------------

def test_a_chapter_without_stored_runs_answers_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("NCUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("NCUTILS_CACHE", str(tmp_path / "cache"))
    for name in CHAPTERS:
        opened = open_chapter(name, scale="smoke", compute=False)
        for key in (k for k in QUESTIONS if k.startswith(f"{name}-")):
            assert opened.answer(key).startswith("not computed: none of the "), key
    with pytest.raises(KeyError, match=f"chapter {CHAPTERS[-1]} has no question 'clean-1'"):
        opened.answer("clean-1")


def notebook_questions(name: str) -> list[tuple[str, str, list[str]]]:
    """(key, the markdown above its answer cell, the cell's tags) of each answer cell of chapter ``name``."""
    cells = jupytext.read(NOTEBOOKS / f"{name}.md").cells
    out = []
    for before, cell in zip(cells, cells[1:]):
        found = ANSWER.match(cell.source.strip()) if cell.cell_type == "code" else None
        if found:
            assert before.cell_type == "markdown", (name, found.group(1))
            out.append((found.group(1), " ".join(before.source.split()), cell.metadata.get("tags", [])))
    return out


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_notebook_states_each_registered_question_above_its_hidden_answer(name):
    asked = notebook_questions(name)
    registered = [k for k in QUESTIONS if k.startswith(f"{name}-")]
    assert 2 <= len(registered) <= 4 and [k for k, _, _ in asked] == registered
    for number_, (key, text, tags) in enumerate(asked, 1):
        assert text.endswith(f"**Question {number_}.** {QUESTIONS[key][0]}"), (key, text)
        assert {"hide-input", "hide-output"} <= set(tags), (key, tags)
    assert "## Questions" in jupytext.read(NOTEBOOKS / f"{name}.md").cells[-2 * len(asked)].source


@pytest.mark.parametrize("name", CHAPTERS)
def test_each_chapter_opens_with_objectives_and_prerequisites(name):
    cells = jupytext.read(NOTEBOOKS / f"{name}.md").cells
    first = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    opening = "\n".join(c.source for c in cells[:first])
    objectives = opening.partition("Learning objectives")[2].partition("Prerequisites")[0]
    assert 3 <= sum(line.startswith("- ") for line in objectives.splitlines()) <= 4, name
    prerequisites = opening.partition("Prerequisites")[2]
    assert "{doc}`primer`" in prerequisites and "{doc}`glossary`" in prerequisites
    assert name == "clean" or "{doc}`clean`" in prerequisites
