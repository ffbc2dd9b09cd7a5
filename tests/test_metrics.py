"""The plain-array measures against textbook computations written here independently (numpy float64,
dense covariances, pinv, explicit loops), known geometry, invariances and the defined edge cases."""
import numpy as np
import pytest
import torch

from ncutils import metrics
from ncutils.metrics import DegenerateGeometryWarning


# ---------------------------------------------------------------------------------------------
# textbook references: nothing shared with ncutils.metrics

def textbook(X, y, W=None, predictions=None):
    X = np.asarray(X, dtype=np.float64)
    classes = np.unique(y)
    K, N = len(classes), len(X)
    mu = np.stack([X[y == k].mean(0) for k in classes])
    mu_g = X.mean(0)
    var = np.array([np.mean(np.sum((X[y == k] - mu[i]) ** 2, axis=1)) for i, k in enumerate(classes)])
    cdnv = sum((var[a] + var[b]) / (2 * np.sum((mu[a] - mu[b]) ** 2))
               for a in range(K) for b in range(K) if a != b)
    dev = X - mu[np.searchsorted(classes, y)]
    sigma_w = dev.T @ dev / N
    M = (mu - mu_g).T  # D x K
    sigma_b = M @ M.T / K
    nc1 = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10, hermitian=True)) / K
    G = M.T @ M
    etf = (np.eye(K) - np.ones((K, K)) / K) / np.sqrt(K - 1)
    nc2 = np.linalg.norm(G / np.linalg.norm(G) - etf)
    norms = np.linalg.norm(M, axis=0)
    equal_norms = np.std(norms, ddof=1) / np.mean(norms)
    angle = np.mean([abs(M[:, a] @ M[:, b] / (norms[a] * norms[b]) + 1 / (K - 1))
                     for a in range(K) for b in range(K) if a != b])
    nearest = np.array([classes[np.argmin([np.sum((x - m) ** 2) for m in mu])] for x in X])
    out = dict(cdnv=cdnv, cdnv_mean=cdnv / (K * (K - 1)), nc1=nc1, nc2=nc2, equal_norms=equal_norms,
               max_angle=angle, ncc=np.mean(nearest == y))
    if W is not None:
        Wk = W[classes]
        out["nc3"] = np.linalg.norm(Wk / np.linalg.norm(Wk) - M.T / np.linalg.norm(M)) ** 2
    if predictions is not None:
        out["nc4"] = np.mean(nearest != predictions)
    return out


def ours(X, y, W=None, predictions=None):
    out = dict(cdnv=metrics.cdnv(X, y), cdnv_mean=metrics.cdnv(X, y, reduction="mean"), nc1=metrics.nc1(X, y),
               nc2=metrics.nc2(X, y), equal_norms=metrics.equal_norms(X, y), max_angle=metrics.max_angle(X, y),
               ncc=metrics.ncc_accuracy(X, y))
    if W is not None:
        out["nc3"] = metrics.nc3(X, y, W)
    if predictions is not None:
        out["nc4"] = metrics.nc4(X, y, predictions)
    return out


def clustered(rng, n, d, k, spread=1.0, separation=3.0, imbalanced=True):
    """Gaussian classes around random means; imbalanced sizes and non-contiguous label values."""
    values = np.arange(k) * 3 + 1  # labels 1, 4, 7, ...: the measures must not assume 0..K-1
    p = rng.dirichlet(np.ones(k) * 5) if imbalanced else np.ones(k) / k
    y = values[rng.choice(k, size=n, p=p)]
    y[:2 * k] = np.repeat(values, 2)  # every class has >= 2 samples
    means = rng.normal(size=(k, d)) * separation
    X = means[np.searchsorted(values, y)] + rng.normal(size=(n, d)) * spread
    return X, y


def simplex_etf(rng, k, d, scale=1.0):
    """K simplex-ETF class means in R^D: sqrt(K/(K-1)) (I - 11^T/K) through a random orthonormal map."""
    basis, _ = np.linalg.qr(rng.normal(size=(d, k)))
    return scale * np.sqrt(k / (k - 1)) * (np.eye(k) - 1 / k) @ basis.T


# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,d,k", [(200, 12, 5), (150, 40, 7), (120, 3, 6)])  # last: D < K - 1, Sigma_B rank D
def test_measures_equal_textbook(n, d, k):
    rng = np.random.default_rng(n + d + k)
    X, y = clustered(rng, n, d, k)
    W = rng.normal(size=(y.max() + 1, d))
    predictions = rng.choice(np.unique(y), size=n)
    expected, got = textbook(X, y, W, predictions), ours(X, y, W, predictions)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_torch_and_numpy_inputs_agree_and_return_floats():
    rng = np.random.default_rng(1)
    X, y = clustered(rng, 100, 8, 4)
    a = ours(X, y)
    b = ours(torch.from_numpy(X).float(), torch.from_numpy(y))
    for name in a:
        assert isinstance(b[name], float)
        assert b[name] == pytest.approx(textbook(X.astype(np.float32), y)[name], rel=1e-9), name


