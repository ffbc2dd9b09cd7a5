"""Appendix A.3 (corrupted inputs, Figures 10-12): the claims of the ``corruption`` chapter, from its study.

A run trained on CIFAR-10-C Gaussian or speckle noise at the paper's level 1, 2 or 3 (severity 1, 3, 5) is
measured on the corrupted inputs it trained with and on their clean originals (level 0: the clean run). Its
memorization ratio per layer is CDNV (``cdnv_sum``, eq. 4) on the clean inputs over CDNV on the corrupted ones.
Every verdict is :mod:`ncutils.verdict`'s: per case, a statistic and its standard error (the spread over seeds
where a setting has several; else the jackknife over images of its one run, replicate g of a ratio dividing
both CDNVs without group g; else the binomial error of an accuracy) against the claim's threshold, a claim
over several cases holding when each does; claims on CDNV, NC2 or the ratio in each of :data:`VIEWS`. Only
runs fitting the inputs they trained with (train accuracy >= ``frames.TERMINAL``) are read; the others are listed.
A probe claim is not computed while a probe it reads did not converge or fits its clean training images at the
last layer over 0.02 below the network (``estimates.check_probes``). Each claim quotes its sentence (:data:`QUOTES`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import frames
from ..corruptions import parse_corruption
from ..estimates import accuracy_estimate, every_run_terminal, probe_checked, read_runs
from ..frames import TERMINAL, VIEWS, left_out_note, memorization_ratios_between, split_terminal
from ..results import StudyResults
from ..studies import RESNETS, SWINS
from ..verdict import FAILS, Estimate, binomial, estimate_runs, over_seeds
from . import figure_link, judged, not_computed, table
from .clean import Judged, view_name

STUDY = "corruption"
CHAPTER = "corruption"
LEVELS = (0, 1, 2, 3)  # the paper's levels: clean, then CIFAR-10-C severities 1, 3, 5
SHORT = {"gaussian_noise": "Gaussian", "speckle_noise": "speckle"}  # in the order of the figures
RUNS_TARGET = "corruption-runs"
ACCURACY_TARGET = "corruption-accuracy"
LAYER_COLUMNS = ["model", "corruption", "level", "layer", "layer_index", "layer number", "value"]
ACCURACY_COLUMNS = ["model", "corruption", "level", "test inputs", "accuracy"]
QUOTES = {
    "collapse": "enhancements in within-class variability and between-class separation across different noise levels",
    "shift": "as the proportion of noisy data increases, the withinclass compression curves shift upward",
    "memorize": "deeper layers are adept at enhancing neural collapse but are also more prone to memorization",
    "dip": "a decreasing trend in memorization across the initial layers, followed by a progressive increase in "
           "the memorization ratio in the subsequent layers, irrespective of network size",
    "gap": "the performance gap between models pre-trained with different degrees of label noise is minimal in "
           "the initial layers but becomes increasingly pronounced in the deeper layers",
    "decline": "As noise levels rise, more deeper layers exhibit a decline in performance on clean data",
    "architectures": "while Swin-Transformers initially demonstrate a smaller memorization ratio compared to ResNet "
                     "models in the early layers, this ratio increases more rapidly as the layers deepen",
    "depth": "increasing model depth in Swin-Transformer models results in a more pronounced increase in "
             "memorization ratios, highlighting an amplified tendency to overfit these low-quality features. "
             "Conversely, deeper ResNet models exhibit only negligible increases in memorization ratios",
    "accuracy": "while increasing model depth degrades the performance of Swin-Transformer models on clean data, "
                "it enhances the performance of ResNet models slightly",
}


def family(model: str) -> str:
    return "swin" if model.startswith("swin") else "resnet"


def figure_target(model: str, name: str) -> str:
    """The MyST target of the section showing ``model`` under corruption ``name``."""
    return f"corruption-{name.split('_')[0]}-{family(model)}"


def level(corruption: str) -> int:
    """The paper's level (0 = clean) of a run's corruption spec."""
    return parse_corruption(corruption).paper_level


def under(corruption: str, name: str) -> bool:
    """Whether a run of this corruption spec belongs to the setting of corruption ``name`` (clean runs: all)."""
    return corruption == "clean" or parse_corruption(corruption).name == name


def settings(found: StudyResults) -> list[tuple[str, str]]:
    """(model, corruption name) of the study's corrupted runs, stored or not, in the order of the figures."""
    pairs = {(c.model, parse_corruption(c.corruption).name) for c in found.configs if c.corruption != "clean"}
    return sorted(pairs, key=lambda p: (list(SHORT).index(p[1]), family(p[0]) == "swin", (RESNETS + SWINS).index(p[0])))


