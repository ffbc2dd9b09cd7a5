"""The book's figures, each drawn and shown by one call: layers on x, one line per model (or noise level,
corruption level, split), log scale for CDNV; the chapters' grids of panels.

Each chapter calls these with its data (``ncutils.chapter.Chapter``) and its scale ``note`` (in the
titles); every frame drawn is one its claims module judges.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from . import frames, palette
from .claims import (VERDICT_COLOURS, VERDICTS, corruption, domain, label_noise, nc1_vs_cdnv, small_nets,
                     train_vs_test)
from .claims.clean import DATASETS
from .claims.vgg_vit import log_linear_line
from .show import legend_below, show, wrapped
from .studies import ACTIVATIONS, PACS

# (measure, axis label, log scale) of the paper's rows
CDNV = ("cdnv_sum", "CDNV (eq. 4, sum over pairs)", True)
NC2 = ("nc2", "NC2 (eq. 5)", False)
NC1 = ("nc1", "NC1 = Tr(Σ_W Σ_B⁺)/K", True)
PROBE = ("probe_test_acc", "linear-probe test accuracy", False)
MEMORIZATION = ("memorization_ratio", "memorization ratio (Def. 1)", True)
NCC = ("ncc_accuracy", "NCC accuracy", False)
NO_RUNS = "no stored runs yet"


def layer_figure(frames: list[pd.DataFrame], rows: list[tuple[str, str, bool]], *, hue: str = "model",
                 title: str = "", hue_order=None) -> plt.Figure:
    """One panel per (frame, row): ``frames[i]`` holds the rows of measure ``rows[i][0]``. Runs repeated over
    seeds are drawn as their mean with a band of two standard errors; models and noises keep one colour
    (:mod:`ncutils.palette`)."""
    fig, axes = panel_grid(len(rows), 2, 3.6, 2.9)
    legend_panel = max((i for i, f in enumerate(frames) if not f.empty), default=None)
    for i, (ax, frame, (_, label, log)) in enumerate(zip(axes, frames, rows)):
        ax.set(ylabel=label, xlabel="layer (block)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are numbered, not measured
        if frame.empty:
            _no_runs(ax)
            continue
        order = hue_order or list(dict.fromkeys(frame[hue]))
        sns.lineplot(data=frame, x="layer number", y="value", hue=hue, hue_order=hue_order, marker="o",
                     markersize=4, ax=ax, legend=i == legend_panel, errorbar=("se", 2),
                     palette=palette.colours(hue, order))
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle(wrapped(title))
    fig.tight_layout()
    if legend_panel is not None:
        legend_below(fig, axes[legend_panel])
    return fig


def _no_runs(ax) -> None:
    ax.text(0.5, 0.5, NO_RUNS, ha="center", va="center", transform=ax.transAxes)


def family_figure(metrics: pd.DataFrame, models, rows, title: str, note: str, *, fit: bool = False,
                  view: tuple[str, str] = ("train", "flat")) -> None:
    """Per dataset, ``rows`` (e.g. ``[CDNV, NC2, PROBE]``) per layer, one line per model of ``models`` (in that
    order), the NC measures in ``view`` (split, features; probes: pooled, test). ``fit``: dashed, the
    least-squares line through log10 CDNV against the layer number (:func:`ncutils.claims.vgg_vit.log_linear_line`;
    a straight line on the log axis is a geometric decay)."""
    if not models:
        return
    frame = metrics[metrics.model.isin(models)] if not metrics.empty else metrics
    if frame.empty:
        print(f"no stored runs of {', '.join(models)} yet ({note})")
        return
    for dataset, runs in frame.groupby("dataset"):
        order = [m for m in models if m in set(runs.model)]
        panels = [frames.layer_rows(runs, m, split=view[0], features=view[1]) for m, _, _ in rows]
        fig = layer_figure(panels, rows, hue_order=order, title=f"{title} on {DATASETS.get(dataset, dataset)}, "
                                                                 f"{view[0]} split, {view[1]} features ({note})")
        colors = palette.colours("model", order)
        for model, curve in panels[0].sort_values("layer number").groupby("model") if fit else ():
            slope, intercept = log_linear_line(curve.value)
            x = curve["layer number"].to_numpy()
            fig.axes[0].plot(x, 10 ** (intercept + slope * x), "--", color=colors[model], linewidth=1)
        show()


def probe_vs_cdnv(metrics: pd.DataFrame, note: str) -> None:
    """Every layer of every run as a point: CDNV (log) against linear-probe test accuracy (Figure 7)."""
    if metrics.empty:
        return
    keys = ["model", "layer number"]
    cdnv = frames.layer_rows(metrics, "cdnv_sum")[keys + ["value"]].rename(columns={"value": "CDNV"})
    probe = frames.layer_rows(metrics, "probe_test_acc")[keys + ["value"]].rename(columns={"value": "probe accuracy"})
    _, ax = plt.subplots()
    sns.scatterplot(data=cdnv.merge(probe, on=keys), x="CDNV", y="probe accuracy", hue="model", style="model", ax=ax)
    ax.set_xscale("log")
    ax.set_title(wrapped(f"Per layer: CDNV vs linear-probe test accuracy ({note})", 60))
    legend_below(ax.figure, ax)
    show()


def noise_figures(metrics: pd.DataFrame, configs, noises, title: str, note: str) -> None:
    """Per model of ``configs`` run under one of ``noises``: CDNV and NC2 under the trained labels, the
    memorization ratio (dashed: 1) and probe accuracy per layer, one line per noise (and the clean run)."""
    for model in dict.fromkeys(c.model for c in configs if c.noise in noises):
        frame = metrics[(metrics.model == model) & metrics.noise.isin(("clean",) + tuple(noises))]
        if frame.empty:
            print(f"no stored runs of {model} for {title} yet ({note})")
            continue
        panels = [label_noise.trained_label_rows(frame, "cdnv_sum"), label_noise.trained_label_rows(frame, "nc2"),
                  label_noise.memorization_rows(frame), frames.layer_rows(frame, "probe_test_acc")]
        fig = layer_figure(panels, [CDNV, NC2, MEMORIZATION, PROBE], hue="noise",
                           hue_order=[n for n in ("clean",) + tuple(noises) if n in set(frame.noise)],
                           title=f"{model}, {title} ({note})")
        fig.axes[2].axhline(1.0, color="grey", linestyle="--", linewidth=1)
        show()


LEVELS = {0: "level 0 (clean)", 1: "level 1 (severity 1)", 2: "level 2 (severity 3)", 3: "level 3 (severity 5)"}
RATIO = ("memorization_ratio", "memorization ratio (clean / corrupted)", False)


def corruption_figures(found, name: str, family: str, note: str) -> None:
    """Figures 10-12: per model of ``family`` ("resnet" or "swin") run under corruption ``name``, CDNV, NC2,
    memorization ratio (dashed: 1) and probe accuracy per layer, one line per level."""
    for model, setting in corruption.settings(found):
        if setting != name or corruption.family(model) != family:
            continue
        metrics = found.metrics
        panels = [corruption.trained_rows(metrics, "cdnv_sum", model, name),
                  corruption.trained_rows(metrics, "nc2", model, name),
                  corruption.ratio_rows(metrics, model, name), corruption.probe_rows(metrics, model, name)]
        if all(p.empty for p in panels):
            print(f"no stored runs of {model} under {name} yet ({note})")
            continue
        fig = layer_figure([p.assign(level=p.level.map(LEVELS)) for p in panels], [CDNV, NC2, RATIO, PROBE],
                           hue="level", hue_order=list(LEVELS.values()),
                           title=f"{model}, CIFAR-10 with {corruption.SHORT[name]} noise ({note})")
        fig.axes[2].axhline(1.0, color="grey", linestyle="--", linewidth=1)
        show()


def panel_grid(count: int, columns: int, width: float, height: float, **kwargs):
    """(figure, the first ``count`` axes of a grid ``columns`` wide; the others hidden)."""
    columns = min(columns, count)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, **kwargs)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def corruption_accuracy(found, note: str) -> None:
    """One panel per (model, corruption): test accuracy per level on corrupted and on clean test inputs."""
    settings = corruption.settings(found)
    if not settings:
        return
    panels = [corruption.accuracy_rows(found.summaries, model, name) for model, name in settings]
    legend_at = max((i for i, frame in enumerate(panels) if not frame.empty), default=None)
    fig, axes = panel_grid(len(settings), 2, 3.6, 3.0, sharey=True)
    for i, (ax, (model, name), frame) in enumerate(zip(axes, settings, panels)):
        ax.set(title=f"{model}, {corruption.SHORT[name]} noise", xlabel="corruption level", xticks=corruption.LEVELS,
               xlim=(-0.2, 3.2), ylabel="test accuracy")
        if frame.empty:
            _no_runs(ax)
            continue
        sns.lineplot(data=frame, x="level", y="accuracy", hue="test inputs", hue_order=["corrupted", "clean"],
                     style="test inputs", marker="o", ax=ax, legend=i == legend_at)
        ax.grid(alpha=0.3)
    fig.suptitle(wrapped(f"Test accuracy per corruption level ({note})"))
    fig.tight_layout()
    if legend_at is not None:
        legend_below(fig, axes[legend_at])
    show()


PALETTE = palette.DOMAIN_COLOURS  # one colour per source model, in every figure


def domain_figure(metrics: pd.DataFrame, note: str) -> None:
    """One row per target domain, one line per source model: target CDNV (log) and probe accuracy per layer
    (dotted: chance, 1/7); a source's seeds drawn as their mean with a band of two standard errors."""
    cdnv, probe = domain.target_rows(metrics, "cdnv_sum"), domain.target_rows(metrics, "probe_test_acc")
    if cdnv.empty:
        print(f"no stored runs yet ({note})")
        return
    fig, axes = plt.subplots(len(PACS), 2, figsize=(7.4, 2.6 * len(PACS)), sharex=True, squeeze=False)
    for row, target in zip(axes, PACS):
        # the short CDNV label keeps the four rows' axis labels apart; the caption says it is summed over pairs
        for ax, frame, label, log in zip(row, (cdnv, probe), ("CDNV (eq. 4)", PROBE[1]), (CDNV[2], PROBE[2])):
            frame = frame[frame.target == target]
            ax.set(ylabel=label, title=f"target: {target}")
            if frame.empty:
                _no_runs(ax)
                continue
            sns.lineplot(data=frame, x="layer number", y="value", hue="source", palette=PALETTE, marker="o",
                         markersize=4, ax=ax, legend=False, errorbar=("se", 2))
            if log:
                ax.set_yscale("log")
            else:
                ax.axhline(domain.CHANCE, color="grey", linestyle=":", linewidth=1)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("layer (block)")
    handles = [plt.Line2D([], [], color=PALETTE[s], marker="o", label=s) for s in PACS if s in set(cdnv.source)]
    fig.legend(handles=handles, title="source model", loc="lower center", ncol=len(handles), frameon=False)
    models = ", ".join(sorted(set(cdnv.model)))
    fig.suptitle(wrapped(f"{models} pretrained on each PACS domain, measured on the others ({note})"))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    show()


