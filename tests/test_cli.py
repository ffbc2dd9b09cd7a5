"""The command line's front door: profile any model, run any setting through the store, sweep a custom grid."""
import os
import subprocess
import sys

import pytest
import torch

from ncutils.zoo import load_weights, make_model


def ncutils_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "ncutils", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})})


def test_profile_a_timm_model_writes_its_table_and_figure(tmp_path, cifar_root):
    out = ncutils_cli("profile", "timm:convnext_atto", "--n-per-class", 5, "--probe", "--out", tmp_path / "p")
    assert out.returncode == 0, out.stderr
    assert "stages.3.blocks.1" in out.stdout and "probe_test_acc" in out.stdout
    import pandas as pd

    table = pd.read_parquet(tmp_path / "p" / "layers.parquet")
    assert set(table.model) == {"ConvNeXt"} and (tmp_path / "p" / "layers.png").stat().st_size > 10_000


def test_run_with_label_noise_is_stored_once_and_then_read(tmp_path, cifar_root):
    args = ("run", "mlp", "--scale", "smoke", "--noise", "random:0.4", "--epochs", 1, "--n-per-class", 5,
            "--eval-n-per-class", 5, "--store", tmp_path / "results")
    env = {"NCUTILS_CACHE": str(tmp_path / "cache")}
    first = ncutils_cli(*args, "--plot", tmp_path / "run.png", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("computed: mlp[width=32] cifar10 noise=random:0.4") and (tmp_path / "run.png").is_file()
    second = ncutils_cli(*args, env=env)
    assert second.stdout.startswith("stored: ") and "train" not in second.stderr.lower()


def test_a_grid_dry_run_lists_its_runs(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("scale: smoke\nmodels: [resnet18, mlp]\nnoise: [clean, 'random:0.2']\nseeds: [0, 1]\n")
    out = ncutils_cli("sweep", "--grid", grid, "--dry-run", "--store", tmp_path / "results")
    assert out.returncode == 0, out.stderr
    assert f"grid {grid}: 8 runs" in out.stdout and out.stdout.count("missing ") == 8
    both = ncutils_cli("sweep", "clean", "--grid", grid, "--dry-run")
    assert both.returncode != 0 and "name a study" in both.stderr


def test_weights_load_safely_or_say_why_not(tmp_path):
    model = make_model("mlp", 10)
    good = tmp_path / "good.pt"
    torch.save({"state_dict": model.state_dict()}, good)
    other = make_model("mlp", 10)
    load_weights(other, good)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    with pytest.raises(ValueError, match="does not fit the model"):
        load_weights(make_model("resnet18", 10), good)
    with pytest.raises(ValueError, match="pretrained weights are not downloaded"):
        load_weights(model, "imagenet")

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    hostile = tmp_path / "hostile.pt"
    torch.save({"model": Exploit()}, hostile)
    with pytest.raises(ValueError, match="not a state dict loadable with weights_only=True"):
        load_weights(model, hostile)
    assert not (tmp_path / "pwned").exists()


def test_models_by_name_from_every_source():
    assert type(make_model("torchvision:resnet18", 7)).__name__ == "ResNet"
    assert make_model("timm:vit_tiny_patch16_224", 7, (3, 32, 32)).patch_embed.img_size == (32, 32)
    with pytest.raises(ValueError, match="torchvision has no model 'resnet9'"):
        make_model("torchvision:resnet9", 7)
    with pytest.raises(ValueError, match="cannot load 'nopackage:thing'"):
        make_model("nopackage:thing", 7)
