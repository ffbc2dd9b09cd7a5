"""The streaming engine: accumulators equal one-shot statistics for any batch split, the engine's
measures equal the plain-array functions on the same features, and its contract on bad input."""
import numpy as np
import pandas as pd
import pytest
import torch

from ncutils import accumulators, metrics
from ncutils.metrics import ClassMoments
from ncutils.models import build_model, classifier, forward_with_taps
from ncutils.frames import memorization_ratios, memorization_ratios_between
from ncutils.accumulators import ClassAccumulator, SecondPassAccumulator
from ncutils.streaming import measure

K = 4


def random_splits(n, rng, count=3):
    """Random batch boundaries, including batches of one sample."""
    for _ in range(count):
        cuts = np.sort(rng.choice(np.arange(1, n), size=rng.integers(1, 12), replace=False))
        yield [slice(a, b) for a, b in zip([0, *cuts], [*cuts, n])]


@pytest.fixture(params=[1 << 20, 500, 16], ids=["held-whole", "held-few-rows", "column-blocks"])
def block_elements(request, monkeypatch):
    """The accumulators' block size: large (every batch held, then reduced at once), small (a few
    batches held), tiny (each batch reduced at once, a few columns per block)."""
    monkeypatch.setitem(accumulators.BLOCK_ELEMENTS, "cpu", request.param)


@pytest.mark.parametrize("offset,dtype,spread", [
    (0.0, torch.float64, 1.0), (1e4, torch.float32, 1.0),
    (0.0, torch.float64, 1e-3),  # collapsed classes 1e3 apart: the one-read shortcut would cancel 12 digits
])
def test_accumulator_over_any_split_equals_one_shot(offset, dtype, spread, block_elements):
    rng = np.random.default_rng(0)
    n, d, k = 120, 37, 6
    y = torch.from_numpy(rng.integers(0, k, n))
    means = rng.normal(size=(k, d)) * (1e3 if spread < 1 else 1.0)
    h64 = torch.from_numpy(spread * rng.normal(size=(n, d)) + means[y.numpy()] + offset)
    h = h64.to(dtype)
    # one-shot reference in numpy float64 from the very values the accumulator sees
    x = h.double().numpy()
    mean = np.stack([x[y.numpy() == c].mean(0) for c in range(k)])
    ssd = np.array([np.sum((x[y.numpy() == c] - mean[c]) ** 2) for c in range(k)])
    for split in random_splits(n, rng):
        acc = ClassAccumulator(k)
        for s in split:
            acc.update(h[s], y[s])
        m = acc.moments()
        assert torch.equal(m.count, torch.bincount(y, minlength=k).double())
        np.testing.assert_allclose(m.mean.numpy(), mean, rtol=1e-13)
        np.testing.assert_allclose(m.ssd.numpy(), ssd, rtol=1e-10)


@pytest.mark.parametrize("offset,dtype", [
    (1e3, torch.float32),
    (1e9, torch.float64),  # far from the origin: uncentred coordinates would lose 9 digits
])
def test_second_pass_over_any_split_equals_the_plain_functions(offset, dtype, block_elements):
    rng = np.random.default_rng(1)
    n, d, k = 150, 20, 5
    y = torch.from_numpy(rng.integers(0, k, n))
    h = torch.from_numpy(rng.normal(size=(n, d)) + 2 * rng.normal(size=(k, d))[y.numpy()]).to(dtype) + offset
    predictions = torch.from_numpy(rng.integers(0, k, n))
    moments = ClassMoments.from_features(h, y)
    for split in random_splits(n, rng):
        second = SecondPassAccumulator(moments, k)
        for s in split:
            second.update(h[s], y[s], predictions[s])
        result = second.result()
        assert result["nc1"] == pytest.approx(metrics.nc1(h, y), rel=1e-9)
        assert result["ncc_accuracy"] == metrics.ncc_accuracy(h, y)
        assert result["nc4"] == metrics.nc4(h, y, predictions)


# ---------------------------------------------------------------------------------------------
# the engine on real models

def structured_data(n=64, seed=0, shape=(3, 16, 16)):
    g = torch.Generator().manual_seed(seed)
    clean = torch.arange(n) % K
    patterns = torch.randn(K, *shape, generator=g)
    x = patterns[clean] + 0.8 * torch.randn(n, *shape, generator=g)
    noisy = torch.where(torch.rand(n, generator=g) < 0.5, torch.randint(0, K, (n,), generator=g), clean)
    return x, clean, noisy


