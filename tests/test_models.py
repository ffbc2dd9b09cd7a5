import pytest
import torch

from ncutils import build_model, forward_with_taps, layer_taps
from ncutils.models import classifier, model_names, model_overrides
from ncutils.scales import SCALES

SMOKE = SCALES["smoke"]
# Tap counts from the architectures' definitions: ResNet = stem + residual blocks; VGG = conv
# layers; Swin = sum of stage depths; ViT = blocks; MLP = hidden layers.
EXPECTED_TAPS = {
    "resnet18": 1 + 8, "resnet34": 1 + 16, "resnet50": 1 + 16, "resnet101": 1 + 33, "resnet152": 1 + 50,
    "vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16,
    "swin_t": 12, "swin_s": 24, "swin_b": 36, "swin_l": 48,
    "vit_tiny": 12, "vit_small": 12, "vit_base": 12, "mlp": 6,
}


def test_registry_is_the_documented_one():
    assert sorted(model_names()) == sorted(EXPECTED_TAPS)


@pytest.mark.parametrize("name", sorted(EXPECTED_TAPS))
def test_builds_at_smoke_size_with_documented_taps(name):
    model = build_model(name, num_classes=7, **SMOKE.model_size(name)).eval()
    x = torch.randn(3, 3, 32, 32)
    logits, feats = forward_with_taps(model, x)
    assert list(feats) == layer_taps(model)
    assert len(feats) == EXPECTED_TAPS[name]
    assert logits.shape == (3, 7)
    assert torch.allclose(logits, model(x))  # the hooks change nothing
    for tap, f in feats.items():
        assert f.shape[0] == 3 and f.ndim >= 2, (tap, f.shape)
    assert classifier(model).out_features == 7
    assert classifier(model).in_features == next(reversed(feats.values())).shape[1]


def test_resnet_tap_shapes_follow_the_stages():
    model = build_model("resnet50", width=4)
    _, feats = forward_with_taps(model, torch.randn(2, 3, 32, 32))
    assert feats["stem"].shape == (2, 4, 32, 32)
    assert feats["layer1.0"].shape == (2, 16, 32, 32)  # bottleneck: 4 x width
    assert feats["layer2.0"].shape == (2, 32, 16, 16)
    assert feats["layer4.2"].shape == (2, 128, 4, 4)


def test_swin_and_vit_taps_have_channels_at_dim_1():
    _, feats = forward_with_taps(build_model("swin_t", embed_dim=6), torch.randn(2, 3, 32, 32))
    assert feats["stage1.block0"].shape == (2, 6, 16, 16)
    assert feats["stage4.block1"].shape == (2, 48, 2, 2)
    _, feats = forward_with_taps(build_model("vit_small", embed_dim=12), torch.randn(2, 3, 32, 32))
    assert feats["block0"].shape == (2, 12, 64)  # 8 x 8 patches, no class token


def test_the_vit_head_reads_the_mean_of_its_last_taps_tokens():
    """What the probe and the pooled view measure at the last tap is what the classifier reads (before its norm)."""
    model = build_model("vit_small", embed_dim=12).eval()
    read = {}
    model.net.fc_norm.register_forward_hook(lambda module, args, out: read.setdefault("head input", args[0]))
    _, feats = forward_with_taps(model, torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(read["head input"], feats["block11"].mean(dim=2))


def test_grey_28x28_inputs():
    for name in ("mlp", "vgg11", "resnet18"):
        model = build_model(name, in_shape=(1, 28, 28), **SMOKE.model_size(name))
        logits, _ = forward_with_taps(model, torch.randn(2, 1, 28, 28))
        assert logits.shape == (2, 10)


def test_paper_sizes_are_the_defaults():
    assert model_overrides("resnet18")["width"] == 64
    assert model_overrides("swin_b")["embed_dim"] == 96
    assert model_overrides("mlp") == {"width": 4096, "depth": 6, "activation": "relu"}
    fc = classifier(build_model("resnet18"))
    assert fc.in_features == 512


@pytest.mark.parametrize("name,overrides,message", [
    ("resnet19", {}, "unknown model 'resnet19'; valid: resnet18"),
    ("resnet18", {"embed_dim": 8}, "resnet18 takes no \\['embed_dim'\\]; valid overrides"),
    ("resnet18", {"width": 0}, "width must be a positive integer"),
    ("vgg16", {"width": 2.5}, "width must be a positive integer"),
    ("swin_t", {"embed_dim": 10}, "embed_dim must be a positive multiple of 3"),
    ("vit_base", {"embed_dim": 30}, "embed_dim must be a positive multiple of 12"),
    ("mlp", {"activation": "gelu"}, "unknown activation 'gelu'; valid: relu, tanh, leaky_relu"),
])
def test_bad_names_and_sizes_give_clear_errors(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, **overrides)


def test_bad_num_classes_and_model_type():
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        build_model("resnet18", num_classes=1)
    with pytest.raises(TypeError, match="expected a model from ncutils.build_model"):
        layer_taps(torch.nn.Linear(2, 2))
