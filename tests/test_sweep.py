"""Sweeps: the local and submitit executors store the same results; dry runs; bad options; retries; pre-emption."""
import os
import signal
import subprocess
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import submitit
import torch

from ncutils import studies
from ncutils.cli import main
from ncutils.config import RunConfig
from ncutils.store import Store
from ncutils.scales import SCALES
from ncutils.estimate import (RUN_SECONDS, STARTUP_SECONDS, TAP_SET_SECONDS, calibrating, cost_terms,
                              dataset_facts, estimated_seconds, measured_by_cpu, measured_seconds, plan,
                              startup_seconds)
from ncutils.sweep import RunJob, run_local, run_submitit, sweep_threads

THREADS = 1  # bitwise-equal results across processes need equal torch thread counts


def tiny(**fields) -> RunConfig:
    """A run of seconds: ResNet18 at width 4 on 10 CIFAR-10 images per class, flat features only."""
    base = dict(model="resnet18", dataset="cifar10", size={"width": 4}, n_per_class=10, eval_n_per_class=5, epochs=2,
                probe_epochs=1, features=("flat",), scale="smoke")
    return RunConfig(**{**base, **fields})


CONFIGS = [tiny(), tiny(noise="random:0.4")]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, cifar_root):
    """The same two runs swept by the local executor (2 worker processes) and by submitit's local executor
    (one job per run), into two stores with their own caches: (local store, submitit store, reports)."""
    root = tmp_path_factory.mktemp("sweeps")
    local, jobs = (Store(root / name / "results", root / name / "cache") for name in ("local", "submitit"))
    reports = {"local": run_local(CONFIGS, store=local, workers=2, threads=THREADS, progress=False),
               "submitit": run_submitit(CONFIGS, store=jobs, cluster="local", threads=THREADS, workers=2,
                                        folder=root / "jobs", progress=False)}
    return local, jobs, reports


def test_submitit_jobs_store_the_same_results_as_the_local_executor(swept):
    local, jobs, reports = swept
    for report in reports.values():
        assert sorted(report.computed) == sorted(c.name for c in CONFIGS) and not report.failed, str(report)
    for config in CONFIGS:
        a, b = local.read(config), jobs.read(config)
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
        columns = ["epoch", "lr", "loss", "acc"]
        pd.testing.assert_frame_equal(a.train_log[columns], b.train_log[columns])
        assert a.summary == b.summary
        assert a.provenance["torch_threads"] == b.provenance["torch_threads"] == THREADS


def test_a_second_sweep_computes_nothing(swept):
    local, jobs, _ = swept
    for store in (local, jobs):
        manifests = {c: store.run_dir(c).joinpath("manifest.json").stat().st_mtime_ns for c in CONFIGS}
        report = run_local(CONFIGS, store=store, progress=False)
        assert sorted(report.stored) == sorted(c.name for c in CONFIGS) and not report.computed
        assert manifests == {c: store.run_dir(c).joinpath("manifest.json").stat().st_mtime_ns for c in CONFIGS}


def test_dry_run_lists_stored_and_missing_runs_with_their_cost(swept, monkeypatch, capsys):
    local, _, _ = swept
    missing = tiny(seed=5)
    monkeypatch.setitem(studies.STUDIES, "tiny", lambda scale: CONFIGS + [missing])
    monkeypatch.setenv("OMP_NUM_THREADS", str(THREADS))  # runs started here would use the stored runs' threads
    main(["sweep", "tiny", "--scale", "smoke", "--dry-run", "--store", str(local.root)])
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()[1:2] and len(line.split()[1]) == 16}
    assert all(lines[c.key()].startswith("stored") for c in CONFIGS)
    assert lines[missing.key()].startswith("missing")
    assert all(any(unit in line for unit in (" s ", " min ", " h ")) for line in lines.values())
    # estimate and measured cost side by side: a stored run has both, a missing one no measured cost
    assert all(line.split()[3] in ("s", "min", "h") and line.split()[5] in ("s", "min", "h")
               for key, line in lines.items() if key != missing.key())
    assert lines[missing.key()].split()[4] == "-"
    assert "3 runs: 2 stored, 1 missing." in out
    assert "the 2 stored runs: estimated " in out and "plus " in out and " to start each process" in out
    # resnet18 at width 4 is stored twice: the estimate is calibrated on their measured times
    assert "2 stored run(s) on cpu" in out
    assert not list(local.runs.glob(f"*{missing.key()}")), "a dry run computed something"
    # runs with another thread count do not calibrate the estimate
    monkeypatch.setenv("OMP_NUM_THREADS", str(THREADS + 1))
    main(["sweep", "tiny", "--scale", "smoke", "--dry-run", "--store", str(local.root)])
    assert "stored run(s)" not in capsys.readouterr().out
    # two workers on a machine of 2 x THREADS cores run THREADS threads each, and share the wall time
    monkeypatch.setattr("ncutils.sweep.available_cores", lambda: 2 * THREADS)
    main(["sweep", "tiny", "--scale", "smoke", "--dry-run", "--workers", "2", "--store", str(local.root)])
    out = capsys.readouterr().out
    assert "2 stored run(s) on cpu" in out
    total = float(out.split("estimated cost: ")[1].split()[0])
    wall = float(out.split("with 2 runs at a time: about ")[1].split()[0])
    assert wall == pytest.approx(total / 2, abs=1), out  # both in seconds here, printed to 1 s


