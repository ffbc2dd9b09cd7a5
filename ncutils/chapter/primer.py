"""The primer's simulated features: classes collapsing step by step to a simplex ETF, and layers that do or
do not memorize label noise, each read by the book's measures (no dataset, no training), and their pictures."""
from __future__ import annotations

import re
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .. import metrics
from ..plots import panel_grid
from ..show import enlarge_small_text, show

MEASURES = {"CDNV (sum)": metrics.cdnv, "NC1": metrics.nc1, "NC2": metrics.nc2, "equal norms": metrics.equal_norms,
            "max angle": metrics.max_angle}
NOISE = 6  # within-class spread at t = 0: this many times the noise of norm ~1 drawn per sample


def minimum_dim(num_classes: int) -> int:
    """A simplex ETF of K classes spans K - 1 dimensions (its centred means sum to zero)."""
    return num_classes - 1


def check_dims(num_classes: int, dim: int) -> None:
    """ValueError (one line) unless ``dim`` >= K - 1 and K >= 2."""
    if num_classes < 2:
        raise ValueError(f"num_classes = {num_classes}: a simplex ETF needs at least 2 classes")
    if dim < minimum_dim(num_classes):
        raise ValueError(f"dim = {dim} is too small for num_classes = {num_classes}: a simplex ETF of K classes "
                         f"spans K - 1 dimensions, so dim must be >= {minimum_dim(num_classes)}")


def simplex_etf(num_classes: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """(K, dim) simplex ETF: K unit vectors with pairwise cosine -1/(K-1), summing to zero, so their Gram matrix
    is K/(K-1) (I_K - 11^T/K). Built in the K-1 dimensions orthogonal to 1 in R^K and rotated at random into
    ``dim`` >= K - 1 dimensions."""
    check_dims(num_classes, dim)
    k = num_classes
    within, _ = np.linalg.qr(np.eye(k)[:, :k - 1] - 1 / k)  # K x (K-1): orthonormal basis of 1^perp
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, k - 1)))  # dim x (K-1), orthonormal columns
    return np.sqrt(k / (k - 1)) * within @ rotation.T


STARTS = ("stretched", "random")


