"""One run's config: :class:`RunConfig` (what a run computes, validated and canonical) and its content key.

:meth:`RunConfig.key` hashes every field that changes the numbers together with :data:`CODE_VERSION`,
so two configs share stored results exactly when they would compute the same numbers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .corruptions import parse_corruption
from .data import DATASET_NAMES, LOADERS
from .domains import DOMAIN_SETS, DomainShift
from .models import ACTIVATIONS, model_names, model_overrides
from .noise import parse_noise
from .scales import SCALES
from .streaming import FEATURE_VIEWS
from .train import RECIPES, default_recipe

# The version of every part of the code that decides stored numbers. Bump an entry in the same
# commit as a change that alters numbers of that part: every run depending on it gets a new key and
# is recomputed, while the old results stay on disk, reported as incompatible (Store.incompatible).
CODE_VERSION = {
    "data": 1,        # ncutils.data, noise, corruptions, domains: pixels, subsets, labels
    "train": 1,       # ncutils.train and ncutils.models: the trained weights
    "metrics": 1,     # ncutils.metrics and ncutils.streaming: the neural-collapse measures
    "probe": 2,       # ncutils.probe and ncutils.logistic: linear-probe accuracies (2: L2 1e-3 -> 1e-4)
    "experiment": 1,  # ncutils.experiment: what is measured on which data, and the tables' columns
}
TRAINING_CODE = ("data", "train")  # the parts a checkpoint depends on

KEY_LENGTH = 16  # hex digits of sha256 (64 bits)
NOISE_FIELDS = ("noise", "corruption")
TRAINING_FIELDS = ("model", "dataset", "size", "noise", "corruption", "n_per_class", "image_size", "epochs",
                   "recipe", "batch_size", "precision", "seed")
PRECISIONS = ("bf16", "fp32")
PROBE_METHODS = ("sgd", "converged")
# Fields added after results were stored, with the value every run stored before had: hashed only when
# set to another value, so older keys hold.
LATER_FIELDS = {"image_size": None, "precision": "bf16", "probe_method": "sgd", "jackknife": 0}


@dataclass(frozen=True)
class RunConfig:
    """One run: train ``model`` on ``dataset`` (under a label noise or input corruption), then measure
    every layer tap on the training and test data and probe it linearly.

    Fields are validated and canonicalised on construction (specs parsed and re-spelled, sizes
    sorted, the recipe resolved), so equal runs have equal configs and equal keys. Build one at a
    scale's sizes with :meth:`at_scale`.
    """

    model: str
    """registered model name (``ncutils.models.model_names()``), e.g. ``"resnet18"``"""
    dataset: str = "cifar10"
    """training data (an ``ncutils.load_dataset`` name); for domain shift the source domain, e.g. ``"pacs:photo"``"""
    size: Mapping | tuple = ()
    """model size overrides, e.g. ``{"width": 16}`` (kept as sorted pairs); empty = the paper's size"""
    noise: str = "clean"
    """training-label noise (``ncutils.noise.parse_noise``): ``"clean"``, ``"random:0.4"``, ``"cifar10n:worse"``"""
    corruption: str = "clean"
    """input corruption of train and test images (``ncutils.corruptions.parse_corruption``): ``"clean"``,
    ``"gaussian_noise:3"`` (CIFAR-10-C severity) or ``"gaussian_noise:level2"`` (the paper's level)"""
    targets: tuple[str, ...] = ()
    """target domains of a folder-per-domain ``dataset``, measured and probed after training on the source"""
    n_per_class: int | None = None
    """training images per class (class-balanced, drawn with ``seed``); None = the whole training split"""
    eval_n_per_class: int | None = None
    """test images per class measured (drawn with ``seed``); None = the whole test split"""
    target_n_per_class: int | None = None
    """target-domain training images per class for probing (limited target data); None = as many as its
    smallest class has"""
    epochs: int = 200
    """training epochs; 0 measures the model at initialisation"""
    recipe: str | None = None
    """training recipe (``ncutils.train.RECIPES``); None = the appendix's recipe for the model"""
    batch_size: int = 128
    """images per training step"""
    image_size: int | None = None
    """resize every image (train, test, targets) to this side, antialiased; None = as stored"""
    precision: str = "bf16"
    """training forward pass: ``"bf16"`` autocast (about 2x faster for convolutions on CPU) or ``"fp32"``
    (faster for ViT on CPU); weights, optimiser and every measurement stay fp32"""
    seed: int = 0
    """seeds the subsets, the label noise, the corruption, the initialisation, batch order and probes"""
    probe: bool = True
    """train a linear probe on every layer tap (appendix A.1)"""
    probe_epochs: int = 10
    """epochs of the SGD probe (the paper: 10)"""
    probe_method: str = "sgd"
    """the linear probe of every tap: "sgd" (appendix A.1: SGD for probe_epochs epochs) or "converged" (a
    multinomial logistic regression fitted to convergence, ``ncutils.logistic``)"""
    jackknife: int = 0
    """groups of the delete-a-group jackknife of CDNV and NC2 (``ncutils.streaming.measure``), which gives
    their standard error over images; 0 = none"""
    features: tuple[str, ...] = FEATURE_VIEWS
    """feature views measured: ``"flat"`` (the paper's) and/or ``"pooled"`` (mean over positions)"""
    scale: str = "custom"
    """label of the scale the sizes came from (smoke/cpu/paper); not hashed: the sizes themselves are"""

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        if self.model not in model_names():
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(model_names())}")
        family, _, domain = self.dataset.partition(":")
        family = family.lower()
        if family not in LOADERS or bool(domain) != (family in DOMAIN_SETS):
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASET_NAMES)}")
        if domain and domain not in DOMAIN_SETS[family]:
            raise ValueError(f"unknown {family} domain {domain!r}; valid: {', '.join(DOMAIN_SETS[family])}")
        put("dataset", f"{family}:{domain}" if domain else family)
        size = dict(self.size.items() if isinstance(self.size, Mapping) else self.size)
        defaults = model_overrides(self.model)
        unknown = sorted(set(size) - set(defaults))
        if unknown:
            raise ValueError(f"{self.model} takes no size overrides {unknown}; valid: {defaults}")
        size = {k: _size_value(k, v, defaults[k]) for k, v in size.items()}
        put("size", tuple(sorted((k, v) for k, v in size.items() if v != defaults[k])))  # paper size: ()
        put("noise", str(parse_noise(self.noise)))
        put("corruption", str(parse_corruption(self.corruption)))
        if self.noise.startswith("cifar10n") and self.dataset != "cifar10":
            raise ValueError(f"CIFAR-10N label noise needs dataset 'cifar10', got {self.dataset!r}")
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        put("targets", targets)
        if targets:
            DomainShift(family, domain, targets)  # validates the domains
            put("targets", tuple(d for d in DOMAIN_SETS[family] if d in targets))
        elif self.target_n_per_class is not None:
            raise ValueError("target_n_per_class needs targets (target domains to probe)")
        put("recipe", default_recipe(self.model) if self.recipe is None else self.recipe)
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; valid: {', '.join(RECIPES)}")
        for name, low in (("epochs", 0), ("batch_size", 1), ("seed", 0), ("probe_epochs", 1)):
            _check_int(name, getattr(self, name), low)
        for name in ("n_per_class", "eval_n_per_class", "target_n_per_class", "image_size"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if not isinstance(self.jackknife, int) or self.jackknife < 0 or self.jackknife == 1:
            raise ValueError(f"jackknife must be 0 (none) or a number of groups >= 2, got {self.jackknife!r}")
        if self.probe_method not in PROBE_METHODS:
            raise ValueError(f"unknown probe_method {self.probe_method!r}; valid: {', '.join(PROBE_METHODS)}")
        if not isinstance(self.probe, bool):
            raise ValueError(f"probe must be True or False, got {self.probe!r}")
        features = (self.features,) if isinstance(self.features, str) else tuple(self.features)
        if not features or not set(features) <= set(FEATURE_VIEWS):
            raise ValueError(f"features must be one or more of {FEATURE_VIEWS}, got {self.features!r}")
        put("features", tuple(v for v in FEATURE_VIEWS if v in features))

    @classmethod
    def at_scale(cls, model: str, dataset: str, scale: str, **fields) -> "RunConfig":
        """A config with the sizes of ``scale`` (``ncutils.scales.SCALES``); ``fields`` override any."""
        from .scales import get_scale

        s = get_scale(scale)
        base = dict(size=s.model_size(model), n_per_class=s.n_per_class, eval_n_per_class=s.eval_n_per_class,
                    epochs=s.model_epochs(model, fields.get("noise", "clean")), batch_size=s.batch_size,
                    precision=s.model_precision(model),
                    probe_method=s.probe_method, jackknife=s.jackknife, scale=s.name)
        if "size" in fields:  # extra overrides (e.g. an activation) add to the scale's size
            base["size"] = {**base["size"], **dict(fields.pop("size"))}
        return cls(model=model, dataset=dataset, **{**base, **fields})

    def to_dict(self) -> dict:
        """Every field as plain JSON values (size as a dict, tuples as lists)."""
        d = dataclasses.asdict(self)
        d["size"] = dict(self.size)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunConfig":
        """The inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown RunConfig fields {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def identity(self) -> dict:
        """The fields that change the numbers (every field but the ``scale`` label; a field of
        :data:`LATER_FIELDS` only when it differs from the value runs stored before it had)."""
        d = self.to_dict()
        del d["scale"]
        return {k: v for k, v in d.items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}

    def key(self) -> str:
        """Content hash of :meth:`identity` and :data:`CODE_VERSION`: names the stored results."""
        return _digest({"run": self.identity(), "code": CODE_VERSION})

    def training_key(self) -> str:
        """Content hash of what decides the trained weights: names the checkpoint, so runs that differ
        only in what they measure (or a bumped metrics version) reuse one training."""
        return _digest({"train": self._training_fields(), "code": {k: CODE_VERSION[k] for k in TRAINING_CODE}})

    def training_identity(self) -> dict:
        """What a checkpoint records of its run: {"training_key", "fields"} (the identity fields it hashes)."""
        return {"training_key": self.training_key(), "fields": self._training_fields()}

    def _training_fields(self) -> dict:
        return {k: v for k, v in self.identity().items() if k in TRAINING_FIELDS}

    def config_id(self) -> str:
        """Hash of :meth:`identity` alone: finds results of this config stored by another code version."""
        return _digest({"run": self.identity()})

    @property
    def name(self) -> str:
        """Directory name of the stored run: ``<model>-<dataset>-<key>``."""
        return f"{self.model}-{slug(self.dataset)}-{self.key()}"

    def describe(self) -> str:
        """One line naming the run's model, data and settings (for listings and errors)."""
        size = ",".join(f"{k}={v}" for k, v in self.size)
        parts = [f"{self.model}[{size}]" if size else self.model, self.dataset]
        parts += [f"{name}={getattr(self, name)}" for name in NOISE_FIELDS if getattr(self, name) != "clean"]
        if self.recipe != default_recipe(self.model):
            parts.append(f"recipe={self.recipe}")
        if self.targets:
            parts.append("targets=" + ",".join(self.targets))
        if self.scale in SCALES and self.n_per_class != SCALES[self.scale].n_per_class:
            parts.append(f"n_per_class={self.n_per_class or 'all'}")
        if self.image_size is not None:
            parts.append(f"image_size={self.image_size}")
        if self.batch_size != RunConfig.batch_size:
            parts.append(f"batch_size={self.batch_size}")
        if self.precision != RunConfig.precision:
            parts.append(f"precision={self.precision}")
        parts += [f"seed={self.seed}", f"epochs={self.epochs}"]
        return " ".join(parts)


def _size_value(name: str, value, default):
    """A size override checked and normalised by the kind of its default: an activation name, a rate
    in [0, 1) (as float) or an integer >= 1 (as int)."""
    if isinstance(default, str):
        if not isinstance(value, str) or value not in ACTIVATIONS:
            raise ValueError(f"size {name} must be one of {', '.join(ACTIVATIONS)}, got {value!r}")
        return value
    if isinstance(value, (bool, np.bool_)):
        pass  # an integer to Python, never a size
    elif isinstance(default, float) and isinstance(value, (int, float, np.integer, np.floating)) and 0 <= value < 1:
        return float(value)
    elif not isinstance(default, float) and isinstance(value, (int, np.integer)) and value >= 1:
        return int(value)
    valid = "a number in [0, 1)" if isinstance(default, float) else "an integer >= 1"
    raise ValueError(f"size {name} must be {valid}, got {value!r}")


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text)


