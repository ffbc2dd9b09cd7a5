"""The primer's simulation in any dim >= K - 1 (3 classes in a plane), its one-line refusal of fewer dimensions,
its figures' axes, and the glossary: every ``ncutils.*`` name it cites exists, with the values it gives."""
import importlib
import re

import matplotlib
import nbformat
import numpy as np
import pytest

from ncutils import plots
from ncutils.book import ChapterFailed, execute
from ncutils.chapter import ParameterError, check_parameters
from ncutils.chapter.pages import NOTEBOOKS
from ncutils.chapter.primer import Simulation, checks, collapse_animation, simplex_etf

matplotlib.use("Agg")
PRIMER = dict(per_class=20, steps=5, seed=0)


def outputs(path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def images(path) -> int:
    notebook = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


# --- the simulation --------------------------------------------------------------------------------------

@pytest.mark.parametrize("k,dim", [(2, 1), (3, 2), (4, 3), (10, 9), (10, 64)])
def test_the_simplex_etf_fits_in_k_minus_1_dimensions(k, dim):
    etf = simplex_etf(k, dim, np.random.default_rng(0))
    assert etf.shape == (k, dim)
    gram = etf @ etf.T
    np.testing.assert_allclose(gram, k / (k - 1) * (np.eye(k) - 1 / k), atol=1e-12)  # unit norms, cos -1/(K-1)
    np.testing.assert_allclose(etf.sum(0), 0, atol=1e-12)


@pytest.mark.parametrize("k,dim", [(2, 1), (3, 2), (4, 3), (5, 4), (10, 9), (10, 64)])
def test_every_measure_falls_to_the_etf_in_any_dim_from_k_minus_1(k, dim):
    for seed in range(3):
        simulation = Simulation(k, dim, 30, seed)
        table = simulation.collapse(7)
        lines = checks(table, simulation.label_noise())
        assert not [line for line in lines if line.startswith("DOES NOT HOLD")], (k, dim, seed, lines)
        assert list(table.columns) == ["collapse t", "CDNV (sum)", "NC1", "NC2", "equal norms", "max angle", "NC3",
                                       "NCC accuracy", "NC4"]
        picture = simulation.snapshots([0, 1])
        assert set(picture.kind) == {"sample", "class mean", "ETF vertex"}
        assert np.isfinite(picture[["x", "y"]].to_numpy()).all()


def test_three_classes_in_the_plane_end_on_the_etf_triangle():
    simulation = Simulation(3, 2, 50, 0)
    end = simulation.snapshots([1])
    means, vertices = (end[end.kind == kind].sort_values("class")[["x", "y"]].to_numpy()
                       for kind in ("class mean", "ETF vertex"))
    np.testing.assert_allclose(means, vertices, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 1, atol=1e-12)  # the plane is the ETF's own


def test_unrelated_random_starts_make_nc2_rise_first_for_some_seeds():
    """What the primer says of ``start="random"``: NC2 often rises at the first step (never with the stretched
    start)."""
    rises = [Simulation(3, 2, 50, seed, start="random").collapse(9).NC2.diff().iloc[1] > 0 for seed in range(10)]
    assert 0 < sum(rises) < 10
    assert not any(Simulation(3, 2, 50, seed).collapse(9).NC2.diff().iloc[1] > 0 for seed in range(10))


@pytest.mark.parametrize("k,dim", [(3, 1), (4, 2), (10, 8)])
def test_fewer_than_k_minus_1_dimensions_are_refused_in_one_line(k, dim):
    with pytest.raises(ValueError) as e:
        Simulation(k, dim, 10, 0)
    assert "\n" not in str(e.value) and f"dim must be >= {k - 1}" in str(e.value)
    with pytest.raises(ParameterError) as e:
        check_parameters("primer", scale="smoke", compute=False, num_classes=k, dim=dim, **PRIMER)
    assert str(e.value) == (f"parameter dim = {dim} (int): expected an integer >= num_classes - 1 = {k - 1} "
                            f"(a simplex ETF of {k} classes spans {k - 1} dimensions)")
    check_parameters("primer", scale="smoke", compute=False, num_classes=k, dim=k - 1, **PRIMER)


def test_cdnv_and_nc1_are_drawn_on_log_axes(monkeypatch):
    shown = []
    monkeypatch.setattr(plots.plt, "show", lambda: shown.append(plots.plt.gcf()))
    plots.measures_figure(Simulation(3, 2, 20, 0).collapse(5), "collapse t", "test")
    axes = {ax.get_title(): ax for ax in shown[0].axes if ax.get_visible()}
    for name in ("CDNV (sum)", "NC1"):
        assert axes[name].get_yscale() == "log"
        assert "0 at collapse t = 1" in " ".join(t.get_text() for t in axes[name].texts)
    assert all(ax.get_yscale() == "linear" for name, ax in axes.items() if name not in ("CDNV (sum)", "NC1"))
    plots.plt.close("all")


def test_the_collapse_animation_has_a_frame_per_t_and_loads_nothing_from_the_network():
    html = collapse_animation(Simulation(3, 2, 20, 0), frames=6).data
    assert html.count("data:image/png;base64") == 6 and 'type="range"' in html
    assert "http://" not in html and "https://" not in html


# --- the chapters, executed -------------------------------------------------------------------------------

def test_the_primer_runs_with_three_classes_in_two_dimensions(tmp_path, monkeypatch):
    monkeypatch.setenv("NCUTILS_RESULTS", str(tmp_path / "results"))
    out = execute("primer", "smoke", True, book=tmp_path, parameters={"num_classes": 3, "dim": 2, **PRIMER})
    text = outputs(out)
    assert "holds: CDNV, NC1, NC2, equal norms, max angle and NC3 fall at every step" in text
    assert "DOES NOT HOLD" not in text and "K(K-1) = 6 pairs" in text
    assert images(out) == 2  # the collapse in the plane and every measure along it
    notebook = nbformat.read(out, as_version=4)
    players = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
               if 'type="range"' in str(o.get("data", {}).get("text/html", ""))]
    assert len(players) == 1  # the collapse with a slider over t


