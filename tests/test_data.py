import itertools

import pytest
import torch
import torchvision.transforms.functional as TF

from ncutils.data import (Batches, DatasetNotFoundError, ImageData, balanced_subset, load_dataset, normalize,
                          random_crop_flip, steps_per_epoch)


def test_cifar10_loads_with_provenance(cifar_root):
    train, test = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
    assert train.images.shape == (50000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [5000] * 10  # CIFAR-10 is balanced
    assert train.classes[0] == "airplane" and len(train.classes) == 10
    # the offline copy is JPEG-derived (shared/data/README.md), so its md5s are not the official ones
    assert train.provenance["official_checksums"] is False
    # per-channel statistics of CIFAR-10's training set are about (0.491, 0.482, 0.447) / (0.247, 0.243, 0.262)
    assert train.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=3e-3)
    assert train.std == pytest.approx((0.2470, 0.2435, 0.2616), abs=5e-3)
    assert test.mean == train.mean  # test data is normalised with the training statistics


def test_fashion_mnist_and_pacs(cifar_root):
    fm = load_dataset("fashion-mnist", "test")
    assert fm.images.shape == (10000, 1, 28, 28) and fm.num_classes == 10
    photo_train, photo_test = load_dataset("pacs:photo", "train"), load_dataset("pacs:photo", "test")
    assert photo_train.shape == (3, 64, 64) and photo_train.num_classes == 7
    assert len(photo_train) + len(photo_test) == 1670  # PACS photo domain (shared/data/README.md)
    assert not set(photo_train.indices.tolist()) & set(photo_test.indices.tolist())


def test_balanced_subset_is_balanced_seeded_and_aligned(cifar_root):
    full = load_dataset("cifar10", "train")
    a = load_dataset("cifar10", "train", n_per_class=30, seed=1)
    b = load_dataset("cifar10", "train", n_per_class=30, seed=1)
    c = load_dataset("cifar10", "train", n_per_class=30, seed=2)
    assert torch.bincount(a.labels).tolist() == [30] * 10
    assert torch.equal(a.indices, b.indices) and not torch.equal(a.indices, c.indices)
    assert torch.equal(full.images[a.indices], a.images) and torch.equal(full.labels[a.indices], a.labels)
    with pytest.raises(ValueError, match="n_per_class must be in 1..5000"):
        balanced_subset(full.labels, 5001, 0)


def test_crop_flip_outputs_are_crops_of_the_padded_input():
    """Each output equals torchvision's pad-4 crop (and flip) at some offset: an independent reference."""
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(0))
    padded = TF.pad(images, [4])
    flips_seen = 0
    for x, y in zip(images, out):
        p = TF.pad(x, [4])
        matches = [(dy, dx, f) for dy, dx, f in itertools.product(range(9), range(9), (False, True))
                   if torch.equal(y, (TF.hflip if f else (lambda t: t))(TF.crop(p, dy, dx, 8, 8)))]
        assert matches, "an augmented image is not a crop/flip of its padded original"
        flips_seen += all(f for _, _, f in matches)
    assert 0 < flips_seen < 16  # both flipped and unflipped occur
    assert padded.shape[-1] == 16


def test_normalize_gives_zero_mean_unit_std(cifar_root):
    d = load_dataset("cifar10", "train")
    x = normalize(d.images[:20000], d.mean, d.std)
    assert x.mean((0, 2, 3)).abs().max() < 0.02
    assert (x.std((0, 2, 3)) - 1).abs().max() < 0.02


def test_batches_are_reproducible_per_epoch(cifar_root):
    d = load_dataset("cifar10", "train", n_per_class=10)
    first = [y for _, y in Batches(d, 32, shuffle=True, augment=True, seed=3, epoch=5)]
    again = [y for _, y in Batches(d, 32, shuffle=True, augment=True, seed=3, epoch=5)]
    other = [y for _, y in Batches(d, 32, shuffle=True, augment=True, seed=3, epoch=6)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert sum(len(y) for y in first) == 100 and len(first) == 4
    with pytest.raises(ValueError, match="labels has 3 entries but the data has 100 images"):
        Batches(d, labels=torch.zeros(3, dtype=torch.long))


def test_missing_dataset_names_dataset_directory_and_both_ways(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("cifar100", "train", root=tmp_path, download=False)
    msg = str(e.value)
    assert "'cifar100'" in msg and str(tmp_path / "cifar-100-python") in msg
    assert "download=True" in msg and "NCUTILS_DATA" in msg
    assert "make data" not in msg and "shared copies do not include it" in msg  # its README: no CIFAR-100


def test_missing_dataset_of_the_shared_copies_names_the_setup_step(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"offline: `make data` lays out the project's shared copies") as e:
        load_dataset("fashion-mnist", "train", root=tmp_path, download=False)
    assert "../shared" not in str(e.value)


def test_bad_names_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; valid: cifar10, cifar100"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown split 'val'; valid: train, test"):
        load_dataset("cifar10", "val")
    with pytest.raises(ValueError, match="unknown pacs domain 'foto'; valid: art_painting, cartoon, photo, sketch"):
        load_dataset("pacs:foto", root=tmp_path)


def test_resized_matches_torchvision_antialiased_resize():
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    data = ImageData("x", "train", images, torch.zeros(3, dtype=torch.int64), ("a",), (0.5,) * 3, (0.2,) * 3,
                     torch.arange(3))
    small = data.resized(32)
    reference = TF.resize(images.float(), [32, 32], antialias=True).round().clamp(0, 255).to(torch.uint8)
    assert small.images.dtype == torch.uint8 and small.shape == (3, 32, 32)
    assert (small.images.int() - reference.int()).abs().max() <= 1
    assert data.resized(64) is data


def test_steps_per_epoch_counts_the_batches_training_takes():
    """ncutils.train.train drops the last partial batch (Batches(drop_last=True)) unless it is the only one."""
    for n, batch in ((10, 128), (128, 128), (200, 128), (256, 128), (1000, 64)):
        data = ImageData("x", "train", torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.zeros(n, dtype=torch.long),
                         ("a",), (0.5,), (0.5,), torch.arange(n))
        assert steps_per_epoch(n, batch) == len(Batches(data, batch, drop_last=n > batch))
