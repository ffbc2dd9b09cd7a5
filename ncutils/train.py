"""Training with the recipes of the paper's appendix A.1, checkpointed every epoch and resumable.

The learning rate is a pure function of the step and batch order and augmentation of an epoch are
pure functions of (seed, epoch), so a run resumed from its last checkpoint ends with the same
weights as one that was never interrupted.
"""
from __future__ import annotations

import errno
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm  # text bars: notebooks without ipywidgets show them too

from .data import Batches, ImageData
from .models import TappedModel


@dataclass(frozen=True)
class Recipe:
    """An optimiser, a learning-rate schedule and a loss."""

    optimizer: str  # "sgd" or "adamw"
    lr: float  # peak learning rate
    weight_decay: float
    schedule: str  # "multistep", "warmup_cosine" or "onecycle"
    loss: str = "ce"  # "ce" (cross-entropy) or "mse" (to one-hot targets)
    momentum: float = 0.9  # SGD momentum
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    warmup_start_lr: float = 1e-4  # warm-up start (warmup_cosine)
    final_lr: float = 1e-5  # cosine end (warmup_cosine)
    augment: bool = True  # pad-4 crop + flip


RECIPES = {
    # ResNet / VGG (A.1): SGD, lr 0.1 x0.1 at 50% and 75% of training, batch 128. The paper prints
    # weight decay 0.05, almost surely a typo for the standard 5e-4 (0.05 prevents any CIFAR ResNet
    # from fitting its training set), so 5e-4 it is.
    "sgd": Recipe(optimizer="sgd", lr=0.1, weight_decay=5e-4, schedule="multistep"),
    # Swin / ViT (A.1): AdamW, weight decay 0.05 except norms, biases and position embeddings,
    # linear warm-up 1e-4 -> 1e-3 over the first 10% of epochs, cosine to 1e-5.
    "adamw": Recipe(optimizer="adamw", lr=1e-3, weight_decay=0.05, schedule="warmup_cosine"),
    # Parker et al. 2023: SGD momentum 0.9, MSE loss, weight decay 1e-5, one-cycle, no augmentation.
    # Their peak lr is not stated; 0.05 is ours.
    "parker": Recipe(optimizer="sgd", lr=0.05, weight_decay=1e-5, schedule="onecycle", loss="mse", augment=False),
}


def default_recipe(model_name: str) -> str:
    """The appendix's recipe for a model family: AdamW for transformers, SGD otherwise."""
    return "adamw" if model_name.startswith(("swin", "vit")) else "sgd"


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; everything here changes the trained weights."""

    recipe: str = "sgd"
    """name of a recipe in RECIPES"""
    epochs: int = 200
    """passes over the training set (the paper: 200)"""
    batch_size: int = 128
    """images per SGD step (the paper: 128)"""
    seed: int = 0
    """seeds batch order, augmentation and stochastic layers (model init is seeded by the caller)"""
    bf16: bool = True
    """bf16 autocast for the forward pass (about 2x on CPU); weights and optimiser stay fp32"""
    channels_last: bool = True
    """channels_last memory format for convolutions"""

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; valid: {', '.join(RECIPES)}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


def learning_rate(recipe: Recipe, step: int, total_steps: int) -> float:
    """The learning rate at ``step`` (0-based) of ``total_steps``."""
    t = step / total_steps
    if recipe.schedule == "multistep":
        return recipe.lr * 0.1 ** ((t >= 0.5) + (t >= 0.75))
    if recipe.schedule == "warmup_cosine":
        if t < 0.1:
            return recipe.warmup_start_lr + (recipe.lr - recipe.warmup_start_lr) * t / 0.1
        return recipe.final_lr + 0.5 * (recipe.lr - recipe.final_lr) * (1 + math.cos(math.pi * (t - 0.1) / 0.9))
    if recipe.schedule == "onecycle":  # torch.optim.lr_scheduler.OneCycleLR's defaults, as a function
        low, high, end = recipe.lr / 25, recipe.lr, recipe.lr / 25 / 1e4
        peak = 0.3 * total_steps - 1
        if step <= peak:
            return high + (low - high) * (1 + math.cos(math.pi * step / peak)) / 2
        return end + (high - end) * (1 + math.cos(math.pi * (step - peak) / (total_steps - 1 - peak))) / 2
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    from timm.optim import param_groups_weight_decay

    net = model.net if isinstance(model, TappedModel) else model
    skip = net.no_weight_decay() if hasattr(net, "no_weight_decay") else ()
    groups = param_groups_weight_decay(net, recipe.weight_decay, no_weight_decay_list=skip)
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_all_cores() -> int:
    """Use every core this process may run on, unless OMP_NUM_THREADS says otherwise."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    return torch.get_num_threads()


