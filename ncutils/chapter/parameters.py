"""Checks a chapter's parameters (types and values) before anything is loaded or trained; a wrong one fails
in one line.

``papermill -p compute false`` passes the string ``'false'``, which Python takes as true: without this
check a chapter would train its missing runs (hours at the cpu scale).
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Callable

from ..corruptions import SEVERITY_PARAMETERS, parse_corruption
from ..domains import parse_domain
from ..models import model_names
from ..noise import CIFAR10N_KINDS, parse_noise
from ..scales import SCALES
from ..studies import RESNETS, SWINS

PAPER_LEVELS = (0, 1, 2, 3)  # clean, then CIFAR-10-C severities 1, 3, 5


class ParameterError(ValueError):
    """A chapter parameter of the wrong type or value; the message is one line naming it."""


def _fail(name: str, value, expected: str):
    raise ParameterError(f"parameter {name} = {value!r} ({type(value).__name__}): expected {expected}")


def boolean(name: str, value) -> None:
    if not isinstance(value, bool):
        _fail(name, value, f"True or False (papermill: -p {name} False, capitalised; -p {name} false "
                           "passes a string, which Python takes as true)")


def one_of(valid) -> Callable:
    def check(name: str, value) -> None:
        if not isinstance(value, str) or value not in valid:
            _fail(name, value, f"one of {', '.join(valid)}")
    return check


def integer(minimum: int) -> Callable:
    def check(name: str, value) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            _fail(name, value, f"an integer >= {minimum}")
    return check


def names(valid, what: str) -> Callable:
    """A list of names (or numbers) each in ``valid``."""
    def check(name: str, value) -> None:
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            _fail(name, value, f"a non-empty list of {what}: {', '.join(map(str, valid))}")
        unknown = [v for v in value if isinstance(v, bool) or v not in valid]
        if unknown:
            _fail(name, value, f"known {what} only (unknown: {', '.join(map(repr, unknown))}; "
                               f"valid: {', '.join(map(str, valid))})")
    return check


def rates(name: str, value) -> None:
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(r, numbers.Real) and not isinstance(r, bool) and 0 <= r <= 1 for r in value)):
        _fail(name, value, "a non-empty list of rates in [0, 1]")


def model_specs(name: str, value) -> None:
    """A list of model names for :func:`ncutils.zoo.make_model`: registry names, ``torchvision:NAME``,
    ``timm:NAME`` or ``package.module:callable``."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        _fail(name, value, "a non-empty list of model names (e.g. ['torchvision:resnet18', 'timm:convnext_atto'])")
    bad = [v for v in value if not isinstance(v, str) or not v.strip()
           or (":" not in v and v not in model_names()) or v.endswith(":")]
    if bad:
        _fail(name, value, f"registry names ({', '.join(model_names())}), torchvision:NAME, timm:NAME or "
                           f"package.module:callable (not: {', '.join(map(repr, bad))})")


def optional(check: Callable) -> Callable:
    """``check``, or None (the study's own setting)."""
    def check_optional(name: str, value) -> None:
        if value is not None:
            check(name, value)
    return check_optional


def specs(parse: Callable, what: str, example: str) -> Callable:
    """A non-empty list of strings that ``parse`` accepts (label noises, input corruptions)."""
    def check(name: str, value) -> None:
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            _fail(name, value, f"a non-empty list of {what}, e.g. {example}")
        for v in value:
            try:
                parse(v)
            except (ValueError, TypeError) as e:
                _fail(name, value, f"{what} only ({str(e).splitlines()[0]})")
    return check


def seeds(name: str, value) -> None:
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in value)):
        _fail(name, value, "a non-empty list of integers >= 0")


def _figured_corruption(spec: str):
    """A corruption the corruption chapter draws (Gaussian or speckle noise)."""
    corruption = parse_corruption(spec)
    if corruption.name not in ("gaussian_noise", "speckle_noise"):
        raise ValueError(f"{spec!r}: the chapter's figures show gaussian_noise and speckle_noise only")
    return corruption


