"""Build the book: papermill executes every chapter at a scale, then Jupyter Book renders it.

    python -m ncutils.book --scale cpu            # from stored results (default; no training)
    python -m ncutils.book --scale smoke --compute   # every run computed from nothing (the tests do this)

Chapters are the ``_executed/<name>`` entries of ``book/_toc.yml``; each is ``notebooks/<name>.md``
(jupytext) executed with parameters ``scale`` and ``compute`` into ``book/_executed/<name>.ipynb``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import papermill

from .chapter.pages import BOOK, EXECUTED, NOTEBOOKS, chapters
from .paths import PACKAGE_PARENT
from .scales import SCALES

__all__ = ["BOOK", "NOTEBOOKS", "ChapterFailed", "build", "chapters", "execute"]


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message names the notebook and the cell."""


@contextlib.contextmanager
def _this_package_first():
    """The kernels import this repository's ncutils (not another checkout's installed in the environment):
    its root goes first on their PYTHONPATH."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT)] + ([before] if before else []))
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def execute(name: str, scale: str, compute: bool, book: Path = BOOK, notebooks: Path = NOTEBOOKS,
            parameters: dict | None = None) -> Path:
    """Execute ``notebooks/<name>.md`` with papermill into ``book/_executed/<name>.ipynb`` (``parameters``:
    the chapter's others, e.g. ``{"models": ["resnet18"]}``)."""
    source = notebooks / f"{name}.md"
    if not source.exists():
        raise FileNotFoundError(f"_toc.yml lists {EXECUTED}/{name} but {source} does not exist")
    out = book / EXECUTED / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    unexecuted = out.with_suffix(".source.ipynb")
    jupytext.write(jupytext.read(source), unexecuted)
    try:
        with _this_package_first():
            papermill.execute_notebook(str(unexecuted), str(out), parameters={"scale": scale, "compute": compute, **(parameters or {})},
                                       kernel_name="python3", cwd=str(notebooks), progress_bar=False)
    except papermill.PapermillExecutionError as e:
        raise ChapterFailed(f"notebook {source.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}") from None
    finally:
        unexecuted.unlink(missing_ok=True)
    _hide_injected_parameters(out)
    return out


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the page shows the defaults cell and
    says which scale it was built at, not a duplicate of the parameters."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def build(scale: str = "cpu", compute: bool = False, book: Path = BOOK, into: Path | None = None) -> Path:
    """Execute every chapter, render the book, return the path of its index.html. ``into``: build a copy of
    the book's sources there (executed chapters and HTML included), leaving ``book``'s own build untouched."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    if into is not None:
        shutil.copytree(book, into, ignore=shutil.ignore_patterns("_build", EXECUTED), dirs_exist_ok=True)
        book = Path(into)
    for name in chapters(book):
        print(f"executing {name} (scale {scale}{', computing missing runs' if compute else ''})", flush=True)
        execute(name, scale, compute, book)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"  # the CLI installed beside this Python
    subprocess.run([str(jupyter_book), "build", str(book), "--quiet"], check=True)
    return book / "_build" / "html" / "index.html"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m ncutils.book", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="cpu", choices=list(SCALES))
    p.add_argument("--compute", action="store_true", help="compute missing runs instead of failing")
    a = p.parse_args(argv)
    try:
        index = build(a.scale, a.compute)
    except (ChapterFailed, FileNotFoundError) as e:
        sys.exit(f"book build failed: {e}")
    print(f"book: {index}")


if __name__ == "__main__":
    main()
