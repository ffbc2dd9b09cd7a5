"""Publishing the book: one setting, the repository's URL, turns on the launch buttons (Binder, Colab) and points
them at files the repository has; without it no button appears and no page loads anything from the network.
The configuration and the buttons are checked on a book of one page built from a one-cell notebook."""
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from ncutils import book as publish
from ncutils.book import BOOK, book_config, execute, launch_sources, render, retarget

URL = "https://github.com/owner/repo"
WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "book.yml"


def test_without_the_setting_there_is_no_button(monkeypatch):
    monkeypatch.delenv("REPO_URL", raising=False)
    config = book_config()
    assert config["repository"]["url"] == ""
    assert not any(config["launch_buttons"][k] for k in ("binderhub_url", "jupyterhub_url", "colab_url", "thebe"))
    assert not any(config["html"][k] for k in ("use_repository_button", "use_issues_button", "use_edit_page_button"))
    assert publish.EXTENSION not in config["sphinx"].get("extra_extensions", [])


@pytest.mark.parametrize("given", ["argument", "environment"])
def test_the_repository_url_turns_on_binder_colab_and_the_repository_button(monkeypatch, given):
    monkeypatch.setenv("REPO_URL", URL + ".git/" if given == "environment" else "https://github.com/other/one")
    config = book_config(repo_url=URL if given == "argument" else None)
    assert config["repository"] == {"url": URL, "path_to_book": "book", "branch": "main"}
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["launch_buttons"]["thebe"] is False  # live code would load thebe from a CDN
    assert config["html"]["use_repository_button"] and config["html"]["use_issues_button"]
    assert publish.EXTENSION in config["sphinx"]["extra_extensions"]
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]  # the file's own settings stay
    assert yaml.safe_load((BOOK / "_config.yml").read_text())["repository"]["url"] == ""  # the file is not changed


def test_a_url_that_is_not_a_github_repository_is_refused():
    with pytest.raises(ValueError, match="must be https://github.com/OWNER/REPO"):
        book_config(repo_url="https://gitlab.com/owner/repo/tree/main")


def test_a_chapter_launches_its_source_and_colab_its_committed_copy(tmp_path):
    assert launch_sources("_executed/clean") == ("notebooks/clean.md", None)  # no notebooks/colab/ committed
    (tmp_path / "notebooks" / "labs").mkdir(parents=True)
    (tmp_path / "notebooks" / "labs" / "probe.md").write_text("x")
    (tmp_path / "notebooks" / "colab" / "labs").mkdir(parents=True)
    (tmp_path / "notebooks" / "colab" / "labs" / "probe.ipynb").write_text("{}")
    assert launch_sources("_labs/probe", tmp_path) == ("notebooks/labs/probe.md", "notebooks/colab/labs/probe.ipynb")
    assert launch_sources("_executed/clean", tmp_path) == (None, None)
    assert launch_sources("intro", tmp_path) == (None, None)


def test_retarget_points_each_button_at_its_file_and_drops_the_others():
    built = "book/_executed/clean.ipynb"
    binder = {"text": "Binder", "url": f"https://mybinder.org/v2/gh/owner/repo/main?urlpath=lab/tree/{built}"}
    colab = {"text": "Colab", "url": f"https://colab.research.google.com/github/owner/repo/blob/main/{built}"}
    download = {"label": "download-buttons", "buttons": [{"text": ".ipynb", "url": "../_sources/clean.ipynb"}]}
    groups = [download, {"label": "launch-buttons", "buttons": [binder, colab]}]
    both = retarget(groups, built, "notebooks/clean.md", "notebooks/colab/clean.ipynb")
    assert both[0] == download
    assert [b["url"] for b in both[1]["buttons"]] == [
        "https://mybinder.org/v2/gh/owner/repo/main?urlpath=lab/tree/notebooks/clean.md",
        "https://colab.research.google.com/github/owner/repo/blob/main/notebooks/colab/clean.ipynb"]
    assert [b["text"] for b in retarget(groups, built, "notebooks/clean.md", None)[1]["buttons"]] == ["Binder"]
    assert retarget(groups, built, None, None) == [download]


def test_colab_notebooks_clone_the_repository_first(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(publish.NOTEBOOKS / "glossary.md", tmp_path / "notebooks" / "glossary.md")
    written = publish.colab_notebooks(URL, root=tmp_path)
    assert written == [tmp_path / "notebooks" / "colab" / "glossary.ipynb"]
    notebook = nbformat.read(written[0], as_version=4)
    first = notebook.cells[0]
    assert first.metadata["tags"] == ["colab-setup"]
    assert f'"{URL}", "/content/repo"' in first.source and 'os.chdir("/content/repo/notebooks")' in first.source
    assert launch_sources("_executed/glossary", tmp_path) == ("notebooks/glossary.md", "notebooks/colab/glossary.ipynb")
    with pytest.raises(ValueError, match="no repository URL"):
        publish.colab_notebooks("", root=tmp_path)


PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

Maths: $\\sum_k x_k$.

```{code-cell} python
:tags: [parameters]
scale = "cpu"
compute = False
```
"""
LOADS = re.compile(r'<(?:script|img|iframe|source|link)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I)


def one_page_book(tmp_path: Path) -> Path:
    """A book of the landing page and one page, ``_executed/glossary`` (a chapter the repository has), built from
    a one-cell notebook with this book's configuration."""
    book, notebooks = tmp_path / "book", tmp_path / "notebooks"
    book.mkdir()
    notebooks.mkdir()
    shutil.copy(BOOK / "_config.yml", book / "_config.yml")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: _executed/glossary\n")
    (book / "intro.md").write_text("# Landing page\n\nSee {doc}`_executed/glossary`.\n")
    (notebooks / "glossary.md").write_text(PAGE)
    execute("glossary", "smoke", False, book=book, notebooks=notebooks)
    return book


def test_a_built_page_has_buttons_only_with_the_setting_and_loads_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("REPO_URL", raising=False)
    book = one_page_book(tmp_path)
    pages = {}
    for setting in ("", URL):
        index = render(book, setting)
        html = index.parent
        assert (html / ".nojekyll").exists()
        pages[setting] = (html / "_executed" / "glossary.html").read_text()
        for page in html.rglob("*.html"):
            assert not LOADS.findall(page.read_text()), (setting, page)  # scripts, styles, images: all local
    assert "mybinder" not in pages[""] and "colab" not in pages[""] and "launch-buttons" not in pages[""]
    assert not re.search(r'href="https?://', pages[""].split("<main")[0])  # the header links nowhere online
    launched = re.findall(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com)[^"]*)"', pages[URL])
    colab = launch_sources("_executed/glossary")[1]  # Colab's copy, once notebooks/colab/ is committed
    assert launched == ["https://mybinder.org/v2/gh/owner/repo/main?urlpath=lab/tree/notebooks/glossary.md"] + (
        [f"https://colab.research.google.com/github/owner/repo/blob/main/{colab}"] if colab else [])
    assert f'href="{URL}"' in pages[URL]  # the repository button


def test_the_workflow_builds_with_the_one_command_and_deploys_the_site():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert {"actions/setup-python", "actions/upload-pages-artifact", "actions/deploy-pages"} <= set(uses)
    assert any(s.get("run", "").strip().startswith("make book") for s in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "book/_build/html"
    assert json.dumps(workflow).count("REPO_URL") >= 1
