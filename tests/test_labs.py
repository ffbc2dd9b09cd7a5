"""The labs (ncutils.labs): each executes at the smoke scale with every self-check correct; its student version,
made by one command, holds no solution code and runs up to its first exercise's stub; the shipped weights are
small, load with weights_only and are the runs they say; a self-check can fail."""
import hashlib
import re
import subprocess
import sys

import jupytext
import nbformat
import papermill
import pytest
import torch

from ncutils import build_model, labs
from ncutils.book import _this_package_first, execute
from ncutils.config import RunConfig
from ncutils.labs import student, weights
from ncutils.store import Store
from ncutils.train import evaluate

LABS = labs.lab_names()
SMOKE = {"scale": "smoke", "compute": False}


def source(name: str):
    return jupytext.read(labs.NOTEBOOKS / f"{name}.md")


def code_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code"]


def printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def code_lines(text: str) -> set[str]:
    """The lines of ``text`` that are code (stripped; blank lines and comments left out)."""
    return {line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")}


# --- the labs as written ---------------------------------------------------------------------------------

def test_the_book_lists_three_labs_each_with_its_notebook():
    assert len(LABS) == 3, LABS
    assert all((labs.NOTEBOOKS / f"{name}.md").is_file() for name in LABS)


@pytest.mark.parametrize("name", LABS)
def test_each_lab_has_objectives_and_exercises_each_followed_by_a_self_check(name):
    notebook = source(name)
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "Learning objectives" in text and "Prerequisites" in text
    headings = re.findall(r"^## Exercise (\d+)", text, re.M)
    solutions = student.solutions(notebook)
    assert 2 <= len(solutions) <= 4 and headings == [str(k) for k in range(1, len(solutions) + 1)], headings
    cells = code_cells(notebook)
    assert [c for c in cells if "parameters" in student.tags(c)][0].source.startswith('scale = "cpu"')
    for cell in solutions:
        after = cells[cells.index(cell) + 1]
        assert student.SELF_CHECK in student.tags(after), f"{name}: a solution is not followed by a self-check"


@pytest.mark.parametrize("name", LABS)
def test_each_lab_runs_at_the_smoke_scale_and_every_self_check_says_correct(name, tmp_path, cifar_root):
    out = execute(name, "smoke", False, book=tmp_path, notebooks=labs.NOTEBOOKS, into=labs.EXECUTED)
    notebook = nbformat.read(out, as_version=4)
    checks = [c for c in code_cells(notebook) if student.SELF_CHECK in student.tags(c)]
    assert len(checks) == len(student.solutions(notebook))
    for cell in checks:
        lines = printed(cell).splitlines()
        assert lines and all(line.startswith("correct: exercise ") for line in lines), (name, cell.source, lines)
    figures = [o for c in code_cells(notebook) for o in c.outputs if "image/png" in o.get("data", {})]
    assert figures, f"{name} draws no figure"


# --- the students' version -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    """The students' notebooks, made by the one command."""
    out = tmp_path_factory.mktemp("student")
    run = subprocess.run([sys.executable, "-m", "ncutils.labs", "student", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert sorted(p.stem for p in out.glob("*.ipynb")) == sorted(LABS)
    return out


@pytest.mark.parametrize("name", LABS)
def test_the_student_version_has_stubs_and_no_solution_code(name, student_dir):
    solutions = student.solutions(source(name))
    notebook = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
    cells = code_cells(notebook)
    assert not [c for c in cells if student.SOLUTION in student.tags(c)]
    stubs = [c for c in cells if student.EXERCISE in student.tags(c)]
    assert [re.findall(r'raise NotImplementedError\("(exercise \d+)"\)', c.source) for c in stubs] == [
        [f"exercise {k}"] for k in range(1, len(solutions) + 1)]
    leaked = code_lines("\n".join(c.source for c in solutions)) & code_lines("\n".join(c.source for c in cells))
    assert not leaked, f"{name}: solution code in the student version: {sorted(leaked)}"
    assert len(cells) == len(code_cells(source(name))), "a cell other than a solution was dropped"


@pytest.mark.parametrize("name", LABS)
def test_the_student_version_runs_up_to_the_first_exercise(name, student_dir, tmp_path, cifar_root):
    out = tmp_path / f"{name}.ipynb"
    with _this_package_first(), pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(student_dir / f"{name}.ipynb"), str(out), parameters=SMOKE,
                                   kernel_name="python3", cwd=str(labs.NOTEBOOKS), progress_bar=False)
    assert (e.value.ename, e.value.evalue) == ("NotImplementedError", "exercise 1")
    cells = code_cells(nbformat.read(out, as_version=4))
    first = next(i for i, c in enumerate(cells) if student.EXERCISE in student.tags(c))
    before = cells[:first]
    assert len(before) >= 3 and all(c.execution_count for c in before), "a cell before the first exercise did not run"
    assert not [o for c in before for o in c.outputs if o.output_type == "error"]
    assert [o.ename for o in cells[first].outputs if o.output_type == "error"] == ["NotImplementedError"]
    assert not any(c.execution_count for c in cells[first + 1:])


def test_a_notebook_without_solutions_has_no_student_version():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="no cell tagged 'solution'"):
        student.student_version(notebook)


def test_a_stub_keeps_the_task_comments_only():
    stub = student.stub("# answer: a number\n# (a float)\nanswer = 6 * 7  # 42\n# done\n", 2)
    assert stub == '# answer: a number\n# (a float)\n# your code here\nraise NotImplementedError("exercise 2")'


# --- the self-checks -------------------------------------------------------------------------------------

def test_a_self_check_says_not_yet_for_a_wrong_answer(capsys):
    import pandas as pd

    expected = pd.Series({"stem": 100.0, "layer1.0": 50.0})
    assert labs.check("exercise 1", expected.copy(), expected)
    assert capsys.readouterr().out == "correct: exercise 1\n"
    wrong = [(expected * 1.01, "at stem: got 101"), (expected[::-1], "order differs"),
             (expected.rename({"stem": "conv1"}), "missing ['stem']"), (expected.values, "expected a pandas Series"),
             (None, "expected a pandas Series")]
    for answer, reason in wrong:
        assert not labs.check("exercise 1", answer, expected)
        out = capsys.readouterr().out
        assert out.startswith("not yet: exercise 1: ") and reason in out, out
    assert not labs.check("exercise 3", "layer4.0", "layer4.1") and not labs.check("exercise 3", 2.0, 2.1)
    assert not labs.check("exercise 3", ["a"], ["a", "b"]) and not labs.check("exercise 3", True, 1.0)
    assert labs.check("exercise 3", torch.tensor(2.0), 2.0) and labs.check("exercise 3", ["a"], ["a"])


def test_the_model_self_check_can_fail(capsys):
    from torch import nn

    good = nn.Sequential(nn.Flatten(), nn.Linear(3072, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8),
                         nn.ReLU(), nn.Linear(8, 10))
    assert labs.check_model("exercise 1", good, ["2", "4", "6"])
    assert not labs.check_model("exercise 1", good, ["1", "3", "5"])
    assert not labs.check_model("exercise 1", nn.Sequential(nn.Flatten(), nn.Linear(3072, 10), nn.ReLU()), ["2"])
    assert not labs.check_model("exercise 1", nn.Sequential(nn.Flatten(), nn.Linear(10, 10)), [])
    assert not labs.check_model("exercise 1", "a model", [])
    assert capsys.readouterr().out.count("not yet: exercise 1") == 4


def test_lab_settings_are_checked_in_one_line():
    assert labs.settings("smoke", False) == labs.Settings("smoke", 10, 1)
    assert labs.settings("cpu", True, n_per_class=50, epochs=3) == labs.Settings("cpu", 50, 3)
    for kwargs, message in [({"scale": "gpu", "compute": False}, "parameter scale = 'gpu'"),
                            ({"scale": "cpu", "compute": "false"}, "parameter compute = 'false'"),
                            ({"scale": "cpu", "compute": False, "n_per_class": 1}, "parameter n_per_class = 1")]:
        with pytest.raises(labs.ParameterError) as e:
            labs.settings(**kwargs)
        assert str(e.value).startswith(message) and "\n" not in str(e.value)


# --- the shipped weights ---------------------------------------------------------------------------------

def test_the_shipped_weights_are_small_load_weights_only_and_are_the_runs_they_say():
    files = sorted(weights.WEIGHTS.glob("*.pt"))
    manifest = weights.manifest()
    assert sorted(p.name for p in files) == sorted(manifest) == sorted(f"{n}.pt" for n in weights.SHIPPED)
    assert sum(p.stat().st_size for p in files) + len(weights.MANIFEST) <= weights.MAX_BYTES
    for path in files:
        run = manifest[path.name]
        config = RunConfig.from_dict(run["config"])
        assert (run["key"], run["training_key"]) == (config.key(), config.training_key())
        assert config.training_key() == weights.shipped_config(path.stem).training_key(), "the study's run changed"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == run["sha256"]
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        build_model(config.model, 10, **dict(config.size)).load_state_dict(state)  # every key, every shape


def test_the_shipped_models_fit_the_labels_they_were_trained_with(cifar_root):
    for name in weights.SHIPPED:
        data, labels = labs.training_data(name, 10)
        accuracy = evaluate(labs.load_model(name), data, labels=labels.labels)
        assert accuracy >= 0.9, f"{name}: training accuracy {accuracy:.2f}: not the trained weights"
    assert (labels.labels != labels.clean).any(), "the noisy run's labels are the clean ones"


def test_the_weights_export_again_from_the_runs_checkpoints(tmp_path):
    """Where the runs' checkpoints are in the cache (the machine that computed them), the export gives the
    shipped files again; elsewhere (a fresh clone) it refuses, naming the missing checkpoint."""
    store = Store()
    if not all(store.checkpoint_path(weights.shipped_config(n)).exists() for n in weights.SHIPPED):
        with pytest.raises(FileNotFoundError, match="no checkpoint .*; compute the run first"):
            weights.export_weights(store, tmp_path)
        return
    exported = weights.export_weights(store, tmp_path)
    for name, run in exported.items():
        assert run == weights.manifest()[name]
        fresh, shipped = (torch.load(d / name, weights_only=True) for d in (tmp_path, weights.WEIGHTS))
        assert fresh.keys() == shipped.keys() and all(torch.equal(fresh[k], shipped[k]) for k in fresh)
