"""Chapters are thin and check their parameters: ncutils.chapter (open_chapter, check_parameters) and the
notebooks that call it."""
import ast
import os
from concurrent.futures import ThreadPoolExecutor

import jupytext
import nbformat
import pytest

from ncutils import plots
from ncutils.book import ChapterFailed, chapters, execute
from ncutils.chapter import ParameterError, check_parameters, open_chapter
from ncutils.chapter.pages import NOTEBOOKS, targets, title
from ncutils.studies import RESNETS

MAX_CODE_LINES = 30
NOISE_AND_SHIFT = dict(data_root=None, seed=0, corruptions=["gaussian_noise"], paper_levels=[0, 1],
                       cifar10n_kinds=["aggre"], random_rates=[0.2], domain="PACS:photo", probe_n_per_class=20)


def code_cells(name: str) -> tuple[list[str], list[str]]:
    """(the parameters cell, the other code cells) of chapter ``name``, as source text."""
    notebook = jupytext.read(NOTEBOOKS / f"{name}.md")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    parameters = [c.source for c in code if "parameters" in c.metadata.get("tags", [])]
    return parameters, [c.source for c in code if "parameters" not in c.metadata.get("tags", [])]


def lines_of_code(source: str) -> int:
    """Lines that are neither blank nor comments (cell options such as ``:tags:`` are not in the source)."""
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


# --- the check ----------------------------------------------------------------------------------------

def test_valid_parameters_pass():
    assert check_parameters("clean", scale="cpu", compute=False) == {"scale": "cpu", "compute": False}
    check_parameters("primer", scale="smoke", compute=True, num_classes=10, dim=64, per_class=100, steps=9, seed=0)
    check_parameters("noise_and_shift", scale="paper", compute=False, **NOISE_AND_SHIFT)


@pytest.mark.parametrize("value", ["false", "False", "0", 0, 1, None])
def test_compute_must_be_a_bool(value):
    with pytest.raises(ParameterError) as e:
        check_parameters("clean", scale="cpu", compute=value)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"parameter compute = {value!r}") and "True or False" in message


@pytest.mark.parametrize("value", ["gpu", "CPU", "", None, 1])
def test_scale_must_be_a_known_one(value):
    with pytest.raises(ParameterError, match=r"^parameter scale = .*: expected one of smoke, cpu, paper$"):
        check_parameters("clean", scale=value, compute=False)


@pytest.mark.parametrize("name,value,expected", [
    ("corruptions", ["gaussian_noise", "fog_noise"], "unknown: 'fog_noise'"),
    ("corruptions", "gaussian_noise", "a non-empty list"),
    ("cifar10n_kinds", ["worst_labels"], "unknown: 'worst_labels'"),
    ("paper_levels", [0, 4], "unknown: 4"),
    ("random_rates", [0.2, 1.5], "rates in [0, 1]"),
    ("domain", "PACS:moon", "a domain shift spec"),
    ("seed", -1, "an integer >= 0"),
    ("seed", True, "an integer >= 0"),
    ("probe_n_per_class", "20", "an integer >= 1"),
    ("data_root", 3, "None or a directory path"),
])
def test_unknown_names_and_wrong_values_fail_in_one_line(name, value, expected):
    with pytest.raises(ParameterError) as e:
        check_parameters("noise_and_shift", scale="cpu", compute=False, **{**NOISE_AND_SHIFT, name: value})
    assert "\n" not in str(e.value) and str(e.value).startswith(f"parameter {name} = ") and expected in str(e.value)


@pytest.mark.parametrize("chapter,name,value,expected", [
    ("clean", "models", ["resnet18", "resnet1000"], "unknown: 'resnet1000'"),
    ("clean", "models", "resnet18", "a non-empty list of models"),
    ("clean", "seeds", [0, -1], "integers >= 0"),
    ("clean", "epochs", 2.5, "an integer >= 0"),
    ("label_noise", "noises", ["random:1.4"], "label noises only"),
    ("corruption", "corruptions", ["fog:level2"], "Gaussian or speckle noise only"),
    ("corruption", "corruptions", ["contrast:2"], "show gaussian_noise and speckle_noise only"),
    ("corruption", "models", ["vgg13"], "ResNets and Swin Transformers"),
])
def test_run_settings_are_checked(chapter, name, value, expected):
    with pytest.raises(ParameterError) as e:
        check_parameters(chapter, scale="cpu", compute=False, **{name: value})
    assert "\n" not in str(e.value) and expected in str(e.value)
    check_parameters(chapter, scale="cpu", compute=False, **{name: None})  # None: the study's own