def test_simplex_etf_with_zero_spread_is_perfect_collapse():
    rng = np.random.default_rng(2)
    k, d, n_per = 6, 20, 5
    means = simplex_etf(rng, k, d) + 7.0  # any global offset
    y = np.repeat(np.arange(k), n_per)
    X = means[y]
    assert metrics.cdnv(X, y) == pytest.approx(0, abs=1e-20)  # rounding of the means only
    assert metrics.nc1(X, y) == pytest.approx(0, abs=1e-20)
    assert metrics.nc2(X, y) == pytest.approx(0, abs=1e-12)
    assert metrics.equal_norms(X, y) == pytest.approx(0, abs=1e-12)
    assert metrics.max_angle(X, y) == pytest.approx(0, abs=1e-12)
    assert metrics.ncc_accuracy(X, y) == 1.0
    assert metrics.nc3(X, y, 3.0 * (means - means.mean(0))) == pytest.approx(0, abs=1e-20)  # W = C (scaled)


def test_simplex_etf_known_cdnv_with_spread():
    # ETF means at distance sqrt(2K/(K-1)) pairwise; every class variance s2 -> each pair (s2+s2)/(2 d^2)
    rng = np.random.default_rng(3)
    k, d, n_per = 5, 30, 2
    means = simplex_etf(rng, k, d)
    offsets = rng.normal(size=(k, d))
    X = np.concatenate([np.stack([m + u, m - u]) for m, u in zip(means, offsets)])
    y = np.repeat(np.arange(k), n_per)
    s2 = np.sum(offsets ** 2, axis=1)  # mean squared distance to the class mean is ||u||^2
    d2 = 2 * k / (k - 1)
    expected = sum((s2[a] + s2[b]) / (2 * d2) for a in range(k) for b in range(k) if a != b)
    assert metrics.cdnv(X, y) == pytest.approx(expected, rel=1e-12)
    assert metrics.nc2(X, y) == pytest.approx(0, abs=1e-12)  # the means are still an ETF


def test_invariant_to_rotation_scaling_and_translation():
    rng = np.random.default_rng(4)
    X, y = clustered(rng, 150, 10, 5)
    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    moved = 4.5 * X @ Q + rng.normal(size=10) * 100
    before, after = ours(X, y), ours(moved, y)
    for name in before:
        assert after[name] == pytest.approx(before[name], rel=1e-8), name


def test_random_means_are_far_from_the_etf():
    # K = 10 classes in D = 5 dims: the Gram of the centred means has rank <= 5 < K - 1, and any
    # unit-norm PSD matrix G of rank r has ||G - ETF||_F >= sqrt(2 - 2 sqrt(r / (K - 1))) = 0.714
    rng = np.random.default_rng(5)
    k, d = 10, 5
    y = np.repeat(np.arange(k), 3)
    X = rng.normal(size=(k, d))[y] + 0.01 * rng.normal(size=(len(y), d))
    assert metrics.nc2(X, y) >= np.sqrt(2 - 2 * np.sqrt(d / (k - 1)))
    # and in D = K dims, random means are measurably off too (a perturbed ETF is not)
    X = rng.normal(size=(k, k))[y]
    assert metrics.nc2(X, y) > 0.2
    etf = simplex_etf(rng, k, k)
    assert metrics.nc2(etf[y] + 1e-3 * rng.normal(size=(len(y), k)), y) < 0.01


def test_float32_with_large_offset_gives_the_float64_answer():
    rng = np.random.default_rng(6)
    X, y = clustered(rng, 400, 16, 4, spread=1.0, separation=0.5)
    X32 = (X + 1e4).astype(np.float32)
    expected = textbook(X32.astype(np.float64), y)
    got = ours(torch.from_numpy(X32), y)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-9), name
    # the test can tell: the E[x^2] - E[x]^2 shortcut in float32 misses the variance entirely
    x = torch.from_numpy(X32[y == y[0]])
    shortcut = (x.square().mean(0) - x.mean(0).square()).sum()
    exact = np.sum(np.var(X32[y == y[0]].astype(np.float64), axis=0))
    assert abs(float(shortcut) - exact) > 0.1 * exact


def test_cdnv_mean_is_sum_over_ordered_pairs_divided_by_their_number():
    rng = np.random.default_rng(7)
    X, y = clustered(rng, 90, 6, 4)
    assert metrics.cdnv(X, y, "mean") * 4 * 3 == pytest.approx(metrics.cdnv(X, y, "sum"), rel=1e-12)