def batches_of(x, labels: dict, size):
    return [(x[i:i + size], {name: y[i:i + size] for name, y in labels.items()}) for i in range(0, len(x), size)]


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return build_model("resnet18", num_classes=K, width=4, in_shape=(3, 16, 16))


def reference_features(model, batches):
    """Features of every tap and of the classifier input, from the same batches, concatenated."""
    captured, feats, logits = [], {}, []
    hook = classifier(model).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    model.eval()
    with torch.no_grad():
        for x, _ in batches:
            out, tapped = forward_with_taps(model, x)
            logits.append(out)
            for name, t in tapped.items():
                feats.setdefault(name, []).append(t)
    hook.remove()
    feats = {name: torch.cat(ts) for name, ts in feats.items()}
    feats["penultimate"] = torch.cat(captured)
    return feats, torch.cat(logits).argmax(1)


def test_engine_equals_plain_functions_on_every_tap_view_and_grouping(resnet):
    x, clean, noisy = structured_data()
    batches = batches_of(x, {"clean": clean, "noisy": noisy}, 24)
    df = measure(resnet, batches, features=("flat", "pooled"))
    feats, predictions = reference_features(resnet, batches)
    assert list(dict.fromkeys(df["layer"])) == [*feats]  # taps in forward order, then the penultimate
    assert set(df.columns) >= {"layer", "layer_index", "measure", "value", "labels", "features"}
    plain = {"cdnv_sum": lambda h, y: metrics.cdnv(h, y), "cdnv_mean": lambda h, y: metrics.cdnv(h, y, "mean"),
             "nc1": metrics.nc1, "nc2": metrics.nc2, "equal_norms": metrics.equal_norms,
             "max_angle": metrics.max_angle, "ncc_accuracy": metrics.ncc_accuracy,
             "nc4": lambda h, y: metrics.nc4(h, y, predictions)}
    checked = 0
    for (layer, view, grouping), rows in df.groupby(["layer", "features", "labels"], sort=False):
        t = feats[layer]
        h = t.flatten(1) if view == "flat" or t.ndim == 2 else t.double().mean(dim=tuple(range(2, t.ndim)))
        y = {"clean": clean, "noisy": noisy}[grouping]
        values = dict(zip(rows["measure"], rows["value"]))
        expected = {name: fn(h, y) for name, fn in plain.items()}
        if layer == "penultimate":
            expected["nc3"] = metrics.nc3(h, y, classifier(resnet).weight)
        assert values.keys() == expected.keys()
        for name in expected:
            assert values[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), (layer, view, grouping, name)
            checked += 1
        assert (rows["dim"] == h.shape[1]).all() and (rows["num_samples"] == len(x)).all()
    assert checked == 10 * 2 * 2 * 8 + 2 * 2  # 9 taps + penultimate, 2 views, 2 groupings, + nc3


def test_engine_values_do_not_depend_on_the_batch_split(resnet):
    x, clean, _ = structured_data(seed=1)
    a = measure(resnet, batches_of(x, {"y": clean}, 64), features="pooled")
    b = measure(resnet, batches_of(x, {"y": clean}, 5), features="pooled")
    pd.testing.assert_series_equal(a["value"], b["value"], rtol=1e-5)


def test_jackknife_replicates_equal_the_measures_without_each_group(resnet):
    """Replicate g is the measure of the samples whose rank within their class in the stream is not = g (mod
    G), computed densely; the main measures are those of every sample, as without the jackknife."""
    x, clean, _ = structured_data(seed=2)
    batches = batches_of(x, {"y": clean}, 7)
    groups = 4
    df = measure(resnet, batches, features="pooled", jackknife=groups, taps=["layer1.0", "layer4.1"])
    plain = measure(resnet, batches, features="pooled", taps=["layer1.0", "layer4.1"])
    main = df[~df["measure"].str.contains("@jk")].reset_index(drop=True)
    pd.testing.assert_frame_equal(main, plain, rtol=1e-10)
    feats, _ = reference_features(resnet, batches)
    position = torch.stack([(clean[:i] == clean[i]).sum() for i in range(len(x))])  # rank within its class
    for layer in ("layer1.0", "layer4.1", "penultimate"):
        t = feats[layer]
        h = t.flatten(1) if t.ndim == 2 else t.double().mean(dim=tuple(range(2, t.ndim)))
        rows = df[df.layer == layer].set_index("measure")
        for g in range(groups):
            kept = position % groups != g
            assert rows.loc[f"cdnv_sum@jk{g}", "value"] == pytest.approx(metrics.cdnv(h[kept], clean[kept]), rel=1e-9)
            assert rows.loc[f"nc2@jk{g}", "value"] == pytest.approx(metrics.nc2(h[kept], clean[kept]), rel=1e-9)
            assert rows.loc[f"cdnv_sum@jk{g}", "num_samples"] == int(kept.sum())


