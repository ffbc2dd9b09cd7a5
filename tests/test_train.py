import os
import subprocess
import sys

import pytest
import torch

from ncutils import build_model, load_dataset
from ncutils.config import RunConfig
from ncutils.store import Store
from ncutils.train import RECIPES, TrainConfig, evaluate, learning_rate, make_optimizer, train


def test_smoke_training_beats_chance_on_real_cifar10(cifar_root):
    train_data = load_dataset("cifar10", "train", n_per_class=100)
    test_data = load_dataset("cifar10", "test", n_per_class=100)
    model = build_model("resnet18", width=8)
    log = train(model, train_data, TrainConfig(epochs=4, batch_size=64), progress=False)
    assert list(log.columns) == ["epoch", "lr", "loss", "acc", "images_per_s", "seconds", "cpu_seconds"]
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    # chance is 10%; with 1,000 test images its standard error is under 1%, so 15% is > 5 sigma above it
    assert evaluate(model, test_data) > 0.15


def test_multistep_schedule_matches_appendix():
    r = RECIPES["sgd"]
    assert [learning_rate(r, s, 100) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_warmup_cosine_schedule_matches_appendix():
    r = RECIPES["adamw"]
    assert learning_rate(r, 0, 1000) == pytest.approx(1e-4)
    assert learning_rate(r, 100, 1000) == pytest.approx(1e-3)
    assert learning_rate(r, 1000, 1000) == pytest.approx(1e-5)
    lrs = [learning_rate(r, s, 1000) for s in range(100, 1000)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_onecycle_schedule_equals_torch_onecyclelr():
    r = RECIPES["parker"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=r.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=200, cycle_momentum=False)
    ours, theirs = [], []
    for step in range(200):
        theirs.append(opt.param_groups[0]["lr"])
        ours.append(learning_rate(r, step, 200))
        opt.step()
        sched.step()
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_adamw_skips_decay_on_norms_biases_and_position_tables():
    model = build_model("vit_tiny", embed_dim=12, depth=2)
    opt = make_optimizer(model, RECIPES["adamw"])
    names = {id(p): n for n, p in model.net.named_parameters()}
    no_decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    assert {"pos_embed", "fc_norm.weight", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias"} <= no_decay
    assert "blocks.0.attn.qkv.weight" in decay and not decay & no_decay


def test_bad_config_values():
    with pytest.raises(ValueError, match="unknown recipe 'adam'; valid: sgd, adamw, parker"):
        TrainConfig(recipe="adam")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)


def _cli_train(tmp_path, name: str, epochs: int):
    """``python -m ncutils train`` of a smoke run into its own store and cache; (command, env, checkpoint)."""
    store, cache = tmp_path / name / "results", tmp_path / name / "cache"
    checkpoint = Store(store, cache).checkpoint_path(RunConfig.at_scale("resnet18", "cifar10", "smoke", epochs=epochs))
    command = [sys.executable, "-m", "ncutils", "train", "resnet18", "--scale", "smoke", "--epochs", str(epochs),
               "--store", str(store)]
    return command, {**os.environ, "NCUTILS_CACHE": str(cache)}, checkpoint


def test_cli_train_goes_through_the_store_and_resumes_after_kill(tmp_path, cifar_root, kill_after_checkpoint):
    epochs = 8
    command, env, whole = _cli_train(tmp_path, "whole", epochs)
    first = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    assert first.startswith("computed: resnet18[width=4] cifar10 precision=fp32 seed=0 epochs=8")  # the smoke scale's
    again = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    assert again.startswith("stored: ") and again.splitlines()[2:] == first.splitlines()[2:]  # read, not retrained
    command, env, killed = _cli_train(tmp_path, "killed", epochs)
    stopped_at = kill_after_checkpoint(command, killed, env=env)
    assert 1 <= stopped_at < epochs, f"the run was not killed mid-training (checkpoint at epoch {stopped_at})"
    subprocess.run(command, env=env, check=True, capture_output=True)
    a, b = torch.load(whole, weights_only=True), torch.load(killed, weights_only=True)
    assert a["epoch"] == b["epoch"] == epochs
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [r["loss"] for r in a["log"]] == [r["loss"] for r in b["log"]]


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path, cifar_root):
    data = load_dataset("cifar10", "train", n_per_class=5)
    ckpt = tmp_path / "c.pt"
    train(build_model("resnet18", width=2), data, TrainConfig(epochs=1), checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="written by another config"):
        train(build_model("resnet18", width=2), data, TrainConfig(epochs=2), checkpoint=ckpt, progress=False)


def test_only_fp32_cpu_training_through_onednns_broken_strided_1x1_kernel_leaves_channels_last(monkeypatch):
    """oneDNN's strided 1x1 weight gradient is broken in channels_last for fewer than 8 input channels
    (crash, hang or wrong gradients; see _hits_onednn_strided_1x1_bug): ResNet18 below width 8 has
    such a shortcut (4 -> 8 channels at width 4). Only those fp32 CPU trainings go NCHW."""
    from ncutils.train import _hits_onednn_strided_1x1_bug

    cpu = torch.device("cpu")

    def hits(width, bf16=False, device=cpu):
        return _hits_onednn_strided_1x1_bug(build_model("resnet18", width=width), TrainConfig(bf16=bf16), device)

    assert hits(1) and hits(2) and hits(4)  # shortcuts from 1, 2, 4 / 2, 4, 8 / 4, 8, 16 channels
    assert not hits(8) and not hits(16)
    assert not hits(4, bf16=True) and not hits(4, device=torch.device("cuda"))
    assert not _hits_onednn_strided_1x1_bug(build_model("vgg11", width=4), TrainConfig(bf16=False), cpu)
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    assert not hits(4)
