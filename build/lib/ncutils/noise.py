"""Label noise for the robustness studies: random labels and CIFAR-10N human labels.

The paper (section 4 and appendix A.1) trains on CIFAR-10 with a fraction ``r`` of the training labels
"randomly shuffled and fixed throughout the training process", and on CIFAR-10N (Wei et al. 2022,
"Learning with noisy labels revisited: a study using real-world human annotations"), then compares
each layer's collapse on the noisy labels with that on the clean ones (the memorization ratio), so
the clean labels are kept alongside (:class:`NoisyLabels`).

Spec strings for a notebook's parameters cell (:func:`parse_noise`): ``"clean"``, ``"random:0.4"``,
``"cifar10n:worse"``. Input corruptions live in :mod:`ncutils.corruptions`.
"""
from __future__ import annotations

import codecs
import functools
import hashlib
import os
import pickle
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import DatasetNotFoundError, ImageData, data_root, load_dataset

__all__ = ["random_labels", "noise_rate", "transition_matrix", "cifar10n_labels", "LabelNoise", "parse_noise",
           "NoisyLabels", "noisy_labels"]

# --- random labels ----------------------------------------------------------------------------------------

def random_labels(labels, rate: float, seed: int, num_classes: int | None = None):
    """Labels with a fraction ``rate`` replaced by uniformly random classes (same type as ``labels``).

    Exactly ``round(rate * N)`` positions, chosen with ``seed``, get a class drawn uniformly from
    ``0..num_classes-1`` (default ``max(labels) + 1``); a draw may equal the true class, so the realised
    noise rate (:func:`noise_rate`) is about ``rate * (K - 1) / K``. Same (labels, rate, seed) give the
    same result. labels: 1-D integer torch tensor or numpy array.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(f"random-label rate must be a number in [0, 1], got {rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be an integer >= 1 (or None: max(labels) + 1), got {num_classes!r}")
    is_tensor = isinstance(labels, torch.Tensor)
    y = labels if is_tensor else torch.from_numpy(np.asarray(labels))
    if y.ndim != 1 or not len(y) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"labels must be a non-empty 1-D integer array, got {y.dtype} {tuple(y.shape)}")
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"labels must lie in 0..{k - 1} (num_classes {k}), got {int(y.min())}..{int(y.max())}")
    g = torch.Generator().manual_seed(int(seed))
    positions = torch.randperm(len(y), generator=g)[:round(rate * len(y))]
    noisy = y.clone()
    noisy[positions] = torch.randint(k, (len(positions),), generator=g, dtype=torch.int64).to(y.dtype)
    return noisy if is_tensor else noisy.numpy()


def noise_rate(clean, noisy) -> float:
    """The realised noise rate: the fraction of labels that differ from the clean ones."""
    clean, noisy = torch.as_tensor(clean), torch.as_tensor(noisy)
    if clean.shape != noisy.shape:
        raise ValueError(f"clean and noisy labels differ in shape: {tuple(clean.shape)} vs {tuple(noisy.shape)}")
    return (clean != noisy).double().mean().item()


def transition_matrix(clean, noisy, num_classes: int | None = None) -> torch.Tensor:
    """The empirical noise transition matrix ``T[i, j] = P(noisy = j | clean = i)`` (float64, rows sum to 1)."""
    clean, noisy = torch.as_tensor(clean).long(), torch.as_tensor(noisy).long()
    k = int(max(clean.max(), noisy.max())) + 1 if num_classes is None else num_classes
    counts = torch.bincount(clean * k + noisy, minlength=k * k).reshape(k, k).double()
    return counts / counts.sum(1, keepdim=True).clamp_min(1)


# --- CIFAR-10N --------------------------------------------------------------------------------------------

CIFAR10N_KINDS = ("clean", "aggre", "random1", "random2", "random3", "worse")
CIFAR10N_KEYS = {"clean": "clean_label", "aggre": "aggre_label", "random1": "random_label1",
                 "random2": "random_label2", "random3": "random_label3", "worse": "worse_label"}
# other names in use: the CIFAR-10N repository's NOISE_TYPE and the paper's figure legends
CIFAR10N_ALIASES = {"worst": "worse", "rand1": "random1", "randn1": "random1", "rand2": "random2",
                    "rand3": "random3", "aggregate": "aggre"}
CIFAR10N_URL = "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-10_human.pt"
CIFAR10N_SHA256 = "873e69c39cb9b5e97fb6bae2d60bb59b38a5cbc31d2b868f7903dcb2b9dd2310"
CIFAR10N_TRAIN_SIZE = 50_000


def cifar10n_labels(kind: str, *, root: str | os.PathLike | None = None, download: bool = True) -> torch.Tensor:
    """The 50,000 CIFAR-10N labels of ``kind`` (clean/aggre/random1/random2/random3/worse), int64, in the
    canonical CIFAR-10 training order (Wei et al. 2022).

    Read from ``<root>/CIFAR-10N/CIFAR-10_human.pt`` (root: :func:`ncutils.data.data_root`); when missing
    and ``download``, fetched from the CIFAR-10N release and checked against its sha256. The file is
    read without unpickling anything but numpy arrays, and ``clean_label`` must equal the CIFAR-10
    training labels under the same root, or a ValueError says the data order does not match.
    """
    kind = CIFAR10N_ALIASES.get(kind, kind)
    if kind not in CIFAR10N_KEYS:
        raise ValueError(f"unknown CIFAR-10N label set {kind!r}; valid: {', '.join(CIFAR10N_KINDS)}")
    root = str(Path(root).expanduser() if root is not None else data_root())
    return torch.from_numpy(_cifar10n_arrays(root, download)[CIFAR10N_KEYS[kind]].astype(np.int64))


@functools.lru_cache(maxsize=4)
def _cifar10n_arrays(root: str, download: bool) -> dict[str, np.ndarray]:
    path = Path(root) / "CIFAR-10N" / "CIFAR-10_human.pt"
    if not path.exists():
        if not download:
            raise _cifar10n_missing(path, "download=False")
        _download_cifar10n(path)
    arrays = read_numpy_archive(path)
    missing = sorted(set(CIFAR10N_KEYS.values()) - set(arrays))
    if missing:
        raise ValueError(f"{path} lacks the CIFAR-10N label sets {missing}")
    for key in CIFAR10N_KEYS.values():
        a = arrays[key]
        if a.shape != (CIFAR10N_TRAIN_SIZE,) or not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() > 9:
            raise ValueError(f"{path}: {key} should be 50,000 labels in 0..9, got {a.dtype} {a.shape}")
    train = load_dataset("cifar10", "train", root=root, download=download)
    agree = float(np.mean(arrays["clean_label"] == train.labels.numpy()))
    if agree < 1:
        raise ValueError(
            f"the data order does not match: CIFAR-10N clean_label agrees with the CIFAR-10 training labels under "
            f"{root} at only {agree:.2%} of the 50,000 positions. CIFAR-10N indexes the canonical training order "
            f"(data_batch_1..5 as released): use the official CIFAR-10 python pickles, or the project's copy laid "
            f"out by `make data` (README, Data), not a reordered training set.")
    return arrays


def _cifar10n_missing(path: Path, why: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"CIFAR-10N labels not found at {path} ({why}). Get them either way:\n"
        f"  - with network access: cifar10n_labels(kind, download=True) fetches {CIFAR10N_URL} "
        f"(sha256 {CIFAR10N_SHA256[:12]}...);\n"
        f"  - offline: `make data` lays out the project's copy (README, Data), then set NCUTILS_DATA to that data "
        f"root.")


def _download_cifar10n(path: Path) -> None:
    partial = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(CIFAR10N_URL, timeout=60) as response:
            payload = response.read()
        digest = hashlib.sha256(payload).hexdigest()
        if digest != CIFAR10N_SHA256:
            raise ValueError(f"checksum mismatch: sha256 {digest}, expected {CIFAR10N_SHA256}")
        partial.write_bytes(payload)
        partial.replace(path)
    except Exception as e:  # no network, host unreachable, bad checksum, read-only root ...
        partial.unlink(missing_ok=True)
        raise _cifar10n_missing(path, f"download failed: {type(e).__name__}: {e}") from None


def _latin1_encode(text: str, encoding: str) -> bytes:
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _numpy_multiarray():
    return np._core.multiarray if hasattr(np, "_core") else np.core.multiarray


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and dicts/lists of them) only: any other global is refused."""

    _multiarray = _numpy_multiarray()
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,  # how protocol-2 pickles spell bytes
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a torch storage: only numpy arrays are allowed")


