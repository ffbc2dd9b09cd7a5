"""The labs' trained weights: model state dicts exported from the cpu-scale runs' checkpoints, shipped in the repository.

Each shipped file ``notebooks/labs/weights/<name>.pt`` holds only the model's state dict (fp32 tensors, no
optimiser, no log), loadable with ``torch.load(path, weights_only=True)``; ``runs.json`` beside them records
the run each came from (its config, key and training key, the checkpoint it was read from, its sha256 and
the final training accuracy of its log). A maintainer regenerates them, once the runs' checkpoints are in
the cache (``python -m ncutils sweep label_noise --scale cpu``), with::

    python -m ncutils.labs weights
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..config import RunConfig
from ..data import ImageData, load_dataset
from ..models import TappedModel, build_model
from ..noise import NoisyLabels, noisy_labels
from ..paths import PACKAGE_PARENT
from ..store import Store
from ..studies import study_configs

WEIGHTS = PACKAGE_PARENT / "notebooks" / "labs" / "weights"
MANIFEST = "runs.json"
# shipped name: (study, scale, model, label noise, seed) of the run whose trained weights it holds
SHIPPED = {"resnet18_clean": ("label_noise", "cpu", "resnet18", "clean", 0),
           "resnet18_random0.4": ("label_noise", "cpu", "resnet18", "random:0.4", 0)}
MAX_BYTES = 10 * 2 ** 20  # every shipped file together


def shipped_config(name: str) -> RunConfig:
    """The run whose weights ``name`` ships, from its study's configs at its scale."""
    if name not in SHIPPED:
        raise ValueError(f"no shipped weights {name!r}; valid: {', '.join(SHIPPED)}")
    study, scale, model, noise, seed = SHIPPED[name]
    found = [c for c in study_configs(study, scale) if (c.model, c.noise, c.seed) == (model, noise, seed)]
    if len(found) != 1:
        raise LookupError(f"study {study} at scale {scale} has {len(found)} runs of {model} {noise} seed {seed}")
    return found[0]


def export_weights(store: Store | None = None, out: Path = WEIGHTS) -> dict:
    """Write every shipped state dict and ``runs.json`` into ``out`` from the runs' checkpoints in ``store``'s
    cache; return the manifest. A checkpoint that is missing, unfinished or of another run raises."""
    store = store or Store()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name in SHIPPED:
        config = shipped_config(name)
        source = store.checkpoint_path(config)
        if not source.exists():
            raise FileNotFoundError(f"{name}: no checkpoint {source}; compute the run first "
                                    f"(python -m ncutils sweep {SHIPPED[name][0]} --scale {SHIPPED[name][1]})")
        state = torch.load(source, map_location="cpu", weights_only=True)
        if state.get("run", {}).get("training_key") != config.training_key() or state.get("epoch") != config.epochs:
            raise ValueError(f"{name}: {source} is not the finished run {config.training_key()} "
                             f"(epoch {state.get('epoch')} of {config.epochs}, run {state.get('run')})")
        weights = {k: (v.float() if v.is_floating_point() else v).clone().contiguous()
                   for k, v in state["model"].items()}
        path = out / f"{name}.pt"
        torch.save(weights, path)
        log = state.get("log") or [{}]
        manifest[f"{name}.pt"] = {"config": config.to_dict(), "key": config.key(),
                                  "training_key": config.training_key(), "checkpoint": source.name,
                                  "epochs": state["epoch"], "final_train_acc_augmented": log[-1].get("acc"),
                                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "dtype": "float32"}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def manifest(weights: Path = WEIGHTS) -> dict:
    """``runs.json``: {file name: the run it came from}."""
    return json.loads((Path(weights) / MANIFEST).read_text())


def weights_file(name: str, weights: Path = WEIGHTS) -> Path:
    """The shipped state dict ``<name>.pt`` (FileNotFoundError naming the valid ones)."""
    path = Path(weights) / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"no shipped weights {path}; valid: {', '.join(sorted(manifest(weights)))}")
    return path


def run_config(name: str, weights: Path = WEIGHTS) -> RunConfig:
    """The config of the run whose weights ``name`` holds (read from ``runs.json``, not from the studies)."""
    return RunConfig.from_dict(manifest(weights)[f"{name}.pt"]["config"])


def load_model(name: str, weights: Path = WEIGHTS) -> TappedModel:
    """The trained model of shipped weights ``name``, in eval mode: its architecture built from the run's
    config, its state dict loaded with ``weights_only=True`` (tensors only, no code runs)."""
    config = run_config(name, weights)
    model = build_model(config.model, 10, **dict(config.size))
    model.load_state_dict(torch.load(weights_file(name, weights), map_location="cpu", weights_only=True))
    return model.eval()


def training_data(name: str, n_per_class: int | None = None, weights: Path = WEIGHTS) -> tuple[ImageData, NoisyLabels]:
    """The training images of the run of ``name`` (its class-balanced subset and seed) with its training
    labels (noisy ones, with the clean kept); ``n_per_class``: only the first that many of each (clean) class."""
    config = run_config(name, weights)
    data = load_dataset(config.dataset, "train", n_per_class=config.n_per_class, seed=config.seed)
    labels = noisy_labels(data, config.noise, config.seed)
    if n_per_class is None:
        return data, labels
    if n_per_class > (config.n_per_class or n_per_class):
        raise ValueError(f"n_per_class = {n_per_class}: the run of {name} trained on {config.n_per_class} per class")
    keep = torch.cat([torch.nonzero(labels.clean == k).flatten()[:n_per_class]
                      for k in range(data.num_classes)]).sort().values
    return data.subset(keep), NoisyLabels(labels.labels[keep], labels.clean[keep], labels.noise)


def test_data(name: str, n_per_class: int | None = None, weights: Path = WEIGHTS) -> ImageData:
    """Test images of the run's dataset: ``n_per_class`` per class (default: as many as the run measured),
    drawn with the run's seed."""
    config = run_config(name, weights)
    return load_dataset(config.dataset, "test", n_per_class=n_per_class or config.eval_n_per_class, seed=config.seed)
