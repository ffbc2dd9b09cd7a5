"""The smoke build executes every chapter end to end and renders the book, which works in a browser."""
import os
import re

import nbformat
import pytest

import ncutils.book as book_module
from ncutils.book import BOOK, ChapterFailed, build, chapters, execute
from ncutils.labs import lab_names
from ncutils.store import Store
from ncutils.studies import study_configs
from ncutils.sweep import run_local
from ncutils.paths import PACKAGE_PARENT as REPO_ROOT
from test_html import ARTIFACTS, chromium, save_screenshot, site_problems
from test_publish import LOADS

# Jupyter Book 1's sphinx-thebe adds its inline configuration script twice under Sphinx 7 (inline
# scripts are not deduplicated): the second copy's `const` raises, the first has set everything.
KNOWN_SCRIPT_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


@pytest.fixture(scope="session")
def smoke_book(cifar_root, tmp_path_factory):
    """The HTML of the smoke build, built in a temporary copy of the book (once per session: it executes
    every chapter), so book/_build keeps the book ``make book`` built."""
    tmp = tmp_path_factory.mktemp("smoke-book")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NCUTILS_RESULTS", str(tmp / "results"))  # smoke runs stay out of data/results
        mp.setenv("NCUTILS_CACHE", str(tmp / "cache"))
        mp.delenv("REPO_URL", raising=False)  # the default book: no launch buttons (tests/test_publish.py has them)
        # every run of the book computed first by a sweep of two one-thread workers (the machine's two
        # cores), then the chapters executed (compute=True: anything the sweep missed is computed there)
        report = run_local(study_configs("all_runs", "smoke"), store=Store(), workers=2, progress=False)
        assert not report.failed, report
        before = _snapshot(BOOK)
        index = build(scale="smoke", compute=True, into=tmp / "book")
    assert index.exists()
    assert _snapshot(BOOK) == before, "the smoke build touched book/_build or book/_executed"
    return index.parent


def _snapshot(book):
    """(path, size, mtime) of every file of the book's own build outputs."""
    return sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for d in ("_build", "_executed")
                  for f in (book / d).rglob("*") if f.is_file())


def test_smoke_build_renders_every_chapter_with_its_figures(smoke_book):
    for name in chapters():
        page = (smoke_book / "_executed" / f"{name}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        assert images, f"chapter {name} shows no figure"
        for src in images:
            assert (smoke_book / "_executed" / src).resolve().stat().st_size > 1000, (name, src)


def test_no_executed_chapter_shows_progress_bars(smoke_book):
    """The smoke build computes runs inside the chapters (compute=True): no tqdm bar may reach a page."""
    for name in chapters():
        notebook = nbformat.read(smoke_book / "_sources" / "_executed" / f"{name}.ipynb", as_version=4)
        text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                       for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
        assert not re.search(r"\d+%\|[^|]*\|", text), f"chapter {name} shows a progress bar"


def test_no_page_loads_anything_from_the_network_or_has_launch_buttons(smoke_book):
    """Without the repository URL the book is offline: every script, stylesheet and image is in the build
    (MathJax included), and no page has a launch button."""
    for page in smoke_book.rglob("*.html"):
        text = page.read_text()
        assert not LOADS.findall(text), (page, LOADS.findall(text))
        assert "launch-buttons" not in text and "mybinder.org/v2" not in text, page


def test_download_buttons_give_each_chapter_notebook_and_the_landing_page_source(smoke_book):
    for name in chapters():
        page = (smoke_book / "_executed" / f"{name}.html").read_text()
        assert f'href="../_sources/_executed/{name}.ipynb"' in page, f"chapter {name} has no .ipynb download"
        notebook = nbformat.read(smoke_book / "_sources" / "_executed" / f"{name}.ipynb", as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in notebook.cells), name
    assert 'href="_sources/intro.md"' in (smoke_book / "intro.html").read_text()
    assert (smoke_book / "_sources" / "intro.md").stat().st_size > 1000


def test_every_page_works_in_a_browser(smoke_book):
    """Every page loads, every image shows (figures > 1 kB), no internal link or #anchor is broken;
    screenshots of the landing page, of the first chapter (the primer) and of the first lab go to test-artifacts/."""
    with chromium() as browser:
        problems = [p for p in site_problems(browser, smoke_book)
                    if not any(known in p for known in KNOWN_SCRIPT_ERRORS)]
        first = chapters()[0]  # the primer
        for page, png in [("intro.html", "book-landing.png"), (f"_executed/{first}.html", f"book-{first}.png"),
                          (f"_labs/{lab_names()[0]}.html", f"book-{lab_names()[0]}.png")]:
            save_screenshot(browser, smoke_book / page, ARTIFACTS / png)
    assert not problems, "\n".join(problems)


HEADER = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
          "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
          "```{code-cell} python\n:tags: [parameters]\nscale = 'cpu'\ncompute = False\n```\n\n")


