"""The studies: for each figure family of the book, the runs its notebook asks for at a scale.

A study is a function ``scale name -> list[RunConfig]``; a notebook calls
``results(study_configs(name, scale))`` and ``python -m ncutils sweep <name> --scale <scale>``
computes the same list, so notebooks and sweeps cannot disagree. The scale sets the sizes (through
:meth:`RunConfig.at_scale`); where a study runs fewer settings below the paper scale, its docstring
says which and why. Configs shared by studies (e.g. a clean baseline) have one key and run once.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .config import RunConfig
from .data import PACS_DOMAINS, steps_per_epoch
from .scales import SCALES, get_scale

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
SWINS = ("swin_t", "swin_s", "swin_b", "swin_l")
RANDOM_LABELS = ("random:0.2", "random:0.4", "random:0.6", "random:0.8")
CIFAR10N = ("cifar10n:aggre", "cifar10n:random1", "cifar10n:worse")  # the paper's aggre, randn1, worst
DEPTH_NOISE = "random:0.4"  # below the paper scale, the one noise ResNet34 and Swin-T train under
DEPTH_LEVEL = 3  # below the paper scale, the one Gaussian-noise level ResNet34 trains under (severity 5)
PAPER_LEVELS = (1, 2, 3)  # appendix A.3: CIFAR-10-C severities 1, 3, 5
ACTIVATIONS = ("relu", "tanh", "leaky_relu")
PACS = PACS_DOMAINS  # the loader's domains, in its order (notebooks import this name)
PACS_CLASSES = 7
CIFAR10_CLASSES = 10
PACS_SMALLEST_CLASS = 64  # training images of sketch's "house", the smallest class of any PACS domain
TARGET_IMAGES_PER_CLASS = 20  # "a limited amount of downstream data" for probing a target domain
SEEDS = 3  # runs whose statistics are compared between models are repeated with seeds 0, 1, 2
SMOKE_SEEDS = 2  # the fewest that give a spread, for the tests
SEEDED_CLEAN = ("resnet18", "resnet34", "resnet50", "swin_t", "swin_s")  # depth and architecture, clean

# Below the paper scale a Swin costs 3.5-7 ResNet18s (fp32, one core: Swin-T/S/B*/L* 155/96/71/51
# images/s, ResNet18 536), and the cpu scale must fit 20 CPU-hours with three seeds of every compared
# run. So the studies keep the smallest Swin where a pair would be compared: the clean study trains
# Swin-T and Swin-S (Swin-B*/L* at the paper scale only), the label-noise study Swin-T under
# DEPTH_NOISE only, and the corruption study ResNets only. Chapters take any model as a parameter.
SWINS_BELOW_PAPER = ("swin_t", "swin_s")

# Below the paper scale the domain study trains ResNet18, not the paper's ResNet50: with three seeds of
# four sources, ResNet50 (width 8, fp32, 152 images/s on one core) would cost 4.3 CPU-hours, ResNet18
# (536 images/s) 1.3: a fifth of the cpu scale's budget against a sixteenth.
DOMAIN_MODEL_BELOW_PAPER = "resnet18"

# The data-scale ladder: the smallest model of each architecture, clean and under DEPTH_NOISE, trained on
# more images per class than the scale's. Each rung: training images per class -> its epochs (None: the
# scale's; under label noise, times ``Scale.noisy_longer``). The scale's own rung is the other studies'
# runs, with their seeds; a larger rung runs once.
# cpu: the appendix's schedule shape (its milestones are fractions of the epochs) over fewer epochs as the
# images grow: 100 at 300 per class (1.5 times the SGD steps of 100 per class), 50 at 1,000 (2.6 times).
# Training at one thread (images/s: ResNet18 536, Swin-T 155), clean + noisy: ResNet18 25 + 50 min,
# Swin-T 86 + 172 min, 5.5 CPU-hours in all (issue 19's budget: 6); the longest run, Swin-T under noise
# at 1,000 per class, 108 minutes (limit 150).
DATA_MODELS = ("resnet18", "swin_t")
DATA_RUNGS = {"smoke": {20: None, 40: None}, "cpu": {100: None, 300: 100, 1000: 50},
              "paper": {100: None, 300: None, 1000: None, None: None}}

STUDIES: dict[str, Callable[[str], list[RunConfig]]] = {}


def study(fn: Callable[[str], list[RunConfig]]) -> Callable[[str], list[RunConfig]]:
    STUDIES[fn.__name__] = fn
    return fn


def study_names() -> list[str]:
    return list(STUDIES)


def domain_model(scale: str) -> str:
    """The model of the domain study: the paper's ResNet50, or :data:`DOMAIN_MODEL_BELOW_PAPER` below it."""
    return "resnet50" if scale == "paper" else DOMAIN_MODEL_BELOW_PAPER


