"""Automatic layer taps of torchvision and timm models: the blocks the architectures define, in forward
order, with channels at dim 1; and ``ncutils.measure`` on a model that is not one of ours."""
import pytest
import timm
import torch
import torchvision
from torchvision.models import SwinTransformer, VisionTransformer

import ncutils
from ncutils.models import forward_with_taps
from ncutils.taps import tapped

X = torch.randn(2, 3, 32, 32)


def tv(name, **kwargs):
    return torchvision.models.get_model(name, num_classes=10, **kwargs)


# (builder, tap count and the channels of the first and last tap, from each architecture's definition)
MODELS = {
    "torchvision resnet18": (lambda: tv("resnet18"), 8, 64, 512),  # 2 BasicBlocks in each of 4 stages
    "torchvision vgg11_bn": (lambda: tv("vgg11_bn"), 8, 64, 512),  # 8 conv layers, tapped after their ReLU
    "torchvision convnext_tiny": (lambda: tv("convnext_tiny"), 18, 96, 768),  # depths 3, 3, 9, 3
    "torchvision efficientnet_b0": (lambda: tv("efficientnet_b0"), 16, 16, 320),  # MBConv blocks 1+2+2+3+3+4+1
    "torchvision vit": (lambda: VisionTransformer(32, 8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32,
                                                  num_classes=10), 3, 16, 16),
    "torchvision swin": (lambda: SwinTransformer([4, 4], 12, [2, 2], [2, 4], [4, 4], num_classes=10), 4, 12, 24),
    "timm resnet18": (lambda: timm.create_model("resnet18", num_classes=10), 8, 64, 512),
    "timm vit": (lambda: timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=3,
                                           num_classes=10), 3, 192, 192),
    "timm swin": (lambda: timm.create_model("swin_tiny_patch4_window7_224", img_size=32, window_size=4,
                                            embed_dim=12, depths=(2, 2), num_heads=(2, 4), num_classes=10), 4, 12, 24),
    "timm convnext_atto": (lambda: timm.create_model("convnext_atto", num_classes=10), 12, 40, 320),  # 2, 2, 6, 2
    "timm efficientnet_b0": (lambda: timm.create_model("efficientnet_b0", num_classes=10), 16, 16, 320),
}


@pytest.mark.parametrize("name", MODELS)
def test_automatic_taps_are_the_blocks_with_channels_at_dim_1(name):
    build, count, first, last = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    taps = ncutils.taps_of(model)
    assert len(taps) == count
    order = [path for path, _ in model.named_modules()]
    assert sorted(taps.values(), key=order.index) == list(taps.values())  # forward (definition) order
    wrapped = tapped(model, X)
    logits, features = forward_with_taps(wrapped, X)
    assert logits.shape == (2, 10) and list(features) == list(taps)
    assert features[next(iter(taps))].shape[1] == first and features[list(taps)[-1]].shape[1] == last
    explicit = tapped(model, X, taps=list(taps.values()), layout=wrapped.layout, classifier=wrapped.classifier_path)
    for tap, value in forward_with_taps(explicit, X)[1].items():
        assert torch.equal(value, features[tap])


def test_bad_taps_say_what_is_valid():
    model = tv("resnet18")
    with pytest.raises(ValueError, match=r"has no submodules \['layer9'\]"):
        tapped(model, X, taps=["layer9"])
    with pytest.raises(ValueError, match="found no blocks or activation layers in Linear"):
        ncutils.taps_of(torch.nn.Linear(3, 2))


def test_measure_any_torchvision_model_on_a_dataset(cifar_root):
    torch.manual_seed(0)
    table = ncutils.measure(tv("resnet18"), "cifar10", n_per_class=10, probe=True, features=("pooled",),
                            verbose=False)
    cdnv = table[table.measure == "cdnv_sum"]
    assert list(cdnv.layer) == [*ncutils.taps_of(tv("resnet18")), "penultimate"]
    assert (cdnv.value > 0).all() and set(cdnv.num_samples) == {100}
    probes = table[table.measure == "probe_train_acc"]
    assert len(probes) == 8 and probes.value.between(0, 1).all()
    assert set(table[table.measure == "probe_test_acc"].num_samples) == {100}  # 10 per class of the test split
    with pytest.raises(ValueError, match="probe=True needs test data"):
        ncutils.measure(tv("resnet18"), [(X, torch.tensor([0, 1]))], probe=True, verbose=False)
