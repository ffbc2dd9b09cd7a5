"""Training throughput: the project's step against a plain fp32 loop with a torchvision DataLoader.

    python -m ncutils.bench train [--model resnet18 --width 32 --steps 30]

Both loops train the same model on the same CIFAR-10 images with the same augmentation (pad-4 crop,
flip, normalisation) and SGD; the ratio of their images/s is measured in one run.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from ..data import load_dataset
from ..models import build_model
from ..train import TrainConfig, train, use_all_cores


class _PILDataset(torch.utils.data.Dataset):
    """The images as PIL, transformed one by one: how a plain torchvision pipeline feeds a model."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                                    T.Normalize(mean, std)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(np.ascontiguousarray(self.images[i]))), self.labels[i]


def plain_loop(model, data, steps: int, warmup: int, workers: int) -> float:
    """images/s of an fp32, contiguous-format loop fed by a DataLoader of PIL transforms."""
    loader = torch.utils.data.DataLoader(_PILDataset(data.images, data.labels, data.mean, data.std),
                                         batch_size=128, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    it, seen, t0 = iter(loader), 0, None
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        x, y = next(it)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(y) if step >= warmup else 0
    return seen / (time.perf_counter() - t0)


def project_loop(model, data, steps: int, warmup: int) -> float:
    """images/s of ncutils.train.train (bf16 autocast, channels_last, batched tensor augmentation)."""
    n = (warmup + steps) * 128
    subset = data.subset(torch.arange(n))
    train(model, subset, TrainConfig(epochs=1), progress=False, stop_after=1)  # warm-up epoch: oneDNN kernels
    log = train(model, data.subset(torch.arange(steps * 128)), TrainConfig(epochs=1), progress=False)
    return float(log["images_per_s"].iloc[0])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m ncutils.bench train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=30, help="timed SGD steps of batch 128 per loop")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader workers of the plain loop (0 is its fastest on 2 cores: workers compete "
                        "with the compute threads; 2 workers measured 50 img/s against 157)")
    a = p.parse_args(argv)
    threads = use_all_cores()
    data = load_dataset("cifar10", "train")
    torch.manual_seed(0)
    plain = plain_loop(build_model(a.model, width=a.width), data, a.steps, a.warmup, a.workers)
    torch.manual_seed(0)
    ours = project_loop(build_model(a.model, width=a.width), data, a.steps, a.warmup)
    print(f"model {a.model} width {a.width}, batch 128, {a.steps} timed steps, {threads} threads, "
          f"device cpu, torch {torch.__version__}")
    print(f"plain fp32 loop, torchvision DataLoader ({a.workers} workers): {plain:8.1f} img/s")
    print(f"ncutils.train (bf16 autocast, channels_last, tensor aug):   {ours:8.1f} img/s")
    print(f"speed-up: {ours / plain:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
