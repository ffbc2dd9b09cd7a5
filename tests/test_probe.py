"""All-taps linear probing: it learns, it leaves the backbone alone, and caching changes nothing."""
import pandas as pd
import pytest
import torch

from ncutils.models import build_model, layer_taps
from ncutils.probe import lr_schedule, probe

K = 3


def separable(n, seed):
    """Three classes of 1x8x8 inputs around well-separated patterns."""
    g = torch.Generator().manual_seed(seed)
    patterns = 3 * torch.randn(K, 1, 8, 8, generator=torch.Generator().manual_seed(99))
    y = torch.arange(n) % K
    return patterns[y] + 0.3 * torch.randn(n, 1, 8, 8, generator=g), y


def batches(x, y, size=16):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


@pytest.fixture()
def mlp():
    torch.manual_seed(0)
    return build_model("mlp", num_classes=K, in_shape=(1, 8, 8), width=32, depth=3)


def test_schedule_is_the_papers_and_scales_with_epochs():
    assert lr_schedule(10) == pytest.approx([0.1] * 5 + [0.02] * 2 + [0.004] * 3)
    assert lr_schedule(20, lr=1.0, gamma=0.5) == pytest.approx([1.0] * 10 + [0.5] * 4 + [0.25] * 6)
    assert lr_schedule(1) == [0.1]
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        lr_schedule(0)


def test_probe_learns_separable_data_and_leaves_the_backbone_alone(mlp):
    train, test = batches(*separable(96, 0)), batches(*separable(48, 1))
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    mlp.train()
    df = probe(mlp, train, test, augmented=False, epochs=5)
    assert list(df.columns) == ["layer", "layer_index", "train_acc", "test_acc"]
    assert df["layer"].tolist() == layer_taps(mlp)
    assert df["test_acc"].iloc[-1] >= 0.9 and df["train_acc"].iloc[-1] >= 0.9
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    assert mlp.training  # the training flag is restored
    assert all(p.grad is None for p in mlp.parameters())


def test_cached_path_equals_per_batch_path(mlp):
    # random labels: accuracies well below 1 that move with any change in the heads' training
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(90, 1, 8, 8, generator=g), torch.randint(0, K, (90,), generator=g)
    train, test = batches(x[:60], y[:60], size=8), batches(x[60:], y[60:])
    per_batch = probe(mlp, train, test, augmented=True, epochs=4)
    cached = probe(mlp, train, test, augmented=False, shuffle=False, epochs=4)
    pd.testing.assert_frame_equal(per_batch, cached, rtol=1e-6)
    assert per_batch["train_acc"].between(0.4, 0.99).all()
    reshuffled = probe(mlp, train, test, augmented=False, shuffle=True, epochs=4)
    assert not reshuffled[["train_acc", "test_acc"]].equals(cached[["train_acc", "test_acc"]])
    # the cache reads the training data once; the per-batch path once per epoch plus once for train_acc
    reads = []
    probe(mlp, lambda: reads.append("x") or train, test, augmented=False, epochs=4)
    assert len(reads) == 1
    reads.clear()
    probe(mlp, lambda: reads.append("x") or train, test, augmented=True, epochs=4)
    assert len(reads) == 5


def test_probe_refuses_inconsistent_options(mlp):
    train = batches(*separable(24, 4))
    with pytest.raises(ValueError, match="freeze one draw of an augmented"):
        probe(mlp, train, train, augmented=True, cache=True)
    with pytest.raises(TypeError, match="one-shot iterator"):
        probe(mlp, iter(train), train, augmented=True)
    with pytest.raises(ValueError, match="train yielded no batches"):
        probe(mlp, [], train, augmented=False, epochs=1)
    labelled = [(x, {"clean": y, "noisy": y}) for x, y in train]
    with pytest.raises(ValueError, match="choose one with labels="):
        probe(mlp, labelled, labelled, augmented=False, epochs=1)
    assert len(probe(mlp, labelled, labelled, augmented=False, epochs=1, labels="clean")) == len(layer_taps(mlp))
