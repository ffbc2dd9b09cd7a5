"""CIFAR-10-C style image corruptions, regenerated deterministically.

Formulas and severities are those of Hendrycks & Dietterich (2019), "Benchmarking neural network
robustness to common corruptions and perturbations", as coded in their ``make_cifar_c.py``
(github.com/hendrycks/robustness, ImageNet-C/create_c): an image ``x`` in [0, 1] (uint8 / 255, float64)
is corrupted, clipped to [0, 1], multiplied by 255 and *truncated* to uint8 (``np.uint8``), as the
original does. Only corruptions that can be reproduced faithfully without scikit-image, OpenCV or
ImageMagick are offered (:data:`CORRUPTION_NAMES`); the paper (appendix A.3) uses two of them,
``gaussian_noise`` and ``speckle_noise``.

Severities: ``severity`` is always on the CIFAR-10-C scale 0..5 (0 = clean). The paper's levels
0/1/2/3 are CIFAR-10-C severities 0/1/3/5 (appendix A.3): :func:`paper_level_to_severity`, or the
spec form ``"gaussian_noise:level2"`` (= ``"gaussian_noise:3"``).

Randomness: the noise of one image depends only on ``(seed, corruption name, stream, that image's
index)``: each image gets its own counter-based Philox generator keyed by them. Corrupting a subset
therefore gives exactly the pixels of corrupting the full set and slicing, in any batch order. The
severities of one corruption share their underlying draws (common random numbers): a higher
severity is the same noise field scaled up, and impulse noise's corrupted pixels at severity ``s``
are a subset of those at ``s + 1``.
"""
from __future__ import annotations

import io
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from .data import ImageData

SEVERITIES = range(0, 6)  # CIFAR-10-C scale; 0 = clean
PAPER_LEVEL_TO_SEVERITY = {0: 0, 1: 1, 2: 3, 3: 5}  # appendix A.3: levels 1/2/3 are severities 1/3/5

# Hendrycks & Dietterich's CIFAR parameters per severity 1..5 (make_cifar_c.py).
SEVERITY_PARAMETERS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # std of additive N(0, c)
    "shot_noise": (500, 250, 100, 75, 50),  # Poisson(x * c) / c
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # salt & pepper amount
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),  # std of multiplicative N(0, c)
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # Gaussian sigma in pixels
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor towards the per-channel image mean
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # box down-scaling factor
    "jpeg_compression": (80, 65, 58, 50, 40),  # JPEG quality
}
CORRUPTION_NAMES = tuple(SEVERITY_PARAMETERS)
RANDOM_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
_CHUNK = 1024  # images per vectorised chunk


def paper_level_to_severity(level: int) -> int:
    """The CIFAR-10-C severity of the paper's corruption level (appendix A.3): 0->0, 1->1, 2->3, 3->5."""
    if isinstance(level, bool) or level not in PAPER_LEVEL_TO_SEVERITY:
        raise ValueError(f"paper corruption level must be one of {sorted(PAPER_LEVEL_TO_SEVERITY)} "
                         f"(0 = clean; levels 1/2/3 are CIFAR-10-C severities 1/3/5), got {level!r}")
    return PAPER_LEVEL_TO_SEVERITY[level]


def _check_name(name: str) -> None:
    if name not in SEVERITY_PARAMETERS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTION_NAMES)}")


def _check_severity(severity: int) -> None:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 0..5 on the CIFAR-10-C scale (0 = clean), got {severity!r}; "
                         f"for the paper's levels 0..3 use paper_level_to_severity(level) or 'name:level<k>'")