class Simulation:
    """``per_class`` features of each of ``num_classes`` classes in ``dim`` >= K - 1 dimensions, drawn with
    ``seed``: class means that move in a straight line to a simplex ETF, a within-class noise that shrinks to
    zero, and a classifier fixed at the ETF (the one the collapse ends at, so NC3 = 0 there).

    start "stretched" (the primer's): the class means start at a random stretch of the ETF, E S + b, with S
    symmetric positive definite (eigenvalues log-uniform in [1/4, 4] along random axes) and b a random offset.
    The differences of class means, (e_k - e_k')((1 - t) S + t I), never vanish, and each pair's CDNV falls at
    every step: it is proportional to 1 / ||(e_k - e_k')(S + u I)||^2 with u = t / (1 - t) growing (so do NC1,
    NC2, equal norms, max angle and NC3 in every case tested; :func:`checks` says so for each run).
    start "random": the means start at unrelated random points, so paths of two classes can pass close to
    each other and NC2 and max angle often rise before they fall.
    """

    def __init__(self, num_classes: int, dim: int, per_class: int, seed: int, start: str = "stretched"):
        check_dims(num_classes, dim)
        if start not in STARTS:
            raise ValueError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
        self.num_classes, self.dim = num_classes, dim
        self.rng = rng = np.random.default_rng(seed)
        self.labels = np.repeat(np.arange(num_classes), per_class)
        self.etf_means = simplex_etf(num_classes, dim, rng)
        if start == "stretched":
            axes, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
            stretch = (axes * np.exp(rng.uniform(np.log(1 / 4), np.log(4), dim))) @ axes.T
            self.start_means = self.etf_means @ stretch + rng.standard_normal(dim) / np.sqrt(dim)
        else:
            self.start_means = (rng.standard_normal((num_classes, dim)) / np.sqrt(dim)
                                 * rng.uniform(0.5, 2, (num_classes, 1)))
        noise = rng.standard_normal((len(self.labels), dim)) / np.sqrt(dim)
        # centred in each class, so the class means of the features are exactly the simulated means
        self.noise = noise - np.stack([noise[self.labels == k].mean(0) for k in range(num_classes)])[self.labels]
        self.classifier = self.etf_means

    def features_at(self, t: float) -> np.ndarray:
        """Class means move in a straight line from their start to the ETF, (1 - t) start + t ETF, and the
        within-class spread shrinks as (1 - t), as t goes 0 -> 1."""
        means = (1 - t) * self.start_means + t * self.etf_means
        return means[self.labels] + (1 - t) * NOISE * self.noise

    def measures_at(self, t: float) -> dict[str, float]:
        """Every measure of the features at ``t``; NC3 and NC4 against the fixed classifier (no bias)."""
        h = self.features_at(t)
        values = {name: f(h, self.labels) for name, f in MEASURES.items()}
        predictions = (h @ self.classifier.T).argmax(1)
        return {**values, "NC3": metrics.nc3(h, self.labels, self.classifier),
                "NCC accuracy": metrics.ncc_accuracy(h, self.labels),
                "NC4": metrics.nc4(h, self.labels, predictions)}

    def collapse(self, steps: int) -> pd.DataFrame:
        """Every measure at ``steps`` evenly spaced t from 0 to 1."""
        table = pd.DataFrame([{"collapse t": t, **self.measures_at(t)} for t in np.linspace(0, 1, steps)])
        table.attrs["num_classes"] = self.num_classes
        return table

    def plane(self) -> np.ndarray:
        """(dim, 2) orthonormal axes of the picture ((1, 1) when dim = 1): for K >= 3 the plane where the ETF's
        vertices form a regular K-gon (for K = 3 the whole span of the ETF, so nothing is lost in 2-D); for
        K = 2 the ETF's axis and one orthogonal to it."""
        k, angles = self.num_classes, 2 * np.pi * np.arange(self.num_classes) / self.num_classes
        if k >= 3:
            axes = self.etf_means.T @ np.stack([np.cos(angles), np.sin(angles)], 1)
        else:
            axes = np.stack([self.etf_means[0], np.eye(self.dim)[np.argmin(np.abs(self.etf_means[0]))]], 1)
        return np.linalg.qr(axes[:, :min(2, self.dim)])[0]

    def snapshots(self, times) -> pd.DataFrame:
        """The picture's points at each t of ``times`` in the plane of :meth:`plane`: t, class, x, y and kind
        (each sample, each class mean, and the ETF vertex the class mean moves to). With dim = 1 there is no
        plane: y is the class, minus 1/2."""
        axes, frames, classes = self.plane(), [], np.arange(self.num_classes)
        for t in times:
            h = self.features_at(t)
            means = np.stack([h[self.labels == k].mean(0) for k in classes])
            for kind, points, labels in (("sample", h, self.labels), ("class mean", means, classes),
                                         ("ETF vertex", self.etf_means, classes)):
                xy = points @ axes
                frames.append(pd.DataFrame({"t": t, "class": labels, "x": xy[:, 0],
                                            "y": xy[:, 1] if xy.shape[1] > 1 else labels - 0.5, "kind": kind}))
        table = pd.concat(frames, ignore_index=True)
        table.attrs["plane"] = axes.shape[1] == 2
        return table

    def label_noise(self, rate: float = 0.4) -> pd.DataFrame:
        """CDNV under clean and noisy labels (a ``rate`` of them redrawn at random) of a layer whose features
        follow the noisy labels (memorizing) and of one whose features follow the clean ones (semantic),
        and their memorization ratio (Definition 1)."""
        flip = self.rng.random(len(self.labels)) < rate
        noisy = np.where(flip, self.rng.integers(0, self.num_classes, len(self.labels)), self.labels)
        tight = 0.3 * self.noise
        memorizing, semantic = self.etf_means[noisy] + tight, self.etf_means[self.labels] + tight
        ratios = pd.DataFrame({
            "layer kind": ["memorizing (features follow the noisy labels)",
                           "semantic (features follow the clean labels)"],
            "CDNV clean labels": [metrics.cdnv(memorizing, self.labels), metrics.cdnv(semantic, self.labels)],
            "CDNV noisy labels": [metrics.cdnv(memorizing, noisy), metrics.cdnv(semantic, noisy)],
        })
        ratios["memorization ratio"] = ratios["CDNV clean labels"] / ratios["CDNV noisy labels"]
        return ratios