def test_the_primer_refuses_too_few_dimensions_in_its_first_cell(tmp_path):
    with pytest.raises(ChapterFailed) as e:
        execute("primer", "smoke", False, book=tmp_path, parameters={"num_classes": 4, "dim": 2})
    assert str(e.value) == ("notebook primer.md failed in cell 3: ParameterError: parameter dim = 2 (int): expected "
                            "an integer >= num_classes - 1 = 3 (a simplex ETF of 4 classes spans 3 dimensions)")


def test_the_glossary_executes_and_checks_its_parameters(tmp_path):
    out = execute("glossary", "smoke", False, book=tmp_path)
    assert images(out) == 1  # the simplex ETF
    with pytest.raises(ChapterFailed, match=r"^notebook glossary.md failed in cell 3: ParameterError: parameter "
                                            r"compute = 'false'"):
        execute("glossary", "cpu", "false", book=tmp_path)


# --- the glossary's references ----------------------------------------------------------------------------

GLOSSARY = (NOTEBOOKS / "glossary.md").read_text()
REFERENCES = sorted(set(re.findall(r"\bncutils(?:\.\w+)+", GLOSSARY)))


def resolve(reference: str):
    """The object ``ncutils.a.b.c`` names: the longest importable module prefix, then attributes."""
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ModuleNotFoundError(reference)


def test_the_glossary_cites_functions():
    assert len(REFERENCES) > 30
    for name in ("metrics.cdnv", "metrics.nc1", "metrics.nc2", "metrics.nc3", "metrics.nc4", "metrics.ncc_accuracy",
                 "metrics.memorization_ratio", "frames.TERMINAL", "logistic.fit_logistic", "probe.probe",
                 "verdict.jackknife"):
        assert f"ncutils.{name}" in REFERENCES


@pytest.mark.parametrize("reference", REFERENCES)
def test_every_name_the_glossary_cites_exists(reference):
    resolve(reference)


def test_every_value_the_glossary_gives_is_the_packages():
    values = re.findall(r"`(ncutils(?:\.\w+)+) = ([^`]+)`", GLOSSARY)
    assert len(values) >= 5
    for reference, value in values:
        assert resolve(reference) == type(resolve(reference))(value), reference