def test_memorization_ratio_is_cdnv_clean_over_noisy():
    rng = np.random.default_rng(8)
    X, clean = clustered(rng, 200, 10, 4, imbalanced=False)
    noisy = clean.copy()
    flip = rng.random(len(noisy)) < 0.4
    noisy[flip] = rng.choice(np.unique(clean), size=flip.sum())
    expected = textbook(X, clean)["cdnv"] / textbook(X, noisy)["cdnv"]
    ratio = metrics.memorization_ratio(X, clean, X, noisy)
    assert ratio == pytest.approx(expected, rel=1e-10)
    assert ratio < 1  # features organised by the clean labels: no memorization of the noisy ones
    corrupted = X + rng.normal(size=X.shape) * 3  # corrupted inputs, same labels
    assert metrics.memorization_ratio(X, clean, corrupted, clean) == pytest.approx(
        textbook(X, clean)["cdnv"] / textbook(corrupted, clean)["cdnv"], rel=1e-10)


def test_nc4_is_zero_when_the_network_predicts_the_nearest_centre():
    rng = np.random.default_rng(9)
    X, y = clustered(rng, 80, 5, 3, separation=0.3)
    moments = metrics.ClassMoments.from_features(X, y)
    nearest = metrics.nearest_class_centre(X, moments).numpy()
    assert metrics.nc4(X, y, nearest) == 0
    assert metrics.ncc_accuracy(X, y) == pytest.approx(np.mean(nearest == y))
    assert metrics.ncc_accuracy(X, y) < 1  # overlapping classes: the test is not trivially 1


# ---------------------------------------------------------------------------------------------
# edge cases: defined behaviour and clear messages

def test_label_length_mismatch():
    with pytest.raises(ValueError, match="labels has 9 entries but features has 10 rows"):
        metrics.cdnv(np.zeros((10, 3)), np.zeros(9, dtype=int))


def test_non_integer_or_non_vector_labels():
    with pytest.raises(ValueError, match="1-D integer"):
        metrics.nc2(np.random.rand(4, 2), np.array([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="1-D integer"):
        metrics.nc2(np.random.rand(4, 2), np.zeros((4, 1), dtype=int))


def test_features_must_be_2d_and_finite():
    with pytest.raises(ValueError, match="must be 2-D"):
        metrics.nc2(np.random.rand(4, 2, 2), np.array([0, 1, 0, 1]))
    X = np.random.rand(4, 2)
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        metrics.cdnv(X, np.array([0, 1, 0, 1]))
    X[1, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        metrics.nc1(X, np.array([0, 1, 0, 1]))


def test_a_single_class_is_refused():
    X = np.random.rand(5, 3)
    for fn in (metrics.cdnv, metrics.nc1, metrics.nc2, metrics.equal_norms, metrics.max_angle, metrics.ncc_accuracy):
        with pytest.raises(ValueError, match="at least 2 classes"):
            fn(X, np.zeros(5, dtype=int))


def test_a_class_with_one_sample():
    X = np.random.default_rng(10).normal(size=(5, 3))
    y = np.array([0, 0, 1, 1, 2])
    for fn in (metrics.cdnv, metrics.nc1):
        with pytest.raises(ValueError, match=r"class\(es\) \[2\] have fewer than 2 samples"):
            fn(X, y)
    assert metrics.nc2(X, y) == pytest.approx(textbook(X, y)["nc2"])  # means-only measures are defined


def test_identical_class_means_give_infinite_cdnv_with_a_warning():
    X = np.array([[0.0, 1], [0, -1], [1, 0], [-1, 0], [5, 5], [5, 6]])
    y = np.array([0, 0, 1, 1, 2, 2])  # classes 0 and 1 both have mean (0, 0)
    with pytest.warns(DegenerateGeometryWarning, match="1 pair"):
        assert metrics.cdnv(X, y) == np.inf


def test_all_class_means_equal():
    X = np.array([[0.0, 1], [0, -1], [1, 0], [-1, 0]])
    y = np.array([0, 0, 1, 1])
    with pytest.warns(DegenerateGeometryWarning, match="Sigma_B = 0"):
        assert metrics.nc1(X, y) == np.inf
    with pytest.warns(DegenerateGeometryWarning, match="undefined"):
        assert np.isnan(metrics.nc2(X, y))
    with pytest.warns(DegenerateGeometryWarning, match="angle is undefined"):
        assert np.isnan(metrics.max_angle(X, y))


def test_bad_reduction_and_classifier_shape():
    X, y = clustered(np.random.default_rng(11), 30, 4, 3)
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        metrics.cdnv(X, y, reduction="max")
    with pytest.raises(ValueError, match="classifier weight must be"):
        metrics.nc3(X, y, np.zeros((y.max() + 1, 5)))