def of_setting(frame: pd.DataFrame, model: str, name: str) -> pd.DataFrame:
    """Rows of ``model``'s clean run and of its runs under corruption ``name``, with the paper's ``level``."""
    if frame.empty:
        return frame.assign(level=pd.Series(dtype=int))
    rows = frame[(frame.model == model) & frame.corruption.map(lambda c: under(c, name))]
    return rows.assign(level=rows.corruption.map(level).astype(int))


def study_levels(found: StudyResults, model: str, name: str) -> list[int]:
    """The paper's levels the study runs for ``model`` under ``name``, stored or not (0: its clean run)."""
    return sorted({level(c.corruption) for c in found.configs if c.model == model and under(c.corruption, name)})


def trained_rows(metrics: pd.DataFrame, measure: str, model: str, name: str) -> pd.DataFrame:
    """``measure`` per layer on the training inputs each run trained with, flat features (CDNV, NC2 panels)."""
    frame = of_setting(metrics, model, name)
    if frame.empty:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    return pd.concat([frames.layer_rows(frame[frame.level == 0], measure),
                      frames.layer_rows(frame[frame.level > 0], measure, inputs="corrupted")], ignore_index=True)


def ratio_rows(metrics: pd.DataFrame, model: str, name: str) -> pd.DataFrame:
    """Memorization ratio per layer of each corrupted run (training inputs, flat features)."""
    frame = of_setting(metrics, model, name)
    out = []
    for lvl, run in frame[frame.level > 0].groupby("level"):
        ratios = memorization_ratios_between(frames.layer_rows(run, "cdnv_sum", inputs="clean"),
                                             frames.layer_rows(run, "cdnv_sum", inputs="corrupted"))
        out.append(ratios.assign(model=model, corruption=run.corruption.iloc[0], level=lvl, value=ratios.ratio,
                                 **{"layer number": ratios.layer_index + 1}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=LAYER_COLUMNS)


def probe_rows(metrics: pd.DataFrame, model: str, name: str) -> pd.DataFrame:
    """Linear-probe accuracy per layer on clean test data (probes trained on clean training data)."""
    frame = of_setting(metrics, model, name)
    return frames.layer_rows(frame, "probe_test_acc") if not frame.empty else pd.DataFrame(columns=LAYER_COLUMNS)


def accuracy_rows(summaries: pd.DataFrame, model: str, name: str) -> pd.DataFrame:
    """Test accuracy per level on the test inputs of the level (``corrupted``) and on clean ones (``clean``)."""
    frame = of_setting(summaries, model, name)
    if frame.empty:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    clean = frame.reindex(columns=["test_acc_clean_inputs"]).iloc[:, 0].where(frame.level > 0, frame.test_acc)
    return pd.concat([pd.DataFrame({"model": model, "corruption": name, "level": frame.level,
                                    "test inputs": inputs, "accuracy": values})
                      for inputs, values in (("corrupted", frame.test_acc), ("clean", clean))], ignore_index=True)


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies on the inputs of its level and on their clean originals, and its terminal phase."""
    summary = found.summaries
    out = summary.assign(level=summary.corruption.map(level)).reindex(
        columns=["model", "size", "corruption", "level", "seed", "train_acc", "train_acc_clean_inputs", "test_acc",
                 "test_acc_clean_inputs"])
    for column in ("train_acc", "test_acc"):
        out[f"{column}_clean_inputs"] = out[f"{column}_clean_inputs"].fillna(out[column])
    out["terminal phase"] = frames.terminal_phase(out)
    return out.sort_values(["model", "level", "corruption", "seed"])


@dataclass(frozen=True)
class Curves:
    """One run's CDNV, NC2 (trained inputs) and clean-input CDNV in one view; its replicates without group g."""
    cdnv: np.ndarray
    nc2: np.ndarray
    clean: np.ndarray
    replicates: tuple = ()


@dataclass(frozen=True)
class Measured:
    """One stored run: its fit of its trained inputs, clean-input accuracies, Curves per view, its probes' problems."""
    label: str
    train_acc: float
    clean_test_acc: float
    num_test: int
    probe: np.ndarray
    num_probe_test: int
    views: dict
    probe_problems: list


def stored_runs(found: StudyResults) -> dict[tuple[str, str], list[Measured]]:
    """Per (model, corruption spec), its stored runs in seed order (:func:`ncutils.estimates.read_runs`)."""
    runs = {}
    for stored in sorted(read_runs(found).values(),
                         key=lambda r: (r.summary["model"], r.summary["corruption"], r.seed)):
        s = stored.summary
        model, corruption = s["model"], s["corruption"]
        trained = "clean" if corruption == "clean" else "corrupted"

        def view_curves(curves, view) -> Curves:
            fitted, clean = (stored.selected(curves, *view, inputs=inputs) for inputs in (trained, "clean"))
            return Curves(*(c.to_numpy(float) for c in (fitted["cdnv_sum"], fitted["nc2"], clean["cdnv_sum"])))
        views = {view: replace(view_curves(stored.curves, view),
                               replicates=tuple(view_curves(g, view) for g in stored.replicates)) for view in VIEWS}
        probe, label = stored.probes(), f"{model} {corruption} seed {stored.seed}"
        clean_test = s["test_acc"] if corruption == "clean" else s["test_acc_clean_inputs"]
        runs.setdefault((model, corruption), []).append(Measured(
            label, float(s["train_acc"]), float(clean_test), int(s["num_test"]),
            probe.get("probe_test_acc", pd.Series(dtype=float)).to_numpy(float), stored.probe_images(), views,
            stored.probe_problems(label)))
    return runs


def by_level(runs: dict, model: str, name: str) -> dict[int, list[Measured]]:
    """``model``'s stored runs under corruption ``name`` per paper level (0: its clean runs)."""
    out = {}
    for (m, corruption), rs in sorted(runs.items(), key=lambda item: level(item[0][1])):
        if m == model and under(corruption, name):
            out.setdefault(level(corruption), []).extend(rs)
    return out


def curve_estimate(runs: list[Measured], view, statistic) -> Estimate:
    """``statistic(curves)`` over the seeds, else the jackknife of the one run (paired replicates)."""
    items = [r.views[view] for r in runs]
    return estimate_runs([statistic(c) for c in items], lambda: [statistic(c) for c in items[0].replicates])


def log_ratio(c: Curves) -> np.ndarray:
    """log10 of the memorization ratio per layer: CDNV on the clean inputs over CDNV on the corrupted ones."""
    return np.log10(c.clean / c.cdnv)


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote]}"'