@pytest.mark.parametrize("scale", list(SCALES))
def test_every_study_lists_distinct_runs_and_all_runs_is_their_union(scale):
    keys = {}
    for name in studies.study_names():
        configs = studies.study_configs(name, scale)
        assert configs and len({c.key() for c in configs}) == len(configs), name
        assert all(c.scale == scale for c in configs)
        keys[name] = {c.key() for c in configs}
    assert keys.pop("all_runs") == set().union(*keys.values())
    assert keys["train_vs_test"] <= keys["clean"]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "nope"], "unknown study 'nope'; valid: clean, label_noise"),
    (["sweep", "clean", "--scale", "huge"], "unknown scale 'huge'; valid: smoke, cpu, paper"),
    (["sweep", "clean", "--executor", "k8s"], "unknown executor 'k8s'; valid: local, slurm, submitit-local"),
    (["sweep", "clean", "--partition", "gpu"], "--partition: option(s) of the job executors"),
    (["sweep", "clean", "--gpus", "1", "--timeout-min", "60"], "--gpus, --timeout-min: option(s) of the job executors"),
    (["sweep", "clean", "--workers", "0"], "--workers must be an integer >= 1, got 0"),
    (["sweep", "clean", "--no-wait"], "--no-wait needs a job executor"),
    (["sweep", "clean", "--executor", "submitit-local", "--partition", "gpu"], "--partition is a Slurm option"),
    (["sweep", "clean", "--executor", "submitit-local", "--mem-gb", "0"], "--mem-gb must be positive"),
    (["sweep", "clean", "--executor", "slurm"], "needs Slurm's sbatch on PATH"),
])
def test_bad_sweep_options_are_clear_errors(argv, message):
    with pytest.raises(SystemExit) as error:
        main(argv + ["--dry-run"])
    assert message in str(error.value.code)


def test_failed_jobs_are_resubmitted_then_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("NCUTILS_DATA", str(tmp_path / "no-data"))  # every attempt fails: no CIFAR-10 there
    store = Store(tmp_path / "results", tmp_path / "cache")
    config = tiny(seed=11)
    report = run_submitit([config], store=store, cluster="local", threads=THREADS, max_retries=1,
                          folder=tmp_path / "jobs", progress=False)
    assert list(report.failed) == [config.name]
    assert "DatasetNotFoundError" in report.failed[config.name] and "log:" in report.failed[config.name]
    job_folders = [p for p in (tmp_path / "jobs").iterdir() if p.name.isdigit()]  # one per job id
    assert len(job_folders) == 2, "one attempt plus one resubmission"
    assert store.status(config) == "missing"


