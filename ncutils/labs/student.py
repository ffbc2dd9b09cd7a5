"""Student versions of the labs: every cell tagged ``solution`` replaced by a stub that raises ``NotImplementedError``.

Read with jupytext, written with nbformat: the k-th solution cell of a lab (the answer to exercise k) keeps only
its leading comment lines (what to define) and becomes::

    # your code here
    raise NotImplementedError("exercise k")

tagged ``exercise`` instead of ``solution``; every other cell (text, set-up, self-checks, figures) is kept as
it is, outputs cleared. The students' notebooks are build outputs (git-ignored), made by one command::

    python -m ncutils.labs student [OUT_DIR]     # default notebooks/labs/student/
"""
from __future__ import annotations

import copy
from pathlib import Path

import jupytext
import nbformat

SOLUTION, SELF_CHECK, EXERCISE = "solution", "self-check", "exercise"
HIDDEN = ("hide-input", "hide-cell", "remove-input", "remove-cell")  # a student's stub is shown
STUB = '# your code here\nraise NotImplementedError("{exercise}")'


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def solutions(notebook) -> list:
    """The notebook's solution cells, in order (the k-th answers exercise k)."""
    return [c for c in notebook.cells if c.cell_type == "code" and SOLUTION in tags(c)]


def exercise_name(number: int) -> str:
    return f"exercise {number}"


def stub(source: str, number: int) -> str:
    """The stub of exercise ``number``: the solution's leading comment lines, then :data:`STUB`."""
    lines = source.splitlines()
    leading = []
    for line in lines:
        if not line.strip().startswith("#"):
            break
        leading.append(line)
    return "\n".join(leading + [STUB.format(exercise=exercise_name(number))])


def student_version(notebook) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every solution cell replaced by its stub and every output cleared;
    ValueError when it has no solution cell."""
    if not solutions(notebook):
        raise ValueError("the notebook has no cell tagged 'solution'")
    student = copy.deepcopy(notebook)
    student.metadata.pop("jupytext", None)  # a plain notebook, not paired with the lab's source
    number = 0
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if SOLUTION in tags(cell):
            number += 1
            cell.source = stub(cell.source, number)
            cell.metadata["tags"] = [EXERCISE] + [t for t in tags(cell) if t not in (SOLUTION, *HIDDEN)]
    return student


def write_student_versions(out_dir: Path, sources: list[Path]) -> list[Path]:
    """The student version of every lab ``sources`` (jupytext files) as ``out_dir/<name>.ipynb``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        notebook = jupytext.read(source)
        path = out_dir / f"{Path(source).stem}.ipynb"
        nbformat.write(student_version(notebook), path)
        written.append(path)
    return written
