"""Does it hold with more data? The clean and label-noise claims judged at each rung of the ``data_scale`` study.

Each rung is one number of training images per class (``ncutils.studies.DATA_RUNGS``); its runs are
ResNet18 and Swin-T, clean and under ``DEPTH_NOISE``. A rung's claims are those of
:mod:`ncutils.claims.clean` (from its clean runs) and of :mod:`ncutils.claims.label_noise` (from all its
runs), judged by the same rule (:mod:`ncutils.verdict`) from the rung's runs alone, so a verdict that
changes between rungs changes with the data, everything else held. The scale's own rung repeats the other
studies' runs with their seeds; the larger rungs run once, so their statistics carry the uncertainty of one
run (jackknife over images, binomial error). Claims that need another model (ResNet34, a deep ResNet, Swin-S)
are not computed at any rung and are left out of the ladder.

:func:`claims` gives the claims page the verdicts at the largest rung; :func:`ladder` the claim-by-rung table
the chapter shows, and :func:`changed` (from that table) the claims whose verdict differs between the smallest
and the largest rung of those computed at both.
"""
from __future__ import annotations

import html

import pandas as pd

from .. import frames
from . import STYLE, clean, figure_link, label_noise, table, verdict_html

STUDY = "data_scale"
CHAPTER = "data_scale"
CURVES = figure_link(CHAPTER, "data-scale-curves")
ACCURACY = figure_link(CHAPTER, "data-scale-accuracy")
# section 4.1: "ResNet18 achieves lower accuracies of 94.72% on CIFAR-10" (the only one it states for these runs)
PAPER_TEST_ACC = {("resnet18", "clean"): 0.9472}
ALL_IMAGES = 5000  # CIFAR-10's training images per class: the paper's runs, and the rung of every image


def rung_name(n_per_class: int | None) -> str:
    return "all" if n_per_class is None else f"{n_per_class:,}"


def rungs(found) -> list[int | None]:
    """The study's rungs (stored or missing), smallest first (None, every image, last)."""
    values = {c.n_per_class for c in found.configs}
    return sorted(values, key=lambda n: float("inf") if n is None else n)


def rung_claims(found, n_per_class: int | None) -> pd.DataFrame:
    """The clean and label-noise claims judged from the runs of one rung, linked to this chapter's figures."""
    runs = found.where(lambda c: c.n_per_class == n_per_class)
    rows = pd.concat([clean.claims(runs.where(lambda c: c.noise == "clean")), label_noise.claims(runs)],
                     ignore_index=True)
    is_accuracy = rows.figure.isin([clean.ACCURACY, label_noise.ACCURACY])
    return rows.assign(figure=is_accuracy.map({True: ACCURACY, False: CURVES}))


def rung_tables(found) -> dict[int | None, pd.DataFrame]:
    """Every rung's claims (:func:`rung_claims`), smallest rung first."""
    return {n: rung_claims(found, n) for n in rungs(found)}


def computed_somewhere(tables: dict) -> set[str]:
    """The claims computed at some rung of ``tables`` (the others need a model the study does not have)."""
    return {c for t in tables.values() for c in t.claim[t.verdict != "not computed"]}


def ladder(found) -> pd.DataFrame:
    """One row per claim computed at some rung: its verdict and statistic at every rung (columns
    ``verdict <rung>``, ``statistic <rung>``, smallest rung first), in the order the chapters list the claims."""
    tables = rung_tables(found)
    kept = computed_somewhere(tables)
    order = [c for c in dict.fromkeys(c for t in tables.values() for c in t.claim) if c in kept]
    wide = pd.DataFrame(index=pd.Index(order, name="claim"))
    for n, t in tables.items():
        t = t.set_index("claim")
        wide[f"verdict {rung_name(n)}"] = t.verdict.reindex(order).fillna("not computed")
        wide[f"statistic {rung_name(n)}"] = t.statistic.reindex(order).fillna("")
    return wide.reset_index()


