"""CIFAR-10-C corruptions: statistics against the formulas of Hendrycks & Dietterich (2019), determinism,
spec strings and errors."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ncutils.corruptions import (CORRUPTION_NAMES, Corruption, corrupt, corrupt_data, paper_level_to_severity,
                                 parse_corruption)
from ncutils.data import load_dataset

# make_cifar_c.py's CIFAR parameters for severities 1..5, copied from the reference code, not from ncutils
GAUSSIAN_STD = [0.04, 0.06, 0.08, 0.09, 0.10]
SPECKLE_STD = [0.06, 0.10, 0.12, 0.16, 0.20]
SHOT_PHOTONS = [500, 250, 100, 75, 50]
IMPULSE_AMOUNT = [0.01, 0.02, 0.03, 0.05, 0.07]
CONTRAST = [0.75, 0.5, 0.4, 0.3, 0.15]
BLUR_SIGMA = [0.4, 0.6, 0.7, 0.8, 1.0]
GREY = 128


@pytest.fixture(scope="module")
def root(cifar_root) -> Path:
    return cifar_root


@pytest.fixture(scope="module")
def cifar_test(root):
    return load_dataset("cifar10", "test", root=root)


@pytest.fixture(scope="module")
def real_nhwc(cifar_test):
    return cifar_test.images[::10].permute(0, 2, 3, 1).contiguous()  # 1,000 real images


def grey(n=200, value=GREY, size=32, channels=3):
    return np.full((n, size, size, channels), value, dtype=np.uint8)


# --- statistics against the formulas ---------------------------------------------------------------------
# Output = trunc(255 * clip(x + noise)); on mid-grey (x = 128/255) clipping is > 4 sd away for every severity,
# and truncating a continuous value adds a uniform(-1, 0) error: mean 127.5, variance (255 s)^2 + 1/12.

@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_gaussian_noise_residual_std_on_mid_grey(severity):
    out = corrupt(grey(), "gaussian_noise", severity, seed=0).astype(np.float64)
    c = GAUSSIAN_STD[severity - 1]
    assert out.std() == pytest.approx(math.sqrt((255 * c) ** 2 + 1 / 12), rel=0.01)
    assert out.mean() == pytest.approx(GREY - 0.5, abs=0.05)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_speckle_noise_residual_std_is_multiplicative(severity):
    c = SPECKLE_STD[severity - 1]
    out = corrupt(grey(), "speckle_noise", severity, seed=0).astype(np.float64)
    assert out.std() == pytest.approx(math.sqrt((GREY * c) ** 2 + 1 / 12), rel=0.01)  # x * N(0, c), x = 128/255
    dark = corrupt(grey(value=0), "speckle_noise", severity, seed=0)
    assert (dark == 0).all()  # multiplicative noise leaves black untouched


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_shot_noise_is_poisson(severity):
    photons = SHOT_PHOTONS[severity - 1]
    x = GREY / 255
    out = corrupt(grey(), "shot_noise", severity, seed=0).astype(np.float64)
    # Poisson(x c) / c has variance x / c; the output is 255 times it, truncated
    assert out.std() == pytest.approx(math.sqrt(255 ** 2 * x / photons + 1 / 12), rel=0.02)
    assert out.mean() == pytest.approx(GREY - 0.5, abs=0.2)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_impulse_noise_is_salt_and_pepper_per_value(severity):
    amount = IMPULSE_AMOUNT[severity - 1]
    out = corrupt(grey(), "impulse_noise", severity, seed=0)
    n = out.size
    salt, pepper, kept = (out == 255).mean(), (out == 0).mean(), (out == GREY).mean()
    assert salt + pepper + kept == 1  # untouched values survive the /255 * 255 round trip exactly
    sd = math.sqrt(amount * (1 - amount) / n)
    assert abs(salt + pepper - amount) < 4 * sd
    assert abs(salt - amount / 2) < 4 * math.sqrt(amount / 2 / n)
    colours = out.reshape(-1, 3)
    assert ((colours == 255).sum(1) == 1).any()  # channels are hit independently, as in scikit-image


@pytest.mark.parametrize("severity", [1, 5])
def test_contrast_by_hand(severity):
    image = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    image[:, :16] = 201  # per-channel mean 100.5 / 255
    c = CONTRAST[severity - 1]
    out = corrupt(image, "contrast", severity, seed=0)
    assert (out[:, 16:] == math.floor(100.5 - 100.5 * c)).all() and (out[:, :16] == math.floor(100.5 + 100.5 * c)).all()


@pytest.mark.parametrize("severity", [1, 5])
def test_gaussian_blur_spreads_a_point_as_the_truncated_gaussian_kernel(severity):
    sigma = BLUR_SIGMA[severity - 1]
    radius = int(4 * sigma + 0.5)  # scipy.ndimage.gaussian_filter's truncate=4.0
    kernel = np.exp(-0.5 * np.arange(-radius, radius + 1) ** 2 / sigma ** 2)
    kernel /= kernel.sum()
    image = np.zeros((1, 32, 32, 1), dtype=np.uint8)
    image[0, 16, 16] = 255
    out = corrupt(image, "gaussian_blur", severity, seed=0)[0, :, :, 0].astype(np.int64)
    expected = np.zeros((32, 32))
    expected[16 - radius:17 + radius, 16 - radius:17 + radius] = 255 * np.outer(kernel, kernel)
    assert np.abs(out - expected).max() <= 1  # truncation to uint8


def test_pixelate_and_jpeg_keep_flat_images_and_change_real_ones(real_nhwc):
    for name in ("pixelate", "jpeg_compression"):
        assert (corrupt(grey(4), name, 5, seed=0) == GREY).all()
        assert not torch.equal(corrupt(real_nhwc[:50], name, 5, seed=0), real_nhwc[:50])


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_every_corruption_gets_stronger_with_severity(real_nhwc, name):
    x = real_nhwc[:300]
    errors = [(corrupt(x, name, s, seed=1).float() - x.float()).abs().mean().item() for s in range(6)]
    assert errors[0] == 0 and all(a < b for a, b in zip(errors, errors[1:])), errors


# --- determinism ---------------------------------------------------------------------------------------

def test_same_image_and_seed_give_the_same_corruption_in_any_batch(real_nhwc):
    full = corrupt(real_nhwc, "gaussian_noise", 3, seed=5)
    assert torch.equal(full, corrupt(real_nhwc, "gaussian_noise", 3, seed=5))
    assert not torch.equal(full, corrupt(real_nhwc, "gaussian_noise", 3, seed=6))
    picks = torch.tensor([999, 3, 500, 42])
    assert torch.equal(corrupt(real_nhwc[picks], "gaussian_noise", 3, seed=5, indices=picks), full[picks])
    order = torch.randperm(len(real_nhwc))
    assert torch.equal(corrupt(real_nhwc[order], "gaussian_noise", 3, seed=5, indices=order), full[order])


def test_streams_and_corruptions_draw_independent_noise():
    flat = grey(20)
    per_image = corrupt(flat, "gaussian_noise", 5, seed=0).astype(float) - GREY
    assert abs(np.corrcoef(per_image[0].ravel(), per_image[1].ravel())[0, 1]) < 0.06  # equal pixels, own noise
    train = corrupt(flat, "gaussian_noise", 5, seed=0, stream="cifar10:train").astype(float) - GREY
    test = corrupt(flat, "gaussian_noise", 5, seed=0, stream="cifar10:test").astype(float) - GREY
    speckle = corrupt(flat, "speckle_noise", 5, seed=0, stream="cifar10:train").astype(float) - GREY
    assert abs(np.corrcoef(train.ravel(), test.ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(train.ravel(), speckle.ravel())[0, 1]) < 0.02


def test_severities_share_their_draws():
    flat = grey(20)
    mild = corrupt(flat, "gaussian_noise", 1, seed=0).astype(float)
    severe = corrupt(flat, "gaussian_noise", 5, seed=0).astype(float)
    assert np.corrcoef(mild.ravel(), severe.ravel())[0, 1] > 0.95
    hit = [corrupt(flat, "impulse_noise", s, seed=0) != GREY for s in (1, 3, 5)]
    assert (hit[0] <= hit[1]).all() and (hit[1] <= hit[2]).all()


def test_severity_zero_is_an_unchanged_copy_of_the_same_type(real_nhwc):
    out = corrupt(real_nhwc, "speckle_noise", 0, seed=0)
    assert isinstance(out, torch.Tensor) and torch.equal(out, real_nhwc) and out.data_ptr() != real_nhwc.data_ptr()
    as_numpy = corrupt(real_nhwc.numpy(), "speckle_noise", 2, seed=0)
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, corrupt(real_nhwc, "speckle_noise", 2, 0).numpy())


def test_corrupt_data_keys_images_by_their_indices(cifar_test):
    full = corrupt_data(cifar_test, "speckle_noise:level2", seed=0)
    positions = torch.tensor([7, 4_000, 9_999])
    part = corrupt_data(cifar_test.subset(positions), "speckle_noise:3", seed=0)
    assert torch.equal(part.images, full.images[positions])
    assert torch.equal(full.labels, cifar_test.labels) and full.mean == cifar_test.mean
    assert full.provenance["corruption"] == "speckle_noise:3"
    assert corrupt_data(cifar_test, "clean", seed=0) is cifar_test
    nhwc = cifar_test.images[positions].permute(0, 2, 3, 1)
    direct = corrupt(nhwc, "speckle_noise", 3, 0, indices=positions, stream="cifar10:test")
    assert torch.equal(direct.permute(0, 3, 1, 2), part.images)


# --- spec strings and errors ---------------------------------------------------------------------------

def test_paper_levels_are_cifar10c_severities_1_3_5():
    assert [paper_level_to_severity(level) for level in range(4)] == [0, 1, 3, 5]
    with pytest.raises(ValueError, match=r"\[0, 1, 2, 3\]"):
        paper_level_to_severity(4)


def test_parse_corruption_forms():
    assert parse_corruption("speckle_noise:3") == Corruption("speckle_noise", 3)
    assert parse_corruption("Speckle_Noise:level2") == Corruption("speckle_noise", 3)
    assert parse_corruption("gaussian_noise:level3").severity == 5
    assert parse_corruption("gaussian_noise:level3").paper_level == 3
    assert parse_corruption("gaussian_noise:2").paper_level is None
    assert parse_corruption("clean") == parse_corruption(None) == Corruption()
    assert parse_corruption("gaussian_noise:0").is_clean
    assert str(parse_corruption("gaussian_noise:level1")) == "gaussian_noise:1"


@pytest.mark.parametrize("spec, message", [
    ("fog:3", "valid: gaussian_noise, shot_noise, impulse_noise, speckle_noise"),
    ("gaussian_noise:6", "0..5"), ("gaussian_noise:level4", r"\[0, 1, 2, 3\]"),
    ("gaussian_noise", "valid forms"), ("gaussian_noise:-1", "valid forms"),
])
def test_parse_corruption_errors_list_the_valid_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_corruption(spec)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "frost"}, "valid: gaussian_noise"), ({"severity": 6}, "0..5"), ({"severity": -1}, "0..5"),
    ({"severity": True}, "0..5"), ({"seed": -1}, "seed"),
])
def test_corrupt_rejects_bad_values(kwargs, message):
    args = {"images": grey(2), "name": "gaussian_noise", "severity": 1, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        corrupt(**args)


def test_corrupt_rejects_non_nhwc_uint8():
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        corrupt(grey(2).astype(np.float32), "gaussian_noise", 1, 0)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        corrupt(grey(2).transpose(0, 3, 1, 2).copy(), "gaussian_noise", 1, 0)

