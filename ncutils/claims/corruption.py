"""Claims of appendix A.3 (corrupted inputs, Figures 10-12), judged from the runs of the ``corruption`` study.

A run trained on corrupted inputs (CIFAR-10-C Gaussian or speckle noise at the paper's level 1, 2 or
3, i.e. severity 1, 3 or 5) is measured on the corrupted training inputs it trained with and on their
clean originals. Its memorization ratio per layer is the corrupted-input counterpart of Definition 1:
CDNV (``cdnv_sum``, eq. 4) on the clean training inputs over CDNV on the corrupted ones. Level 0 is the
model's clean run. The chapter plots the frames built here, so every verdict comes from the numbers shown.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import frames
from ..corruptions import parse_corruption
from ..frames import TERMINAL, memorization_ratios_between
from ..results import StudyResults
from ..studies import RESNETS, SWINS
from . import figure_link, not_computed, table

STUDY = "corruption"
CHAPTER = "corruption"
LEVELS = (0, 1, 2, 3)  # the paper's levels: clean, then CIFAR-10-C severities 1, 3, 5
SHORT = {"gaussian_noise": "Gaussian", "speckle_noise": "speckle"}  # in the order of the figures
RUNS_TARGET = "corruption-runs"
ACCURACY_TARGET = "corruption-accuracy"
LAYER_COLUMNS = ["model", "corruption", "level", "layer", "layer_index", "layer number", "value"]
ACCURACY_COLUMNS = ["model", "corruption", "level", "test inputs", "accuracy"]


def family(model: str) -> str:
    """``"resnet"`` or ``"swin"``."""
    return "swin" if model.startswith("swin") else "resnet"


def figure_target(model: str, name: str) -> str:
    """The MyST target of the section showing ``model`` under corruption ``name``."""
    return f"corruption-{name.split('_')[0]}-{family(model)}"


def level(corruption: str) -> int:
    """The paper's level (0 = clean) of a run's corruption spec."""
    return parse_corruption(corruption).paper_level


def settings(found: StudyResults) -> list[tuple[str, str]]:
    """(model, corruption name) of the study's corrupted runs, stored or not, in the order of the figures."""
    pairs = {(c.model, parse_corruption(c.corruption).name) for c in found.configs if c.corruption != "clean"}
    models = list(RESNETS + SWINS)
    return sorted(pairs, key=lambda p: (list(SHORT).index(p[1]), family(p[0]) == "swin", models.index(p[0])))


def of_setting(frame: pd.DataFrame, model: str, name: str) -> pd.DataFrame:
    """Rows of ``model``'s clean run and of its runs under corruption ``name``, with the paper's ``level``."""
    if frame.empty:
        return frame.assign(level=pd.Series(dtype=int))
    rows = frame[(frame.model == model) & ((frame.corruption == "clean") | frame.corruption.str.startswith(name + ":"))]
    return rows.assign(level=rows.corruption.map(level).astype(int))


def _levels(configs, model: str, name: str) -> list[int]:
    """The paper's levels of ``model`` under ``name`` (0 = its clean run) among ``configs``."""
    return sorted({level(c.corruption) for c in configs if c.model == model
                   and (c.corruption == "clean" or parse_corruption(c.corruption).name == name)})


def stored_levels(found: StudyResults, model: str, name: str) -> list[int]:
    """The paper's levels of ``model`` under ``name`` whose runs are stored."""
    return _levels(found.stored, model, name)


def study_levels(found: StudyResults, model: str, name: str) -> list[int]:
    """The paper's levels the study runs for ``model`` under ``name`` (stored or not; 0 = its clean run).
    The paper runs every level; below its scale the deeper models run one (``studies.DEPTH_LEVEL``)."""
    return _levels(found.configs, model, name)


def trained_rows(metrics: pd.DataFrame, measure: str, model: str, name: str) -> pd.DataFrame:
    """``measure`` per layer on the training inputs each run trained with (corrupted at levels 1-3, clean at
    level 0), clean labels, flat features: the chapter's CDNV and NC2 panels."""
    frame = of_setting(metrics, model, name)
    if frame.empty:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    return pd.concat([frames.layer_rows(frame[frame.level == 0], measure),
                      frames.layer_rows(frame[frame.level > 0], measure, inputs="corrupted")], ignore_index=True)


