"""Runs: a typed config per run, its content hash, and the results store every figure reads.

A figure is a function of a set of runs. A :class:`RunConfig` says what one run computes (train a
model, then measure every layer); :meth:`RunConfig.key` hashes every field that changes the numbers
together with :data:`CODE_VERSION`, so two configs share stored results exactly when they would
compute the same numbers. :class:`Store` keeps one directory per run under ``data/results/runs``
(committed), checkpoints under ``cache/checkpoints`` (git-ignored), and :func:`results` turns a list
of configs into one tidy DataFrame, computing only what is missing::

    configs = ncutils.studies.study_configs("clean", "cpu")
    frame = ncutils.runs.results(configs)                 # computes what is missing
    frame = ncutils.runs.results(configs, compute=False)  # a book build: stored results or an error
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from .corruptions import parse_corruption
from .data import DATASET_NAMES, LOADERS, REPO_ROOT
from .domains import DOMAIN_SETS, DomainShift
from .models import model_names, model_overrides
from .noise import parse_noise
from .streaming import FEATURE_VIEWS
from .train import RECIPES, default_recipe

# The version of every part of the code that decides stored numbers. Bump an entry in the same
# commit as a change that alters numbers of that part: every run depending on it gets a new key and
# is recomputed, while the old results stay on disk, reported as incompatible (Store.incompatible).
CODE_VERSION = {
    "data": 1,        # ncutils.data, noise, corruptions, domains: pixels, subsets, labels
    "train": 1,       # ncutils.train and ncutils.models: the trained weights
    "metrics": 1,     # ncutils.metrics and ncutils.streaming: the neural-collapse measures
    "probe": 1,       # ncutils.probe: linear-probe accuracies
    "experiment": 1,  # ncutils.experiment: what is measured on which data, and the tables' columns
}
TRAINING_CODE = ("data", "train")  # the parts a checkpoint depends on

STATUSES = ("stored", "running", "missing", "corrupt", "incompatible")
RUN_FILES = ("config.json", "metrics.parquet", "train_log.csv", "summary.json", "provenance.json")
MANIFEST = "manifest.json"  # written last: sha256 of every file in RUN_FILES
KEY_LENGTH = 16  # hex digits of sha256 (64 bits)
NOISE_FIELDS = ("noise", "corruption")
TRAINING_FIELDS = ("model", "dataset", "size", "noise", "corruption", "n_per_class", "image_size", "epochs",
                   "recipe", "batch_size", "precision", "seed")
PRECISIONS = ("bf16", "fp32")
# Fields added after results were stored, with the value every run stored before had: hashed only when
# set to another value, so older keys hold.
LATER_FIELDS = {"image_size": None, "precision": "bf16"}


@dataclass(frozen=True)
class RunConfig:
    """One run: train ``model`` on ``dataset`` (under a label noise or input corruption), then measure
    every layer tap on the training and test data and probe it linearly.

    Fields are validated and canonicalised on construction (specs parsed and re-spelled, sizes
    sorted, the recipe resolved), so equal runs have equal configs and equal keys. Build one at a
    scale's sizes with :meth:`at_scale`.
    """

    model: str
    """registered model name (``ncutils.models.model_names()``), e.g. ``"resnet18"``"""
    dataset: str = "cifar10"
    """training data (an ``ncutils.load_dataset`` name); for domain shift the source domain, e.g. ``"pacs:photo"``"""
    size: Mapping | tuple = ()
    """model size overrides, e.g. ``{"width": 16}`` (kept as sorted pairs); empty = the paper's size"""
    noise: str = "clean"
    """training-label noise (``ncutils.noise.parse_noise``): ``"clean"``, ``"random:0.4"``, ``"cifar10n:worse"``"""
    corruption: str = "clean"
    """input corruption of train and test images (``ncutils.corruptions.parse_corruption``): ``"clean"``,
    ``"gaussian_noise:3"`` (CIFAR-10-C severity) or ``"gaussian_noise:level2"`` (the paper's level)"""
    targets: tuple[str, ...] = ()
    """target domains of a folder-per-domain ``dataset``, measured and probed after training on the source"""
    n_per_class: int | None = None
    """training images per class (class-balanced, drawn with ``seed``); None = the whole training split"""
    eval_n_per_class: int | None = None
    """test images per class measured (drawn with ``seed``); None = the whole test split"""
    target_n_per_class: int | None = None
    """target-domain training images per class for probing (limited target data); None = as many as its
    smallest class has"""
    epochs: int = 200
    """training epochs; 0 measures the model at initialisation"""
    recipe: str | None = None
    """training recipe (``ncutils.train.RECIPES``); None = the appendix's recipe for the model"""
    batch_size: int = 128
    """images per training step"""
    image_size: int | None = None
    """resize every image (train, test, targets) to this side, antialiased; None = as stored"""
    precision: str = "bf16"
    """training forward pass: ``"bf16"`` autocast (about 2x faster for convolutions on CPU) or ``"fp32"``
    (faster for ViT on CPU); weights, optimiser and every measurement stay fp32"""
    seed: int = 0
    """seeds the subsets, the label noise, the corruption, the initialisation, batch order and probes"""
    probe: bool = True
    """train a linear probe on every layer tap (appendix A.1)"""
    probe_epochs: int = 10
    """epochs of linear probing (the paper: 10)"""
    features: tuple[str, ...] = FEATURE_VIEWS
    """feature views measured: ``"flat"`` (the paper's) and/or ``"pooled"`` (mean over positions)"""
    scale: str = "custom"
    """label of the scale the sizes came from (smoke/cpu/paper); not hashed: the sizes themselves are"""

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        if self.model not in model_names():
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(model_names())}")
        family, _, domain = self.dataset.partition(":")
        family = family.lower()
        if family not in LOADERS or bool(domain) != (family in DOMAIN_SETS):
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASET_NAMES)}")
        if domain and domain not in DOMAIN_SETS[family]:
            raise ValueError(f"unknown {family} domain {domain!r}; valid: {', '.join(DOMAIN_SETS[family])}")
        put("dataset", f"{family}:{domain}" if domain else family)
        size = dict(self.size.items() if isinstance(self.size, Mapping) else self.size)
        defaults = model_overrides(self.model)
        unknown = sorted(set(size) - set(defaults))
        if unknown:
            raise ValueError(f"{self.model} takes no size overrides {unknown}; valid: {defaults}")
        put("size", tuple(sorted((k, v) for k, v in size.items() if v != defaults[k])))  # paper size: ()
        put("noise", str(parse_noise(self.noise)))
        put("corruption", str(parse_corruption(self.corruption)))
        if self.noise.startswith("cifar10n") and self.dataset != "cifar10":
            raise ValueError(f"CIFAR-10N label noise needs dataset 'cifar10', got {self.dataset!r}")
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        put("targets", targets)
        if targets:
            DomainShift(family, domain, targets)  # validates the domains
            put("targets", tuple(d for d in DOMAIN_SETS[family] if d in targets))
        elif self.target_n_per_class is not None:
            raise ValueError("target_n_per_class needs targets (target domains to probe)")
        put("recipe", default_recipe(self.model) if self.recipe is None else self.recipe)
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; valid: {', '.join(RECIPES)}")
        for name, low in (("epochs", 0), ("batch_size", 1), ("seed", 0), ("probe_epochs", 1)):
            _check_int(name, getattr(self, name), low)
        for name in ("n_per_class", "eval_n_per_class", "target_n_per_class", "image_size"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if not isinstance(self.probe, bool):
            raise ValueError(f"probe must be True or False, got {self.probe!r}")
        features = (self.features,) if isinstance(self.features, str) else tuple(self.features)
        if not features or not set(features) <= set(FEATURE_VIEWS):
            raise ValueError(f"features must be one or more of {FEATURE_VIEWS}, got {self.features!r}")
        put("features", tuple(v for v in FEATURE_VIEWS if v in features))

    @classmethod
    def at_scale(cls, model: str, dataset: str, scale: str, **fields) -> "RunConfig":
        """A config with the sizes of ``scale`` (``ncutils.scales.SCALES``); ``fields`` override any."""
        from .scales import get_scale

        s = get_scale(scale)
        base = dict(size=s.model_size(model), n_per_class=s.n_per_class, eval_n_per_class=s.eval_n_per_class,
                    epochs=s.model_epochs(model), batch_size=s.batch_size, precision=s.model_precision(model),
                    scale=s.name)
        if "size" in fields:  # extra overrides (e.g. an activation) add to the scale's size
            base["size"] = {**base["size"], **dict(fields.pop("size"))}
        return cls(model=model, dataset=dataset, **{**base, **fields})

    def to_dict(self) -> dict:
        """Every field as plain JSON values (size as a dict, tuples as lists)."""
        d = dataclasses.asdict(self)
        d["size"] = dict(self.size)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunConfig":
        """The inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown RunConfig fields {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def identity(self) -> dict:
        """The fields that change the numbers (every field but the ``scale`` label; a field of
        :data:`LATER_FIELDS` only when it differs from the value runs stored before it had)."""
        d = self.to_dict()
        del d["scale"]
        return {k: v for k, v in d.items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}

    def key(self) -> str:
        """Content hash of :meth:`identity` and :data:`CODE_VERSION`: names the stored results."""
        return _digest({"run": self.identity(), "code": CODE_VERSION})

    def training_key(self) -> str:
        """Content hash of what decides the trained weights: names the checkpoint, so runs that differ
        only in what they measure (or a bumped metrics version) reuse one training."""
        return _digest({"train": {k: v for k, v in self.identity().items() if k in TRAINING_FIELDS},
                        "code": {k: CODE_VERSION[k] for k in TRAINING_CODE}})

    def config_id(self) -> str:
        """Hash of :meth:`identity` alone: finds results of this config stored by another code version."""
        return _digest({"run": self.identity()})

    @property
    def name(self) -> str:
        """Directory name of the stored run: ``<model>-<dataset>-<key>``."""
        return f"{self.model}-{_slug(self.dataset)}-{self.key()}"

    def describe(self) -> str:
        """One line naming the run's model, data and settings (for listings and errors)."""
        size = ",".join(f"{k}={v}" for k, v in self.size)
        parts = [f"{self.model}[{size}]" if size else self.model, self.dataset]
        parts += [f"{name}={getattr(self, name)}" for name in NOISE_FIELDS if getattr(self, name) != "clean"]
        if self.recipe != default_recipe(self.model):
            parts.append(f"recipe={self.recipe}")
        if self.targets:
            parts.append("targets=" + ",".join(self.targets))
        if self.image_size is not None:
            parts.append(f"image_size={self.image_size}")
        if self.batch_size != RunConfig.batch_size:
            parts.append(f"batch_size={self.batch_size}")
        if self.precision != RunConfig.precision:
            parts.append(f"precision={self.precision}")
        parts += [f"seed={self.seed}", f"epochs={self.epochs}"]
        return " ".join(parts)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """A stored run: its metrics (tidy), training log, summary (accuracies) and provenance."""

    config: RunConfig
    metrics: pd.DataFrame
    train_log: pd.DataFrame
    summary: dict
    provenance: dict


class Store:
    """Results of runs on disk, one directory per run, written atomically and verified on read.

    root: the results directory (default ``$NCUTILS_RESULTS``, else ``data/results`` in the repository,
        committed), holding
        ``runs/<model>-<dataset>-<key>/`` with config.json, metrics.parquet, train_log.csv,
        summary.json, provenance.json and, written last, manifest.json (their sha256).
    cache: checkpoints, locks, job logs and set-aside corrupt results (default ``$NCUTILS_CACHE``,
        else ``cache/`` in the repository, git-ignored).
    """

    def __init__(self, root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None):
        root = root if root is not None else os.environ.get("NCUTILS_RESULTS") or REPO_ROOT / "data" / "results"
        self.root = Path(root).expanduser()
        cache = cache if cache is not None else os.environ.get("NCUTILS_CACHE") or REPO_ROOT / "cache"
        self.cache = Path(cache).expanduser()

    def __repr__(self) -> str:
        return f"Store(root={str(self.root)!r}, cache={str(self.cache)!r})"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, config: RunConfig) -> Path:
        return self.runs / config.name

    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.cache / "checkpoints" / f"{config.model}-{_slug(config.dataset)}-{config.training_key()}.pt"

    def lock_path(self, config: RunConfig) -> Path:
        return self.cache / "locks" / f"{config.model}-{_slug(config.dataset)}-{config.training_key()}.lock"

    # --- status -----------------------------------------------------------------------------------

    def status(self, config: RunConfig) -> str:
        """One of :data:`STATUSES`: ``stored`` (valid results), ``running`` (another process holds the
        run's lock), ``missing``, ``corrupt`` (a directory without a valid manifest or with a checksum
        mismatch), ``incompatible`` (results of this config only from another code version)."""
        path = self.run_dir(config)
        if path.exists():
            state = self._verify(path, config)[0]
            if state == "stored":
                return state
        else:
            state = "incompatible" if self._other_versions(config) else "missing"
        return "running" if self._locked_elsewhere(config) else state

    def _verify(self, path: Path, config: RunConfig) -> tuple[str, str]:
        """(status, reason) of a run directory at the config's key."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            files = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return "corrupt", f"no valid {MANIFEST} (an interrupted write or copy)"
        if sorted(files) != sorted(RUN_FILES):
            return "corrupt", f"{MANIFEST} lists {sorted(files)}, expected {sorted(RUN_FILES)}"
        for name, digest in files.items():
            if not (path / name).is_file() or _sha256(path / name) != digest:
                return "corrupt", f"{name} is missing or does not match its checksum"
        stored = json.loads((path / "config.json").read_text())
        if stored.get("code_version") != CODE_VERSION:
            return "incompatible", f"written by code version {stored.get('code_version')}, current {CODE_VERSION}"
        try:
            same = RunConfig.from_dict(stored.get("config", {})).identity() == config.identity()
        except (TypeError, ValueError) as error:
            return "corrupt", f"its config.json holds no valid config ({error})"
        if not same:
            return "corrupt", "its config.json describes another run"
        return "stored", ""

    def _other_versions(self, config: RunConfig) -> list[Path]:
        """Directories holding this config's results from another code version."""
        found = []
        for path in self.runs.glob(f"{config.model}-{_slug(config.dataset)}-*"):
            stored = _read_json(path / "config.json")
            if stored and stored.get("config_id") == config.config_id() and path != self.run_dir(config):
                found.append(path)
        return found

    def _locked_elsewhere(self, config: RunConfig) -> bool:
        path = self.lock_path(config)
        if not path.exists():
            return False
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def incompatible(self) -> list[dict]:
        """Every stored run written by another code version: {path, code_version, config}."""
        found = []
        for path in sorted(p for p in self.runs.glob("*") if p.is_dir() and not p.name.startswith(".")):
            stored = _read_json(path / "config.json")
            if stored and stored.get("code_version") != CODE_VERSION:
                found.append({"path": path, "code_version": stored.get("code_version"), "config": stored.get("config")})
        return found

    # --- reading ----------------------------------------------------------------------------------

    def read(self, config: RunConfig) -> RunRecord:
        """The stored run of ``config``, verified against its manifest (ValueError if not stored)."""
        path = self.run_dir(config)
        state, reason = self._verify(path, config) if path.exists() else ("missing", "no directory")
        if state != "stored":
            raise ValueError(f"run {config.describe()} ({path}) is {state}: {reason}")
        return RunRecord(
            config=config,
            metrics=pd.read_parquet(path / "metrics.parquet"),
            train_log=pd.read_csv(path / "train_log.csv", float_precision="round_trip"),
            summary=json.loads((path / "summary.json").read_text()),
            provenance=json.loads((path / "provenance.json").read_text()))

    # --- computing --------------------------------------------------------------------------------

    def ensure(self, config: RunConfig, *, progress: bool = True) -> str:
        """Make sure ``config`` is stored: "stored" if it already was, "computed" if this call computed it.

        Holds the run's lock while computing, so a concurrent request for the same run (or one sharing
        its training) waits and then reads. Corrupt or incompatible results at this key are moved to
        ``<cache>/corrupt/`` and recomputed; training resumes from its checkpoint after a kill.
        """
        if self.status(config) == "stored":
            return "stored"
        with self._lock(config):
            path = self.run_dir(config)
            if path.exists() and self._verify(path, config)[0] == "stored":
                return "stored"
            self.compute(config, progress=progress)
        return "computed"

    def compute(self, config: RunConfig, *, progress: bool = True) -> RunRecord:
        """Run ``config`` end to end and store it (no lock: call :meth:`ensure` unless you hold it)."""
        from .experiment import run_experiment

        result = run_experiment(config, checkpoint=self.checkpoint_path(config), progress=progress)
        record = RunRecord(config, result.metrics, result.train_log, result.summary, result.provenance)
        self.write(record)
        return record

    def write(self, record: RunRecord) -> Path:
        """Write a run atomically: into a temporary directory beside it, manifest last, then rename.
        Call it holding the run's lock: temporary directories of this run left by a killed writer are removed."""
        config = record.config
        final = self.run_dir(config)
        self.runs.mkdir(parents=True, exist_ok=True)
        for stale in self.runs.glob(f".tmp-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=self.runs))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a shared store must be readable
            _write_json(tmp / "config.json", {"config": config.to_dict(), "key": config.key(),
                                              "config_id": config.config_id(), "code_version": CODE_VERSION})
            record.metrics.to_parquet(tmp / "metrics.parquet", index=False)
            record.train_log.to_csv(tmp / "train_log.csv", index=False)
            _write_json(tmp / "summary.json", record.summary)
            _write_json(tmp / "provenance.json", record.provenance)
            _write_json(tmp / MANIFEST, {"files": {name: _sha256(tmp / name) for name in RUN_FILES}})
            for name in (*RUN_FILES, MANIFEST):
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
            if final.exists():
                if self._verify(final, config)[0] == "stored":  # stored meanwhile by a process without our lock
                    shutil.rmtree(tmp)
                    return final
                self._set_aside(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def _set_aside(self, path: Path) -> None:
        """Move an invalid run directory out of the store, into <cache>/corrupt/, for inspection."""
        target = self.cache / "corrupt" / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        print(f"moved invalid results {path} to {target}", file=sys.stderr)

    @contextmanager
    def _lock(self, config: RunConfig):
        path = self.lock_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another process computing {config.describe()} ...", file=sys.stderr)
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


# --- the notebook API ------------------------------------------------------------------------------

class MissingResults(LookupError):
    """Results were asked for with computing disabled and some runs are not stored.

    ``runs``: [(config, status)] of every run that is not stored.
    """

    def __init__(self, runs: list[tuple[RunConfig, str]], store: Store):
        self.runs = runs
        lines = [f"{len(runs)} run(s) are not in the results store {store.root} and computing is disabled:"]
        lines += [f"  {status:12s} {config.describe()}  key={config.key()}" for config, status in runs]
        lines.append("Compute them with")
        lines += [f"  {command}" for command in sweep_commands([c for c, _ in runs], store)]
        lines.append("or in Python: ncutils.runs.results(configs, compute=True).")
        super().__init__("\n".join(lines))


def sweep_commands(configs: list[RunConfig], store: Store) -> list[str]:
    """The ``python -m ncutils sweep`` commands that compute ``configs``: for each scale, the smallest
    registered study holding them all, or one per study when no single study does."""
    from .studies import STUDIES, study_configs

    commands = []
    store_option = "" if store.root == Store().root else f" --store {store.root}"
    for scale in dict.fromkeys(c.scale for c in configs):
        wanted = {c.key() for c in configs if c.scale == scale}
        try:
            holding = {name: {c.key() for c in study_configs(name, scale)} for name in STUDIES}
        except ValueError:  # not a registered scale (a custom config)
            continue
        covering = sorted((len(keys), name) for name, keys in holding.items() if wanted <= keys)
        names = [covering[0][1]] if covering else [n for n, keys in holding.items() if wanted & keys]
        commands += [f"python -m ncutils sweep {name} --scale {scale}{store_option}" for name in names]
    return commands


CONFIG_COLUMNS = ("key", "scale", "model", "size", "dataset", "noise", "corruption", "targets", "seed", "epochs",
                  "n_per_class", "recipe")


def _config_columns(config: RunConfig) -> dict:
    """The config columns joined to every row of :func:`results` (in :data:`CONFIG_COLUMNS` order)."""
    return {"key": config.key(), "scale": config.scale, "model": config.model,
            "size": ",".join(f"{k}={v}" for k, v in config.size), "dataset": config.dataset,
            "noise": config.noise, "corruption": config.corruption, "targets": ",".join(config.targets),
            "seed": config.seed, "epochs": config.epochs, "n_per_class": config.n_per_class,
            "recipe": config.recipe}


def _records(configs: Iterable[RunConfig], compute: bool, store: Store | None, progress: bool) -> list[RunRecord]:
    from tqdm import tqdm

    store = store or Store()
    configs = list(dict.fromkeys(configs))
    statuses = {c: store.status(c) for c in configs}
    absent = [(c, s) for c, s in statuses.items() if s != "stored"]
    if absent and not compute:
        raise MissingResults(absent, store)
    for config, _ in tqdm(absent, desc="runs", unit="run", disable=not progress or not absent):
        store.ensure(config, progress=progress)
    return [store.read(c) for c in configs]


def _joined(records: list[RunRecord], part) -> pd.DataFrame:
    frames = []
    for r in records:
        frame = part(r)
        columns = _config_columns(r.config)
        frames.append(pd.concat([pd.DataFrame({k: [v] * len(frame) for k, v in columns.items()}),
                                 frame.reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CONFIG_COLUMNS))


def results(configs: Iterable[RunConfig], *, compute: bool = True, store: Store | None = None,
            progress: bool = True) -> pd.DataFrame:
    """One tidy DataFrame of the metrics of every run in ``configs``, config columns first.

    Runs not yet stored are computed (in this process, one after the other) when ``compute``;
    otherwise :class:`MissingResults` lists them with the command that computes them. Metric columns:
    eval_data, split, inputs, labels, features, layer, layer_index, measure, value, num_classes,
    num_samples, dim (see :mod:`ncutils.experiment`).
    """
    return _joined(_records(configs, compute, store, progress), lambda r: r.metrics)


def train_logs(configs: Iterable[RunConfig], *, compute: bool = True, store: Store | None = None,
               progress: bool = True) -> pd.DataFrame:
    """The per-epoch training logs of ``configs`` (epoch, lr, loss, acc, images_per_s, seconds)."""
    return _joined(_records(configs, compute, store, progress), lambda r: r.train_log)


def summaries(configs: Iterable[RunConfig], *, compute: bool = True, store: Store | None = None,
              progress: bool = True) -> pd.DataFrame:
    """One row per run: its accuracies (train_acc, test_acc, ...) and measured set sizes."""
    return _joined(_records(configs, compute, store, progress), lambda r: pd.DataFrame([r.summary]))


@dataclass(frozen=True)
class StudyResults:
    """What a chapter shows: the metrics and summaries of the stored runs, and the runs still missing."""

    metrics: pd.DataFrame
    summaries: pd.DataFrame
    missing: list[tuple[RunConfig, str]]
    store: Store

    def missing_message(self) -> str:
        """Empty when complete; otherwise which runs are missing and the commands that compute them."""
        return str(MissingResults(self.missing, self.store)) if self.missing else ""


def available(configs: Iterable[RunConfig], *, compute: bool = False, store: Store | None = None,
              progress: bool = True) -> StudyResults:
    """The stored runs of ``configs`` (computing the missing ones first when ``compute``), and the rest.

    A book built from stored results shows what is there and says what is not, instead of failing.
    """
    store = store or Store()
    configs = list(dict.fromkeys(configs))
    if compute:  # every run ends up stored: read each once
        records, missing = _records(configs, True, store, progress), []
    else:
        statuses = {c: store.status(c) for c in configs}
        records = [store.read(c) for c, s in statuses.items() if s == "stored"]
        missing = [(c, s) for c, s in statuses.items() if s != "stored"]
    return StudyResults(_joined(records, lambda r: r.metrics), _joined(records, lambda r: pd.DataFrame([r.summary])),
                        missing, store)