def checks(table: pd.DataFrame, ratios: pd.DataFrame) -> list[str]:
    """What the simulation shows, each line "holds: ..." or "DOES NOT HOLD: ...", then the ranges of CDNV (sum
    and per ordered pair) and NC2."""
    first, last = table.iloc[0], table.iloc[-1]
    geometry = ["CDNV (sum)", "NC1", "NC2", "equal norms", "max angle", "NC3", "NC4"]
    results = {
        "CDNV, NC1, NC2, equal norms, max angle and NC3 fall at every step": bool(
            all(_falls(table[m]) for m in geometry[:-1])),
        "CDNV, NC1, NC2, equal norms, max angle, NC3 and NC4 reach 0 at the ETF": bool(
            max(abs(last[m]) for m in geometry) < 1e-9),
        "NCC accuracy reaches 1 at the ETF": bool(last["NCC accuracy"] == 1.0),
        "memorizing features have ratio > 1, semantic ones < 1": bool(
            ratios["memorization ratio"].iloc[0] > 1 > ratios["memorization ratio"].iloc[1]),
    }
    lines = [f"{'holds' if holds else 'DOES NOT HOLD'}: {claim}" for claim, holds in results.items()]
    pairs = table.attrs["num_classes"] * (table.attrs["num_classes"] - 1)
    per_pair = f" ({first['CDNV (sum)'] / pairs:.3g} per ordered pair: K(K-1) = {pairs} pairs)"
    return lines + [(f"CDNV went from {first['CDNV (sum)']:.3g}{per_pair} to {last['CDNV (sum)']:.3g}; "
                     f"NC2 from {first['NC2']:.3g} to {last['NC2']:.3g}")]


def _falls(values: pd.Series) -> bool:
    """Strictly falling at every step, or 0 throughout (NC2, equal norms and max angle of K = 2 classes)."""
    return bool(np.all(np.diff(values) < 0) or np.all(np.abs(values) < 1e-9))


def draw_snapshot(ax, at: pd.DataFrame, colours, half: float, plane: bool, title: str) -> None:
    """One t of :meth:`Simulation.snapshots` (``at``) on ``ax``: samples (dots), class means (outlined discs)
    and ETF vertices (black crosses), class k in ``colours[k]``, axes ±``half`` around 0."""
    for k, colour in enumerate(colours):
        of = at[at["class"] == k]
        samples, mean = of[of.kind == "sample"], of[of.kind == "class mean"]
        ax.scatter(samples.x, samples.y, s=5, color=colour, alpha=0.35, linewidths=0)
        ax.scatter(mean.x, mean.y, s=70, color=colour, edgecolors="black", linewidths=1, zorder=3)
    vertices = at[at.kind == "ETF vertex"]
    ax.scatter(vertices.x, vertices.y, s=40, marker="x", color="black", zorder=4)
    ax.set(title=title, xlim=(-half, half), xticks=[], yticks=[],
           **({"ylim": (-half, half), "aspect": "equal"} if plane else {"ylim": (-1.5, 1.5)}))


