"""Domain shift on PACS (real offline data): spec strings, source/target data, limited target split."""
from pathlib import Path

import pytest
import torch

from ncutils.data import DatasetNotFoundError, data_root, load_dataset
from ncutils.domains import DomainShift, parse_domain

@pytest.fixture(scope="module")
def root() -> Path:
    root = data_root()
    assert (root / "PACS").is_dir(), f"PACS not under the data root {root}: run `make data` (or shared/data/prepare.py) first"
    return root


@pytest.fixture(scope="module")
def shift() -> DomainShift:
    return parse_domain("PACS:photo->sketch")


def test_parse_domain_forms():
    assert parse_domain("PACS:photo->sketch") == DomainShift("pacs", "photo", ("sketch",))
    assert parse_domain("pacs:Photo -> Sketch, cartoon") == DomainShift("pacs", "photo", ("sketch", "cartoon"))
    assert parse_domain("PACS:photo").targets == ("art_painting", "cartoon", "sketch")
    assert parse_domain("PACS:art-painting->*").targets == ("cartoon", "photo", "sketch")
    assert parse_domain("OfficeHome:real-world->clipart") == DomainShift("office-home", "Real_World", ("Clipart",))
    assert str(parse_domain("PACS:photo->sketch,cartoon")) == "pacs:photo->sketch,cartoon"
    assert parse_domain(str(parse_domain("PACS:cartoon"))) == parse_domain("PACS:cartoon")


@pytest.mark.parametrize("spec, message", [
    ("PACS:photo->drawing", "valid: art_painting, cartoon, photo, sketch"),
    ("PACS:painting", "valid: art_painting, cartoon, photo, sketch"),
    ("DomainNet:real->sketch", "pacs, office-home"),
    ("photo->sketch", "pacs, office-home"),
    ("PACS:photo->photo", "other than the source"),
    ("office-home:Art->Photo", "valid: Art, Clipart, Product, Real_World"),
])
def test_parse_domain_errors_list_the_valid_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_domain(spec)


def test_source_and_target_data_share_the_label_space(root, shift):
    source = shift.source_data(root=root)
    target = shift.target_data("sketch", "test", root=root)
    assert source.name == "pacs:photo" and source.split == "train"
    assert target.name == "pacs:sketch" and target.classes == source.classes and len(source.classes) == 7
    # the model's input pipeline is the source's: target images are normalised with the source statistics
    assert target.mean == source.mean and target.std == source.std
    assert target.mean != load_dataset("pacs:sketch", "test", root=root).mean
    with pytest.raises(ValueError, match="targets: sketch"):
        shift.target_data("cartoon", root=root)


def test_limited_target_split_is_class_balanced_seeded_and_disjoint(root, shift):
    limited = shift.limited_target("sketch", n_per_class=20, seed=0)
    assert torch.equal(torch.bincount(limited.probe_train.labels, minlength=7), torch.full((7,), 20))
    full_test = load_dataset("pacs:sketch", "test", root=root)
    assert torch.equal(limited.probe_test.indices, full_test.indices)  # the whole held-out test split
    assert not set(limited.probe_train.indices.tolist()) & set(limited.probe_test.indices.tolist())
    train = load_dataset("pacs:sketch", "train", root=root)
    assert set(limited.probe_train.indices.tolist()) <= set(train.indices.tolist())
    again = shift.limited_target("sketch", n_per_class=20, seed=0)
    other = shift.limited_target("sketch", n_per_class=20, seed=1)
    assert torch.equal(again.probe_train.indices, limited.probe_train.indices)
    assert not torch.equal(other.probe_train.indices, limited.probe_train.indices)
    assert torch.equal(other.probe_test.indices, limited.probe_test.indices)
    assert limited.probe_train.mean == shift.source_data(root=root).mean


def test_limited_target_budget_beyond_the_smallest_class_is_refused(shift):
    # sketch's smallest class (house) has 80 images, 64 of them in the training split
    with pytest.raises(ValueError, match=r"1\.\.64"):
        shift.limited_target("sketch", n_per_class=65, seed=0)


def test_office_home_uses_the_same_code(tmp_path):
    from PIL import Image

    for d, domain in enumerate(("Art", "Clipart")):
        for k, name in enumerate(("Alarm_Clock", "Bike")):
            folder = tmp_path / "OfficeHome" / domain / name
            folder.mkdir(parents=True)
            for i in range(10):
                Image.new("RGB", (8, 8), (40 * d, 100 * k, i)).save(folder / f"{i:05d}.png")
    shift = parse_domain("office-home:art->clipart")
    source = shift.source_data(root=tmp_path)
    assert source.classes == ("Alarm_Clock", "Bike") and len(source) == 16 and (source.images[:, 0] == 0).all()
    limited = shift.limited_target("Clipart", n_per_class=3, seed=0, root=tmp_path)
    assert torch.equal(torch.bincount(limited.probe_train.labels), torch.tensor([3, 3]))
    assert len(limited.probe_test) == 4 and (limited.probe_test.images[:, 0] == 40).all()
    with pytest.raises(DatasetNotFoundError, match="OfficeHome"):
        parse_domain("office-home:Product").source_data(root=tmp_path)