def test_a_failing_cell_names_the_notebook_and_the_cell(tmp_path):
    (tmp_path / "broken.md").write_text(
        HEADER + "```{code-cell} python\nx = 1\n```\n\n```{code-cell} python\nraise RuntimeError('boom')\n```\n")
    with pytest.raises(ChapterFailed, match=r"notebook broken.md failed in cell \d+: RuntimeError: boom"):
        execute("broken", "smoke", False, book=tmp_path, notebooks=tmp_path)


def test_a_failing_chapter_stops_a_build_of_chapters_executed_side_by_side(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: _executed/fine\n"
                                       "- file: _executed/broken\n- file: _executed/after\n")
    for name, cell in (("fine", "x = 1"), ("broken", "raise RuntimeError('boom')"), ("after", "y = 2")):
        (tmp_path / f"{name}.md").write_text(HEADER + f"```{{code-cell}} python\n{cell}\n```\n")
    monkeypatch.setattr(book_module, "NOTEBOOKS", tmp_path)
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        build(scale="smoke", book=tmp_path, workers=0)
    with pytest.raises(ChapterFailed, match=r"notebook broken.md failed in cell \d+: RuntimeError: boom"):
        build(scale="smoke", book=tmp_path, workers=2)
    assert (tmp_path / "_executed" / "fine.ipynb").exists()
    assert not (tmp_path / "_build").exists(), "a failed build rendered the book"


def test_chapters_executed_side_by_side_share_the_cores(tmp_path, monkeypatch):
    """Each of two kernels runs half the cores' threads: two kernels of all the threads thrash."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: _executed/one\n"
                                       "- file: _executed/two\n")
    for name in ("one", "two"):
        (tmp_path / f"{name}.md").write_text(
            HEADER + f"```{{code-cell}} python\nimport torch, pathlib\n"
            f"pathlib.Path({str(tmp_path / name)!r} + '.threads').write_text(str(torch.get_num_threads()))\n```\n")
    monkeypatch.setattr(book_module, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(book_module, "render", lambda book, repo_url: book / "index.html")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    build(scale="smoke", book=tmp_path, workers=2)
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert [(tmp_path / f"{n}.threads").read_text() for n in ("one", "two")] == [str(share)] * 2
    assert "OMP_NUM_THREADS" not in os.environ


def test_chapters_import_the_package_of_the_book_they_belong_to(tmp_path):
    """Another checkout's ncutils installed in the environment does not stand in for this one."""
    (tmp_path / "which.md").write_text(HEADER + "```{code-cell} python\nimport ncutils\nprint(ncutils.__file__)\n```\n")
    notebook = nbformat.read(execute("which", "smoke", False, book=tmp_path, notebooks=tmp_path), as_version=4)
    printed = [o["text"] for c in notebook.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert printed == [f"{REPO_ROOT / 'ncutils' / '__init__.py'}\n"]
