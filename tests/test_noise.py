"""Label noise: random labels, CIFAR-10N human labels (real offline data), spec strings."""
import hashlib
import math
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ncutils import noise
from ncutils.data import DatasetNotFoundError, load_dataset
from ncutils.noise import (LabelNoise, cifar10n_labels, noise_rate, noisy_labels, parse_noise, random_labels,
                           read_numpy_archive, transition_matrix)

# Wei et al. (2022) / the CIFAR-10N release: noise rates in percent. Aggre is 4,505 / 50,000 = 9.01% in the
# released file (the issue and the data README); the CIFAR-10N paper's table and the CPAL paper print 9.03%.
PUBLISHED_CIFAR10N_NOISE = {"aggre": 9.01, "random1": 17.23, "random2": 18.12, "random3": 17.64, "worse": 40.21}
OFFICIAL_SHA256 = "873e69c39cb9b5e97fb6bae2d60bb59b38a5cbc31d2b868f7903dcb2b9dd2310"  # the release's file


@pytest.fixture(scope="module")
def root(cifar_root) -> Path:
    assert (cifar_root / "CIFAR-10N" / "CIFAR-10_human.pt").is_file(), (
        f"CIFAR-10N not under the data root {cifar_root}: run `make data` (or shared/data/prepare.py) first")
    return cifar_root


@pytest.fixture(scope="module")
def cifar_train(root):
    return load_dataset("cifar10", "train", root=root)


# --- random labels ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6, 0.8, 1.0])
def test_random_label_noise_is_within_binomial_tolerance(cifar_train, rate):
    clean = cifar_train.labels
    noisy = random_labels(clean, rate, seed=3)
    selected = round(rate * len(clean))
    p_changed = 9 / 10  # a uniform draw over 10 classes misses the true class with probability 9/10
    changed = int((noisy != clean).sum())
    sd = math.sqrt(selected * p_changed * (1 - p_changed))
    assert abs(changed - selected * p_changed) <= 4 * sd
    assert noise_rate(clean, noisy) == changed / len(clean)


def test_random_labels_replace_exactly_round_rate_n_positions():
    # with 2**40 classes a random class equals the true one with negligible probability, so the number of
    # changed labels counts the replaced positions
    labels = torch.zeros(10_001, dtype=torch.int64)
    for rate in (0.0, 0.25, 0.5, 1.0):
        noisy = random_labels(labels, rate, seed=0, num_classes=2 ** 40)
        assert int((noisy != labels).sum()) == round(rate * 10_001)


def test_fully_random_labels_are_uniform_and_independent_of_the_true_class(cifar_train):
    noisy = random_labels(cifar_train.labels, 1.0, seed=0)
    matrix = transition_matrix(cifar_train.labels, noisy, 10)
    # each row has 5,000 samples: an entry's sd is sqrt(0.1 * 0.9 / 5000) = 0.0042
    assert torch.allclose(matrix, torch.full((10, 10), 0.1, dtype=torch.float64), atol=5 * 0.0042)


def test_random_labels_are_reproducible_and_keep_the_input_type(cifar_train):
    a = random_labels(cifar_train.labels, 0.4, seed=7)
    assert torch.equal(a, random_labels(cifar_train.labels, 0.4, seed=7))
    assert not torch.equal(a, random_labels(cifar_train.labels, 0.4, seed=8))
    assert a.dtype == torch.int64 and cifar_train.labels.equal(cifar_train.labels)  # input untouched
    as_numpy = random_labels(cifar_train.labels.numpy(), 0.4, seed=7)
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, a.numpy())
    assert torch.equal(random_labels(cifar_train.labels, 0.0, seed=7), cifar_train.labels)


