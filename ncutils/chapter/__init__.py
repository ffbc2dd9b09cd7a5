"""A chapter's data in one call: its parameters checked, its study's runs loaded, its claims judged.

    chapter = open_chapter("clean", scale=scale, compute=compute)
    print(chapter.status_message())      # what is stored, or which runs are missing and how to compute them
    chapter.accuracy_table()             # every run's accuracies
    plots.family_figure(chapter.metrics, RESNETS, [plots.CDNV, plots.NC2, plots.PROBE], "ResNets", chapter.note)
    chapter.claims_html()                # "What holds at this scale"
    print(chapter.answer("clean-1"))     # a question's answer from the chapter's runs (chapter.questions)

A chapter is ``notebooks/<name>.md``; its claims module (if any) is ``ncutils/claims/<name>.py``, whose
``STUDY`` names the runs it reads. The scale chapter reads every run of the book; the claims page every
chapter's claims; the primer, the glossary and the noise-and-shift chapters read no runs.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import pandas as pd

from .. import claims as claims_package
from ..claims import as_html, chapter_claims, figure_link, verdict_counts
from ..config import RunConfig
from ..results import StudyResults, available
from ..scales import Scale, get_scale
from ..studies import study_configs
from . import pages, questions
from .custom import SETTINGS, customised
from .parameters import ParameterError, check_parameters

__all__ = ["Chapter", "ParameterError", "check_parameters", "open_chapter"]
EVERY_RUN = "all_runs"  # the study of the scale chapter


def study_of(name: str) -> str | None:
    """The study whose runs chapter ``name`` shows (None: it shows none)."""
    if name in claims_package.chapters():
        return importlib.import_module(f"{claims_package.__name__}.{name}").STUDY
    return EVERY_RUN if name == "scale" else None


def known_chapters() -> list[str]:
    """The book's chapters, then any other chapter with claims."""
    book = pages.chapters()
    return book + [c for c in claims_package.chapters() if c not in book]


def models_note(scale: Scale, configs: list[RunConfig]) -> str:
    """The scale in a figure title, with the longer epochs of the chapter's models."""
    return scale.note(c.model for c in configs)


def domain_note(scale: Scale, configs: list[RunConfig]) -> str:
    c = configs[0]
    size = f"{c.image_size}x{c.image_size}" if c.image_size else "stored-size"
    return (f"{scale.name} scale: {c.model} {', '.join(f'{k} {v}' for k, v in c.size) or 'paper size'}, "
            f"{c.n_per_class or 'all'} source images per class, {c.target_n_per_class} target images per class "
            f"for probes, {size} images, {c.epochs} epochs")


def test_split_note(scale: Scale, configs: list[RunConfig]) -> str:
    return f"{models_note(scale, configs)}; {scale.eval_n_per_class or 'all'} test images per class"


NOTES = {"domain": domain_note, "train_vs_test": test_split_note}


