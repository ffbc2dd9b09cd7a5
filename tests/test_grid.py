"""Custom grids of runs (``sweep --grid``) and the places an installed ncutils writes to."""
import pytest

from ncutils import paths
from ncutils.config import RunConfig
from ncutils.grid import grid_configs, read_grid
from ncutils.studies import study_configs


def test_a_grid_is_the_product_of_its_axes_at_its_scale():
    runs = grid_configs({"scale": "smoke", "models": ["resnet18", "swin_t"], "noise": ["clean", "random:0.4"],
                         "seeds": [0, 1, 2], "fields": {"epochs": 1}})
    assert len(runs) == 2 * 2 * 3
    assert [(c.model, c.noise, c.seed) for c in runs[:4]] == [("resnet18", "clean", 0), ("resnet18", "clean", 1),
                                                               ("resnet18", "clean", 2), ("resnet18", "random:0.4", 0)]
    assert runs[0] == RunConfig.at_scale("resnet18", "cifar10", "smoke", epochs=1)
    assert len({c.key() for c in runs}) == len(runs)


def test_a_grid_shares_runs_with_the_books_studies():
    grid = grid_configs({"scale": "cpu", "models": ["resnet18", "swin_t"], "noise": ["clean", "random:0.4"]})
    book = {c.key() for c in study_configs("label_noise", "cpu")}
    assert {c.key() for c in grid} <= book


@pytest.mark.parametrize("spec, message", [
    ({"scale": "cpu", "models": ["resnet18"], "colour": 1}, r"unknown grid keys \['colour'\]; valid: scale, models"),
    ({"models": ["resnet18"]}, "a grid needs 'scale'"),
    ({"scale": "cpu", "models": []}, "grid key 'models' must be a non-empty list"),
    ({"scale": "cpu", "models": ["resnet18"], "fields": {"seed": 1}}, r"fields \['seed'\] are axes of the grid"),
    ({"scale": "huge", "models": ["resnet18"]}, "unknown scale 'huge'"),
    ({"scale": "cpu", "models": ["resnet9"]}, "unknown model 'resnet9'"),
])
def test_bad_grids_say_what_is_valid(spec, message):
    with pytest.raises(ValueError, match=message):
        grid_configs(spec)


def test_grid_files(tmp_path):
    good = tmp_path / "grid.yaml"
    good.write_text("scale: smoke\nmodels: [mlp]\nseeds: [0, 1]\n")
    assert [c.seed for c in read_grid(good)] == [0, 1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("scale: [smoke\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        read_grid(bad)
    with pytest.raises(ValueError, match="cannot read the grid file"):
        read_grid(tmp_path / "missing.yaml")


def test_places_in_a_checkout_and_when_installed(tmp_path, monkeypatch):
    for variable in ("NCUTILS_DATA", "NCUTILS_RESULTS", "NCUTILS_CACHE", "NCUTILS_HOME"):
        monkeypatch.delenv(variable, raising=False)
    root = paths.checkout()
    assert root is not None and paths.results_root() == root / "data" / "results" and paths.cache_root() == root / "cache"
    monkeypatch.setattr(paths, "PACKAGE_PARENT", tmp_path / "site-packages")  # an installed package
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.checkout() is None
    assert paths.results_root() == tmp_path / "xdg" / "ncutils" / "results"
    assert paths.data_root() == tmp_path / "xdg" / "ncutils" / "data"
    monkeypatch.setenv("NCUTILS_CACHE", str(tmp_path / "elsewhere"))
    assert paths.cache_root() == tmp_path / "elsewhere"