def read_numpy_archive(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``torch.save`` zip archive of a dict of numpy arrays, read safely (no arbitrary unpickling).

    ``torch.load(weights_only=True)`` refuses numpy arrays; this reads ``<archive>/data.pkl`` with an
    unpickler that resolves only numpy's array-reconstruction callables and raises on anything else.
    """
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if m.endswith("data.pkl")]
        if len(members) != 1:
            raise ValueError(f"{path} is not a torch zip archive with one data.pkl (members: {archive.namelist()})")
        with archive.open(members[0]) as f:
            try:
                obj = _NumpyOnlyUnpickler(f).load()
            except pickle.UnpicklingError as error:
                raise pickle.UnpicklingError(f"{path}: {error}") from None
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ValueError(f"{path} should hold a dict of numpy arrays, got {type(obj).__name__}")
    return obj


# --- spec strings and application to an ImageData -------------------------------------------------------

NOISE_SPEC_FORMS = ("clean", "random:<rate in [0, 1]>", f"cifar10n:<{'|'.join(CIFAR10N_KINDS)}>")


@dataclass(frozen=True)
class LabelNoise:
    """Training-label noise: ``kind`` clean, random (with ``rate``) or cifar10n (with ``variant``)."""

    kind: str = "clean"
    rate: float | None = None
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "random":
            if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not 0 <= self.rate <= 1:
                raise ValueError(f"random-label rate must be a number in [0, 1], got {self.rate!r}")
        elif self.kind == "cifar10n":
            if self.variant not in CIFAR10N_KEYS:
                raise ValueError(f"unknown CIFAR-10N label set {self.variant!r}; valid: {', '.join(CIFAR10N_KINDS)}")
        elif self.kind != "clean":
            raise ValueError(f"unknown label noise {self.kind!r}; valid forms: {', '.join(NOISE_SPEC_FORMS)}")
        if (self.kind != "random" and self.rate is not None) or (self.kind != "cifar10n" and self.variant is not None):
            raise ValueError(f"rate goes with 'random' and variant with 'cifar10n' only: {self!r}")

    def __str__(self) -> str:
        if self.kind == "random":
            return f"random:{self.rate:g}"
        return "cifar10n:" + self.variant if self.kind == "cifar10n" else "clean"


def parse_noise(spec: str | LabelNoise | None) -> LabelNoise:
    """A :class:`LabelNoise` from a spec string: ``"clean"`` (or ``"none"``, None), ``"random:0.4"``
    (a fraction 0.4 of labels replaced by uniform random classes), ``"cifar10n:worse"`` (CIFAR-10N
    human labels; also ``worst``, ``rand1``, ``randn1`` ...)."""
    if isinstance(spec, LabelNoise):
        return spec
    text = "clean" if spec is None else str(spec).strip().lower()
    kind, sep, value = text.partition(":")
    if text in ("clean", "none", ""):
        return LabelNoise()
    if kind == "random" and sep:
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"cannot parse random-label rate {value!r} in {spec!r}; write e.g. 'random:0.4'") from None
        return LabelNoise("random", rate=rate)
    if kind == "cifar10n" and sep:
        return LabelNoise("cifar10n", variant=CIFAR10N_ALIASES.get(value, value))
    raise ValueError(f"cannot parse label noise {spec!r}; valid forms: {', '.join(NOISE_SPEC_FORMS)}")


@dataclass(frozen=True)
class NoisyLabels:
    """Training labels under a :class:`LabelNoise`, with the clean labels kept alongside."""

    labels: torch.Tensor
    clean: torch.Tensor
    noise: LabelNoise

    @property
    def is_noisy(self) -> torch.Tensor:
        """Mask of the samples whose label differs from the clean one."""
        return self.labels != self.clean

    @property
    def noise_rate(self) -> float:
        return noise_rate(self.clean, self.labels)


def noisy_labels(data: ImageData, noise: str | LabelNoise | None, seed: int = 0, *,
                 root: str | os.PathLike | None = None) -> NoisyLabels:
    """The training labels of ``data`` under a noise spec (see :func:`parse_noise`).

    Random labels are drawn over ``data`` itself (exactly round(rate * len(data)) positions, with
    ``seed``). CIFAR-10N labels need CIFAR-10 training data and are taken at ``data.indices``, so a
    class-balanced subset gets the human labels of its own images; ``seed`` is unused for them.
    """
    spec = parse_noise(noise)
    if spec.kind == "clean":
        labels = data.labels.clone()
    elif spec.kind == "random":
        labels = random_labels(data.labels, spec.rate, seed, num_classes=data.num_classes)
    else:
        if data.name != "cifar10" or data.split != "train":
            raise ValueError(f"CIFAR-10N labels exist for the CIFAR-10 training split only, not {data.name}/{data.split}")
        full = {kind: cifar10n_labels(kind, root=root) for kind in ("clean", spec.variant)}
        if not torch.equal(full["clean"][data.indices], data.labels):
            raise ValueError("the data order does not match: CIFAR-10N clean labels at data.indices differ from "
                             "data.labels (was the data loaded from another root than the CIFAR-10N file?)")
        labels = full[spec.variant][data.indices]
    return NoisyLabels(labels=labels, clean=data.labels, noise=spec)
