"""Run configs, their hashes and the results store, with real runs of a few seconds on real CIFAR-10."""
import dataclasses
import json
import multiprocessing
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from ncutils import build_model, layer_taps, load_dataset
from ncutils.paths import PACKAGE_PARENT as REPO_ROOT
from ncutils.experiment import run_experiment
from ncutils.config import CODE_VERSION, RunConfig
from ncutils.frames import memorization_ratios, memorization_ratios_between
from ncutils.results import MissingResults, results, summaries
from ncutils.store import Store
from ncutils.studies import study_configs

THREADS = 1  # bitwise-equal results across processes need equal torch thread counts


def tiny(**fields) -> RunConfig:
    """A run of seconds: ResNet18 at width 4 on 10 CIFAR-10 images per class, flat features only."""
    base = dict(model="resnet18", dataset="cifar10", size={"width": 4}, n_per_class=10, eval_n_per_class=5, epochs=2,
                probe_epochs=1, features=("flat",), scale="smoke")
    return RunConfig(**{**base, **fields})


@pytest.fixture(scope="module")
def threads():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", str(THREADS))
        before = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        yield THREADS
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stored(tmp_path_factory, threads, cifar_root):
    """A store holding one computed run: (store, config, the record compute() returned)."""
    store = Store(tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("cache"))
    config = tiny(noise="random:0.4")
    return store, config, store.compute(config, progress=False)


def copy_store(store: Store, where) -> Store:
    copy = Store(where / "results", where / "cache")
    shutil.copytree(store.root, copy.root)
    shutil.copytree(store.cache, copy.cache)
    return copy


# --- config and hash ------------------------------------------------------------------------------

def test_a_scale_gives_its_longer_epochs_to_the_models_that_need_them(monkeypatch):
    from ncutils import scales

    scale = dataclasses.replace(scales.SCALES["smoke"], longer={"swin": 5, "swin_l": 7})
    monkeypatch.setitem(scales.SCALES, "smoke", scale)
    epochs = {m: RunConfig.at_scale(m, "cifar10", "smoke").epochs for m in ("resnet18", "swin_t", "swin_l")}
    assert epochs == {"resnet18": 2, "swin_t": 5, "swin_l": 7}  # the longest matching prefix wins
    assert scale.note() == "smoke scale: 20 training images per class, 2 epochs (swin: 5, swin_l: 7)"
    assert scale.note(["resnet18", "swin_t"]) == "smoke scale: 20 training images per class, 2 epochs (swin: 5)"
    assert scale.note(["resnet18"]) == "smoke scale: 20 training images per class, 2 epochs"


def test_a_scale_trains_its_fp32_models_without_autocast(monkeypatch):
    from ncutils import scales

    monkeypatch.setitem(scales.SCALES, "smoke", dataclasses.replace(scales.SCALES["smoke"], precision="bf16",
                                                                    fp32=("vit",)))
    precision = {m: RunConfig.at_scale(m, "cifar10", "smoke").precision for m in ("resnet18", "swin_t", "vit_small")}
    assert precision == {"resnet18": "bf16", "swin_t": "bf16", "vit_small": "fp32"}
    assert "precision=fp32" in RunConfig.at_scale("vit_small", "cifar10", "smoke").describe()
    assert "precision" not in RunConfig.at_scale("resnet18", "cifar10", "smoke").describe()