def row(claim: str, figure: str, needed: dict[str, list[Measured]], judge, why: str = "", probes=False) -> dict:
    """``judge({case: its runs that fit})`` once each case of ``needed`` has one, ``probes`` checked; lists the rest."""
    fitting, left = split_terminal({case: rs for case, rs in needed.items() if rs})
    unfit = [case for case, rs in fitting.items() if not rs]
    why = why or (f"every run of {', '.join(unfit)} is left out" if unfit else "")
    problems = [p for rs in fitting.values() for r in rs for p in r.probe_problems] if probes else []
    out = judged(claim, figure, list(needed), fitting, lambda: probe_checked(problems, lambda: judge(fitting)), why)
    out["statistic"] += left_out_note([(r.label, r.train_acc) for rs in left.values() for r in rs])
    return out


def differences(estimates: dict[str, Estimate], terms, rule: str) -> tuple[str, str]:
    """Each of ``terms`` (term, direction; or a function of the cases giving them) whose cases all have ``estimates``,
    judged: a term is a case or a pair of terms (their difference, errors in quadrature: independent runs)."""
    def cases(t):
        return [t] if isinstance(t, str) else cases(t[0]) + cases(t[1])

    def value(t):
        return estimates[t] if isinstance(t, str) else value(t[0]) - value(t[1])

    def name(t, inner=False):
        return t if isinstance(t, str) else ("({} - {})" if inner else "{} - {}").format(name(t[0], 1), name(t[1], 1))

    j = Judged()
    for term, direction in terms(list(estimates)) if callable(terms) else terms:
        if all(c in estimates for c in cases(term)):
            j.add(name(term), value(term), 0, direction)
    return j.result(rule)


