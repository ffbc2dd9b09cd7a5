"""The smoke build executes every chapter end to end and renders the book."""
import re

import pytest

from ncutils.book import BOOK, ChapterFailed, build, chapters, execute


def test_smoke_build_renders_every_chapter_with_its_figures(cifar_root, tmp_path, monkeypatch):
    monkeypatch.setenv("NCUTILS_RESULTS", str(tmp_path / "results"))  # smoke runs stay out of data/results
    monkeypatch.setenv("NCUTILS_CACHE", str(tmp_path / "cache"))
    index = build(scale="smoke", compute=True)
    assert index.exists()
    html = BOOK / "_build" / "html"
    for name in chapters():
        page = (html / "_executed" / f"{name}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        assert images, f"chapter {name} shows no figure"
        for src in images:
            assert (html / "_executed" / src).resolve().stat().st_size > 1000, (name, src)


def test_a_failing_cell_names_the_notebook_and_the_cell(tmp_path):
    (tmp_path / "broken.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "```{code-cell} python\n:tags: [parameters]\nscale = 'cpu'\ncompute = False\n```\n\n"
        "```{code-cell} python\nx = 1\n```\n\n```{code-cell} python\nraise RuntimeError('boom')\n```\n")
    with pytest.raises(ChapterFailed, match=r"notebook broken.md failed in cell \d+: RuntimeError: boom"):
        execute("broken", "smoke", False, book=tmp_path, notebooks=tmp_path)
