"""A chapter's runs with other settings than the book's: other models, label noises, input corruptions,
training images, epochs or seeds (the chapter's parameters; None keeps the study's)."""
from __future__ import annotations

from dataclasses import replace

from ..config import RunConfig
from ..models import model_overrides
from ..scales import get_scale
from ..train import default_recipe

SETTINGS = ("models", "noises", "corruptions", "n_per_class", "epochs", "seeds")  # the parameters handled here


def customised(configs: list[RunConfig], scale: str, *, models=None, noises=None, corruptions=None,
               n_per_class=None, epochs=None, seeds=None) -> list[RunConfig]:
    """The study's ``configs`` with each given setting replaced, in this order:

    - ``models``: every setting of the study run by each of ``models`` (at the scale's size and epochs
      for that model, unless the study set other epochs than the scale's);
    - ``noises`` / ``corruptions``: each model that the study trains under some label noise (input
      corruption) is trained under each of these instead, beside its clean run;
    - ``n_per_class``, ``epochs``: the training images per class and the epochs of every trained run;
    - ``seeds``: every run with each of these seeds.
    """
    s = get_scale(scale)
    if models is not None:
        configs = [_with_model(c, m, s) for m in models for c in configs]
    for field, values in (("noise", noises), ("corruption", corruptions)):
        if values is not None:
            varied = {c.model for c in configs if getattr(c, field) != "clean"}
            base = [c for c in configs if getattr(c, field) == "clean"]
            configs = base + [_under(c, field, v, s) for c in base if c.model in varied for v in values]
    if n_per_class is not None:
        configs = [replace(c, n_per_class=n_per_class) for c in configs]
    if epochs is not None:
        configs = [replace(c, epochs=epochs) if c.epochs > 0 else c for c in configs]
    if seeds is not None:
        configs = [replace(c, seed=seed) for c in configs for seed in seeds]
    return list(dict.fromkeys(configs))


def _under(config: RunConfig, field: str, value: str, scale) -> RunConfig:
    """``config`` (a clean run) under label noise or input corruption ``value``: a run under label noise
    trains the scale's epochs for it (``Scale.noisy_longer``) unless the study chose other epochs."""
    own_epochs = field == "noise" and config.epochs == scale.model_epochs(config.model)
    epochs = scale.model_epochs(config.model, value) if own_epochs else config.epochs
    return replace(config, **{field: value}, epochs=epochs)


def _with_model(config: RunConfig, model: str, scale) -> RunConfig:
    """``config`` trained as ``model``: the scale's size, precision and epochs for it (unless the study chose
    other epochs) and its default recipe (unless the study chose another); an activation kept where valid."""
    own_epochs = config.epochs == scale.model_epochs(config.model, config.noise)
    size = {**scale.model_size(model),
            **{k: v for k, v in config.size if k == "activation" and k in model_overrides(model)}}
    recipe = default_recipe(model) if config.recipe == default_recipe(config.model) else config.recipe
    epochs = scale.model_epochs(model, config.noise) if own_epochs and config.epochs > 0 else config.epochs
    return replace(config, model=model, size=size, precision=scale.model_precision(model), recipe=recipe,
                   epochs=epochs)