def collapse_figure(snapshots: pd.DataFrame, title: str) -> None:
    """One scatter panel per t of :meth:`Simulation.snapshots`: samples (dots), class means (outlined discs)
    and the ETF vertices (black crosses), coloured by class; each panel is centred at 0 and spans its samples
    (the half-width in its title), at least the ETF."""
    times, classes = list(dict.fromkeys(snapshots.t)), sorted(set(snapshots["class"]))
    colours = sns.color_palette("tab10" if len(classes) <= 10 else "husl", len(classes))
    plane = snapshots.attrs.get("plane", True)
    fig, axes = panel_grid(len(times), 3, 2.5, 2.9 if plane else 1.8)
    vertices = snapshots[snapshots.kind == "ETF vertex"]
    least = 1.25 * np.abs(vertices[["x", "y"] if plane else ["x"]].to_numpy()).max()
    for ax, t in zip(axes, times):
        at = snapshots[snapshots.t == t]
        spread = at[at.kind == "sample"][["x", "y"] if plane else ["x"]].abs().quantile(0.99).max()
        half = max(least, float(spread))
        draw_snapshot(ax, at, colours, half, plane, f"t = {t:g} (axes ±{half:.2g})")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    show()


def collapse_animation(simulation: Simulation, frames: int = 21):
    """The collapse as an animation with a slider over t (0 -> 1), self-contained HTML (matplotlib's
    JavaScript player, frames embedded: it plays offline): the picture of :func:`collapse_figure`, one t
    per frame, on fixed axes that hold every frame's samples."""
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    times = np.linspace(0, 1, frames)
    snapshots = simulation.snapshots(times)
    plane = snapshots.attrs.get("plane", True)
    columns = ["x", "y"] if plane else ["x"]
    half = 1.1 * float(snapshots[snapshots.kind != "class mean"][columns].abs().quantile(0.99).max())
    colours = sns.color_palette("tab10" if simulation.num_classes <= 10 else "husl", simulation.num_classes)
    fig, ax = plt.subplots(figsize=(4.6, 4.6 if plane else 2.4))

    def draw(i: int) -> None:
        ax.clear()
        draw_snapshot(ax, snapshots[snapshots.t == times[i]], colours, half, plane, f"t = {times[i]:.2f}")
        enlarge_small_text(fig)

    animation = FuncAnimation(fig, draw, frames=frames)
    html = animation.to_jshtml(fps=4, default_mode="once")
    plt.close(fig)
    # the player's icons: the book's own Font Awesome (its theme's), not the player's CDN stylesheet
    return HTML(re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", html))


def etf_figure(seed: int = 0) -> None:
    """The simplex ETF of K = 3 classes in 2-D and of K = 4 in 3-D: unit vectors from the global mean (the
    origin) with pairwise cosine -1/(K-1); dotted, the simplex their tips span."""
    fig = plt.figure(figsize=(7.6, 3.8))
    for i, (k, dim) in enumerate([(3, 2), (4, 3)]):
        etf = simplex_etf(k, dim, np.random.default_rng(seed))
        ax = fig.add_subplot(1, 2, i + 1, **({"projection": "3d"} if dim == 3 else {"aspect": "equal"}))
        colours = sns.color_palette("tab10", k)
        for vertex, colour in zip(etf, colours):
            ax.plot(*zip(np.zeros(dim), vertex), color=colour, linewidth=2)
        for a, b in combinations(etf, 2):
            ax.plot(*zip(a, b), color="grey", linestyle=":")
        ax.scatter(*etf.T, color=colours, s=40)
        ax.set_title(f"K = {k} in {dim}-D: cosines -1/{k - 1}\nGram matrix {k}/{k - 1} (I - 11ᵀ/{k})")
        ax.set(xticks=[], yticks=[], **({"zticks": []} if dim == 3 else {}))
        if dim == 3:
            ax.view_init(elev=15, azim=35)
            ax.set_box_aspect(np.ptp(etf, axis=0))  # equal scales: the angles as they are
    fig.tight_layout()
    show()
