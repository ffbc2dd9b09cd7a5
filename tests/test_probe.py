"""All-taps linear probing: it learns, it leaves the backbone alone, and caching changes nothing."""
import pandas as pd
import pytest
import torch

from ncutils.models import build_model, layer_taps
from ncutils.logistic import fit_logistic
from ncutils.probe import converged_probe, lr_schedule, probe

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


# --- the converged probe ---------------------------------------------------------------------------

def noisy_classes(n, d, k, seed):
    """Overlapping Gaussian classes away from the origin: a logistic regression that cannot reach 100%."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    centres = 0.7 * torch.randn(k, d, generator=g)
    return centres[y] + 1.5 * torch.randn(n, d, generator=g) + 3.0, y


@pytest.mark.parametrize("l2", [1e-3, 1e-1])
def test_logistic_fit_matches_scikit_learn(l2):
    """The textbook reference: scikit-learn's multinomial LogisticRegression (lbfgs) minimises
    C * sum of cross-entropies + ||W||^2 / 2 with an unpenalised intercept, i.e. our objective with C = 1 / (l2 N)."""
    from sklearn.linear_model import LogisticRegression

    x, y = noisy_classes(400, 20, 4, 0)
    fit = fit_logistic(x, y, 4, l2=l2, tol=1e-9)
    z = ((x.double() - x.double().mean(0)) / x.double().std(0, correction=0)).numpy()
    reference = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-12, max_iter=10_000).fit(z, y.numpy())
    assert fit.converged
    assert fit.weight.numpy() == pytest.approx(reference.coef_, abs=1e-5)
    assert fit.bias.numpy() == pytest.approx(reference.intercept_, abs=1e-5)
    assert torch.softmax(fit.logits(x), 1).numpy() == pytest.approx(reference.predict_proba(z), abs=1e-6)
    assert fit.train_acc == pytest.approx(reference.score(z, y.numpy()))
    assert 0.25 < fit.train_acc < 1  # the classes overlap: the fit is not trivially perfect


def test_logistic_fit_reports_convergence_and_fits_separable_features():
    x, y = noisy_classes(300, 10, 3, 1)
    assert not fit_logistic(x, y, 3, max_iter=2).converged
    separated = torch.relu(torch.randn(500, 256) + 3 * torch.randn(10, 256)[torch.arange(500) % 10])
    fit = fit_logistic(separated, torch.arange(500) % 10, 10)
    assert fit.converged and fit.train_acc == 1.0 and fit.train_loss < 0.01
    constant = torch.cat([separated, torch.ones(500, 1)], 1)  # a dead (constant) feature is left unscaled
    assert fit_logistic(constant, torch.arange(500) % 10, 10).train_acc == 1.0


def test_logistic_fit_refuses_bad_labels():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"labels must be integers in 0..2"):
        fit_logistic(x, torch.arange(10) % 4, 3)
    with pytest.raises(ValueError, match=r"features must be \(N, D\)"):
        fit_logistic(x, torch.arange(9) % 3, 3)


def test_converged_probe_fits_each_taps_pooled_features(mlp):
    """Against an independent path: pooled features from forward_with_taps, fitted tap by tap."""
    from ncutils.models import forward_with_taps

    (x, y), (xt, yt) = separable(96, 0), separable(48, 1)
    table = converged_probe(mlp, batches(x, y), batches(xt, yt), num_classes=K)
    assert list(table.layer) == layer_taps(mlp) and table.converged.all()
    with torch.no_grad():
        _, feats = forward_with_taps(mlp.eval(), x)
        _, tested = forward_with_taps(mlp, xt)
    for row in table.itertuples():
        fit = fit_logistic(feats[row.layer].flatten(1), y, K)
        assert row.train_acc == fit.train_acc and row.train_loss == pytest.approx(fit.train_loss, rel=1e-9)
        assert row.test_acc == fit.accuracy(tested[row.layer].flatten(1), yt)
    assert (table.train_acc == 1.0).all() and table.test_acc.min() > 0.9


def test_a_run_with_the_converged_probe_stores_its_fit(cifar_root):
    from ncutils.config import RunConfig
    from ncutils.experiment import run_experiment

    config = RunConfig("resnet18", size={"width": 4}, n_per_class=5, eval_n_per_class=5, epochs=0,
                       features=("pooled",), probe_method="converged")
    assert config.key() != RunConfig(**{**config.to_dict(), "probe_method": "sgd"}).key()
    assert config.training_key() == RunConfig(**{**config.to_dict(), "probe_method": "sgd"}).training_key()
    m = run_experiment(config, progress=False).metrics
    fits = m[m.measure.str.startswith("probe_")].pivot(index="layer_index", columns="measure", values="value")
    assert sorted(fits.columns) == ["probe_converged", "probe_iterations", "probe_test_acc", "probe_train_acc",
                                    "probe_train_loss"]
    assert (fits.probe_converged == 1).all() and (fits.probe_iterations >= 1).all()
    with pytest.raises(ValueError, match="unknown probe_method 'lbfgs'; valid: sgd, converged"):
        RunConfig("resnet18", probe_method="lbfgs")