def test_every_label_grouping_leaves_out_the_same_images(resnet):
    """Groups follow the first grouping's classes, so the noisy grouping's replicate g drops the same images."""
    x, clean, noisy = structured_data(seed=4)
    df = measure(resnet, batches_of(x, {"clean": clean, "noisy": noisy}, 9), features="pooled",
                 jackknife=3, taps=["layer2.0"])
    feats, _ = reference_features(resnet, batches_of(x, {"clean": clean}, 9))
    h = feats["layer2.0"].double().mean(dim=(2, 3))
    rank = torch.stack([(clean[:i] == clean[i]).sum() for i in range(len(x))])
    rows = df[(df.layer == "layer2.0") & (df.labels == "noisy")].set_index("measure").value
    for g in range(3):
        kept = rank % 3 != g
        assert rows[f"cdnv_sum@jk{g}"] == pytest.approx(metrics.cdnv(h[kept], noisy[kept]), rel=1e-9)


def test_merged_groups_equal_the_moments_of_their_samples():
    rng = np.random.default_rng(3)
    h, y, group = rng.normal(5, 2, (90, 6)), rng.integers(0, 3, 90), np.arange(90) % 5
    cells = ClassMoments.from_features(h, y * 5 + group)
    for leave_out in (None, 0, 4):
        kept = group != leave_out
        merged, direct = metrics.merge_groups(cells, 5, leave_out), ClassMoments.from_features(h[kept], y[kept])
        for field in ("classes", "count", "mean", "ssd"):
            torch.testing.assert_close(getattr(merged, field), getattr(direct, field), rtol=1e-12, atol=1e-12)


def test_a_jackknife_replicate_that_loses_a_class_is_nan(resnet):
    x, clean, _ = structured_data()
    labels = clean.clone()
    labels[labels == 3] = 0
    labels[:2] = 3  # class 3: two samples, in groups 0 and 1, so leaving either out leaves it one sample
    df = measure(resnet, batches_of(x, {"y": labels}, 24), features="pooled", jackknife=3, taps=["layer1.0"])
    values = df[df.layer == "layer1.0"].set_index("measure").value
    assert np.isnan(values["cdnv_sum@jk0"]) and np.isnan(values["nc2@jk1"]) and np.isfinite(values["cdnv_sum@jk2"])
    assert np.isfinite(values["cdnv_sum"])


@pytest.mark.parametrize("bad", [1, -2, 2.5])
def test_jackknife_needs_two_or_more_groups(resnet, bad):
    x, clean, _ = structured_data()
    with pytest.raises(ValueError, match="jackknife must be 0 .* >= 2"):
        measure(resnet, batches_of(x, {"y": clean}, 24), jackknife=bad)


def test_pass_one_only_and_one_shot_iterators(resnet):
    x, clean, _ = structured_data(n=32)
    with pytest.raises(TypeError, match="one-shot iterator"):
        measure(resnet, iter(batches_of(x, {"y": clean}, 8)))
    df = measure(resnet, (b for b in batches_of(x, {"y": clean}, 8)), second_pass=False, penultimate=False)
    assert set(df["measure"]) == {"cdnv_sum", "cdnv_mean", "nc2", "equal_norms", "max_angle"}
    assert "penultimate" not in set(df["layer"])
    from_callable = measure(resnet, lambda: (b for b in batches_of(x, {"y": clean}, 8)), penultimate=False)
    assert {"nc1", "ncc_accuracy", "nc4"} <= set(from_callable["measure"])


def test_plain_label_tensor_is_grouping_y_and_taps_can_be_selected(resnet):
    x, clean, _ = structured_data(n=32)
    df = measure(resnet, [(x, clean)], taps=["layer4.1", "stem"], second_pass=False)
    assert set(df["labels"]) == {"y"}
    assert list(dict.fromkeys(df["layer"])) == ["stem", "layer4.1", "penultimate"]
    assert list(dict.fromkeys(df["layer_index"])) == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown taps"):
        measure(resnet, [(x, clean)], taps=["layer9"])


