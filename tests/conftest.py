import pytest
import torch

from ncutils.data import data_root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def cifar_root():
    """The data root holding real CIFAR-10 (CI lays it out; a missing copy is a failure, not a skip)."""
    root = data_root()
    assert (root / "cifar-10-batches-py").is_dir(), (
        f"CIFAR-10 not under NCUTILS_DATA={root}: run `make data` (or prepare.py) first")
    return root