def test_custom_settings_replace_the_studys():
    from ncutils.chapter.custom import customised
    from ncutils.studies import study_configs

    configs = customised(study_configs("label_noise", "cpu"), "cpu", models=["resnet18", "swin_t"],
                         noises=["random:0.3"], epochs=20, seeds=[5])
    assert {(c.model, c.noise, c.epochs, c.seed) for c in configs} == {
        (m, n, 20, 5) for m in ("resnet18", "swin_t") for n in ("clean", "random:0.3")}
    swin = next(c for c in configs if c.model == "swin_t")
    assert swin.recipe == "adamw" and dict(swin.size) == {"embed_dim": 24}  # the model's own recipe and size
    parker = customised(study_configs("small_nets", "cpu"), "cpu", models=["vgg13"])
    assert {c.recipe for c in parker} == {"parker"} and {c.epochs for c in parker} == {0, 600}
    chapter = open_chapter("clean", scale="smoke", compute=False, models=["vgg13", "resnet34"])
    assert chapter.models == ["vgg13", "resnet34"] and chapter.of(RESNETS) == ["resnet34"]


def test_runs_under_label_noise_train_the_scales_longer_epochs():
    """At the cpu scale a run under label noise trains twice its model's epochs (Scale.noisy_longer), in the
    studies and under the noises a reader gives; a corruption does not change the epochs."""
    from ncutils.chapter.custom import customised
    from ncutils.config import RunConfig
    from ncutils.studies import study_configs

    assert RunConfig.at_scale("resnet18", "cifar10", "cpu", noise="random:0.4").epochs == 400
    assert RunConfig.at_scale("vgg13", "cifar10", "cpu", noise="cifar10n:worse").epochs == 1200
    assert RunConfig.at_scale("resnet18", "cifar10", "cpu", corruption="gaussian_noise:3").epochs == 200
    assert RunConfig.at_scale("resnet18", "cifar10", "smoke", noise="random:0.4").epochs == 2
    assert {(c.noise, c.epochs) for c in study_configs("label_noise", "cpu") if c.model == "resnet18"} == {
        ("clean", 200), *((n, 400) for n in ("random:0.2", "random:0.4", "random:0.6", "random:0.8",
                                             "cifar10n:aggre", "cifar10n:random1", "cifar10n:worse"))}
    given = customised(study_configs("label_noise", "cpu"), "cpu", models=["swin_t"], noises=["random:0.3"])
    assert {(c.noise, c.epochs) for c in given} == {("clean", 200), ("random:0.3", 400)}


def test_unknown_parameters_and_chapters_are_refused():
    with pytest.raises(ParameterError, match="chapter clean has no parameter 'scael'"):
        check_parameters("clean", scale="cpu", compute=False, scael="cpu")
    with pytest.raises(ParameterError, match="chapter clean needs the parameters compute"):
        check_parameters("clean", scale="cpu")
    with pytest.raises(ParameterError, match="unknown chapter 'cleann'"):
        open_chapter("cleann", scale="cpu", compute=False)