def domain_scatter(metrics: pd.DataFrame, note: str) -> None:
    """Every (source, target, layer) as a point: target CDNV (log) against probe accuracy on the target, each the
    mean over the source's seeds (dotted: chance, 1/7)."""
    keys = ["source", "target", "layer number"]

    def seed_means(measure: str, name: str) -> pd.DataFrame:
        rows = domain.target_rows(metrics, measure)
        return rows.groupby(keys, as_index=False)["value"].mean().rename(columns={"value": name})
    joined = seed_means("cdnv_sum", "CDNV").merge(seed_means("probe_test_acc", "probe accuracy"), on=keys)
    if joined.empty:
        print(f"no stored runs yet ({note})")
        return
    _, ax = plt.subplots()
    sns.scatterplot(data=joined.rename(columns={"source": "source model"}), x="CDNV", y="probe accuracy",
                    hue="source model", style="target", palette=PALETTE, ax=ax,
                    hue_order=[d for d in PACS if d in set(joined.source)],
                    style_order=[d for d in PACS if d in set(joined.target)])
    ax.set_xscale("log")
    ax.axhline(domain.CHANCE, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(CDNV[1] + ", on the target")
    ax.set_title(wrapped(f"Every layer of every source model on each target ({note})", 60))
    legend_below(ax.figure, ax)
    show()


def relative_shapes(metrics: pd.DataFrame, note: str) -> None:
    """One panel per run: CDNV and NC1 divided by their value at the first layer (log; the curves
    :func:`ncutils.claims.nc1_vs_cdnv.curves` judges)."""
    per_run = nc1_vs_cdnv.curves(metrics) if not metrics.empty else {}
    if not per_run:
        print(f"no stored runs yet ({note})")
        return
    names = {"cdnv_sum": "CDNV", "nc1": "NC1"}
    shapes = pd.DataFrame([{"run": run, "measure": names[m], "layer number": i + 1, "value": v / values[0]}
                           for run, curves in per_run.items() for m, values in curves.items()
                           for i, v in enumerate(values)])
    grid = sns.relplot(data=shapes, x="layer number", y="value", hue="measure", col="run", col_wrap=min(2, len(per_run)),
                       kind="line", marker="o", markersize=4, height=2.6, aspect=1.2, facet_kws={"sharex": False})
    grid.set(yscale="log", ylabel="value / value at layer 1", xlabel="layer (block)")
    grid.set_titles("{col_name}")
    grid.tight_layout()
    grid.figure.suptitle(wrapped(f"CDNV and NC1 relative to the first layer ({note})"), y=1.02)
    show()


SMALL_NETS = {"models": ("mlp", "vgg11", "resnet18"), "datasets": ("fashion-mnist", "cifar10")}
NAMES = {"relu": "ReLU", "tanh": "Tanh", "leaky_relu": "LeakyReLU", "mlp": "MLP6", "vgg11": "VGG11",
         "resnet18": "ResNet18"}
PARKER = {"nc1": ("NC1 = Tr(Σ_W Σ_B⁺)/K", True, 1), "equal_norms": ("equal norms (std/mean)", False, 2),
          "max_angle": ("maximal angle", False, 3), "nc4": ("NC4 (NCC vs network)", False, 4),
          "cdnv_sum": ("CDNV (eq. 4, summed)", True, None), "nc2": ("NC2 (eq. 5)", False, None)}  # last two: not theirs
STATE = {"initialisation": "tab:blue", "trained": "tab:red"}


def parker_figures(found, measure: str, note: str) -> None:
    """Parker et al.'s figures of ``measure``, one per activation (ReLU: their Figures 1-4; Tanh: 5-8;
    LeakyReLU: 9-12; CDNV and NC2 of eq. 5 drawn the same way): a panel per (model, dataset), initialisation
    blue dotted, trained red solid."""
    label, log, first = PARKER[measure]
    models, datasets = SMALL_NETS["models"], SMALL_NETS["datasets"]
    rows = frames.layer_rows(found.metrics, measure) if not found.metrics.empty else pd.DataFrame()
    runs = small_nets.runs(found)
    for k, act in enumerate(ACTIVATIONS):
        chosen = rows[rows.key.map(lambda key: runs[key][2]) == act].assign(
            state=lambda t: t.epochs.map(lambda e: "trained" if e > 0 else "initialisation")) if len(rows) else rows
        fig, axes = plt.subplots(len(models), len(datasets), figsize=(7.2, 2.4 * len(models)), squeeze=False)
        for (i, model), (j, dataset) in ((a, b) for a in enumerate(models) for b in enumerate(datasets)):
            ax = axes[i][j]
            panel = chosen[(chosen.model == model) & (chosen.dataset == dataset)] if len(chosen) else chosen
            ax.set_title(f"{NAMES[model]}, {dataset}")
            if panel.empty:
                _no_runs(ax)
                continue
            sns.lineplot(data=panel, x="layer number", y="value", hue="state", style="state", palette=STATE,
                         dashes={"initialisation": (2, 2), "trained": ""}, marker="o", markersize=4, ax=ax,
                         hue_order=list(STATE), style_order=list(STATE), legend=(i, j) == (0, len(datasets) - 1))
            if log:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        for (i, j), ax in np.ndenumerate(axes):
            ax.set(xlabel="layer" if i == len(models) - 1 else "", ylabel=label if j == 0 else "")
        fig.suptitle(wrapped(f"{f'Figure {first + 4 * k}: ' if first else ''}{label}, {NAMES[act]} networks ({note})"))
        fig.tight_layout()
        if axes[0][-1].get_legend():
            legend_below(fig, axes[0][-1])
        show()


def split_figures(metrics: pd.DataFrame, models, note: str) -> None:
    """Per model: CDNV, NC1, NC2 and NCC accuracy per layer on the training and on the test split."""
    rows = [CDNV, NC1, NC2, NCC]
    for model in models:
        run = metrics[metrics.model == model] if not metrics.empty else metrics
        if run.empty:
            print(f"no stored run of {model} yet ({note})")
            continue
        panels = [pd.concat([frames.layer_rows(run, m, split=split) for split in ("train", "test")]) for m, _, _ in rows]
        layer_figure(panels, rows, hue="split", hue_order=["train", "test"],
                     title=f"{model} on CIFAR-10, training vs test split ({note})")
        show()


def gap_figure(metrics: pd.DataFrame, models, note: str) -> None:
    """The test-vs-train gap of each measure per layer (positive: weaker collapse on test; dashed: 0)."""
    if metrics.empty:
        print(f"no stored runs yet ({note})")
        return
    rows = [(m, f"{name} gap: {unit}", False) for m, (name, unit) in train_vs_test.GAPS.items()]
    fig = layer_figure([train_vs_test.gap_rows(metrics, m) for m, _, _ in rows], rows,
                       hue_order=[m for m in models if m in set(metrics.model)],
                       title=f"Test-vs-train gap per layer on CIFAR-10 ({note})")
    for ax in fig.axes[:len(rows)]:
        ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    show()


def verdict_bars(counts: pd.DataFrame, note: str) -> None:
    """Claims per verdict of each chapter, stacked (``counts``: ``ncutils.claims.verdict_counts``)."""
    per_chapter = counts.drop(index="all chapters")[list(VERDICTS)]
    if not per_chapter.to_numpy().sum():
        return
    ax = per_chapter.iloc[::-1].plot.barh(stacked=True, color=[VERDICT_COLOURS[v] for v in VERDICTS],
                                          figsize=(7, 0.6 * len(per_chapter) + 1.4), width=0.7)
    ax.set(xlabel="claims", ylabel="", title=wrapped(f"Verdicts per chapter ({note})", 60))
    plt.tight_layout()
    legend_below(ax.figure, ax)
    show()


def training_curves(logs: pd.DataFrame, scale: str) -> None:
    """Training accuracy per epoch of every run (``logs``: one row per epoch with ``run`` and ``model`` columns),
    one colour per model; dashed: 99%."""
    if logs.empty:
        print("no stored runs yet")
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    models = list(dict.fromkeys(logs.model))
    sns.lineplot(logs, x="epoch", y="acc", hue="model", units="run", estimator=None, linewidth=0.8, ax=ax,
                 hue_order=models, palette=palette.colours("model", models))
    ax.axhline(frames.TERMINAL, color="grey", linestyle="--", linewidth=1)
    ax.set(ylabel="training accuracy", title=wrapped(f"Training accuracy per epoch of every stored run ({scale} "
                                                     f"scale); dashed: {frames.TERMINAL:.0%}", 60))
    legend_below(fig, ax)
    show()


def measures_figure(table: pd.DataFrame, x: str, title: str, log=("CDNV (sum)", "NC1")) -> None:
    """One panel per measure (every column of ``table`` but ``x``) against ``x``. The ``log`` measures (never
    negative) on a log axis: their zeros (values below 1e-12 of the panel's largest: rounding) cannot be drawn
    there, and the panel says where they are."""
    names = [c for c in table.columns if c != x]
    fig, axes = panel_grid(len(names), 2, 3.4, 2.6)
    for ax, name in zip(axes, names):
        values = table[name]
        zero = values <= 1e-12 * values.abs().max()
        ax.plot(table[x], values.mask(zero) if name in log else values, marker="o", markersize=4)
        ax.set(title=name, xlabel=x)
        zeros = table[x][zero] if name in log else []
        if name in log:
            ax.set_yscale("log")
        if len(zeros):
            ax.text(0.97, 0.95, f"0 at {x} = {', '.join(f'{v:g}' for v in zeros)}\n(off the log axis)",
                    ha="right", va="top", transform=ax.transAxes, fontsize="small")
        ax.grid(alpha=0.3)
    fig.suptitle(wrapped(title))
    fig.tight_layout()
    show()


def plot_layers(table: pd.DataFrame, *, title: str = "", hue: str = "model") -> plt.Figure:
    """The paper's per-layer panels of a :func:`ncutils.measure` or :func:`ncutils.results.results` table:
    CDNV, NC2, NC1 and (when probed) the linear-probe test accuracy, one line per ``hue`` value."""
    rows = [CDNV, NC2, NC1] + ([PROBE] if (table.measure == PROBE[0]).any() else [])
    return layer_figure([frames.layer_rows(table, measure) for measure, _, _ in rows], rows, hue=hue, title=title)
