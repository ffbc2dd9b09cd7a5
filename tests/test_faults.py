"""Fault injection: hostile or damaged files, killed processes, unwritable and shared stores, bad inputs.

Each test injects one fault and checks that it is contained (nothing runs, nothing is lost, nobody
is left behind) or that it stops with one line naming what to fix.
"""
import errno
import os
import shutil

import pytest
import torch

from ncutils import build_model
from ncutils.config import RunConfig
from ncutils.data import ImageData
from ncutils.experiment import run_experiment
from ncutils.store import Store
from ncutils.train import DamagedCheckpointWarning, TrainConfig, atomic_save, train

THREADS = 1


def tiny(**fields) -> RunConfig:
    """A run of seconds: ResNet18 at width 4 on 10 CIFAR-10 images per class, flat features only."""
    base = dict(model="resnet18", dataset="cifar10", size={"width": 4}, n_per_class=10, eval_n_per_class=5, epochs=2,
                probe_epochs=1, features=("flat",), scale="smoke")
    return RunConfig(**{**base, **fields})


def synthetic(n: int = 20, classes: int = 2) -> ImageData:
    """Random 32x32 images, for trainings of a fraction of a second that need no dataset."""
    g = torch.Generator().manual_seed(0)
    return ImageData(name="synthetic", split="train", images=torch.randint(0, 256, (n, 3, 32, 32), generator=g,
                                                                            dtype=torch.uint8),
                     labels=torch.arange(n) % classes, classes=tuple(map(str, range(classes))), mean=(0.5,) * 3,
                     std=(0.25,) * 3, indices=torch.arange(n))


def quick_train(checkpoint, epochs: int = 1, width: int = 2, classes: int = 2, run: dict | None = None):
    return train(build_model("resnet18", classes, width=width), synthetic(classes=classes),
                 TrainConfig(epochs=epochs, batch_size=10), checkpoint=checkpoint, run=run, progress=False)


def one_line(error) -> str:
    text = str(error.value if hasattr(error, "value") else error)
    assert text and "\n" not in text.strip(), f"not one line: {text!r}"
    return text


@pytest.fixture(autouse=True)
def threads(monkeypatch):
    """One torch thread: the machine is shared, and runs in other processes must compute alike."""
    monkeypatch.setenv("OMP_NUM_THREADS", str(THREADS))
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


class _Exec:
    """Pickles as a call of os.system: what a hostile checkpoint holds."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


# --- checkpoints ------------------------------------------------------------------------------------

def test_a_malicious_checkpoint_does_not_execute(tmp_path, cifar_root):
    store = Store(tmp_path / "results", tmp_path / "cache")
    config = tiny(seed=21)
    checkpoint, marker = store.checkpoint_path(config), tmp_path / "executed"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"epoch": 1, "model": {}, "optimizer": {}, "config": {}, "log": [_Exec(f"touch {marker}")],
                "run": config.training_identity()}, checkpoint)
    with pytest.warns(DamagedCheckpointWarning, match=f"checkpoint {checkpoint} is unreadable .*posix.system"):
        assert store.ensure(config, progress=False) == "computed"
    assert not marker.exists(), "the checkpoint's pickle ran a command"
    assert len(list(checkpoint.parent.glob(f"{checkpoint.name}.damaged-*"))) == 1, "the hostile file was not kept aside"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == config.epochs  # retrained from scratch
    assert store.read(config).provenance["resumed_from_epoch"] == 0


def test_a_checkpoint_of_another_run_is_refused_naming_both(tmp_path):
    photo = tiny(dataset="pacs:photo", epochs=1, image_size=32)
    checkpoint = tmp_path / "photo.pt"
    quick_train(checkpoint, classes=7, width=4, run=photo.training_identity())
    for other, field in ((tiny(dataset="pacs:art_painting", epochs=1, image_size=32), "dataset"),
                         (tiny(dataset="pacs:photo", epochs=1, image_size=32, size={"width": 8}), "size")):
        with pytest.raises(ValueError, match="belongs to another run") as error:
            run_experiment(other, checkpoint=checkpoint, progress=False)
        text = one_line(error)
        assert f"{field}={photo.to_dict()[field]!r}" in text and f"{field}={other.to_dict()[field]!r}" in text
        assert photo.training_key() in text and other.training_key() in text
    assert checkpoint.exists(), "a checkpoint of another run must be left alone"


def test_a_checkpoint_of_another_model_size_is_one_line(tmp_path):
    checkpoint = tmp_path / "c.pt"
    quick_train(checkpoint, width=2)
    with pytest.raises(ValueError, match=f"checkpoint {checkpoint} holds the weights of another model or size "
                                         r"\(RuntimeError: .*size mismatch") as error:
        quick_train(checkpoint, width=4)
    one_line(error)


@pytest.mark.parametrize("damage", ["truncated", "empty", "not a checkpoint"])
def test_a_damaged_checkpoint_is_set_aside_and_training_restarts(tmp_path, damage):
    checkpoint = tmp_path / "c.pt"
    quick_train(checkpoint, epochs=2)
    data = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        checkpoint.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(3)}, checkpoint)
    with pytest.warns(DamagedCheckpointWarning, match=f"checkpoint {checkpoint} is unreadable") as warned:
        log = quick_train(checkpoint, epochs=2)
    one_line(warned[0].message)
    assert log.epoch.tolist() == [1, 2], "training did not restart from scratch"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    [aside] = tmp_path.glob("c.pt.damaged-*")
    assert aside.name in str(warned[0].message)


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")])
def test_a_failed_save_leaves_no_partial_file_and_says_the_disk_is_full(tmp_path, monkeypatch, failure):
    def full_disk_save(obj, path):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a checkpoint")
        raise failure

    monkeypatch.setattr(torch, "save", full_disk_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(OSError, match=f"the disk is full: no space to save checkpoint {tmp_path / 'c.pt'}") as error:
        atomic_save({"epoch": 1}, tmp_path / "c.pt")
    one_line(error)
    assert error.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == [], "a partial checkpoint was left behind"


def test_an_empty_checkpoint_path_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="checkpoint must be a file path .*got ''") as error:
        quick_train("")
    one_line(error)