def test_a_preempted_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path, cifar_root):
    config = tiny(epochs=30, probe=False, seed=13)
    store = Store(tmp_path / "results", tmp_path / "cache")
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs" / "%j", cluster="local")
    executor.update_parameters(timeout_min=60)
    job = executor.submit(RunJob(str(store.root), str(store.cache), THREADS), config.to_dict())
    checkpoint = store.checkpoint_path(config)
    deadline = time.time() + 120
    while not checkpoint.exists() and not job.done() and time.time() < deadline:
        time.sleep(0.01)
    [task] = subprocess.run(["pgrep", "-P", str(job._process.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(task), signal.SIGUSR2)  # what Slurm sends before pre-empting or timing out a job
    assert job.result() == "computed"
    assert "this job is preempted" in job.stderr()
    record = store.read(config)
    assert 1 <= record.provenance["resumed_from_epoch"] < config.epochs
    assert record.train_log.epoch.tolist() == list(range(1, config.epochs + 1))
    assert torch.load(checkpoint, weights_only=True)["epoch"] == config.epochs


def record(threads: int, wall: list, cpu: list | None, phases: dict, cpu_phases: dict | None):
    """A stored run's timing as measured_seconds reads it: per-epoch wall (and CPU) seconds, per-phase ones."""
    log = pd.DataFrame({"seconds": wall} | ({"cpu_seconds": cpu} if cpu is not None else {}))
    provenance = {"torch_threads": threads, "seconds": phases} | ({"cpu_seconds": cpu_phases} if cpu_phases else {})
    return SimpleNamespace(train_log=log, provenance=provenance)


def test_a_run_of_one_thread_costs_its_cpu_time_and_others_their_median_wall_epoch():
    phases = {"data": 1.0, "train": 99.0, "measure": 4.0, "total": 104.0}
    cpu_phases = {"data": 0.5, "train": 30.0, "measure": 2.0, "total": 32.5}
    # one thread, sharing its core with another process: every epoch took twice its CPU time on the wall
    shared = record(1, [20.0, 20.0, 60.0], [10.0, 10.0, 10.0], phases, cpu_phases)
    assert measured_seconds(shared) == 3 * 10.0 + 0.5 + 2.0 and measured_by_cpu(shared)
    assert not measured_by_cpu(record(2, [20.0], [35.0], phases, cpu_phases))
    assert measured_seconds(record(2, [20.0, 20.0, 60.0], [35.0, 35.0, 35.0], phases, cpu_phases)) == 3 * 20.0 + 5.0
    assert measured_seconds(record(1, [20.0, 20.0, 60.0], None, phases, None)) == 3 * 20.0 + 5.0  # stored before
    # resumed from a checkpoint written before CPU time was logged: the median of the epochs that have it
    assert measured_seconds(record(1, [20.0, 20.0, 60.0], [None, 10.0, 12.0], phases, cpu_phases)) == 3 * 11.0 + 2.5
    assert measured_seconds(record(1, [], [], phases, cpu_phases)) == 2.5  # at initialisation: its measuring


def test_runs_measured_by_their_cpu_time_calibrate_before_runs_measured_by_wall_time():
    wall, cpu = {"by_cpu": False, "seconds": 300.0}, {"by_cpu": True, "seconds": 100.0}
    assert calibrating([wall, cpu, wall]) == [cpu]
    assert calibrating([wall, wall]) == [wall, wall]
    assert calibrating([]) == []


def test_runs_at_initialisation_cost_their_measuring_and_do_not_calibrate_training(tmp_path, cifar_root,
                                                                                    monkeypatch):
    store = Store(tmp_path / "results", tmp_path / "cache")
    untrained = tiny(epochs=0, size={"width": 4, "activation": "tanh"})
    store.ensure(untrained, progress=False)
    assert 0 < measured_seconds(store.read(untrained)) < 600
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # the stored run's thread count
    table = plan([untrained, tiny(size={"width": 4, "activation": "tanh"})], store, sweep_threads(1))
    assert table.hours.notna().all() and (table.hours > 0).all(), table
    assert (table.basis == "the 2-core reference CPU").all(), table


def test_estimates_follow_the_training_precision(cifar_root):
    """On the reference CPU (native bf16) fp32 training is estimated slower for convolutions and faster
    for ViT (FP32_OVER_BF16); on a CPU that emulates bf16, bf16 is the slower; measuring (always fp32)
    costs the same either way."""
    def cost(model, precision, native=True, **fields):
        config = RunConfig.at_scale(model, "cifar10", "cpu", precision=precision, **fields)
        return estimated_seconds(config, native_bf16=native)

    assert cost("resnet18", "fp32") > cost("resnet18", "bf16")
    assert cost("vit_small", "fp32") < cost("vit_small", "bf16")
    assert cost("vit_small", "fp32", epochs=0) == cost("vit_small", "bf16", epochs=0)
    assert cost("resnet18", "bf16", native=False) > cost("resnet18", "fp32", native=False) == cost("resnet18", "fp32")
    assert cost("resnet18", "bf16", native=False, epochs=0) == cost("resnet18", "bf16", epochs=0)


def test_the_estimate_counts_fixed_costs_and_takes_dataset_facts_from_the_loader(cifar_root):
    """A smoke run costs more than its few images: a fixed cost per run, per layer tap and set measured, per
    forward op; a sweep's process pays its imports and the full load of each dataset once."""
    assert dataset_facts("cifar10") == (10, 50_000, 10_000, (3, 32, 32), 5_000)
    config = RunConfig.at_scale("resnet18", "cifar10", "smoke")
    terms = cost_terms(config, native_bf16=True)
    assert set(terms) == {"train", "measure", "run"} and terms["run"] == RUN_SECONDS
    assert terms["measure"] > 9 * 4 * TAP_SET_SECONDS  # 9 taps; train and test measured, and probed
    assert terms["train"] > 0 and estimated_seconds(config, native_bf16=True) == pytest.approx(sum(terms.values()))
    assert startup_seconds([]) == 0 and startup_seconds([config]) > STARTUP_SECONDS  # and loading CIFAR-10
    assert startup_seconds([config, tiny()]) == startup_seconds([config])  # one dataset, loaded once


def test_a_stored_runs_estimate_is_calibrated_on_the_other_stored_runs_only(swept, monkeypatch):
    """Leave-one-out: the estimate printed beside a stored run's measured time is a prediction from the
    other stored runs of its model and size, never its own measured time."""
    local, _, _ = swept
    missing = tiny(seed=5)
    table = plan(CONFIGS + [missing], local, THREADS).set_index("key")
    measured = {c.key(): measured_seconds(local.read(c)) for c in CONFIGS}
    estimate = {c.key(): estimated_seconds(c) for c in CONFIGS + [missing]}
    for config, other in zip(CONFIGS, reversed(CONFIGS)):
        row = table.loc[config.key()]
        assert row.basis.startswith("1 stored run(s) on ")
        assert row.measured_hours * 3600 == pytest.approx(measured[config.key()])
        assert row.hours * 3600 == pytest.approx(estimate[config.key()] * measured[other.key()] / estimate[other.key()])
    assert table.loc[missing.key()].basis.startswith("2 stored run(s) on ")
    assert pd.isna(table.loc[missing.key()].measured_hours)
    assert table.attrs["startup_seconds"] == pytest.approx(startup_seconds(CONFIGS))


def test_a_sweep_says_which_run_ended_and_how(tmp_path, monkeypatch, capsys):
    def ensure(store, config, progress=True):
        if config.noise != "clean":
            raise RuntimeError("out of memory")
        return "computed"

    monkeypatch.setattr(Store, "ensure", ensure)
    report = run_local(CONFIGS, store=Store(tmp_path / "results", tmp_path / "cache"), progress=True)
    assert report.computed == [CONFIGS[0].name] and list(report.failed) == [CONFIGS[1].name]
    lines = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines() if ": resnet18" in line]
    assert lines == [f"computed: {CONFIGS[0].describe()}", f"FAILED: {CONFIGS[1].describe()}"]


def test_the_cost_line_weighs_each_part_against_its_budget_and_the_estimate_against_the_measured():
    from ncutils.chapter.scale import budget_lines, calibration
    table = pd.DataFrame({"part": ["the book", "the book", "the book", "data-scale ladder"],
                          "estimated min": [30.0, 60.0, 10.0, 120.0],
                          "measured min": [33.0, 120.0, None, None],
                          "measured by": ["CPU time", "wall time", None, None]})
    table["minutes"] = table["measured min"].fillna(table["estimated min"])
    assert budget_lines(table, "minutes") == ("the book: 2.7 CPU-hours over 3 runs (budget 20 h), longest 120 min "
                                              "(budget 90 min); data-scale ladder: 2.0 CPU-hours over 1 runs "
                                              "(budget 6 h), longest 120 min (budget 150 min)")
    assert budget_lines(table, "estimated min").startswith("the book: 1.7 CPU-hours over 3 runs (budget 20 h), "
                                                           "longest 60 min")
    assert calibration(table) == (" (the 1 runs measured by CPU time took 1.10 times their estimate, "
                                  "the 1 runs measured by wall time took 2.00 times their estimate)")
    assert calibration(table.assign(**{"measured by": None})) == ""