def path_or_none(name: str, value) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        _fail(name, value, "None or a directory path")


def domain_shift(name: str, value) -> None:
    try:
        parse_domain(value)
    except (ValueError, TypeError) as e:
        _fail(name, value, f"a domain shift spec such as 'PACS:photo' ({str(e).splitlines()[0]})")


# every chapter takes these two; its parameters cell may hold more (PARAMETERS)
CHECKS: dict[str, Callable] = {"scale": one_of(tuple(SCALES)), "compute": boolean}
# every chapter of a study takes these (None: the study's own; ncutils.chapter.custom)
RUN_SETTINGS: dict[str, Callable] = {"models": optional(names(tuple(model_names()), "models")),
                                     "n_per_class": optional(integer(1)), "epochs": optional(integer(0)),
                                     "seeds": optional(seeds)}
NOISES = {"noises": optional(specs(parse_noise, "label noises", "['random:0.3', 'cifar10n:worse']"))}
CORRUPTIONS = {"corruptions": optional(specs(parse_corruption, "input corruptions",
                                             "['gaussian_noise:level2', 'speckle_noise:5']"))}
PARAMETERS: dict[str, dict[str, Callable]] = {
    **{c: RUN_SETTINGS for c in ("clean", "domain", "vgg_vit", "small_nets", "train_vs_test", "nc1_vs_cdnv")},
    "label_noise": {**RUN_SETTINGS, **NOISES},
    "corruption": {**RUN_SETTINGS, **CORRUPTIONS,  # its figures are of ResNets and Swins under these two
                   "models": optional(names(RESNETS + SWINS, "ResNets and Swin Transformers")),
                   "corruptions": optional(specs(_figured_corruption, "Gaussian or speckle noise",
                                                 "['gaussian_noise:level2', 'speckle_noise:5']"))},
    "data_scale": {"models": optional(names(tuple(model_names()), "models")), "seeds": optional(seeds)},
    "primer": {"num_classes": integer(2), "dim": integer(1), "per_class": integer(2), "steps": integer(2),
               "seed": integer(0)},
    "measure_your_model": {"models": model_specs},
    "noise_and_shift": {"data_root": path_or_none, "seed": integer(0),
                        "corruptions": names(tuple(SEVERITY_PARAMETERS), "CIFAR-10-C corruptions"),
                        "paper_levels": names(PAPER_LEVELS, "paper levels"),
                        "cifar10n_kinds": names(CIFAR10N_KINDS, "CIFAR-10N label sets"), "random_rates": rates,
                        "domain": domain_shift, "probe_n_per_class": integer(1)},
}


def _etf_fits(params: dict) -> None:
    """The primer's dim >= num_classes - 1: a simplex ETF of K classes spans K - 1 dimensions."""
    k, dim = params.get("num_classes"), params.get("dim")
    if k is not None and dim is not None and dim < k - 1:
        _fail("dim", dim, f"an integer >= num_classes - 1 = {k - 1} (a simplex ETF of {k} classes spans "
                          f"{k - 1} dimensions)")


# checks of several parameters together, after each one's own
JOINT: dict[str, Callable] = {"primer": _etf_fits}


def check_parameters(chapter: str, **params) -> dict:
    """``params`` if each is of the chapter's parameters and has a valid type and value; otherwise a
    one-line :class:`ParameterError` naming the first wrong one (before anything is loaded or trained)."""
    valid = {**CHECKS, **PARAMETERS.get(chapter, {})}
    absent = [name for name in CHECKS if name not in params]
    if absent:
        raise ParameterError(f"chapter {chapter} needs the parameters {', '.join(absent)}")
    for name, value in params.items():
        if name not in valid:
            raise ParameterError(f"chapter {chapter} has no parameter {name!r}; its parameters: {', '.join(valid)}")
        valid[name](name, value)
    if chapter in JOINT:
        JOINT[chapter](params)
    return params
