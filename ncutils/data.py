"""Datasets as uint8 tensors in memory, class-balanced subsets, batched augmentation on tensors.

Every dataset is an :class:`ImageData`: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).
Augmentation (pad-4 random crop, horizontal flip) and per-channel normalisation follow the
paper's appendix A.1 and run on whole batches, never per image through PIL.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import paths

# torchvision's md5 of the official pickles; a copy that differs (e.g. the offline JPEG-derived
# CIFAR-10) still loads, and its provenance says so.
OFFICIAL_MD5 = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
    "cifar100": {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
}
PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
OFFICE_HOME_DOMAINS = ("Art", "Clipart", "Product", "Real_World")
DOMAIN_FOLDERS = {"pacs": ("PACS", PACS_DOMAINS), "office-home": ("OfficeHome", OFFICE_HOME_DOMAINS)}  # under the root
SPLITS = ("train", "test")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither under the data root nor downloadable."""


def data_root() -> Path:
    """The data root: ``$NCUTILS_DATA`` if set, else ``data/`` of the checkout (or of the user-level home of
    an installed ncutils, :mod:`ncutils.paths`)."""
    return paths.data_root()


@dataclass(frozen=True)
class ImageData:
    """Images held as one uint8 tensor (N, C, H, W) with int64 labels (N,)."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per-channel mean of the full training split, in [0, 1]
    std: tuple[float, ...]  # per-channel std of the full training split
    indices: torch.Tensor  # positions in the full split (subsets keep them, so label files align)
    provenance: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, positions: torch.Tensor) -> "ImageData":
        """The images at ``positions`` (of this object), keeping indices into the full split."""
        return replace(self, images=self.images[positions], labels=self.labels[positions],
                       indices=self.indices[positions])

    def resized(self, side: int) -> "ImageData":
        """The images resized to ``side`` x ``side`` (bilinear, antialiased), still uint8; the
        normalisation statistics stay those of the stored training split."""
        if self.images.shape[-2:] == (side, side):
            return self
        x = torch.nn.functional.interpolate(self.images.float(), size=(side, side), mode="bilinear",
                                            antialias=True, align_corners=False)
        return replace(self, images=x.round().clamp(0, 255).to(torch.uint8),
                       provenance={**self.provenance, "resized_to": side})

    def with_images(self, images: torch.Tensor) -> "ImageData":
        """The same labels with other images of the same shape (e.g. a corrupted copy)."""
        if images.shape != self.images.shape or images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images of shape {tuple(self.images.shape)}, "
                             f"got {images.dtype} {tuple(images.shape)}")
        return replace(self, images=images)


def balanced_subset(labels: torch.Tensor, n_per_class: int, seed: int) -> torch.Tensor:
    """Sorted positions of ``n_per_class`` samples of every class, drawn with ``seed``.

    The same (labels, n_per_class, seed) always give the same positions, so runs that differ only
    in their label noise train on the same images.
    """
    counts = torch.bincount(labels)
    if n_per_class < 1 or n_per_class > int(counts.min()):
        raise ValueError(f"n_per_class must be in 1..{int(counts.min())} (the smallest class), got {n_per_class}")
    g = torch.Generator().manual_seed(seed)
    picks = [torch.nonzero(labels == k).flatten()[torch.randperm(int(counts[k]), generator=g)[:n_per_class]]
             for k in range(len(counts))]
    return torch.cat(picks).sort().values


def load_dataset(name: str, split: str = "train", *, n_per_class: int | None = None, seed: int = 0,
                 root: str | os.PathLike | None = None, download: bool = True) -> ImageData:
    """Load a dataset split into memory as an :class:`ImageData`.

    name: ``cifar10``, ``cifar100``, ``fashion-mnist``, or a folder-per-domain set as
    ``pacs:<domain>`` / ``office-home:<domain>`` (a domain's images, split 80/20 into train/test by
    a fixed class-stratified draw). split: ``train`` or ``test``. n_per_class: a class-balanced
    subset drawn with ``seed``. root: the data root (default :func:`data_root`). download: fetch
    through torchvision when missing (needs network).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    root = Path(root).expanduser() if root is not None else data_root()
    family, _, domain = name.partition(":")
    family = family.lower()  # domain names keep their case (Office-Home's are capitalised)
    if family not in LOADERS or (":" in name and family not in DOMAIN_FOLDERS):  # e.g. cifar10:photo
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASET_NAMES)}")
    data = LOADERS[family](str(root), split, domain, download)
    if n_per_class is not None:
        data = data.subset(balanced_subset(data.labels, n_per_class, seed))
    return data