@dataclass
class Chapter:
    """What a chapter shows: its runs (``found``, the mean over seeds of runs repeated with several seeds;
    None for a chapter without runs), its claims table, and the scale ``note`` its figure titles carry."""

    name: str
    scale: str
    compute: bool
    params: dict = field(default_factory=dict)
    configs: list[RunConfig] = field(default_factory=list)
    found: StudyResults | None = None
    claims: pd.DataFrame | None = None
    note: str = ""
    order: list[str] = field(default_factory=list)
    """the claims page: its chapters, in the book's order"""
    every_seed: StudyResults | None = None
    """the runs of every seed (what is stored and missing)"""

    @property
    def models(self) -> list[str]:
        """The chapter's models, in the order of its runs (its ``models`` parameter, else its study's)."""
        return list(dict.fromkeys(c.model for c in self.configs))

    @property
    def noises(self) -> list[str]:
        """The label noises of the chapter's runs (clean left out), in the order of its runs."""
        return list(dict.fromkeys(c.noise for c in self.configs if c.noise != "clean"))

    def of(self, family) -> list[str]:
        """The chapter's models among ``family`` (e.g. ``ncutils.studies.RESNETS``), in the family's order."""
        return [m for m in family if m in self.models]

    @property
    def metrics(self) -> pd.DataFrame:
        return self.found.metrics

    @property
    def summaries(self) -> pd.DataFrame:
        return self.found.summaries

    def status_message(self) -> str:
        """One paragraph: every run stored (with the scale), or which are missing and the commands that
        compute them; the claims page: how many claims from which chapters."""
        if self.name == "claims":
            without = [c for c in pages.chapters() if c not in claims_package.chapters()]
            return (f"{len(self.claims)} claims from {len(self.order)} chapters ({self.note})"
                    + (f"; chapters without claims: {', '.join(without)}" if without else ""))
        if self.found is None:
            return f"this chapter reads no runs ({self.note})"
        missing = self.every_seed.missing_message()
        if missing:
            return missing
        if self.name == "scale":
            return f"all {len(self.configs)} runs of the book are stored at the {self.scale} scale"
        detail = ""
        if self.name == "vgg_vit":
            detail = "; " + ", ".join(f"{c.model} {' '.join(f'{k} {v}' for k, v in c.size) or 'paper size'}"
                                      for c in self.configs)
        return f"all {len(self.configs)} runs of this chapter are stored ({self.note}{detail})"

    def accuracy_table(self) -> pd.DataFrame | None:
        """Every stored run's accuracies (the chapter's columns), rounded; None (and a line saying so) when
        no run is stored."""
        if self.summaries.empty:
            print(f"no stored runs at the {self.scale} scale yet")
            return None
        module = importlib.import_module(f"{claims_package.__name__}.{self.name}")
        return module.accuracy_table(self.every_seed).round(4)

    def answer(self, key: str) -> str:
        """The answer to question ``key`` of :data:`questions.QUESTIONS`, computed from the chapter's runs;
        "not computed: ..." (what is missing) while a run it reads is not stored."""
        if not key.startswith(f"{self.name}-") or key not in questions.QUESTIONS:
            raise KeyError(f"chapter {self.name} has no question {key!r}")
        try:
            return questions.QUESTIONS[key][1](self)
        except questions.NotComputed as e:
            return f"not computed: {e}"

    def verdict_counts(self) -> pd.DataFrame:
        """The claims page: claims per verdict of each chapter, with totals."""
        return verdict_counts(self.claims, self.order)

    def claims_html(self):
        """The chapter's claims (the claims page: every chapter's, grouped) as the book shows them, each
        figure named by its section's heading."""
        if self.claims is None or not len(self.claims):
            print("no chapter has claims yet" if self.name == "claims" else "this chapter has no claims")
            return None
        names = list(dict.fromkeys(self.claims.chapter)) if "chapter" in self.claims else [self.name]
        labels = {figure_link(c, target): heading for c in names for target, heading in pages.targets(c).items()}
        book = pages.chapters()
        titles = {c: (pages.title(c), c in book) for c in names} if self.name == "claims" else None
        return as_html(self.claims, labels, titles)


def open_chapter(name: str, *, scale: str, compute: bool, **params) -> Chapter:
    """Chapter ``name`` at ``scale``: its parameters checked first (:func:`check_parameters`: a wrong
    type or value fails in one line before anything is loaded or trained), then its stored runs (the
    missing ones computed first when ``compute``) and its claims judged from them."""
    known = known_chapters()
    if name not in known:
        raise ParameterError(f"unknown chapter {name!r}; valid: {', '.join(known)}")
    check_parameters(name, scale=scale, compute=compute, **params)
    s = get_scale(scale)
    if name == "claims":
        judged = claims_package.chapters()
        order = [c for c in known if c in judged]
        tables = [chapter_claims(c, scale, compute) for c in order]  # = all_claims(scale) when not computing
        table = (pd.concat(tables, ignore_index=True) if tables
                 else pd.DataFrame(columns=["claim", "statistic", "verdict", "figure", "chapter"]))
        return Chapter(name, scale, compute, params, claims=table, note=s.note(), order=order)
    study = study_of(name)
    if study is None:
        return Chapter(name, scale, compute, params, note=s.note())
    configs = customised(study_configs(study, scale), scale, **{k: v for k, v in params.items() if k in SETTINGS})
    every_seed = available(configs, compute=compute, progress=False)  # no progress bars in the pages
    found = every_seed.seed_means()
    judged = None
    if name in claims_package.chapters():
        module = importlib.import_module(f"{claims_package.__name__}.{name}")
        judged = module.claims(every_seed)
    return Chapter(name, scale, compute, params, configs, found, judged, NOTES.get(name, models_note)(s, configs),
                   every_seed=every_seed)
