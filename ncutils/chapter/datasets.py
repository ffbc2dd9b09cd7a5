"""The clean chapter's panels on data this machine may lack: CIFAR-100 (computed at the paper scale when
present) and ImageNet (never computed here), and what to provide for them."""
from __future__ import annotations

from ..data import DatasetNotFoundError, load_dataset

IMAGENET = ("ImageNet panels need ImageNet-1k and the pretrained mmpretrain weights the paper used; neither is "
            "available offline, and this companion does not compute them.")


def cifar100_and_imagenet() -> str:
    """Whether CIFAR-100 is under the data root (the paper scale then computes its panels), and why the
    ImageNet panels are not computed."""
    try:
        load_dataset("cifar100", "test", download=False)
        cifar100 = ("CIFAR-100 is present: its runs are part of the paper scale: "
                    "python -m ncutils sweep clean --scale paper")
    except DatasetNotFoundError as e:
        cifar100 = ("CIFAR-100 panels: not computed here. With CIFAR-100 under the data root, the paper scale "
                    f"computes them: python -m ncutils sweep clean --scale paper\n{e}")
    return f"{cifar100}\n{IMAGENET}"