# the datasets the project's offline copies provide (laid out by ``make data``: the README's Data section)
SHARED_COPIES = ("cifar10", "fashion-mnist", "pacs")


def _missing(name: str, where: Path, how: str) -> DatasetNotFoundError:
    offline = ("`make data` lays out the project's shared copies (README, Data) in a folder DIR" if name in SHARED_COPIES
               else "put its files in the layout searched (the shared copies do not include it) under a folder DIR")
    return DatasetNotFoundError(
        f"dataset {name!r} not found under {where}. Get it either way:\n"
        f"  - with network access: load_dataset(..., download=True) fetches it through torchvision{how};\n"
        f"  - offline: {offline}, then set NCUTILS_DATA=DIR (searched: {where}).")


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{path} is damaged ({type(error).__name__}: {error}): delete its folder and lay the data out "
                         "again (`make data`, README, Data) or download it (load_dataset(..., download=True))") from None


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1], exact, from each channel's histogram."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        mean = (counts * values).sum() / counts.sum()
        means.append(mean.item())
        stds.append(((counts * (values - mean) ** 2).sum() / (counts.sum() - 1)).sqrt().item())
    return tuple(means), tuple(stds)


def _torchvision_download(cls_name: str, root: str, name: str, where: Path) -> None:
    import torchvision

    try:
        getattr(torchvision.datasets, cls_name)(root=root, train=True, download=True)
        getattr(torchvision.datasets, cls_name)(root=root, train=False, download=True)
    except Exception as e:  # no network, host unreachable, bad checksum ...
        raise _missing(name, where, f" (tried and failed: {type(e).__name__}: {e})") from None


@functools.lru_cache(maxsize=8)
def _load_cifar(family: str, root: str, split: str, download: bool) -> ImageData:
    folder, files, label_key, meta, meta_key, cls_name = {
        "cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                    "labels", "batches.meta", "label_names", "CIFAR10"),
        "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]},
                     "fine_labels", "meta", "fine_label_names", "CIFAR100"),
    }[family]
    where = Path(root) / folder
    if not all((where / f).exists() for f in files["train"] + files["test"]):
        if not download:
            raise _missing(family, where, "")
        _torchvision_download(cls_name, root, family, where)
    if split == "train":
        # normalisation statistics always come from the full training split
        images, labels = _read_cifar_files(where, files["train"], label_key)
        mean, std = _channel_stats(images)
    else:
        images, labels = _read_cifar_files(where, files["test"], label_key)
        train = _load_cifar(family, root, "train", download)
        mean, std = train.mean, train.std
    official = all(_md5(where / f) == OFFICIAL_MD5[family][f] for f in files["train"] + files["test"])
    return ImageData(
        name=family, split=split, images=images, labels=labels,
        classes=tuple(_unpickle(where / meta)[meta_key]), mean=mean, std=std,
        indices=torch.arange(len(labels)),
        provenance={"path": str(where), "official_checksums": official,
                    "note": "official release" if official else
                    "files differ from the official release (e.g. the offline JPEG-derived copy)"})