def ratio_rows(metrics: pd.DataFrame, model: str, name: str) -> pd.DataFrame:
    """Memorization ratio per layer of each corrupted run: CDNV on the clean training inputs over CDNV on the
    corrupted ones it trained with (flat features, the classifier's input left out)."""
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
    """Test accuracy per level on the test inputs each run trained with (``corrupted``) and on clean test
    inputs (``clean``); at level 0 both are the clean run's test accuracy."""
    frame = of_setting(summaries, model, name)
    if frame.empty:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    clean = frame.reindex(columns=["test_acc_clean_inputs"]).iloc[:, 0].where(frame.level > 0, frame.test_acc)
    return pd.concat([pd.DataFrame({"model": model, "corruption": name, "level": frame.level,
                                    "test inputs": inputs, "accuracy": values})
                      for inputs, values in (("corrupted", frame.test_acc), ("clean", clean))], ignore_index=True)


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies on the inputs of its level and on their clean originals (at level 0 the same),
    and whether it reached the terminal phase on the inputs it trained with."""
    summary = found.summaries
    table = summary.assign(level=summary.corruption.map(level)).reindex(
        columns=["model", "size", "corruption", "level", "train_acc", "train_acc_clean_inputs", "test_acc",
                 "test_acc_clean_inputs"])
    for column in ("train_acc", "test_acc"):
        table[f"{column}_clean_inputs"] = table[f"{column}_clean_inputs"].fillna(table[column])
    table["terminal phase"] = table.train_acc >= TERMINAL
    return table.sort_values(["model", "level", "corruption"])


# --- verdicts ---------------------------------------------------------------------------------------

def graded(flags) -> str:
    """holds when every case does, does not hold when none does, inconclusive otherwise."""
    flags = list(flags)
    return "holds" if all(flags) else ("does not hold" if not any(flags) else "inconclusive")


def monotone(values: list[float], rising: bool) -> str:
    """holds for a strict trend, inconclusive when only the ends follow it, does not hold otherwise."""
    steps = np.diff(values) * (1 if rising else -1)
    return "holds" if (steps > 0).all() else ("inconclusive" if steps.sum() > 0 else "does not hold")


def _curves(frame: pd.DataFrame) -> dict[int, np.ndarray]:
    """Values per layer of each level, in layer order."""
    return {int(k): g.sort_values("layer_index").value.to_numpy(dtype=float) for k, g in frame.groupby("level")}


def _g(value: float) -> str:
    return f"{value:.3g}"


def _r(ratio: float) -> str:
    """A memorization ratio: near 1, so four significant digits."""
    return f"{ratio:.4g}"


def _ends(curves: dict[int, np.ndarray], fmt=_g) -> str:
    """First -> last layer of each level's curve."""
    return "; ".join(f"L{k} {fmt(v[0])} -> {fmt(v[-1])}" for k, v in curves.items())