def train(model: TappedModel, data: ImageData, cfg: TrainConfig, *, labels: torch.Tensor | None = None,
          checkpoint: str | os.PathLike | None = None, run: dict | None = None,
          device: str | torch.device | None = None, progress: bool = True, stop_after: int | None = None) -> pd.DataFrame:
    """Train ``model`` in place on ``data`` (with ``labels`` instead of the data's, e.g. noisy ones).

    checkpoint: a file written atomically after every epoch; if it exists, training resumes from it
    (see :func:`load_checkpoint`). run: the identity of the run trained (plain values, e.g.
    ``RunConfig.training_identity()``), recorded in the checkpoint; a checkpoint of another run is refused.
    stop_after: return after this many epochs in total (to split a run; resuming continues it).
    Returns the per-epoch log: epoch, lr, loss, acc (on the training labels, augmented batches),
    images_per_s, seconds (wall), cpu_seconds (this process's CPU time, every thread: what the epoch cost,
    however many other processes shared the machine).
    """
    recipe = RECIPES[cfg.recipe]
    device = torch.device(device) if device is not None else default_device()
    checkpoint = _checkpoint_file(checkpoint)
    use_all_cores()
    model.to(device)
    channels_last = cfg.channels_last and not _hits_onednn_strided_1x1_bug(model, cfg, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, recipe)
    log: list[dict] = []
    start = 0
    state = load_checkpoint(checkpoint, run=run, map_location=device) if checkpoint is not None else None
    if state is not None:
        asked = asdict(cfg)
        if state["config"] != asked:
            changed = sorted(k for k in asked if state["config"].get(k) != asked[k])
            raise ValueError(f"checkpoint {checkpoint} was written by another config (stored "
                             f"{_fields(state['config'], changed)}; asked {_fields(asked, changed)}): remove it or "
                             "use another path")
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:
            raise ValueError(f"checkpoint {checkpoint} holds the weights of another model or size "
                             f"({_first_line(error)}); remove it or use another path") from None
        start, log = state["epoch"], state["log"]
    batches = Batches(data, cfg.batch_size, shuffle=True, augment=recipe.augment, drop_last=len(data) > cfg.batch_size,
                      seed=cfg.seed, device=device, channels_last=channels_last, labels=labels)
    steps_per_epoch, total = len(batches), len(batches) * cfg.epochs
    end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    bar = tqdm(range(start, end), initial=start, total=cfg.epochs, desc="train", disable=not progress, unit="epoch")
    for epoch in bar:
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)  # stochastic depth, dropout
        batches.epoch = epoch
        model.train()
        t0, cpu0, seen, loss_sum, correct = time.perf_counter(), time.process_time(), 0, 0.0, 0
        for i, (x, y) in enumerate(batches):
            lr = learning_rate(recipe, epoch * steps_per_epoch + i, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(x)
            loss = _loss(recipe, logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        seconds = time.perf_counter() - t0
        log.append({"epoch": epoch + 1, "lr": lr, "loss": loss_sum / seen, "acc": correct / seen,
                    "images_per_s": seen / seconds, "seconds": seconds, "cpu_seconds": time.process_time() - cpu0})
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{seen / seconds:.0f}")
        if checkpoint is not None:
            atomic_save({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "log": log, "config": asdict(cfg), "run": run}, checkpoint)
    return pd.DataFrame(log)


def _hits_onednn_strided_1x1_bug(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> bool:
    """Whether fp32 channels_last training of ``model`` on this CPU would run oneDNN's broken kernel.

    oneDNN 3.12 (torch 2.14.1) gets the weight gradient of a strided 1x1 convolution with fewer input
    channels than its SIMD block wrong in channels_last (nhwc): its jit_1x1 backward-weights kernel
    copies the strided input into a per-thread workspace at offsets computed for the padded channel
    block, so it writes past that workspace. Measured
    on an AVX2 AMD EPYC (jit_1x1:avx2, block 8) with ResNet18 at width 4, whose first shortcut is a
    stride-2 1x1 convolution from 4 to 8 channels: with 1 thread it segfaults or aborts ("double free
    or corruption") in loss.backward(); with 2 threads it hangs or returns weight gradients off by up
    to 50%. Exact there (relative error < 1e-5): 1 or 8+ input channels, stride 1, and NCHW inputs (the
    blocked layout); forward and input gradients are exact. There, bf16 autocast runs no convolution
    through oneDNN (torch needs AVX-512 for oneDNN bf16), so only fp32 training meets the kernel.
    Such models train in NCHW instead; every other run keeps channels_last and its numbers.
    """
    return (device.type == "cpu" and not cfg.bf16 and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
            and any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and max(m.stride) > 1
                    and 1 < m.in_channels < 8 for m in model.modules()))


def _loss(recipe: Recipe, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if recipe.loss == "mse":
        return F.mse_loss(logits, F.one_hot(y, logits.shape[1]).float())
    return F.cross_entropy(logits, y)


@torch.no_grad()
def evaluate(model: TappedModel, data: ImageData, *, labels: torch.Tensor | None = None, batch_size: int = 500,
             device: str | torch.device | None = None) -> float:
    """Accuracy of ``model`` in eval mode on un-augmented ``data`` (against ``labels`` if given)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = sum((model(x).argmax(1) == y).sum().item()
                  for x, y in Batches(data, batch_size, device=device, labels=labels))
    model.train(was_training)
    return correct / len(data)


CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "log", "config")  # and "run", the identity of its run


class DamagedCheckpointWarning(RuntimeWarning):
    """An unreadable checkpoint was moved aside and training restarts from scratch."""


def load_checkpoint(path: str | os.PathLike, *, run: dict | None = None,
                    map_location: str | torch.device = "cpu") -> dict | None:
    """The training state saved at ``path``, or None when there is none to resume from.

    Loaded with ``weights_only=True``: tensors and plain values only, no code runs. A damaged or
    unreadable file (truncated, not a checkpoint, pickling anything else, or recording no run when
    ``run`` is given) is renamed ``<name>.damaged-<time>`` with a :class:`DamagedCheckpointWarning`
    naming it, and None returned: training restarts from scratch. A checkpoint recording another
    ``run`` raises ValueError naming both.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
        missing = sorted(set(CHECKPOINT_KEYS) - set(state)) if isinstance(state, dict) else list(CHECKPOINT_KEYS)
        if missing:
            raise ValueError(f"it lacks {missing}")
        if run is not None and state.get("run") is None:
            raise ValueError("it records no run to check it against")
    except Exception as error:  # whatever the bytes hold, a checkpoint that does not load is set aside
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        os.replace(path, aside)
        warnings.warn(f"checkpoint {path} is unreadable ({_first_line(error)}); moved it to {aside.name} and "
                      "training restarts from scratch", DamagedCheckpointWarning, stacklevel=2)
        return None
    if run is not None and state["run"] != run:
        stored = state["run"] if isinstance(state["run"], dict) else {}
        fields = stored.get("fields") if isinstance(stored.get("fields"), dict) else {}
        changed = sorted(k for k in {**fields, **run["fields"]} if fields.get(k) != run["fields"].get(k))
        raise ValueError(f"checkpoint {path} belongs to another run: written for training key "
                         f"{stored.get('training_key')} ({_fields(fields, changed)}), asked for training key "
                         f"{run['training_key']} ({_fields(run['fields'], changed)}); remove it or use the run's own "
                         "checkpoint")
    return state


def _fields(fields: dict, names: list[str]) -> str:
    return ", ".join(f"{k}={fields.get(k)!r}" for k in names)


def _checkpoint_file(checkpoint) -> Path | None:
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    if str(checkpoint) == "" or path.is_dir():
        raise ValueError(f"checkpoint must be a file path (e.g. run.pt), got {str(checkpoint)!r}")
    return path


def _first_line(error: BaseException) -> str:
    """The telling line of an error (torch's unpickling errors put it after a paragraph of advice)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    telling = next((line for line in lines if "unsupported" in line.lower()), lines[0])
    if telling.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for ...:" then the error
        telling = f"{telling} {lines[1]}"
    return f"{type(error).__name__}: {telling.split('. ')[0]}".rstrip(": ")


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a reader never sees half a file.
    A failed save leaves no partial file; a full disk raises OSError(ENOSPC) saying so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException as error:
        full = getattr(error, "errno", None) == errno.ENOSPC or (
            isinstance(error, RuntimeError) and shutil.disk_usage(path.parent).free < 2 ** 26)
        tmp.unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, f"the disk is full: no space to save checkpoint {path} "
                          f"({shutil.disk_usage(path.parent).free / 2 ** 20:.0f} MB free); free some space or "
                          "set NCUTILS_CACHE to a directory on another disk") from None
        raise
