"""Fault injection: hostile or damaged files, killed processes, unwritable and shared stores, bad inputs.

Each test injects one fault and checks that it is contained (nothing runs, nothing is lost, nobody
is left behind) or that it stops with one line naming what to fix.
"""
import contextlib
import ctypes
import errno
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ncutils import build_model, load_dataset
from ncutils.cli import main
from ncutils.config import RunConfig
from ncutils.corruptions import parse_corruption
from ncutils.data import ImageData
from ncutils.paths import PACKAGE_PARENT as REPO_ROOT
from ncutils.experiment import RunRecord, run_experiment
from ncutils.metrics import cdnv
from ncutils.noise import cifar10n_labels, random_labels
from ncutils.results import MissingResults, results
from ncutils.store import Store
from ncutils.studies import study_configs
from ncutils.train import DamagedCheckpointWarning, TrainConfig, atomic_save, train
from test_runs import race  # two processes asking for one run at once, as in test_runs

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


def test_a_malicious_cifar10n_file_is_refused_unexecuted(tmp_path):
    path, marker = tmp_path / "CIFAR-10N" / "CIFAR-10_human.pt", tmp_path / "executed"
    path.parent.mkdir()
    torch.save({"clean_label": _Exec(f"touch {marker}")}, path)  # the file's format: a torch zip-pickle
    with pytest.raises(pickle.UnpicklingError, match=f"{path}: refusing to unpickle posix.system") as error:
        cifar10n_labels("worse", root=tmp_path, download=False)
    one_line(error)
    assert not marker.exists()


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


# --- processes: killed sweeps, shared stores ---------------------------------------------------------