def corrupt(images, name: str, severity: int, seed: int, *, indices=None, stream: str = ""):
    """Corrupt uint8 NHWC images with CIFAR-10-C corruption ``name`` at ``severity`` (0..5, 0 = unchanged).

    images: uint8 (N, H, W, C), C in {1, 3}, numpy array or torch tensor; the result has the same type.
    seed: non-negative integer. indices: each image's index (e.g. ``ImageData.indices``, its position in
    the full canonical split; default ``arange(N)``); the noise of an image depends only on
    ``(seed, name, stream, index)``, so a subset is corrupted exactly like the full set.
    stream: a label mixed into the key so that two image sets sharing indices (e.g. train and test)
    get independent noise. Deterministic corruptions (blur, contrast, pixelate, JPEG) ignore seed.
    Formulas and severities: Hendrycks & Dietterich (2019), see the module docstring.
    """
    _check_name(name)
    _check_severity(severity)
    is_tensor = isinstance(images, torch.Tensor)
    x = images.numpy() if is_tensor else np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 images of shape (N, H, W, C) with C in (1, 3), got {x.dtype} {x.shape}")
    n = len(x)
    index = np.arange(n, dtype=np.uint64) if indices is None else _as_indices(indices, n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if severity == 0:
        out = x.copy()
    else:
        c = SEVERITY_PARAMETERS[name][severity - 1]
        # Philox key (2 x 64 bits): (seed, crc32(name|stream) << 32 | index), as uint64 arrays (a Python
        # list of ints >= 2**63 would pass through float64 and lose its low bits)
        stream_key = np.uint64(zlib.crc32(f"{name}|{stream}".encode())) << np.uint64(32)
        keys = np.stack([np.full(n, seed, dtype=np.uint64), stream_key | index], axis=1)
        out = np.empty_like(x)

        def corrupt_chunk(start: int) -> None:
            chunk = slice(start, start + _CHUNK)
            rngs = ([np.random.Generator(np.random.Philox(key=k)) for k in keys[chunk]]
                    if name in RANDOM_CORRUPTIONS else None)
            out[chunk] = _CORRUPTIONS[name](x[chunk], c, rngs)

        # chunks are independent (per-image generators), so threads change nothing but the speed
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(corrupt_chunk, range(0, n, _CHUNK)))
    return torch.from_numpy(out) if is_tensor else out


def _as_indices(indices, n: int) -> np.ndarray:
    index = indices.numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
    if index.shape != (n,) or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"indices must be {n} integers (one per image), got {index.dtype} {index.shape}")
    if n and (index.min() < 0 or index.max() >= 2 ** 32):
        raise ValueError("indices must lie in [0, 2**32)")
    return index.astype(np.uint64)


# --- the corruptions: uint8 chunk (n, H, W, C) -> uint8 chunk, as make_cifar_c.py computes them --------

def _unit(x: np.ndarray) -> np.ndarray:
    return x / 255.0  # float64, as np.array(pil_image) / 255. in the original


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.uint8(np.clip(x, 0, 1) * 255)  # truncation, as np.uint8(...) in the original


def _gaussian_noise(x, c, rngs):
    return _to_uint8(_unit(x) + c * np.stack([g.standard_normal(x.shape[1:]) for g in rngs]))


def _speckle_noise(x, c, rngs):
    u = _unit(x)
    return _to_uint8(u + u * (c * np.stack([g.standard_normal(x.shape[1:]) for g in rngs])))


def _shot_noise(x, c, rngs):
    u = _unit(x)
    return _to_uint8(np.stack([g.poisson(ui * c) for g, ui in zip(rngs, u)]) / c)


def _impulse_noise(x, amount, rngs):
    """skimage.util.random_noise(mode='s&p', amount, salt_vs_pepper=0.5), reimplemented.

    As in scikit-image, every value (each pixel and channel) is replaced independently with
    probability ``amount``, by 1 (salt) or 0 (pepper) with probability 1/2 each; other values pass.
    """
    u = _unit(x)
    draws = np.stack([g.random((2,) + x.shape[1:]) for g in rngs])
    flipped, salted = draws[:, 0] <= amount, draws[:, 1] <= 0.5
    u[flipped & salted] = 1.0
    u[flipped & ~salted] = 0.0
    return _to_uint8(u)