def test_a_second_pass_that_sees_other_data_is_refused(resnet):
    x, clean, _ = structured_data(n=32)
    calls = []

    def augmented():  # a new random perturbation each time it is read, like training augmentation
        calls.append(1)
        return [(x + 0.5 * torch.randn_like(x), clean)]

    with pytest.raises(ValueError, match="differs between the two passes"):
        measure(resnet, augmented, penultimate=False)
    shrinking = [[(x, clean)], [(x[:20], clean[:20])]]
    with pytest.raises(ValueError, match="samples per class"):
        measure(resnet, lambda: shrinking.pop(0), penultimate=False)


def test_training_flag_is_restored(resnet):
    x, clean, _ = structured_data(n=16)
    resnet.train()
    measure(resnet, [(x, clean)], second_pass=False)
    assert resnet.training
    with pytest.raises(ValueError):
        measure(resnet, [(x, clean[:3])])
    assert resnet.training
    resnet.eval()
    measure(resnet, [(x, clean)], second_pass=False)
    assert not resnet.training


def test_bad_labels_and_batches(resnet):
    x, clean, noisy = structured_data(n=16)
    with pytest.raises(ValueError, match="has 3 entries but the batch has 16 inputs"):
        measure(resnet, [(x, clean[:3])])
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        measure(resnet, [(x, clean + 2)])
    with pytest.raises(ValueError, match="1-D integer"):
        measure(resnet, [(x, clean.float())])
    with pytest.raises(ValueError, match="same label groupings"):
        measure(resnet, [(x, {"clean": clean}), (x, {"noisy": noisy})])
    with pytest.raises(ValueError, match=r"pair \(x, y\)"):
        measure(resnet, [(x, clean, clean)])
    with pytest.raises(ValueError, match="yielded nothing"):
        measure(resnet, [])
    with pytest.raises(ValueError, match="features must be one or more of"):
        measure(resnet, [(x, clean)], features="spatial")


def test_non_finite_features_name_the_layer(resnet):
    x, clean, _ = structured_data(n=16)
    x[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"stem \(flat features, labels 'y'\): features contain non-finite"):
        measure(resnet, [(x, clean)])


def test_too_few_samples_and_absent_classes(resnet):
    x, clean, _ = structured_data(n=16)
    y = torch.tensor([0] * 6 + [1] * 5 + [3] * 4 + [2])
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have fewer than 2 samples"):
        measure(resnet, [(x, y)])
    with pytest.warns(UserWarning, match=r"classes \[1, 2, 3\] have no samples"), \
            pytest.raises(ValueError, match=r"stem \(flat features, labels 'y'\): .*at least 2 classes"):
        measure(resnet, [(x, torch.zeros(16, dtype=torch.int64))], second_pass=False)
    with pytest.warns(UserWarning, match=r"classes \[3\] have no samples; measures use the 3 classes"):
        df = measure(resnet, [(x, clean % 3)], second_pass=False)
    assert (df["num_classes"] == 3).all()


def test_memorization_ratios_from_one_run_and_from_two_runs(resnet):
    x, clean, noisy = structured_data(n=48, seed=2)
    batches = batches_of(x, {"clean": clean, "noisy": noisy}, 16)
    df = measure(resnet, batches, second_pass=False)
    table = memorization_ratios(df)
    feats, _ = reference_features(resnet, batches)
    for row in table.itertuples():
        h = feats[row.layer].flatten(1)
        assert row.ratio == pytest.approx(metrics.memorization_ratio(h, clean, h, noisy), rel=1e-9)
        assert row.memorization == (row.ratio > 1)
    # corrupted inputs: two runs with the same labels
    corrupted = x + 2.0 * torch.randn_like(x)
    run_clean = measure(resnet, batches_of(x, {"y": clean}, 16), second_pass=False)
    run_noisy = measure(resnet, batches_of(corrupted, {"y": clean}, 16), second_pass=False)
    between = memorization_ratios_between(run_clean, run_noisy)
    feats_noisy, _ = reference_features(resnet, batches_of(corrupted, {"y": clean}, 16))
    h, h_noisy = feats["layer3.1"].flatten(1), feats_noisy["layer3.1"].flatten(1)
    value = between.loc[between.layer == "layer3.1", "ratio"].item()
    assert value == pytest.approx(metrics.memorization_ratio(h, clean, h_noisy, clean), rel=1e-9)
    with pytest.raises(ValueError, match="several label groupings"):
        memorization_ratios_between(df, run_noisy)