def _children(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_sweep_leaves_no_worker(tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    configs = [tiny(seed=41), tiny(seed=42)]
    code = ("import sys, json; from ncutils.config import RunConfig; from ncutils.store import Store; "
            "from ncutils.sweep import run_local; "
            "run_local([RunConfig.from_dict(c) for c in json.loads(sys.argv[1])], store=Store(sys.argv[2], "
            "sys.argv[3]), workers=2, threads=1, progress=False)")
    log = tmp_path / "sweep.err"
    workers = []
    with contextlib.ExitStack() as held:
        for config in configs:  # the workers wait for these runs' locks: alive, idle, until we let go
            held.enter_context(store._lock(config))
        with open(log, "w") as err:
            sweep = subprocess.Popen([sys.executable, "-c", code, json.dumps([c.to_dict() for c in configs]),
                                      str(store.root), str(store.cache)], stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.time() + 240
            while log.read_text().count("waiting for another process") < 2 and time.time() < deadline:
                assert sweep.poll() is None, log.read_text()
                time.sleep(0.2)
            workers = [pid for pid in _children(sweep.pid)
                       if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            assert len(workers) == 2, (workers, log.read_text())
            sweep.kill()
            sweep.wait()
            deadline = time.time() + 10
            while any(map(_alive, workers)) and time.time() < deadline:
                time.sleep(0.1)
            assert not [pid for pid in workers if _alive(pid)], "workers outlived their killed sweep"
        finally:
            sweep.kill()
            for pid in workers:  # orphans this test started: end them before they take the locks
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_two_writers_sharing_a_store_with_separate_caches_train_once(tmp_path, cifar_root):
    config, marker = tiny(seed=43), tmp_path / "trainings"
    caches = [tmp_path / f"cache-{i}" for i in range(2)]
    assert race(config, tmp_path / "results", caches, marker) == ["computed", "stored"]
    assert len(marker.read_text().split()) == 1, "the run was trained once per cache"
    assert Store(tmp_path / "results", tmp_path / "cache-0").status(config) == "stored"
    assert (tmp_path / "results" / "runs" / ".locks").is_dir(), "the lock is not beside the results"


def _write_rounds(record, root: str, cache: str, rounds: int, barrier, remover: bool, failures) -> None:
    store = Store(root, cache)
    failed = []
    for _ in range(rounds):
        barrier.wait()
        try:
            store.write(record)
        except Exception as error:
            failed.append(f"{type(error).__name__}: {error}")
        barrier.wait()
        if remover:
            shutil.rmtree(store.run_dir(record.config))
        barrier.wait()
    failures.put(failed)


def test_synchronised_writers_of_one_run_never_fail(tmp_path):
    config = tiny(seed=44)
    record = RunRecord(config, pd.DataFrame({"value": [1.0]}), pd.DataFrame({"epoch": [1]}), {"train_acc": 1.0}, {})
    ctx = multiprocessing.get_context("spawn")
    barrier, failures = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_write_rounds, args=(record, str(tmp_path / "results"), str(tmp_path / f"cache-{i}"),
                                                     30, barrier, i == 0, failures)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    failed = failures.get(timeout=5) + failures.get(timeout=5)
    assert not failed, f"{len(failed)} of 60 writes failed, e.g. {failed[0]}"


# --- the store: unwritable, malformed ----------------------------------------------------------------

def _permission_bits_apply() -> None:
    """preexec_fn: as root, drop the capabilities that override permission bits (from the bounding
    set, so the exec'd process lacks them): a read-only directory is then read-only to it too."""
    if os.geteuid() == 0:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
            assert prctl(24, capability) == 0, os.strerror(ctypes.get_errno())  # PR_CAPBSET_DROP


@pytest.mark.parametrize("command, read_only", [
    (["train", "resnet18", "--epochs", "1"], "results store"),
    (["train", "resnet18", "--epochs", "1"], "cache"),
    (["sweep", "clean", "--scale", "smoke", "--workers", "2"], "results store"),
])
def test_an_unwritable_store_or_cache_stops_before_any_work(tmp_path, command, read_only):
    base = tmp_path
    for name in ("results", "cache"):
        (base / name).mkdir()
    (base / ("results" if read_only == "results store" else "cache")).chmod(0o555)
    env = {**os.environ, "NCUTILS_CACHE": str(base / "cache"), "NCUTILS_DATA": str(base / "no-data"),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "ncutils", *command, "--store", str(base / "results")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_permission_bits_apply)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: the {read_only} {base}"), done.stderr
    assert "not writable (Permission denied)" in done.stderr
    assert "not found" not in done.stderr + done.stdout, "it started the work (and looked for the data)"


def test_a_malformed_sibling_directory_leaves_status_working(tmp_path, capsys):
    store = Store(tmp_path / "results", tmp_path / "cache")
    config = tiny(seed=45)
    sibling = store.runs / f"{config.model}-{config.dataset}-0000000000000000"
    sibling.mkdir(parents=True)
    (sibling / "config.json").write_text('"hello"\n')
    odd = store.runs / f"{config.model}-{config.dataset}-1111111111111111"
    (odd / "config.json").mkdir(parents=True)  # a directory where a file should be
    assert store.status(config) == "missing"
    assert store.incompatible() == []
    assert f"corrupt run directory {sibling}" in capsys.readouterr().err
    # its own directory: a valid manifest over a config.json that holds no object
    record = RunRecord(config, pd.DataFrame({"value": [1.0]}), pd.DataFrame({"epoch": [1]}), {"train_acc": 1.0}, {})
    run = store.write(record)
    (run / "config.json").write_text('"hello"\n')
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"]["config.json"] = hashlib.sha256(b'"hello"\n').hexdigest()
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert store.status(config) == "corrupt"
    with pytest.raises(ValueError, match="is corrupt: its config.json holds no JSON object; recompute it") as error:
        store.read(config)
    one_line(error)


# --- one line naming what to fix ----------------------------------------------------------------------

@pytest.mark.parametrize("size, message", [
    ({"width": 0}, "size width must be an integer >= 1, got 0"),
    ({"width": -4}, "size width must be an integer >= 1, got -4"),
    ({"width": 2.5}, "size width must be an integer >= 1, got 2.5"),
    ({"width": True}, "size width must be an integer >= 1, got True"),
    ({"width": "16"}, "size width must be an integer >= 1, got '16'"),
    ({"activation": "gelu"}, "size activation must be one of relu, tanh, leaky_relu, got 'gelu'"),
    ({"activation": ["relu"]}, "size activation must be one of relu, tanh, leaky_relu, got ['relu']"),
])
def test_sizes_a_config_cannot_build_are_refused_when_made(size, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        tiny(size=size)
    one_line(error)


def test_sizes_are_normalised_so_equal_sizes_share_a_key():
    assert tiny(size={"width": np.int64(4)}).key() == tiny(size={"width": 4}).key()
    assert tiny(size={"width": np.int64(4)}).size == (("width", 4),)
    vit = dict(model="vit_tiny", size={"embed_dim": 12, "depth": 1})
    assert tiny(**vit).size == tiny(**{**vit, "size": {**vit["size"], "drop_path_rate": 0}}).size
    with pytest.raises(ValueError, match=re.escape("size drop_path_rate must be a number in [0, 1), got 1.5")):
        tiny(model="vit_tiny", size={"drop_path_rate": 1.5})


@pytest.mark.parametrize("argv, message", [
    (["train", "resnet18", "--seed", "-1"], "error: seed must be an integer >= 0, got -1"),
    (["train", "resnet18", "--size", "width=0"], "error: size width must be an integer >= 1, got 0"),
    (["train", "resnet18", "--store", ""], "error: the results store path is empty; give a directory"),
    (["sweep", "clean", "--scale", "smoke", "--store", ""], "error: the results store path is empty; give a directory"),
    (["sweep", "clean", "--scale", "smoke", "--match", "resnet18", "--match", "vgg11", "--dry-run"],
     "error: no run of study 'clean' at scale 'smoke' matches --match 'resnet18' 'vgg11'; its runs: "),
])
def test_bad_command_lines_stop_with_one_line(argv, message):
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert one_line(error.value.code).startswith(message)


def test_nothing_matched_lists_the_study_s_runs():
    with pytest.raises(SystemExit) as error:
        main(["sweep", "clean", "--scale", "smoke", "--match", "no such run"])
    assert error.value.code != 0
    assert all(c.describe() in error.value.code for c in study_configs("clean", "smoke"))


def test_training_zero_epochs_says_it_measured_at_initialisation(tmp_path, monkeypatch, capsys):
    def ensure(store, config, progress=True):
        assert config.epochs == 0
        return "computed"

    record = RunRecord(tiny(epochs=0), pd.DataFrame(), pd.DataFrame(columns=["epoch"]),
                       {"train_acc": 0.1, "test_acc": 0.1}, {})
    monkeypatch.setattr(Store, "ensure", ensure)
    monkeypatch.setattr(Store, "read", lambda store, config: record)
    main(["train", "resnet18", "--epochs", "0", "--store", str(tmp_path)])
    assert "epochs 0: no training; the model was measured at initialisation" in capsys.readouterr().out


def test_a_truncated_cifar_batch_names_the_file_and_the_fix(tmp_path, cifar_root):
    source, folder = cifar_root / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in source.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "data_batch_1").unlink()
    (folder / "data_batch_1").write_bytes((source / "data_batch_1").read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{folder / 'data_batch_1'} is damaged .*`make data`") as error:
        load_dataset("cifar10", "train", root=tmp_path, download=False)
    one_line(error)


@pytest.mark.parametrize("call, message", [
    (lambda: parse_corruption("gaussian_noise:²"), "cannot parse corruption 'gaussian_noise:²'; valid forms"),
    (lambda: parse_corruption("gaussian_noise:level²"), "cannot parse corruption 'gaussian_noise:level²'"),
    (lambda: random_labels(torch.tensor([], dtype=torch.int64), 0.5, 0), "labels must be a non-empty 1-D integer"),
    (lambda: random_labels(torch.tensor([0, 1]), 0.5, 0, num_classes=0), "num_classes must be an integer >= 1"),
    (lambda: random_labels(torch.tensor([0, 1]), 0.5, 1.5), "seed must be an integer >= 0, got 1.5"),
    (lambda: random_labels(torch.tensor([0, 3]), 0.5, 0, num_classes=2), r"labels must lie in 0..1 \(num_classes 2\)"),
    (lambda: load_dataset("cifar10:photo"), "unknown dataset 'cifar10:photo'; valid: cifar10, cifar100"),
    (lambda: cdnv(torch.randn(4, 3), ["cat", "dog"] * 2), "labels must be a 1-D integer vector, got list of "
                                                            "non-numbers .*map class names to integers first"),
    (lambda: cdnv(torch.randn(4, 3), np.array(["cat", "dog"] * 2)), "got ndarray of non-numbers"),
])
def test_bad_arguments_give_one_line_naming_what_to_fix(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    one_line(error)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_cdnv_is_finite_and_scale_invariant_at_extreme_scales(scale):
    g = torch.Generator().manual_seed(0)
    features, labels = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.arange(40) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no false "identical means"
        assert cdnv(features * scale, labels) == pytest.approx(cdnv(features, labels), rel=1e-12)


def test_a_corrupt_committed_run_says_how_to_restore_it_and_how_to_recompute_it(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    store = Store(tmp_path / "results", tmp_path / "cache")
    config = tiny(seed=46)
    run = store.write(RunRecord(config, pd.DataFrame({"value": [1.0]}), pd.DataFrame({"epoch": [1]}),
                                {"train_acc": 1.0}, {}))
    git("add", "results")
    git("commit", "-qm", "results")
    (run / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="is corrupt") as error:
        store.read(config)
    restore = f"git -C {store.runs} checkout -- {run.name}"
    assert f"`{restore}` restores the committed copy, or recompute it" in one_line(error)
    with pytest.raises(MissingResults, match=re.escape(f"restored in a second with\n  {restore}")):
        results([config], store=store, compute=False, progress=False)
    subprocess.run(restore.split(), check=True)
    assert store.status(config) == "stored"
