"""Domain shift: a model trained on a source domain, measured and linearly probed on target domains.

The earlier version of the paper (section 4.3) pretrains on one Office-Home domain and, for each
other domain, evaluates the intermediate collapse and trains layer-wise linear probes "with a limited
amount of downstream data". Any folder-per-domain set with a shared label space works the same way:
PACS (art_painting, cartoon, photo, sketch; offline at 64x64) and Office-Home (Art, Clipart,
Product, Real_World), both through :func:`ncutils.data.load_dataset` (``"pacs:<domain>"``), whose
fixed class-stratified 80/20 split per domain gives each domain's train and test images.

Spec strings (:func:`parse_domain`): ``"PACS:photo->sketch"``, ``"PACS:photo->sketch,cartoon"``,
``"PACS:photo"`` (every other domain is a target), ``"office-home:Art->Clipart"``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .data import OFFICE_HOME_DOMAINS, PACS_DOMAINS, ImageData, balanced_subset, load_dataset

DOMAIN_SETS = {"pacs": PACS_DOMAINS, "office-home": OFFICE_HOME_DOMAINS}
_SET_ALIASES = {"officehome": "office-home", "office_home": "office-home"}
DOMAIN_SPEC_FORMS = ("<set>:<source>-><target>[,<target>...]", "<set>:<source> (all other domains are targets)")


def load_domain(dataset: str, domain: str, split: str, root: str | os.PathLike | None = None) -> ImageData:
    """One domain's ``split`` of a folder-per-domain set: ``load_dataset(f"{dataset}:{domain}", split)``."""
    return load_dataset(f"{dataset}:{domain}", split, root=root)


def _domain_key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class DomainShift:
    """Source and target domains of one folder-per-domain ``dataset`` (``pacs`` or ``office-home``)."""

    dataset: str
    source: str
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.dataset not in DOMAIN_SETS:
            raise ValueError(f"unknown domain-shift dataset {self.dataset!r}; valid: {', '.join(DOMAIN_SETS)}")
        domains = DOMAIN_SETS[self.dataset]
        for domain in (self.source, *self.targets):
            if domain not in domains:
                raise ValueError(f"unknown {self.dataset} domain {domain!r}; valid: {', '.join(domains)}")
        if not self.targets or self.source in self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must be distinct domains other than the source {self.source!r}, "
                             f"got {self.targets}")

    def __str__(self) -> str:
        return f"{self.dataset}:{self.source}->{','.join(self.targets)}"

    def source_data(self, split: str = "train", *, root: str | os.PathLike | None = None) -> ImageData:
        """The source domain's ``split`` (train: what the model is trained on)."""
        return load_domain(self.dataset, self.source, split, root)

    def target_data(self, target: str, split: str = "test", *, root: str | os.PathLike | None = None) -> ImageData:
        """A target domain's ``split``, normalised with the source's training statistics.

        The model's input pipeline is the source's, so target images are normalised as the source's
        were (``mean``/``std`` of the source training split).
        """
        if target not in self.targets:
            raise ValueError(f"{target!r} is not a target of {self}; targets: {', '.join(self.targets)}")
        data = load_domain(self.dataset, target, split, root)
        source = self.source_data("train", root=root)
        return replace(data, mean=source.mean, std=source.std,
                       provenance={**data.provenance, "normalised_as": source.name})

    def limited_target(self, target: str, n_per_class: int, seed: int, *,
                       root: str | os.PathLike | None = None) -> "LimitedTarget":
        """The "limited target data" split of one target domain for linear probing (earlier version, section 4.3).

        probe_train: ``n_per_class`` images of every class drawn with ``seed`` from the target's training
        split; probe_test: the target's whole test split, the same for every budget and seed, so probe
        accuracies are comparable across them. Both normalised with the source's statistics.
        """
        pool = self.target_data(target, "train", root=root)
        probe_train = pool.subset(balanced_subset(pool.labels, n_per_class, seed))
        return LimitedTarget(target=target, n_per_class=n_per_class, seed=seed, probe_train=probe_train,
                             probe_test=self.target_data(target, "test", root=root))


@dataclass(frozen=True)
class LimitedTarget:
    """Target-domain data for linear probing: a small class-balanced training set and a held-out test set."""

    target: str
    n_per_class: int
    seed: int
    probe_train: ImageData
    probe_test: ImageData


def parse_domain(spec: str | DomainShift) -> DomainShift:
    """A :class:`DomainShift` from a spec string (case-insensitive; ``-`` and ``_`` interchangeable).

    ``"PACS:photo->sketch"``: train on photo, target sketch; ``"PACS:photo->sketch,cartoon"``: several
    targets; ``"PACS:photo"`` or ``"PACS:photo->*"``: every other domain is a target.
    """
    if isinstance(spec, DomainShift):
        return spec
    dataset, sep, rest = str(spec).strip().partition(":")
    dataset = _SET_ALIASES.get(dataset.strip().lower(), dataset.strip().lower())
    if dataset not in DOMAIN_SETS or not sep:
        raise ValueError(f"cannot parse domain shift {spec!r}; valid forms: {', '.join(DOMAIN_SPEC_FORMS)} "
                         f"with set in {', '.join(DOMAIN_SETS)}")
    domains = {_domain_key(d): d for d in DOMAIN_SETS[dataset]}

    def domain(name: str) -> str:
        if _domain_key(name) not in domains:
            raise ValueError(f"unknown {dataset} domain {name.strip()!r} in {spec!r}; "
                             f"valid: {', '.join(DOMAIN_SETS[dataset])}")
        return domains[_domain_key(name)]

    source_name, arrow, target_names = rest.partition("->")
    source = domain(source_name)
    if not arrow or target_names.strip() == "*":
        targets = tuple(d for d in DOMAIN_SETS[dataset] if d != source)
    else:
        targets = tuple(domain(t) for t in target_names.split(","))
    return DomainShift(dataset, source, targets)