@pytest.mark.parametrize("rate", [-0.1, 1.5, True, "0.4", float("nan")])
def test_random_labels_reject_rates_outside_unit_interval(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        random_labels(torch.zeros(10, dtype=torch.int64), rate, seed=0)


def test_transition_matrix_by_hand():
    matrix = transition_matrix([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0], num_classes=3)
    assert torch.equal(matrix, torch.tensor([[0.5, 0.5, 0], [0.25, 0.75, 0], [0, 0, 0]], dtype=torch.float64))


# --- CIFAR-10N ------------------------------------------------------------------------------------------

def test_offline_cifar10n_file_is_the_official_release(root):
    assert hashlib.sha256(Path(root, "CIFAR-10N", "CIFAR-10_human.pt").read_bytes()).hexdigest() == OFFICIAL_SHA256
    assert noise.CIFAR10N_SHA256 == OFFICIAL_SHA256


@pytest.mark.parametrize("kind", sorted(PUBLISHED_CIFAR10N_NOISE))
def test_cifar10n_noise_rates_equal_the_published_ones(root, kind):
    clean, noisy = cifar10n_labels("clean", root=root), cifar10n_labels(kind, root=root)
    assert noisy.shape == (50_000,) and noisy.dtype == torch.int64
    assert round(100 * noise_rate(clean, noisy), 2) == PUBLISHED_CIFAR10N_NOISE[kind]


def test_cifar10n_clean_labels_are_the_cifar10_training_labels(root, cifar_train):
    assert torch.equal(cifar10n_labels("clean", root=root), cifar_train.labels)
    assert torch.equal(cifar10n_labels("worst", root=root), cifar10n_labels("worse", root=root))


def test_cifar10n_unknown_kind_lists_the_valid_ones(root):
    with pytest.raises(ValueError, match="clean, aggre, random1, random2, random3, worse"):
        cifar10n_labels("best", root=root)


def _cifar_root(tmp_path: Path, real: Path, batch_order=(1, 2, 3, 4, 5)) -> Path:
    """A data root whose CIFAR-10 files link to the real ones, training batches in ``batch_order``."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, j in enumerate(batch_order, start=1):
        (folder / f"data_batch_{i}").symlink_to(real / "cifar-10-batches-py" / f"data_batch_{j}")
    for name in ("test_batch", "batches.meta"):
        (folder / name).symlink_to(real / "cifar-10-batches-py" / name)
    return tmp_path


def test_cifar10n_fails_loudly_when_the_training_order_does_not_match(root, tmp_path):
    swapped = _cifar_root(tmp_path, root, batch_order=(2, 1, 3, 4, 5))
    (swapped / "CIFAR-10N").mkdir()
    (swapped / "CIFAR-10N" / "CIFAR-10_human.pt").symlink_to(root / "CIFAR-10N" / "CIFAR-10_human.pt")
    with pytest.raises(ValueError, match="data order does not match"):
        cifar10n_labels("aggre", root=swapped)


def test_missing_cifar10n_names_the_path_and_both_ways_to_get_it(root, tmp_path):
    empty = _cifar_root(tmp_path, root)
    with pytest.raises(DatasetNotFoundError) as error:
        cifar10n_labels("worse", root=empty, download=False)
    message = str(error.value)
    assert str(empty / "CIFAR-10N" / "CIFAR-10_human.pt") in message
    assert "download=True" in message and "`make data`" in message and "NCUTILS_DATA" in message
    assert "../shared" not in message


def test_download_checks_the_sha256(root, tmp_path, monkeypatch):
    target = _cifar_root(tmp_path / "good", root)
    monkeypatch.setattr(noise, "CIFAR10N_URL", (root / "CIFAR-10N" / "CIFAR-10_human.pt").as_uri())
    assert round(100 * noise_rate(cifar10n_labels("clean", root=target), cifar10n_labels("worse", root=target)), 2) == 40.21
    assert (target / "CIFAR-10N" / "CIFAR-10_human.pt").exists()

    tampered = tmp_path / "tampered.pt"
    tampered.write_bytes((root / "CIFAR-10N" / "CIFAR-10_human.pt").read_bytes() + b"\0")
    monkeypatch.setattr(noise, "CIFAR10N_URL", tampered.as_uri())
    other = _cifar_root(tmp_path / "bad", root)
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        cifar10n_labels("worse", root=other)
    assert not list((other / "CIFAR-10N").iterdir())


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_reader_refuses_anything_but_numpy_arrays(tmp_path):
    marker = tmp_path / "pwned"
    archive = tmp_path / "evil.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"clean_label": _Exploit(marker)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle io.open"):
        read_numpy_archive(archive)
    assert not marker.exists()

    good = tmp_path / "good.pt"
    arrays = {"a": np.arange(5), "b": np.array([1.5, 2.5])}
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(arrays, protocol=2))
    read = read_numpy_archive(good)
    assert read.keys() == arrays.keys() and all(np.array_equal(read[k], arrays[k]) for k in arrays)


# --- spec strings and ImageData ------------------------------------------------------------------------

def test_parse_noise_forms():
    assert parse_noise("clean") == parse_noise(None) == parse_noise("none") == LabelNoise()
    assert parse_noise("random:0.4") == LabelNoise("random", rate=0.4)
    assert parse_noise(" CIFAR10N:Worst ") == LabelNoise("cifar10n", variant="worse")
    assert parse_noise("cifar10n:randn1") == LabelNoise("cifar10n", variant="random1")
    for spec in ("clean", "random:0.4", "random:1", "cifar10n:aggre"):
        assert str(parse_noise(spec)) == spec and parse_noise(str(parse_noise(spec))) == parse_noise(spec)


@pytest.mark.parametrize("spec, message", [
    ("random:1.2", r"\[0, 1\]"), ("random:-0.1", r"\[0, 1\]"), ("random:abc", "random:0.4"),
    ("cifar10n:best", "clean, aggre, random1, random2, random3, worse"),
    ("gaussian", "clean, random:<rate in"), ("random", "cifar10n:<clean|aggre"),
])
def test_parse_noise_errors_list_the_valid_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_noise(spec)


def test_noisy_labels_align_cifar10n_with_a_subset_through_its_indices(root):
    subset = load_dataset("cifar10", "train", n_per_class=50, seed=4, root=root)
    result = noisy_labels(subset, "cifar10n:worse", root=root)
    assert torch.equal(result.labels, cifar10n_labels("worse", root=root)[subset.indices])
    assert torch.equal(result.clean, subset.labels)
    assert torch.equal(result.is_noisy, result.labels != subset.labels)
    assert 0.3 < result.noise_rate < 0.5  # 40% noise, 500 samples


def test_noisy_labels_random_and_clean(cifar_train):
    subset = cifar_train.subset(torch.arange(0, 50_000, 7))
    result = noisy_labels(subset, "random:0.6", seed=2)
    assert torch.equal(result.labels, random_labels(subset.labels, 0.6, 2, num_classes=10))
    assert torch.equal(noisy_labels(subset, "clean").labels, subset.labels)


def test_noisy_labels_refuse_cifar10n_outside_the_cifar10_training_split(root, cifar_train):
    with pytest.raises(ValueError, match="CIFAR-10 training split only"):
        noisy_labels(load_dataset("cifar10", "test", root=root), "cifar10n:aggre", root=root)
    shuffled = replace(cifar_train, labels=cifar_train.labels.roll(1))
    with pytest.raises(ValueError, match="data order does not match"):
        noisy_labels(shuffled, "cifar10n:aggre", root=root)