def test_key_is_stable_across_spelling_dict_order_scale_label_and_data_root(monkeypatch):
    a = tiny(size={"width": 4, "activation": "tanh"}, noise="random:0.40", corruption="gaussian_noise:level2")
    b = tiny(size=(("activation", "tanh"), ("width", 4)), noise="RANDOM:0.4", corruption="gaussian_noise:3",
             recipe="sgd", scale="cpu", dataset="CIFAR10")
    assert a.key() == b.key() and a.name == b.name
    assert RunConfig("resnet18", size={"width": 64, "activation": "relu"}).key() == RunConfig("resnet18").key()
    shift = dict(dataset="pacs:photo", n_per_class=None, eval_n_per_class=None)
    assert tiny(**shift, targets=("sketch", "cartoon")).key() == tiny(**shift, targets=("cartoon", "sketch")).key()
    monkeypatch.setenv("NCUTILS_DATA", "/somewhere/else")
    assert tiny().key() == RunConfig.from_dict(json.loads(json.dumps(tiny().to_dict()))).key()
    assert RunConfig.from_dict(json.loads(json.dumps(tiny().to_dict()))) == tiny()  # and hashable: tuples again
    assert hash(RunConfig.from_dict(json.loads(json.dumps(tiny().to_dict()))))
    # another interpreter, another hash seed, another data root: the same key
    code = ("import sys, json; from ncutils.config import RunConfig; "
            "print(RunConfig.from_dict(json.loads(sys.argv[1])).key())")
    env = {**os.environ, "PYTHONHASHSEED": "123", "NCUTILS_DATA": "/elsewhere"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(a.to_dict())], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == a.key()


PACS_RUN = dict(dataset="pacs:photo", targets=("sketch",), target_n_per_class=5)
CHANGES = {  # one change of every field that changes the numbers
    "model": {"model": "resnet34"}, "dataset": {"dataset": "fashion-mnist"}, "size": {"size": {"width": 8}},
    "noise": {"noise": "random:0.2"}, "corruption": {"corruption": "speckle_noise:1"},
    "targets": {**PACS_RUN, "targets": ("cartoon",)}, "n_per_class": {"n_per_class": 11},
    "eval_n_per_class": {"eval_n_per_class": 6}, "target_n_per_class": {**PACS_RUN, "target_n_per_class": 6},
    "epochs": {"epochs": 3}, "recipe": {"recipe": "parker"}, "batch_size": {"batch_size": 64}, "seed": {"seed": 1},
    "image_size": {"image_size": 16}, "precision": {"precision": "fp32"},
    "probe": {"probe": False}, "probe_epochs": {"probe_epochs": 2}, "features": {"features": ("flat", "pooled")},
    "probe_method": {"probe_method": "converged"},
    "jackknife": {"jackknife": 4},
}


def test_every_field_but_the_scale_label_is_covered_by_a_change():
    assert set(CHANGES) == {f.name for f in dataclasses.fields(RunConfig)} - {"scale"}


def test_committed_results_keep_their_keys():
    """Fields added later (LATER_FIELDS) are hashed only when set: every committed run still has the key
    its directory was named with."""
    stored = {path: json.loads(path.read_text()) for path in (REPO_ROOT / "data" / "results" / "runs").glob("*/config.json")}
    runs = [path for path, record in stored.items() if record["code_version"] == CODE_VERSION]  # others: other keys
    assert runs, "no committed results of this code version to check"
    for path in runs:
        config = RunConfig.from_dict(stored[path]["config"])
        assert config.name == path.parent.name


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_key_changes_with_every_number_changing_field(field):
    base = tiny(**PACS_RUN) if field in ("targets", "target_n_per_class") else tiny()
    changed = dataclasses.replace(base, **CHANGES[field])
    assert changed.key() != base.key()


@pytest.mark.parametrize("part", sorted(CODE_VERSION))
def test_key_changes_with_the_code_version(part, monkeypatch):
    config = tiny()
    key, checkpoint = config.key(), config.training_key()
    monkeypatch.setitem(CODE_VERSION, part, CODE_VERSION[part] + 1)
    assert config.key() != key
    # a new metrics, probe or experiment version re-measures but reuses the trained checkpoint
    assert (config.training_key() != checkpoint) == (part in ("data", "train"))