def _gaussian_blur(x, sigma, rngs):
    """skimage.filters.gaussian(x, sigma, multichannel=True): scipy's gaussian_filter over H and W,
    mode 'nearest' (edge replication), kernel truncated at int(4 * sigma + 0.5) pixels."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / sigma ** 2 * offsets ** 2)
    weights /= weights.sum()
    u = _unit(x)
    h, w = u.shape[1:3]
    padded = np.pad(u, [(0, 0), (radius, radius), (0, 0), (0, 0)], mode="edge")
    u = sum(weight * padded[:, k:k + h] for k, weight in enumerate(weights))  # over H, then W (as scipy)
    padded = np.pad(u, [(0, 0), (0, 0), (radius, radius), (0, 0)], mode="edge")
    u = sum(weight * padded[:, :, k:k + w] for k, weight in enumerate(weights))
    return _to_uint8(u)


def _contrast(x, c, rngs):
    u = _unit(x)
    means = u.mean(axis=(1, 2), keepdims=True)
    return _to_uint8((u - means) * c + means)


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _from_pil(image, channels: int) -> np.ndarray:
    a = np.asarray(image, dtype=np.uint8)
    return a[..., None] if channels == 1 else a


def _pixelate(x, c, rngs):
    """PIL box down-scaling to int(size * c), then box up-scaling back (exact, no float round trip)."""
    from PIL import Image

    h, w = x.shape[1:3]
    return np.stack([_from_pil(_pil(im).resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX),
                               x.shape[-1]) for im in x])


def _jpeg_compression(x, quality, rngs):
    """A PIL JPEG round trip at ``quality`` (Pillow's default 4:2:0 subsampling, as the original)."""
    from PIL import Image

    out = []
    for im in x:
        buffer = io.BytesIO()
        _pil(im).save(buffer, "JPEG", quality=quality)
        out.append(_from_pil(Image.open(buffer), x.shape[-1]))
    return np.stack(out)


_CORRUPTIONS = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise, "gaussian_blur": _gaussian_blur, "contrast": _contrast,
    "pixelate": _pixelate, "jpeg_compression": _jpeg_compression,
}


# --- spec strings for a notebook's parameters cell ------------------------------------------------------

@dataclass(frozen=True)
class Corruption:
    """An input corruption: a CIFAR-10-C ``name`` at ``severity`` 0..5 (0 = clean)."""

    name: str = "clean"
    severity: int = 0

    def __post_init__(self) -> None:
        if self.name != "clean":
            _check_name(self.name)
        _check_severity(self.severity)
        if self.name == "clean" and self.severity != 0:
            raise ValueError("the 'clean' corruption has severity 0 only")

    @property
    def is_clean(self) -> bool:
        return self.severity == 0

    @property
    def paper_level(self) -> int | None:
        """The paper's level (appendix A.3) of this severity, or None for severities 2 and 4."""
        return {s: level for level, s in PAPER_LEVEL_TO_SEVERITY.items()}.get(self.severity)

    def __str__(self) -> str:
        return "clean" if self.is_clean else f"{self.name}:{self.severity}"


CORRUPTION_SPEC_FORMS = ("clean", "<name>:<severity 0..5 on the CIFAR-10-C scale>",
                         "<name>:level<paper level 0..3>")


def parse_corruption(spec: str | Corruption | None) -> Corruption:
    """A :class:`Corruption` from a spec string.

    ``"clean"`` (or ``"none"``, None): no corruption. ``"speckle_noise:3"``: CIFAR-10-C severity 3.
    ``"speckle_noise:level2"``: the paper's level 2, i.e. CIFAR-10-C severity 3 (appendix A.3).
    """
    if isinstance(spec, Corruption):
        return spec
    if spec is None or str(spec).strip().lower() in ("clean", "none", ""):
        return Corruption()
    name, sep, value = str(spec).strip().lower().partition(":")
    _check_name(name)
    level = re.fullmatch(r"level([0-9]+)", value)
    if level:
        return Corruption(name, paper_level_to_severity(int(level.group(1))))
    if not sep or not re.fullmatch(r"[0-9]+", value):
        raise ValueError(f"cannot parse corruption {spec!r}; valid forms: {', '.join(CORRUPTION_SPEC_FORMS)} "
                         f"with name in {', '.join(CORRUPTION_NAMES)}")
    return Corruption(name, int(value))


def corrupt_data(data: ImageData, corruption: str | Corruption | None, seed: int) -> ImageData:
    """``data`` with its images corrupted by a spec (see :func:`parse_corruption`); labels unchanged.

    Image ``i`` is keyed by ``data.indices[i]`` and the stream ``"<data.name>:<data.split>"``, so a
    subset gets the pixels of the corrupted full split and train and test noise are independent.
    Normalisation statistics stay those of the clean training split.
    """
    spec = parse_corruption(corruption)
    if spec.is_clean:
        return data
    images = corrupt(data.images.permute(0, 2, 3, 1).contiguous(), spec.name, spec.severity, seed,
                     indices=data.indices, stream=f"{data.name}:{data.split}")
    out = data.with_images(images.permute(0, 3, 1, 2).contiguous())
    return replace(out, provenance={**data.provenance, "corruption": str(spec), "corruption_seed": seed})

