"""The papers' claims, each judged from stored results.

One module per book chapter (``ncutils/claims/<chapter>.py``, the chapter being
``notebooks/<chapter>.md``). A module defines

- ``STUDY``: the study (``ncutils.studies``) whose runs its claims read,
- ``claims(found: StudyResults) -> pd.DataFrame`` with the columns :data:`COLUMNS`: what the paper
  claims, the statistic computed from the runs, its verdict (one of :data:`VERDICTS`), and the figure
  it was computed from, as a link (``figure_link``), and
- ``accuracy_table(found: StudyResults) -> pd.DataFrame``: the accuracies of every run the chapter shows.

``found`` holds every seed's run of a config repeated with several seeds.

The study's grid is ``found.configs`` (the stored and the missing runs' configs), not the table's
string columns. The frames the chapter's figures draw (``ncutils.plots``) are built here too, so every
verdict comes from the numbers shown.

The chapter shows its own rows under "What holds at this scale"; the claims page shows every
chapter's rows (:func:`all_claims`). Nothing here is typed in: a claim whose runs are not stored yet
gets the verdict "not computed".
"""
from __future__ import annotations

import html
import importlib
import pkgutil
from collections.abc import Callable

import pandas as pd

COLUMNS = ("claim", "statistic", "verdict", "figure")
VERDICTS = ("holds", "does not hold", "inconclusive", "not computed")
VERDICT_COLOURS = {"holds": "#4c9a5a", "does not hold": "#c0504d", "inconclusive": "#e0a030",
                   "not computed": "#8c8c8c"}


def figure_link(chapter: str, target: str) -> str:
    """The book-relative link to the MyST target ``(target)=`` placed before a figure in ``chapter``."""
    return f"{chapter}.html#{target}"


def table(rows: list[dict]) -> pd.DataFrame:
    """Rows as a claims table, checking the columns and verdicts."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    bad = sorted(set(frame.verdict) - set(VERDICTS))
    if bad:
        raise ValueError(f"unknown verdicts {bad}; valid: {', '.join(VERDICTS)}")
    return frame


STYLE = ("<style>.claims td, .claims th {vertical-align: top; text-align: left; padding: 4px 6px;}"
         " .claims .chapter th {background: #eef1f5; font-size: 1.05em;}"
         " .claims .verdict {white-space: nowrap; font-weight: bold;}</style>")


def verdict_html(verdict: str, tag: str = "td") -> str:
    """One verdict as the claims tables show it: bold, in its colour (:data:`VERDICT_COLOURS`)."""
    return f'<{tag} class="verdict" style="color: {VERDICT_COLOURS[verdict]}">{verdict}</{tag}>'


def as_html(claims: pd.DataFrame, labels: dict[str, str] | None = None,
            titles: dict[str, tuple[str, bool]] | None = None):
    """A claims table for the book: verdicts coloured, each figure a link to its section, named by
    ``labels`` ({link: the section's heading}; else by its target).

    With ``titles`` ({chapter: (title, whether the book has the page)}), the rows of a table with a
    ``chapter`` column are grouped under each chapter's title and tally of verdicts; a chapter outside
    the book is named without links.
    """
    from IPython.display import HTML

    labels = labels or {}
    rows = ["<tr><th>claim</th><th>statistic</th><th>verdict</th><th>figure</th></tr>"]
    grouped = titles is not None and "chapter" in claims
    for chapter, group in claims.groupby("chapter", sort=False) if grouped else [(None, claims)]:
        linked = True
        if grouped:
            title, linked = titles.get(chapter, (chapter, False))
            name = f'<a href="{chapter}.html">{html.escape(title)}</a>' if linked else html.escape(title)
            tally = ", ".join(f"{(group.verdict == v).sum()} {v}" for v in VERDICTS)
            rows.append(f'<tr class="chapter"><th colspan="4">{name} &mdash; {tally}</th></tr>')
        for r in group.itertuples():
            link = r.figure if isinstance(r.figure, str) else ""
            text = html.escape(labels.get(link, link.partition("#")[2] or link))
            figure = f'<a href="{html.escape(link)}">{text}</a>' if link and linked else text
            rows.append(f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(str(r.statistic))}</td>"
                        f"{verdict_html(r.verdict)}<td>{figure}</td></tr>")
    return HTML(STYLE + '<table class="claims">' + "".join(rows) + "</table>")


def verdict_counts(claims: pd.DataFrame, chapters: list[str]) -> pd.DataFrame:
    """Claims per verdict of each chapter (rows in the order of ``chapters``), a total row and column."""
    counts = pd.DataFrame({v: [(claims[claims.chapter == c].verdict == v).sum() for c in chapters] for v in VERDICTS},
                          index=pd.Index(chapters, name="chapter"))
    counts.loc["all chapters"] = counts.sum()
    counts["claims"] = counts.sum(axis=1)
    return counts


def not_computed(claim: str, figure: str, why: str = "its runs are not stored yet") -> dict:
    """The row of a claim that cannot be judged from the stored runs."""
    return {"claim": claim, "statistic": why, "verdict": "not computed", "figure": figure}


def judged(claim: str, figure: str, needed: list[str], stored, judge: Callable[[], tuple[str, str]],
           why: str = "") -> dict:
    """The claim judged by ``judge() -> (statistic, verdict)`` once every run of ``needed`` is in
    ``stored``; before that (or with a reason ``why`` it cannot be judged at this scale) not computed,
    with what the stored runs give."""
    if why:
        return not_computed(claim, figure, why)
    missing = [n for n in needed if n not in stored]
    if not missing:
        statistic, verdict = judge()
        return {"claim": claim, "statistic": statistic, "verdict": verdict, "figure": figure}
    why = f"not stored yet: {', '.join(missing)}"
    if len(missing) < len(needed):
        why += f"; the stored runs give: {judge()[0]}"
    return not_computed(claim, figure, why)


def chapters() -> list[str]:
    """The chapters with claims (every module of this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def chapter_claims(chapter: str, scale: str, compute: bool = False) -> pd.DataFrame:
    """The claims of one chapter judged from the runs of its study at ``scale``."""
    from ..results import available
    from ..studies import study_configs

    if chapter not in chapters():
        raise ValueError(f"no claims for chapter {chapter!r}; valid: {', '.join(chapters())}")
    module = importlib.import_module(f"{__name__}.{chapter}")
    found = available(study_configs(module.STUDY, scale), compute=compute, progress=False)
    return module.claims(found).assign(chapter=chapter)


def all_claims(scale: str) -> pd.DataFrame:
    """Every chapter's claims at ``scale``, from stored results only."""
    return pd.concat([chapter_claims(c, scale) for c in chapters()], ignore_index=True)