@pytest.mark.parametrize("fields, message", [
    ({"model": "resnet19"}, "unknown model 'resnet19'; valid: resnet18"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'; valid: cifar10"),
    ({"dataset": "pacs:Photo"}, "unknown pacs domain 'Photo'; valid: art_painting"),
    ({"target_n_per_class": 5}, "target_n_per_class needs targets"),
    ({"size": {"depth": 3}}, r"resnet18 takes no size overrides \['depth'\]; valid"),
    ({"noise": "gaussian:0.1"}, "cannot parse label noise"),
    ({"noise": "cifar10n:worse", "dataset": "cifar100"}, "CIFAR-10N label noise needs dataset 'cifar10'"),
    ({"corruption": "fog:3"}, "unknown corruption 'fog'"),
    ({"targets": ("sketch",)}, "unknown domain-shift dataset 'cifar10'"),
    ({"epochs": -1}, "epochs must be an integer >= 0"),
    ({"n_per_class": 0}, "n_per_class must be an integer >= 1"),
    ({"recipe": "adam"}, "unknown recipe 'adam'; valid: sgd, adamw, parker"),
    ({"features": ("mean",)}, "features must be one or more of"),
    ({"probe": "yes"}, "probe must be True or False"),
    ({"precision": "fp16"}, "unknown precision 'fp16'; valid: bf16, fp32"),
])
def test_bad_configs_say_what_is_valid(fields, message):
    with pytest.raises(ValueError, match=message):
        tiny(**fields)
    with pytest.raises(ValueError, match="unknown RunConfig fields"):
        RunConfig.from_dict({**tiny().to_dict(), "lr": 0.1})


# --- computing, reading back, corruption ----------------------------------------------------------

def test_a_run_computed_once_is_read_back_identical(stored):
    store, config, computed = stored
    read = store.read(config)
    pd.testing.assert_frame_equal(read.metrics, computed.metrics)
    pd.testing.assert_frame_equal(read.train_log, computed.train_log)
    assert read.summary == computed.summary and read.provenance == computed.provenance
    manifest = store.run_dir(config) / "manifest.json"
    written = manifest.stat().st_mtime_ns
    first = results([config], store=store, progress=False)
    again = results([config], store=store, compute=False, progress=False)
    pd.testing.assert_frame_equal(first, again)
    assert manifest.stat().st_mtime_ns == written, "a stored run was recomputed"
    metrics = first[list(computed.metrics.columns)]
    pd.testing.assert_frame_equal(metrics, computed.metrics)
    assert (first["key"] == config.key()).all() and (first["noise"] == "random:0.4").all()


def test_stored_metrics_cover_every_layer_split_and_grouping(stored):
    store, config, record = stored
    m = record.metrics
    taps = layer_taps(build_model("resnet18", 10, width=4))
    nc = m[m.measure == "cdnv_sum"]
    assert set(nc.layer) == set(taps) | {"penultimate"}
    assert sorted(map(tuple, nc[["split", "labels"]].drop_duplicates().values)) == [
        ("test", "clean"), ("train", "clean"), ("train", "noisy")]
    assert set(nc[nc.split == "train"].num_samples) == {100} and set(nc[nc.split == "test"].num_samples) == {50}
    probes = m[m.measure == "probe_test_acc"]
    assert list(probes.layer) == taps and probes.value.between(0, 1).all()
    # the noisy grouping measures the labels the model was trained on: about 40% x 9/10 differ from clean
    assert 0.25 < record.summary["noise_rate"] < 0.5
    assert record.train_log.epoch.tolist() == [1, 2]
    official = load_dataset("cifar10", "train").provenance["official_checksums"]
    assert record.provenance["data"]["train"]["official_checksums"] == official
    assert "path" not in record.provenance["data"]["train"]
    assert summaries([config], store=store, compute=False, progress=False).train_acc.between(0, 1).all()


def test_label_noise_runs_give_memorization_ratios(stored):
    m = stored[2].metrics
    table = memorization_ratios(m[(m.split == "train") & (m.inputs == "clean")])
    assert sorted(table.layer) == sorted(set(m.layer))  # every tap and the penultimate layer
    assert table.ratio.notna().all() and (table.ratio > 0).all()


def test_corrupted_runs_measure_clean_and_corrupted_inputs(threads, cifar_root):
    record = run_experiment(tiny(corruption="gaussian_noise:level3", epochs=1, probe=False), progress=False)
    m = record.metrics
    assert sorted(map(tuple, m[["split", "inputs"]].drop_duplicates().values)) == [
        ("test", "clean"), ("test", "corrupted"), ("train", "clean"), ("train", "corrupted")]
    train = m[m.split == "train"]
    table = memorization_ratios_between(train[train.inputs == "clean"], train[train.inputs == "corrupted"])
    assert table.ratio.notna().all()
    stem = table[table.layer == "stem"].iloc[0]
    assert stem.clean != stem.noisy, "the corrupted inputs were not corrupted"
    assert {"train_acc_clean_inputs", "test_acc_clean_inputs"} <= set(record.summary)


def test_an_fp32_run_trains_without_bf16_autocast(threads, cifar_root, monkeypatch):
    import ncutils.train

    autocast = []
    real = torch.autocast
    monkeypatch.setattr(ncutils.train.torch, "autocast",
                        lambda *a, **k: autocast.append(k["enabled"]) or real(*a, **k))
    for precision in ("bf16", "fp32"):
        run_experiment(tiny(precision=precision, epochs=1, probe=False), progress=False)
    steps = len(autocast) // 2
    assert steps and autocast == [True] * steps + [False] * steps


def test_domain_runs_measure_and_probe_the_target_domains(threads, cifar_root):
    config = tiny(dataset="pacs:photo", targets=("cartoon",), target_n_per_class=5, features=("pooled",), epochs=1)
    m = run_experiment(config, progress=False).metrics
    target = m[m.eval_data == "pacs:cartoon"]
    cartoon_test = len(load_dataset("pacs:cartoon", "test"))
    assert set(target[target.measure == "cdnv_sum"].num_samples) == {cartoon_test}
    probes = target[target.measure.str.startswith("probe_")]
    assert set(zip(probes.measure, probes.num_samples)) == {("probe_train_acc", 5 * 7),  # 7 classes
                                                            ("probe_test_acc", cartoon_test)}
    assert set(m[m.eval_data == "pacs:photo"].split) == {"train", "test"}


@pytest.mark.parametrize("damage", ["truncate metrics", "drop manifest"])
def test_a_damaged_run_is_detected_reported_and_recomputed(stored, tmp_path, damage):
    store, config, record = stored
    copy = copy_store(store, tmp_path)
    run = copy.run_dir(config)
    if damage == "truncate metrics":
        data = (run / "metrics.parquet").read_bytes()
        (run / "metrics.parquet").write_bytes(data[: len(data) // 2])
    else:
        (run / "manifest.json").unlink()
    assert copy.status(config) == "corrupt"
    with pytest.raises(ValueError, match="is corrupt"):
        copy.read(config)
    with pytest.raises(MissingResults, match=f"corrupt .*key={config.key()}"):
        results([config], store=copy, compute=False, progress=False)
    if damage == "truncate metrics":  # recomputing reuses the checkpoint: the same numbers, measured again
        frame = results([config], store=copy, progress=False)
        assert copy.status(config) == "stored"
        pd.testing.assert_frame_equal(frame[list(record.metrics.columns)], record.metrics)
        assert list((copy.cache / "corrupt").glob(f"{config.name}-*")), "the damaged run was not kept aside"


def test_results_from_another_code_version_are_reported_never_mixed(stored, tmp_path, monkeypatch):
    store, config, _ = stored
    copy = copy_store(store, tmp_path)
    old_run = copy.run_dir(config)
    monkeypatch.setitem(CODE_VERSION, "metrics", CODE_VERSION["metrics"] + 1)
    assert copy.status(config) == "incompatible"
    [old] = copy.incompatible()
    assert old["path"] == old_run and old["code_version"]["metrics"] == CODE_VERSION["metrics"] - 1
    with pytest.raises(MissingResults, match="incompatible"):
        results([config], store=copy, compute=False, progress=False)


def test_missing_results_list_each_run_and_the_sweep_command(tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    configs = study_configs("vgg_vit", "smoke")
    with pytest.raises(MissingResults) as error:
        results(configs, store=store, compute=False)
    text = str(error.value)
    assert len(error.value.runs) == len(configs)
    assert all(f"key={c.key()}" in text for c in configs)
    assert f"python -m ncutils sweep vgg_vit --scale smoke --store {store.root}" in text
    with pytest.raises(MissingResults, match=r"results\(configs, compute=True\)"):
        results([tiny(seed=7)], store=store, compute=False)


# --- kills and concurrency ------------------------------------------------------------------------

def _ensure_command(config: RunConfig, store: Store) -> list[str]:
    code = ("import sys, json; from ncutils.config import RunConfig; from ncutils.store import Store; "
            "config = RunConfig.from_dict(json.loads(sys.argv[1])); "
            "print(Store(sys.argv[2], sys.argv[3]).ensure(config, progress=False))")
    return [sys.executable, "-c", code, json.dumps(config.to_dict()), str(store.root), str(store.cache)]


def test_a_run_killed_mid_training_resumes_to_the_same_results(tmp_path, threads, cifar_root, kill_after_checkpoint):
    config = tiny(epochs=12, probe=False)
    killed = Store(tmp_path / "killed", tmp_path / "killed-cache")
    stopped_at = kill_after_checkpoint(_ensure_command(config, killed), killed.checkpoint_path(config), timeout=120)
    assert 1 <= stopped_at < config.epochs, f"not killed mid-training (checkpoint at epoch {stopped_at})"
    assert killed.status(config) == "missing" and [p.name for p in killed.runs.iterdir()] == [".locks"]
    assert killed.ensure(config, progress=False) == "computed"
    resumed = killed.read(config)
    assert resumed.provenance["resumed_from_epoch"] == stopped_at

    whole = Store(tmp_path / "whole", tmp_path / "whole-cache").compute(config, progress=False)
    pd.testing.assert_frame_equal(resumed.metrics, whole.metrics)
    columns = ["epoch", "lr", "loss", "acc"]
    pd.testing.assert_frame_equal(resumed.train_log[columns], whole.train_log[columns])
    assert resumed.summary == whole.summary


def _ask_counting_trainings(config: dict, root: str, cache: str, marker: str, barrier, outcomes) -> None:
    """Ask the store for a run, appending a line to ``marker`` whenever a training starts."""
    torch.set_num_threads(THREADS)
    import ncutils.experiment as experiment

    train = experiment.train

    def counting_train(*args, **kwargs):
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        return train(*args, **kwargs)

    experiment.train = counting_train
    barrier.wait()
    outcomes.put(Store(root, cache).ensure(RunConfig.from_dict(config), progress=False))


def race(config: RunConfig, root, caches: list, marker) -> list[str]:
    """Two processes asking ``root`` for ``config`` at once (with the given caches): their sorted outcomes."""
    ctx = multiprocessing.get_context("spawn")
    barrier, outcomes = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_ask_counting_trainings, args=(config.to_dict(), str(root), str(cache), str(marker),
                                                               barrier, outcomes)) for cache in caches]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    return sorted(outcomes.get(timeout=5) for _ in procs)


def test_two_concurrent_requests_train_once(tmp_path, threads, cifar_root):
    store = Store(tmp_path / "results", tmp_path / "cache")
    marker = tmp_path / "trainings"
    assert race(tiny(seed=3), store.root, [store.cache] * 2, marker) == ["computed", "stored"]
    assert len(marker.read_text().split()) == 1, "the run was trained more than once"
    assert store.status(tiny(seed=3)) == "stored"