def _read_cifar_files(where: Path, files: list[str], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    entries = [_unpickle(where / f) for f in files]
    x = np.concatenate([e["data"] for e in entries]).reshape(-1, 3, 32, 32)
    y = np.concatenate([np.asarray(e[label_key]) for e in entries])
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist(root: str, split: str, download: bool) -> ImageData:
    import torchvision

    where = Path(root) / "FashionMNIST" / "raw"
    try:
        ds = torchvision.datasets.FashionMNIST(root=root, train=split == "train", download=False)
    except RuntimeError:
        if not download:
            raise _missing("fashion-mnist", where, "") from None
        _torchvision_download("FashionMNIST", root, "fashion-mnist", where)
        ds = torchvision.datasets.FashionMNIST(root=root, train=split == "train", download=False)
    images = ds.data.unsqueeze(1).contiguous()
    if split == "train":
        mean, std = _channel_stats(images)
    else:
        train = _load_fashion_mnist(root, "train", download)
        mean, std = train.mean, train.std
    return ImageData(name="fashion-mnist", split=split, images=images, labels=ds.targets.long(),
                     classes=tuple(ds.classes), mean=mean, std=std, indices=torch.arange(len(ds.targets)),
                     provenance={"path": str(where), "official_checksums": None,
                                 "note": "read by torchvision from the idx files"})


def _load_domain_folder(family: str, root: str, split: str, domain: str, download: bool) -> ImageData:
    """A folder-per-domain set (``<root>/<Set>/<domain>/<class>/*``), stratified 80/20 split."""
    folder, domains = DOMAIN_FOLDERS[family]
    if domain not in domains:
        raise ValueError(f"unknown {family} domain {domain!r}; valid: {', '.join(domains)} "
                         f"(e.g. load_dataset('{family}:{domains[0]}'))")
    images, labels, classes = _read_image_folder(str(Path(root) / folder / domain), family)
    test = _stratified_test_mask(labels, fraction=0.2, seed=0)
    keep = torch.nonzero(test if split == "test" else ~test).flatten()
    train_images = images[~test]
    mean, std = _channel_stats(train_images)
    return ImageData(name=f"{family}:{domain}", split=split, images=images[keep], labels=labels[keep],
                     classes=classes, mean=mean, std=std, indices=keep,
                     provenance={"path": str(Path(root) / folder / domain), "official_checksums": None,
                                 "note": "folder-per-domain images; fixed stratified 80/20 train/test split (seed 0)"})


@functools.lru_cache(maxsize=8)
def _read_image_folder(path: str, family: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    from PIL import Image

    where = Path(path)
    if not where.is_dir():
        raise _missing(family, where, " (not available from torchvision: download it from its authors)")
    classes = tuple(sorted(p.name for p in where.iterdir() if p.is_dir()))
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((where / c).iterdir()) if f.is_file()]
    if not files:
        raise _missing(family, where, "")
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f, _ in files]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"images under {where} differ in size; resize them to one size first")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([k for _, k in files], dtype=torch.int64), classes


def _stratified_test_mask(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for k in labels.unique():
        idx = torch.nonzero(labels == k).flatten()
        mask[idx[torch.randperm(len(idx), generator=g)[: round(fraction * len(idx))]]] = True
    return mask


LOADERS = {
    "cifar10": lambda root, split, domain, dl: _load_cifar("cifar10", root, split, dl),
    "cifar100": lambda root, split, domain, dl: _load_cifar("cifar100", root, split, dl),
    "fashion-mnist": lambda root, split, domain, dl: _load_fashion_mnist(root, split, dl),
    "pacs": lambda root, split, domain, dl: _load_domain_folder("pacs", root, split, domain, dl),
    "office-home": lambda root, split, domain, dl: _load_domain_folder("office-home", root, split, domain, dl),
}
DATASET_NAMES = ("cifar10", "cifar100", "fashion-mnist", "pacs:<domain>", "office-home:<domain>")


# --- batched augmentation and normalisation (appendix A.1) -----------------------------------

def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Pad-``padding`` random crop (zero fill) and horizontal flip with p=0.5, for a whole uint8 batch."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows = dy[:, None] + torch.arange(h)
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...],
              channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, C, H, W) to float32 normalised per channel, on the images' device."""
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    x = (images.float() / 255 - m) / s
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@dataclass
class Batches:
    """Mini-batches of (normalised float images, labels) from an :class:`ImageData`.

    Order and augmentation of epoch ``e`` depend only on ``(seed, e)``, so a resumed run sees the
    same batches as an uninterrupted one. ``labels`` overrides the data's labels (e.g. noisy ones).
    """

    data: ImageData
    batch_size: int = 128
    shuffle: bool = False
    augment: bool = False
    drop_last: bool = False
    seed: int = 0
    device: str | torch.device = "cpu"
    channels_last: bool = False
    labels: torch.Tensor | None = None
    epoch: int = 0

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.data):
            raise ValueError(f"labels has {len(self.labels)} entries but the data has {len(self.data)} images")

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        labels = self.data.labels if self.labels is None else self.labels
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.data.images[idx]
            if self.augment:
                x = random_crop_flip(x, g)
            x = normalize(x.to(self.device, non_blocking=True), self.data.mean, self.data.std, self.channels_last)
            yield x, labels[idx].to(self.device, non_blocking=True)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """SGD steps of one training epoch over ``n_images`` as :func:`ncutils.train.train` batches them: the
    last partial batch is dropped (``Batches(drop_last=True)``) unless it is the only one."""
    return max(1, n_images // batch_size)