def curve_statistic(statistic):
    """{level: ``statistic`` of its curves in ``view``} of the stored ``levels``."""
    return lambda levels, view: {k: curve_estimate(rs, view, statistic) for k, rs in levels.items()}


def falls(levels, view):
    return {f"{k} {what}": curve_estimate(rs, view, statistic) for k, rs in levels.items() for what, statistic in
            (("CDNV", lambda c: np.log10(c.cdnv[0] / c.cdnv[-1])), ("NC2", lambda c: c.nc2[0] - c.nc2[-1]))}


def ratio_dip(levels, view):
    """Per corrupted level, the log ratio at the first and at the last layer minus at the inner layer where its
    mean over the runs is lowest."""
    out = {}
    for k, rs in ((k, rs) for k, rs in levels.items() if k != "L0"):
        low = 1 + int(np.argmin(np.mean([log_ratio(r.views[view]) for r in rs], axis=0)[1:-1]))
        for end, name in ((0, "first"), (-1, "last")):
            out[f"{k} {name} / layer {low + 1}"] = curve_estimate(
                rs, view, lambda c: log_ratio(c)[end] - log_ratio(c)[low])
    return out


def probe_gain(levels, _view=None):
    """Per level, the mean probe accuracy over the last third of the layers minus the first (seeds, else binomial)."""
    def ends(run):
        third = max(1, len(run.probe) // 3)
        return float(run.probe[:third].mean()), float(run.probe[-third:].mean())
    return {k: over_seeds([b - a for a, b in map(ends, rs)]) if len(rs) >= 2 else
            binomial(ends(rs[0])[1], rs[0].num_probe_test) - binomial(ends(rs[0])[0], rs[0].num_probe_test)
            for k, rs in levels.items()}


SETTING = (  # claim, quote, rule, per view (else on the probes), {case: estimate} of {level: runs}, terms (> 0)
    ("CDNV and NC2 are lower at the last layer than at the first, at every level", "collapse",
     "decades CDNV falls and NC2 falls from the first to the last layer (> 0)", True, falls,
     lambda keys: [(k, "above") for k in keys]),
    ("the CDNV curve lies higher at each higher level", "shift",
     "mean over the layers of log10 CDNV, each level minus the level below it (> 0)", True,
     curve_statistic(lambda c: float(np.log10(c.cdnv).mean())),
     lambda keys: [((b, a), "above") for a, b in zip(keys, keys[1:])]),
    ("the memorization ratio is larger at the last layer than at the first", "memorize",
     "log10 of the memorization ratio at the last layer over the first (> 0)", True,
     curve_statistic(lambda c: log_ratio(c)[-1] - log_ratio(c)[0]),
     lambda keys: [(k, "above") for k in keys if k != "L0"]),
    ("the memorization ratio falls over the first layers, then rises (lowest at an inner layer)", "dip",
     "log10 of the memorization ratio at the first and at the last layer over it at the inner layer where its mean "
     "over the seeds is lowest (> 0)", True, ratio_dip, lambda keys: [(k, "above") for k in keys]),
    ("the gap in probe accuracy on clean test data between the clean run and each level widens from the first to "
     "the last layers", "gap", "gap in probe accuracy on clean test data between the clean run and each level, "
     "mean over the last third of the layers minus over the first third (> 0)", False, probe_gain,
     lambda keys: [(("L0", k), "above") for k in keys if k != "L0"]),
    ("the last layer's probe accuracy on clean test data falls as the level rises", "decline",
     "last-layer probe accuracy on clean test data, each level minus the level above it (> 0)", False,
     lambda levels, _: {k: accuracy_estimate(rs, lambda r: r.probe[-1], lambda r: r.num_probe_test)
                        for k, rs in levels.items()},
     lambda keys: [((a, b), "above") for a, b in zip(keys, keys[1:])]))


def setting_claims(found: StudyResults, runs: dict, model: str, name: str) -> list[dict]:
    """Claim (1) for one model under one corruption (every level the study runs for it needed)."""
    prefix, figure = f"(1) {model}, {SHORT[name]} noise", figure_link(CHAPTER, figure_target(model, name))
    at = by_level(runs, model, name)
    needed = {f"L{k}": at.get(k, []) for k in study_levels(found, model, name)}
    return [row(claim_text(f"{prefix}{view and ', ' + view_name(view)}: {text}", quote), figure, needed,
                lambda s: differences(estimates(s, view), terms, rule), probes=not per_view)
            for text, quote, rule, per_view, estimates, terms in SETTING for view in (VIEWS if per_view else ("",))]


def gaussian(found: StudyResults, runs: dict, levels=LEVELS[1:]) -> tuple[list[str], list[str], dict]:
    """The study's ResNets and Swins under Gaussian noise, and {"<model> L<k>": its runs} at ``levels`` it runs."""
    models = [m for m, n in settings(found) if n == "gaussian_noise"]
    cases = {f"{m} L{k}": by_level(runs, m, "gaussian_noise").get(k, [])
             for m in models for k in study_levels(found, m, "gaussian_noise") if k in levels}
    return [m for m in models if family(m) == "resnet"], [m for m in models if family(m) == "swin"], cases


def curve_differences(view, statistic, terms, rule):
    """A judge of ``terms`` on ``statistic`` of each case's curves in ``view``."""
    return lambda stored: differences({c: curve_estimate(rs, view, statistic) for c, rs in stored.items()}, terms, rule)


ARCHITECTURE = (("Swin's memorization ratio at the first layer is smaller than ResNet's", "below",
                 "log10 of the first layer's memorization ratio, each Swin minus each ResNet (< 0)",
                 lambda c: log_ratio(c)[0]),
                ("Swin's memorization ratio rises more through the layers than ResNet's", "above",
                 "log10 of the last-layer over the first-layer memorization ratio, each Swin minus each ResNet (> 0)",
                 lambda c: log_ratio(c)[-1] - log_ratio(c)[0]))


def architecture_claims(found: StudyResults, runs: dict) -> list[dict]:
    """Claim (2) under Gaussian noise: Swin's ratio starts below ResNet's and rises faster (each pair, level)."""
    figure, (resnets, swins, needed) = figure_link(CHAPTER, "corruption-gaussian-swin"), gaussian(found, runs)
    pairs = [(f"{s} L{k}", f"{r} L{k}") for k in LEVELS[1:] for s in swins for r in resnets]
    why = "" if pairs else "the study runs no ResNet or no Swin under Gaussian noise"
    return [row(claim_text(f"(2) Gaussian noise, {view_name(view)}: {text}", "architectures"), figure, needed,
                curve_differences(view, statistic, [(p, direction) for p in pairs], rule), why)
            for view in VIEWS for text, direction, rule, statistic in ARCHITECTURE]


def depth_claims(found: StudyResults, runs: dict) -> list[dict]:
    """Claim (2) on depth under Gaussian noise, at each corrupted level the two depths of each family run (the
    paper scale: every level; below it: ``studies.DEPTH_LEVEL``)."""
    resnets, swins, _ = gaussian(found, runs)
    texts = [(claim_text(f"(2) Gaussian noise, depth, {view_name(view)}: a deeper Swin has a larger last-layer "
                         "memorization ratio, a deeper ResNet a smaller increase than the Swin's", "depth"),
              figure_link(CHAPTER, "corruption-gaussian-swin")) for view in VIEWS]
    texts.append((claim_text("(2) Gaussian noise, depth: a deeper Swin has lower test accuracy on clean inputs, a "
                             "deeper ResNet higher", "accuracy"), figure_link(CHAPTER, ACCURACY_TARGET)))
    if len(resnets) < 2 or len(swins) < 2:
        why = (f"the claim compares two depths of each family, as the paper runs; this scale runs ResNets: "
               f"{', '.join(resnets) or 'none'}; Swins: {', '.join(swins) or 'none'}")
        return [not_computed(text, figure, why) for text, figure in texts]
    four = (resnets[0], resnets[-1], swins[0], swins[-1])
    levels = sorted(set.intersection(*(set(study_levels(found, m, "gaussian_noise")) for m in four)) - {0})
    needed = {case: rs for case, rs in gaussian(found, runs, levels)[2].items() if case.split()[0] in four}
    swin, resnet = ([(f"{deep} L{k}", f"{shallow} L{k}") for k in levels] for shallow, deep in (four[2:], four[:2]))
    ratio = [t for s, r in zip(swin, resnet) for t in ((s, "above"), ((s, r), "above"))]
    accuracy = [t for s, r in zip(swin, resnet) for t in ((s, "below"), (r, "above"))]
    rule = ("log10 of the last layer's memorization ratio, deeper minus shallower Swin (> 0), and that minus the "
            "same for the ResNets (> 0)")
    judges = [curve_differences(view, lambda c: log_ratio(c)[-1], ratio, rule) for view in VIEWS]
    judges.append(lambda stored: differences(
        {c: accuracy_estimate(rs, lambda r: r.clean_test_acc, lambda r: r.num_test) for c, rs in stored.items()},
        accuracy, "test accuracy on clean test inputs, deeper minus shallower Swin (< 0) and ResNet (> 0)"))
    return [row(text, figure, needed, judge) for (text, figure), judge in zip(texts, judges)]


def terminal_claim(found: StudyResults) -> dict:
    """Every run fits the inputs it trained with; not computed while runs are missing, unless one falls short."""
    claim = f"every run reached the terminal phase (train accuracy >= {TERMINAL:.0%} on the inputs it trained with)"
    figure, summaries = figure_link(CHAPTER, RUNS_TARGET), found.summaries
    if summaries.empty:
        return not_computed(claim, figure)
    statistic, verdict = every_run_terminal([(f"{r.model} {r.corruption} seed {r.seed}", r.train_acc)
                                             for r in summaries.itertuples()])
    statistic += ("; the runs below are left out of the other claims" if verdict == FAILS else "") + (
        f"; {len(found.missing)} runs not stored yet" if found.missing else "")
    if verdict != FAILS and found.missing:
        return not_computed(claim, figure, statistic)
    return {"claim": claim, "statistic": statistic, "verdict": verdict, "figure": figure}


def claims(found: StudyResults) -> pd.DataFrame:
    """Every claim of appendix A.3, judged from every seed's stored run of the study."""
    runs = stored_runs(found) if not found.summaries.empty else {}
    rows = [r for model, name in settings(found) for r in setting_claims(found, runs, model, name)]
    return table(rows + architecture_claims(found, runs) + depth_claims(found, runs) + [terminal_claim(found)])
