import os
import signal
import subprocess
import time

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


@pytest.fixture
def kill_after_checkpoint():
    """Start a command, SIGKILL it as soon as ``checkpoint`` exists, return the checkpoint's epoch."""
    def run(command: list[str], checkpoint, timeout: float = 300, env: dict | None = None) -> int:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + timeout
        while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return torch.load(checkpoint, weights_only=True)["epoch"]
    return run