def swins(scale: str) -> tuple[str, ...]:
    """The Swin Transformers of the clean study: all four at the paper scale, :data:`SWINS_BELOW_PAPER` below it."""
    return SWINS if scale == "paper" else SWINS_BELOW_PAPER


def seeds(scale: str) -> range:
    """The seeds of the runs a study repeats (:data:`SEEDS`; :data:`SMOKE_SEEDS` at the smoke scale)."""
    return range(SMOKE_SEEDS if scale == "smoke" else SEEDS)


def repeated(config: RunConfig, scale: str, repeat: bool = True) -> list[RunConfig]:
    """``config`` with each of the scale's :func:`seeds` (seed 0 first), or alone if not ``repeat``."""
    return [replace(config, seed=s) for s in seeds(scale)] if repeat else [config]


def study_configs(name: str, scale: str) -> list[RunConfig]:
    """The runs of study ``name`` at ``scale`` (ValueError naming the valid ones otherwise)."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; valid: {', '.join(STUDIES)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    return STUDIES[name](scale)


@study
def clean(scale: str) -> list[RunConfig]:
    """Figures 1, 2, 5, 6: ResNet18-152 and Swin T/S/B*/L* (T/S below the paper scale) on clean CIFAR-10 (and CIFAR-100).

    CIFAR-100 runs are listed at the paper scale only: the offline machines that compute the
    smaller scales have no CIFAR-100 (see the data README); the notebooks show it when present.
    The models of :data:`SEEDED_CLEAN` on CIFAR-10 get :func:`seeds` (depth and architecture compared).
    """
    datasets = ("cifar10", "cifar100") if scale == "paper" else ("cifar10",)
    return [c for d in datasets for m in RESNETS + swins(scale)
            for c in repeated(RunConfig.at_scale(m, d, scale), scale, d == "cifar10" and m in SEEDED_CLEAN)]


@study
def label_noise(scale: str) -> list[RunConfig]:
    """Figures 3, 4, 8, 9: random labels (r = 0.2-0.8) and CIFAR-10N (aggre, random1, worse), with clean baselines.

    Paper scale: ResNet18/34 and Swin T/S under every noise. Smaller scales: ResNet18 under every
    noise, ResNet34 and Swin T under :data:`DEPTH_NOISE` only, beside their clean runs: ResNet depths
    and the two architectures compared at a tenth of the cost (see :data:`SWINS_BELOW_PAPER`). Those
    models get :func:`seeds` clean and under :data:`DEPTH_NOISE`.
    """
    every = ("clean",) + RANDOM_LABELS + CIFAR10N
    if scale == "paper":
        runs = [(m, n) for m in ("resnet18", "resnet34", "swin_t", "swin_s") for n in every]
    else:
        runs = [("resnet18", n) for n in every] + [(m, n) for m in ("resnet34", "swin_t") for n in ("clean", DEPTH_NOISE)]
    return [c for m, n in runs
            for c in repeated(RunConfig.at_scale(m, "cifar10", scale, noise=n), scale, n in ("clean", DEPTH_NOISE))]


@study
def corruption(scale: str) -> list[RunConfig]:
    """Figures 10-12: Gaussian noise (ResNet and Swin) and speckle noise (ResNet) at the paper's levels 1-3.

    Inputs are regenerated with Hendrycks & Dietterich's formulas (ncutils.corruptions), train and
    test alike. Paper scale: ResNet18/34 and Swin T/S at every level. Smaller scales: ResNets only
    (see :data:`SWINS_BELOW_PAPER`), ResNet18 at every level, ResNet34 under Gaussian noise at
    :data:`DEPTH_LEVEL` only (beside its clean run). Both get :func:`seeds` clean and under Gaussian
    noise at :data:`DEPTH_LEVEL` (the depth comparison).
    """
    paper = scale == "paper"
    every, deeper = (("resnet18", "swin_t"), ("resnet34", "swin_s")) if paper else (("resnet18",), ("resnet34",))
    deeper_levels = PAPER_LEVELS if paper else (DEPTH_LEVEL,)
    speckled = ("resnet18", "resnet34") if paper else ("resnet18",)
    runs = [(m, "clean") for m in every + deeper]
    runs += [(m, f"gaussian_noise:level{k}") for m in every for k in PAPER_LEVELS]
    runs += [(m, f"gaussian_noise:level{k}") for m in deeper for k in deeper_levels]
    runs += [(m, f"speckle_noise:level{k}") for m in speckled for k in PAPER_LEVELS]
    seeded = ("clean", f"gaussian_noise:level{DEPTH_LEVEL}")
    return [r for m, c in runs
            for r in repeated(RunConfig.at_scale(m, "cifar10", scale, corruption=c), scale, c in seeded)]


@study
def domain(scale: str) -> list[RunConfig]:
    """Earlier version, Fig. 3: ResNet50 (ResNet18 below the paper scale) trained on each PACS domain, measured and probed on the other three.

    The paper used Office-Home (not available offline); PACS has the same design (4 domains, one
    label space). Probes on a target use 20 training images per class and its whole test split.
    Paper scale: whole source domains at 64x64. Smaller scales: the 64x64 images resized to 32x32 (a
    quarter of the cost), at most 64 training images per class (the smallest class of any domain:
    sketch's houses) and as many epochs as give the SGD steps of the scale's CIFAR-10 runs, and the
    model is ResNet18 (:data:`DOMAIN_MODEL_BELOW_PAPER`). Every source gets :func:`seeds` (sources compared).
    """
    s = get_scale(scale)
    if scale == "paper":
        fields = dict(n_per_class=None, image_size=None)
    else:
        n = min(s.n_per_class, PACS_SMALLEST_CLASS)
        cifar_steps = s.epochs * steps_per_epoch(s.n_per_class * CIFAR10_CLASSES, s.batch_size)
        fields = dict(n_per_class=n, image_size=32,
                      epochs=cifar_steps // steps_per_epoch(n * PACS_CLASSES, s.batch_size))
    return [c for source in PACS
            for c in repeated(RunConfig.at_scale(domain_model(scale), f"pacs:{source}", scale, eval_n_per_class=None,
                                                 targets=tuple(d for d in PACS if d != source),
                                                 target_n_per_class=TARGET_IMAGES_PER_CLASS, **fields), scale)]


@study
def vgg_vit(scale: str) -> list[RunConfig]:
    """Figures 13, 14 (CIFAR-10 panels): VGG13/16/19 and ViT small/base on clean CIFAR-10."""
    return [RunConfig.at_scale(m, "cifar10", scale) for m in ("vgg13", "vgg16", "vgg19", "vit_small", "vit_base")]


@study
def small_nets(scale: str) -> list[RunConfig]:
    """Parker et al. 2023: MLP6, VGG11, ResNet18 (ReLU/Tanh/LeakyReLU), Fashion-MNIST and CIFAR-10, at init and trained.

    Their recipe (``parker``: MSE loss, one-cycle, no augmentation); "at initialisation" is the
    same config with 0 epochs.
    """
    return [RunConfig.at_scale(m, d, scale, size={"activation": a}, recipe="parker", epochs=e)
            for d in ("fashion-mnist", "cifar10") for m in ("mlp", "vgg11", "resnet18") for a in ACTIVATIONS
            for e in (0, get_scale(scale).model_epochs(m))]


@study
def train_vs_test(scale: str) -> list[RunConfig]:
    """Collapse on the training vs the test split (appendix A.1 measures ImageNet on test): ResNet18/50, Swin T/B (T/S below the paper scale).

    Every run measures both splits, so these are runs of ``clean`` and cost nothing more.
    """
    swin_pair = ("swin_t", "swin_b") if scale == "paper" else SWINS_BELOW_PAPER
    return [RunConfig.at_scale(m, "cifar10", scale) for m in ("resnet18", "resnet50") + swin_pair]


@study
def data_scale(scale: str) -> list[RunConfig]:
    """Does it hold with more data? ResNet18 and Swin-T (:data:`DATA_MODELS`) on CIFAR-10, clean and under
    :data:`DEPTH_NOISE`, at each rung of :data:`DATA_RUNGS` (training images per class, None: all)."""
    s = get_scale(scale)
    return [c for m in DATA_MODELS for n in ("clean", DEPTH_NOISE) for rung, epochs in DATA_RUNGS[scale].items()
            for c in repeated(RunConfig.at_scale(m, "cifar10", scale, noise=n, n_per_class=rung,
                                                 **({"epochs": s.under_noise(epochs, n)} if epochs else {})),
                              scale, rung == s.n_per_class)]


@study
def all_runs(scale: str) -> list[RunConfig]:
    """Every run of every other study, once (``python -m ncutils sweep all_runs`` computes the whole book)."""
    return list(dict.fromkeys(c for name, configs in STUDIES.items() if name != "all_runs" for c in configs(scale)))
