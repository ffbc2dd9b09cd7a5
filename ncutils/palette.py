"""One colour per model, label noise, corruption level and domain: the same in every panel and figure of the book."""
from __future__ import annotations

import seaborn as sns

from .models import model_names
from .studies import CIFAR10N, PACS, RANDOM_LABELS

# tab20 holds 20 distinct colours: enough for every registered model, in registry order (families adjacent)
MODEL_COLOURS = dict(zip(model_names(), sns.color_palette("tab20", n_colors=20)))
# clean in black; random labels from light to dark orange as the rate grows; CIFAR-10N in blues
NOISE_COLOURS = {"clean": (0.1, 0.1, 0.1),
                 **dict(zip(RANDOM_LABELS, sns.color_palette("Oranges", n_colors=len(RANDOM_LABELS) + 1)[1:])),
                 **dict(zip(CIFAR10N, sns.color_palette("Blues", n_colors=len(CIFAR10N) + 1)[1:]))}
DOMAIN_COLOURS = dict(zip(PACS, sns.color_palette("Set2", n_colors=len(PACS))))
BY_HUE = {"model": MODEL_COLOURS, "noise": NOISE_COLOURS, "source": DOMAIN_COLOURS, "source model": DOMAIN_COLOURS}


RUNG = "images per class"  # the hue of the data-scale figures: light to dark green as the data grow


def colours(hue: str, values) -> dict | None:
    """{value: colour} for a figure's ``hue`` column holding ``values``; None (seaborn's default cycle) for a
    column without fixed colours or a value outside them. Rungs of data (:data:`RUNG`) take a sequential
    palette in the order given (smallest first)."""
    values = list(values)
    if hue == RUNG:
        return dict(zip(values, sns.color_palette("crest", n_colors=len(values))))
    table = BY_HUE.get(hue)
    if table is None or not all(v in table for v in values):
        return None
    return {v: table[v] for v in values}
