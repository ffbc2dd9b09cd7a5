"""The results store on disk: one directory per run, written atomically, verified on read, locked while computed.

``runs/<model>-<dataset>-<key>/`` holds config.json, metrics.parquet, train_log.csv, summary.json,
provenance.json and, written last, manifest.json (their sha256). The lock guarding a run lives beside
it, in ``runs/.locks/``, so every process writing the store shares it whatever its cache. Checkpoints,
job logs and set-aside corrupt results live in the cache directory.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .config import CODE_VERSION, RunConfig, slug
from . import paths
from .experiment import RunRecord, run_experiment

STATUSES = ("stored", "running", "missing", "corrupt", "incompatible")
RUN_FILES = ("config.json", "metrics.parquet", "train_log.csv", "summary.json", "provenance.json")
MANIFEST = "manifest.json"  # written last: sha256 of every file in RUN_FILES
_held = threading.local()  # .locks: the lock files this thread holds (a lock is re-entered, not waited for)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Store:
    """Results of runs on disk, one directory per run, written atomically and verified on read.

    root: the results directory (default :func:`ncutils.paths.results_root`: ``$NCUTILS_RESULTS``, else
        ``data/results`` of the checkout, committed, else the user-level home of an installed ncutils), holding
        ``runs/<model>-<dataset>-<key>/`` with config.json, metrics.parquet, train_log.csv,
        summary.json, provenance.json and, written last, manifest.json (their sha256), and the
        runs' locks in ``runs/.locks/`` (git-ignored).
    cache: checkpoints, job logs and set-aside corrupt results (default :func:`ncutils.paths.cache_root`:
        ``$NCUTILS_CACHE``, else ``cache/`` of the checkout, git-ignored, else the user-level home).
    """

    def __init__(self, root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None):
        root = root if root is not None else paths.results_root()
        cache = cache if cache is not None else paths.cache_root()
        for what, path in (("results store", root), ("cache", cache)):
            if not str(path).strip():
                raise ValueError(f"the {what} path is empty; give a directory (e.g. --store data/results)")
        self.root = Path(root).expanduser()
        self.cache = Path(cache).expanduser()

    def __repr__(self) -> str:
        return f"Store(root={str(self.root)!r}, cache={str(self.cache)!r})"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, config: RunConfig) -> Path:
        return self.runs / config.name

    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.cache / "checkpoints" / f"{config.model}-{slug(config.dataset)}-{config.training_key()}.pt"

    def lock_path(self, config: RunConfig) -> Path:
        """The run's lock, beside the results it guards (one per training: runs sharing one share it)."""
        return self.runs / ".locks" / f"{config.model}-{slug(config.dataset)}-{config.training_key()}.lock"

    def check_writable(self) -> None:
        """PermissionError (one line) unless the results store and the cache can be written: call it
        before any work, not after a run of hours."""
        for what, path, fix in (("results store", self.runs / ".locks", "pass a writable --store (or NCUTILS_RESULTS)"),
                                ("cache", self.cache, "set NCUTILS_CACHE to a writable directory")):
            try:
                path.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=path).close()
            except OSError as error:
                raise PermissionError(f"the {what} {path} is not writable ({error.strerror or error}): {fix} "
                                      "or fix its permissions") from None

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
            if not isinstance(files, dict) or sorted(files) != sorted(RUN_FILES):
                return "corrupt", f"{MANIFEST} lists {sorted(files)}, expected {sorted(RUN_FILES)}"
        except (OSError, ValueError, KeyError, TypeError):
            return "corrupt", f"no valid {MANIFEST} (an interrupted write or copy)"
        for name, digest in files.items():
            if not (path / name).is_file() or _sha256(path / name) != digest:
                return "corrupt", f"{name} is missing or does not match its checksum"
        stored = _read_json(path / "config.json")
        if stored is None:
            return "corrupt", "its config.json holds no JSON object"
        if stored.get("code_version") != CODE_VERSION:
            return "incompatible", f"written by code version {stored.get('code_version')}, current {CODE_VERSION}"
        try:
            same = RunConfig.from_dict(stored.get("config", {})).identity() == config.identity()
        except (TypeError, ValueError, AttributeError) as error:
            return "corrupt", f"its config.json holds no valid config ({error})"
        if not same:
            return "corrupt", "its config.json describes another run"
        return "stored", ""

    def _other_versions(self, config: RunConfig) -> list[Path]:
        """Directories holding this config's results from another code version."""
        found = []
        for path in self.runs.glob(f"{config.model}-{slug(config.dataset)}-*"):
            stored = _read_json(path / "config.json")
            if stored and stored.get("config_id") == config.config_id() and path != self.run_dir(config):
                found.append(path)
        return found

    def _locked_elsewhere(self, config: RunConfig) -> bool:
        path = self.lock_path(config)
        if path in _held_locks():
            return False
        try:
            f = open(path, "rb")  # read-only: a read-only store's status works too
        except OSError:
            return False
        with f:
            if not _try_lock(f):
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def incompatible(self) -> list[dict]:
        """Every stored run written by another code version: {path, code_version, config}. A run
        directory whose config.json cannot be read is reported as corrupt on stderr and skipped."""
        found = []
        for path in sorted(p for p in self.runs.glob("*") if p.is_dir() and not p.name.startswith(".")):
            stored = _read_json(path / "config.json")
            if stored is None:
                print(f"corrupt run directory {path}: its config.json holds no JSON object (skipped)", file=sys.stderr)
            elif stored.get("code_version") != CODE_VERSION:
                found.append({"path": path, "code_version": stored.get("code_version"), "config": stored.get("config")})
        return found

    # --- reading ----------------------------------------------------------------------------------

    def read(self, config: RunConfig) -> RunRecord:
        """The stored run of ``config``, verified against its manifest (ValueError if not stored)."""
        path = self.run_dir(config)
        state, reason = self._verify(path, config) if path.exists() else ("missing", "no directory")
        if state != "stored":
            fix = ""
            if state == "corrupt":
                restore = self.restore_command(config)
                fix = (f"; `{restore}` restores the committed copy, or " if restore else "; ") + \
                    "recompute it (Store.ensure, or the sweep listing it)"
            raise ValueError(f"run {config.describe()} ({path}) is {state}: {reason}{fix}")
        return RunRecord(
            config=config,
            metrics=pd.read_parquet(path / "metrics.parquet"),
            train_log=pd.read_csv(path / "train_log.csv", float_precision="round_trip"),
            summary=json.loads((path / "summary.json").read_text()),
            provenance=json.loads((path / "provenance.json").read_text()))

    def restore_command(self, config: RunConfig) -> str | None:
        """The git command restoring a run's committed directory (None when git does not track it)."""
        name = self.run_dir(config).name
        try:
            tracked = subprocess.run(["git", "-C", str(self.runs), "ls-files", "--error-unmatch", "--", name],
                                     capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return None
        return f"git -C {self.runs} checkout -- {name}" if tracked else None

    # --- computing --------------------------------------------------------------------------------

    def ensure(self, config: RunConfig, *, progress: bool = True) -> str:
        """Make sure ``config`` is stored: "stored" if it already was, "computed" if this call computed it.

        Holds the run's lock while computing, so a concurrent request for the same run (or one sharing
        its training) waits and then reads. Corrupt or incompatible results at this key are moved to
        ``<cache>/corrupt/`` and recomputed; training resumes from its checkpoint after a kill.
        """
        if self.status(config) == "stored":
            return "stored"
        self.check_writable()
        with self._lock(config):
            path = self.run_dir(config)
            if path.exists() and self._verify(path, config)[0] == "stored":
                return "stored"
            self.compute(config, progress=progress)
        return "computed"

    def compute(self, config: RunConfig, *, progress: bool = True) -> RunRecord:
        """Run ``config`` end to end and store it (no lock: call :meth:`ensure` unless you hold it)."""
        record = run_experiment(config, checkpoint=self.checkpoint_path(config), progress=progress)
        self.write(record)
        return record

    def write(self, record: RunRecord) -> Path:
        """Write a run atomically, holding its lock: into a temporary directory beside it, manifest last,
        then rename. A run another writer stored meanwhile is kept (and its directory returned);
        temporary directories of this run left by a killed writer are removed."""
        config = record.config
        final = self.run_dir(config)
        with self._lock(config):
            if final.exists() and self._verify(final, config)[0] == "stored":
                return final
            for stale in self.runs.glob(f".tmp-{final.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            self._write(record, final)
        return final

    def _write(self, record: RunRecord, final: Path) -> None:
        config = record.config
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
                self._set_aside(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _set_aside(self, path: Path) -> None:
        """Move an invalid run directory out of the store, into <cache>/corrupt/, for inspection."""
        target = self.cache / "corrupt" / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        print(f"moved invalid results {path} to {target}", file=sys.stderr)

    @contextmanager
    def _lock(self, config: RunConfig):
        path = self.lock_path(config)
        held = _held_locks()
        if path in held:  # this thread holds it already (ensure, then write)
            yield
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            if not _try_lock(f):
                print(f"waiting for another process computing {config.describe()} ...", file=sys.stderr)
                fcntl.flock(f, fcntl.LOCK_EX)
            held.add(path)
            try:
                yield
            finally:
                held.discard(path)
                fcntl.flock(f, fcntl.LOCK_UN)


def _held_locks() -> set[Path]:
    if not hasattr(_held, "locks"):
        _held.locks = set()
    return _held.locks


def _try_lock(f) -> bool:
    """Take the exclusive lock on the open file ``f`` if no other holds it."""
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it cannot be read or holds anything else."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