# --- the notebooks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", chapters())
def test_each_chapter_is_thin(name):
    """At most MAX_CODE_LINES lines of code outside the parameters cell, and no function or class of its own
    (the package holds them)."""
    parameters, cells = code_cells(name)
    assert len(parameters) == 1, f"{name} has {len(parameters)} parameters cells"
    lines = sum(lines_of_code(c) for c in cells)
    assert lines <= MAX_CODE_LINES, f"{name} has {lines} lines of code outside its parameters cell"
    defined = [n.name for c in cells for n in ast.walk(ast.parse(c))
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert not defined, f"{name} defines {defined}: move them to the package"


@pytest.mark.parametrize("name", chapters())
def test_each_chapter_checks_its_parameters_first(name):
    """The first code cell after the parameters calls open_chapter (which checks every parameter of the
    parameters cell) before any other statement but imports."""
    parameters, cells = code_cells(name)
    statements = [s for s in ast.parse(cells[0]).body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    call = statements[0].value if isinstance(statements[0], (ast.Assign, ast.Expr)) else None
    assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "open_chapter", (
        f"{name}: the first statement after the imports is not open_chapter(...)")
    assert call.args and call.args[0].value == name
    passed = {k.arg for k in call.keywords}
    declared = {t.id for s in ast.parse(parameters[0]).body if isinstance(s, ast.Assign) for t in s.targets}
    assert passed == declared, f"{name}: open_chapter checks {sorted(passed)}, the parameters cell has {sorted(declared)}"


def test_every_chapter_refuses_compute_false_before_loading_anything(tmp_path, monkeypatch):
    """``papermill -p compute false`` passes a string: each chapter stops in its first cell after the
    parameters (cell 3: parameters, injected parameters, then it) with the one-line message; nothing is
    trained or stored."""
    results = tmp_path / "results"
    monkeypatch.setenv("NCUTILS_RESULTS", str(results))
    monkeypatch.setenv("NCUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def failure(name: str) -> str:
        with pytest.raises(ChapterFailed) as e:
            execute(name, "cpu", "false", book=tmp_path)
        return str(e.value)

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:  # each a kernel of its own
        messages = dict(zip(chapters(), pool.map(failure, chapters())))
    for name, message in messages.items():
        assert message.startswith(f"notebook {name}.md failed in cell 3: ParameterError: parameter compute = "
                                  "'false' (str): expected True or False"), message
        assert "\n" not in message
    assert not results.exists() or not any(results.rglob("*")), "a chapter stored results"


def test_every_figure_target_is_before_a_heading():
    for name in chapters():
        for target, heading in targets(name).items():
            assert heading.strip() and target == target.lower(), (name, target)
    assert title("clean").startswith("Clean data")


# --- a chapter with nothing stored ---------------------------------------------------------------------

def test_a_chapter_with_no_stored_runs_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NCUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("NCUTILS_CACHE", str(tmp_path / "cache"))
    chapter = open_chapter("clean", scale="smoke", compute=False)
    assert "python -m ncutils sweep clean --scale smoke" in chapter.status_message()
    assert chapter.accuracy_table() is None
    assert set(chapter.claims.verdict) == {"not computed"}
    assert "not computed" in chapter.claims_html().data
    plots.family_figure(chapter.metrics, RESNETS, [plots.CDNV, plots.NC2], "ResNets", chapter.note)
    assert "no stored runs of resnet18" in capsys.readouterr().out
    page = open_chapter("claims", scale="smoke", compute=False)
    assert page.verdict_counts().loc["all chapters", "not computed"] == len(page.claims) > 0
    html = page.claims_html().data
    assert '<a href="clean.html">' in html and "Figure 1 and 5: ResNets, layer by layer" in html


# --- a chapter with other settings than the book's ------------------------------------------------------

def test_the_label_noise_chapter_runs_with_another_model_list_and_noise(tmp_path, monkeypatch):
    """Executed like ``papermill -y "models: [resnet18]" -y "noises: ['random:0.3']"``: it trains exactly
    those runs, draws them and judges its claims from them."""
    monkeypatch.setenv("NCUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("NCUTILS_CACHE", str(tmp_path / "cache"))
    out = execute("label_noise", "smoke", True, book=tmp_path,
                  parameters={"models": ["resnet18"], "noises": ["random:0.3"], "seeds": [0]})
    notebook = nbformat.read(out, as_version=4)

    def shown(cell_source: str) -> str:
        """The outputs of the code cell whose source holds ``cell_source``."""
        return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/html", ""))
                         for c in notebook.cells if c.cell_type == "code" and cell_source in c.source
                         for o in c.outputs)
    assert "all 2 runs of this chapter are stored" in shown("open_chapter(")
    table = shown("chapter.accuracy_table()")  # the runs, one row each
    assert "random:0.3" in table and "swin_t" not in table and "random:0.4" not in table
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "no figure of the runs"
    stored = sorted(p.parent.name.split("-")[0] for p in (tmp_path / "results").rglob("config.json"))
    assert stored == ["resnet18", "resnet18"]