def ladder_rungs(wide: pd.DataFrame) -> list[str]:
    """The rung names of a :func:`ladder` table, smallest first."""
    return [c.removeprefix("verdict ") for c in wide.columns if c.startswith("verdict ")]


def changed(wide: pd.DataFrame) -> pd.DataFrame:
    """The claims of a :func:`ladder` table judged at both its smallest and its largest rung whose verdict
    differs between them."""
    names = ladder_rungs(wide)
    if len(names) < 2 or wide.empty:
        return wide.iloc[:0]
    first, last = f"verdict {names[0]}", f"verdict {names[-1]}"
    judged_both = (wide[first] != "not computed") & (wide[last] != "not computed")
    return wide[judged_both & (wide[first] != wide[last])][["claim", first, last]]


def ladder_html(wide: pd.DataFrame):
    """A :func:`ladder` table as the book shows it: one column per rung, each cell the verdict (coloured)
    over its statistic."""
    from IPython.display import HTML

    if wide.empty:
        print("no claim is computed at any rung yet")
        return None
    names = ladder_rungs(wide)
    head = "".join(f"<th>{n} images per class</th>" for n in names)
    rows = [f"<tr><th>claim</th>{head}</tr>"]
    for _, r in wide.iterrows():
        cells = "".join(f'<td>{verdict_html(r[f"verdict {n}"], "span")}<br>{html.escape(str(r[f"statistic {n}"]))}</td>'
                        for n in names)
        rows.append(f"<tr><td>{html.escape(r.claim)}</td>{cells}</tr>")
    return HTML(STYLE + '<table class="claims">' + "".join(rows) + "</table>")


def claims(found) -> pd.DataFrame:
    """The claims page's rows: every claim computed at some rung, as judged at the largest rung."""
    tables = rung_tables(found)
    if not tables:
        return table([])
    top_rung, top = list(tables.items())[-1]
    kept = top[top.claim.isin(computed_somewhere(tables))]
    return table(kept.assign(claim=f"with {rung_name(top_rung)} training images per class: " + kept.claim)
                 .to_dict("records"))


def findings(scale: str) -> str:
    """The landing page's paragraph (markdown) on the study at ``scale``: the claims whose verdict changes
    between the smallest and the largest rung, from the stored runs (what is missing, while some are)."""
    from ..results import available
    from ..studies import study_configs

    found = available(study_configs(STUDY, scale), progress=False)
    wide = ladder(found)
    ends = [rung_name(n) for n in rungs(found)]
    missing = (f" {len(found.missing)} of its {len(found.configs)} runs are not stored yet, so some verdicts are "
               "not computed." if found.missing else "")
    text = (f"The chapter {{doc}}`_executed/{CHAPTER}` trains ResNet18 and Swin-T, clean and under 40% random labels, "
            f"on {', '.join(ends[:-1])} and {ends[-1]} training images per class ({scale} scale) and judges the "
            f"clean and label-noise claims at each.{missing}\n\n")
    moved = changed(wide)
    if moved.empty:
        return text + f"No verdict computed at both {ends[0]} and {ends[-1]} images per class changes between them.\n"
    labels = moved.claim.str.split(': "').str[0]  # the claim without its quote
    return (text + f"Verdicts that change from {ends[0]} to {ends[-1]} images per class ({len(moved)} of the "
            f"{len(wide)} claims judged):\n\n"
            + "".join(f"- {label}: {r.iloc[1]} → {r.iloc[2]}\n" for label, (_, r) in zip(labels, moved.iterrows())))


def accuracy_table(found) -> pd.DataFrame:
    """Every run's accuracies by rung, with the paper's test accuracy where it states one."""
    runs = frames.run_table(found.summaries, ("model", "noise", "n_per_class", "epochs", "seed", "train_acc",
                                              "test_acc"))
    paper = [PAPER_TEST_ACC.get((m, n)) for m, n in zip(runs.model, runs.noise)]
    return runs.assign(**{"paper test_acc (all images)": paper})