def setting_claims(found: StudyResults, model: str, name: str) -> list[dict]:
    """Claim (1) of appendix A.3 for one model under one corruption, from its figure (every level the study
    runs for it needed)."""
    prefix, figure = f"{model}, {SHORT[name]} noise: ", figure_link(CHAPTER, figure_target(model, name))
    texts = ["(1) CDNV and NC2 fall from the first to the last layer at every level",
             "(1) the CDNV curves shift up as the corruption level rises",
             "(1) the memorization ratio rises through the layers: larger at the last layer than at the first",
             "(1) the memorization ratio first falls over the initial layers, then rises (minimum at an inner layer)",
             "(1) probe accuracy on clean test data differs more between levels in the last layers than in the first",
             "(1) the last layer's probe accuracy on clean test data falls as the level rises"]
    stored, levels = stored_levels(found, model, name), study_levels(found, model, name)
    if stored != levels:
        why = f"levels stored: {stored or 'none'} of {levels}; the others are not stored yet"
        return [not_computed(prefix + text, figure, why) for text in texts]
    metrics = found.metrics
    cdnv = _curves(trained_rows(metrics, "cdnv_sum", model, name))
    nc2 = _curves(trained_rows(metrics, "nc2", model, name))
    ratio, probe = _curves(ratio_rows(metrics, model, name)), _curves(probe_rows(metrics, model, name))
    rows = [(f"CDNV first -> last layer: {_ends(cdnv)}. NC2: {_ends(nc2)}",
             graded(cdnv[k][-1] < cdnv[k][0] and nc2[k][-1] < nc2[k][0] for k in levels))]
    means = [float(np.exp(np.log(cdnv[k]).mean())) for k in levels]
    rows.append(("geometric mean of CDNV over the layers: " + ", ".join(f"L{k} {_g(m)}" for k, m in zip(levels, means)),
                 monotone(means, rising=True)))
    rows.append((f"ratio first -> last layer: {_ends(ratio, _r)}", graded(v[-1] > v[0] for v in ratio.values())))
    lowest = {k: int(np.argmin(v)) for k, v in ratio.items()}
    rows.append(("minimum of the ratio: " + "; ".join(f"L{k} {_r(v[lowest[k]])} at layer {lowest[k] + 1} of {len(v)}"
                                                      for k, v in ratio.items()),
                 graded(0 < lowest[k] < len(v) - 1 for k, v in ratio.items())))
    accuracy = np.stack([probe[k] for k in levels])
    spread, third = accuracy.max(axis=0) - accuracy.min(axis=0), max(1, accuracy.shape[1] // 3)
    first, last = spread[:third].mean(), spread[-third:].mean()
    spread_text = (f"spread of probe accuracy over the levels (max - min), mean over the first {third} layers "
                   f"{first:.3f} vs the last {third} layers {last:.3f}")
    rows.append((spread_text, "holds" if last > first else "does not hold"))
    rows.append(("last-layer probe accuracy: " + ", ".join(f"L{k} {probe[k][-1]:.3f}" for k in levels),
                 monotone([probe[k][-1] for k in levels], rising=False)))
    return [{"claim": prefix + text, "statistic": statistic, "verdict": verdict, "figure": figure}
            for text, (statistic, verdict) in zip(texts, rows)]


def _complete(found: StudyResults, name: str, which: str) -> tuple[list[str], list[str]]:
    """(models of family ``which`` the study runs under ``name``, those with every level it runs stored)."""
    models = [m for m, n in settings(found) if n == name and family(m) == which]
    return models, [m for m in models if stored_levels(found, m, name) == study_levels(found, m, name)]


def _shared_levels(curves: dict[str, dict]) -> list[int]:
    """The corrupted levels every model of ``curves`` ({model: {level: ...}}) ran."""
    return sorted(set.intersection(*(set(c) for c in curves.values())))


def architecture_claims(found: StudyResults) -> list[dict]:
    """Claim (2) of appendix A.3 under Gaussian noise: Swin starts lower than ResNet but rises faster."""
    name, figure = "gaussian_noise", figure_link(CHAPTER, figure_target("swin_t", "gaussian_noise"))
    texts = ["(2) Gaussian noise: Swin's memorization ratio at the first layer is smaller than ResNet's",
             ("(2) Gaussian noise: Swin's memorization ratio rises more through the layers than ResNet's "
              "(log10 of last-layer over first-layer ratio)")]
    resnets, swins = _complete(found, name, "resnet")[1], _complete(found, name, "swin")[1]
    if not resnets or not swins:
        why = "needs every run of a ResNet and of a Swin under Gaussian noise stored"
        return [not_computed(text, figure, why) for text in texts]
    curves = {m: _curves(ratio_rows(found.metrics, m, name)) for m in resnets + swins}
    ran = {k: ([m for m in resnets if k in curves[m]], [m for m in swins if k in curves[m]]) for k in LEVELS[1:]}
    levels = [k for k, (r, w) in ran.items() if r and w]  # the levels a ResNet and a Swin both ran
    first = {m: {k: v[0] for k, v in c.items()} for m, c in curves.items()}
    rise = {m: {k: float(np.log10(v[-1] / v[0])) for k, v in c.items()} for m, c in curves.items()}

    def per_level(values, fmt):
        return "; ".join(f"L{k}: " + ", ".join(f"{m} {fmt(values[m][k])}" for m in ran[k][0] + ran[k][1]) for k in levels)

    rows = [{"statistic": "first-layer ratio: " + per_level(first, _r),
             "verdict": graded(max(first[m][k] for m in ran[k][1]) < min(first[m][k] for m in ran[k][0])
                               for k in levels)},
            {"statistic": "log10(last-layer / first-layer ratio): " + per_level(rise, lambda x: f"{x:+.3f}"),
             "verdict": graded(min(rise[m][k] for m in ran[k][1]) > max(rise[m][k] for m in ran[k][0])
                               for k in levels)}]
    return [{"claim": text, **row, "figure": figure} for text, row in zip(texts, rows)]


def depth_claims(found: StudyResults) -> list[dict]:
    """Claim (2) on depth under Gaussian noise: deeper Swins memorize more and lose clean accuracy, deeper
    ResNets barely memorize more and gain a little; needs two depths per family, judged at the corrupted
    levels all four models ran (the paper scale: every level; below it: ``studies.DEPTH_LEVEL``)."""
    name = "gaussian_noise"
    texts = [(("(2) Gaussian noise, depth: a deeper Swin has a larger last-layer memorization ratio, a deeper "
               "ResNet a smaller increase than the Swin's"), figure_link(CHAPTER, figure_target("swin_t", name))),
             (("(2) Gaussian noise, depth: a deeper Swin has lower test accuracy on clean inputs, a deeper ResNet "
               "higher (mean over the corrupted levels every model ran)"), figure_link(CHAPTER, ACCURACY_TARGET))]
    (resnets, full_resnets), (swins, full_swins) = _complete(found, name, "resnet"), _complete(found, name, "swin")
    if len(resnets) < 2 or len(swins) < 2:
        why = (f"the study runs one depth per family at this scale ({', '.join(resnets + swins)}); "
               "the paper scale runs two")
        return [not_computed(text, figure, why) for text, figure in texts]
    if len(full_resnets) < 2 or len(full_swins) < 2:
        return [not_computed(text, figure) for text, figure in texts]
    pairs = {"ResNet": (full_resnets[0], full_resnets[-1]), "Swin": (full_swins[0], full_swins[-1])}
    last = {m: {k: v[-1] for k, v in _curves(ratio_rows(found.metrics, m, name)).items()}
            for pair in pairs.values() for m in pair}
    levels = _shared_levels(last)
    growth = {f: {k: last[deep][k] / last[shallow][k] for k in levels} for f, (shallow, deep) in pairs.items()}
    ratio_row = {"statistic": "last-layer ratio deeper / shallower: " + "; ".join(
                     f"L{k}: " + ", ".join(f"{'/'.join(reversed(pairs[f]))} {_r(growth[f][k])}" for f in pairs)
                     for k in levels),
                 "verdict": graded(growth["Swin"][k] > 1 and growth["Swin"][k] > growth["ResNet"][k]
                                   for k in levels)}

    def clean_accuracy(model):
        rows = accuracy_rows(found.summaries, model, name)
        return float(rows[rows.level.isin(levels) & (rows["test inputs"] == "clean")].accuracy.mean())

    clean = {m: clean_accuracy(m) for pair in pairs.values() for m in pair}
    swin_drops = clean[pairs["Swin"][1]] < clean[pairs["Swin"][0]]
    resnet_gains = clean[pairs["ResNet"][1]] > clean[pairs["ResNet"][0]]
    accuracy_row = {"statistic": f"mean clean-input test accuracy over levels {', '.join(map(str, levels))}: "
                                 + ", ".join(f"{m} {a:.3f}" for m, a in clean.items()),
                    "verdict": graded([swin_drops, resnet_gains])}
    return [{"claim": text, **row, "figure": figure} for (text, figure), row in zip(texts, (ratio_row, accuracy_row))]


def terminal_claim(found: StudyResults) -> dict:
    """Every run fits the inputs it trained with (the terminal phase the paper's measures assume); not
    computed while runs are missing unless a stored one already falls short."""
    claim = f"every run reached the terminal phase (train accuracy >= {TERMINAL:.0%} on the inputs it trained with)"
    figure = figure_link(CHAPTER, RUNS_TARGET)
    summaries = found.summaries
    if summaries.empty:
        return not_computed(claim, figure)
    short = summaries[summaries.train_acc < TERMINAL]
    statistic = f"{len(summaries) - len(short)} of {len(summaries)} stored runs" + (
        "; below: " + ", ".join(f"{r.model} {r.corruption} {r.train_acc:.3f}" for r in short.itertuples())
        if len(short) else "") + (f"; {len(found.missing)} runs not stored yet" if found.missing else "")
    if short.empty and found.missing:
        return not_computed(claim, figure, statistic)
    return {"claim": claim, "statistic": statistic, "verdict": "holds" if short.empty else "does not hold",
            "figure": figure}


def claims(found: StudyResults) -> pd.DataFrame:
    """Every claim of appendix A.3, judged from the stored runs of the study."""
    rows = [row for model, name in settings(found) for row in setting_claims(found, model, name)]
    return table(rows + architecture_claims(found) + depth_claims(found) + [terminal_claim(found)])
