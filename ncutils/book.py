"""Build the book: papermill executes every chapter at a scale, then Jupyter Book renders it.

    python -m ncutils.book --scale cpu            # from stored results (default; no training)
    python -m ncutils.book --scale smoke --compute   # every run computed from nothing (the tests do this)
    REPO_URL=https://github.com/OWNER/REPO python -m ncutils.book   # with launch buttons (Binder, Colab)
    python -m ncutils.book --colab-notebooks        # notebooks/colab/*.ipynb, what Colab's buttons open

The site, ``book/_build/html``, is static and ready to publish as it is (``make book`` builds it; the workflow
``.github/workflows/book.yml`` publishes it on GitHub Pages): no page loads anything from the network. One
setting, the repository's public GitHub URL (``REPO_URL``), adds launch buttons (:func:`book_config`).

Chapters are the ``_executed/<name>`` entries of ``book/_toc.yml``; each is ``notebooks/<name>.md``
(jupytext) executed with parameters ``scale`` and ``compute`` into ``book/_executed/<name>.ipynb``. Labs
are its ``_labs/<name>`` entries, ``notebooks/labs/<name>.md`` executed the same way into ``book/_labs/``.
Pages are executed one per core side by side (``--workers``), each in a kernel of its own.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

from . import labs
from .chapter.pages import BOOK, EXECUTED, NOTEBOOKS, chapters
from .claims import data_scale
from .paths import PACKAGE_PARENT
from .scales import SCALES

__all__ = ["BOOK", "NOTEBOOKS", "ChapterFailed", "book_config", "build", "chapters", "colab_notebooks", "execute",
           "render"]
REPO_URL = "REPO_URL"  # the environment (and make) variable holding the one setting: the repository's URL
GITHUB = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")
BINDER, COLAB = "https://mybinder.org", "https://colab.research.google.com"
COLAB_NOTEBOOKS = "notebooks/colab"  # in the repository: Colab's copies of the sources (colab_notebooks)
FINDINGS = "findings.md"  # in _executed/: what the data-scale chapter finds, for the landing page
EXTENSION = "ncutils.book"  # this module, as the Sphinx extension that points the launch buttons at sources


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message names the notebook and the cell."""


@contextlib.contextmanager
def _this_package_first():
    """The kernels import this repository's ncutils (not another checkout's installed in the environment):
    its root goes first on their PYTHONPATH (already there: nothing changes, so chapters executed side by side
    inside one such block leave the variable alone)."""
    before = os.environ.get("PYTHONPATH")
    if before is not None and before.split(os.pathsep)[0] == str(PACKAGE_PARENT):
        yield
        return
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT)] + ([before] if before else []))
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


@contextlib.contextmanager
def _threads_per_kernel(threads: int):
    """Kernels started inside the block run ``threads`` threads (``OMP_NUM_THREADS``, which torch and
    ``ncutils.train`` read), unless the variable is set already: chapters executed side by side then share the
    cores instead of each spinning on all of them (two 2-thread processes measuring models on 2 busy cores:
    469 s, against 105 s at one thread each)."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


def execute(name: str, scale: str, compute: bool, book: Path = BOOK, notebooks: Path = NOTEBOOKS,
            parameters: dict | None = None, into: str = EXECUTED) -> Path:
    """Execute ``notebooks/<name>.md`` with papermill into ``book/<into>/<name>.ipynb`` (``parameters``:
    the chapter's others, e.g. ``{"models": ["resnet18"]}``; ``into``: ``_executed``, or ``_labs`` for a lab)."""
    source = notebooks / f"{name}.md"
    if not source.exists():
        raise FileNotFoundError(f"_toc.yml lists {into}/{name} but {source} does not exist")
    out = book / into / f"{name}.ipynb"
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


def book_config(book: Path = BOOK, repo_url: str | None = None) -> dict:
    """``book/_config.yml`` with what follows from one setting, the repository's public GitHub URL (``repo_url``;
    default: $REPO_URL, else the file's ``repository.url``). Set, the pages get the repository and issue buttons
    and every notebook page launch buttons: Binder opens its source, ``notebooks/<name>.md`` (as a notebook,
    through jupytext: the repository's ``postBuild``), Colab its copy ``notebooks/colab/<name>.ipynb`` where that
    is in the repository (Colab opens only .ipynb files: :func:`colab_notebooks`). Empty (the default), no
    button: no page links to or loads anything from the network."""
    config = yaml.safe_load((book / "_config.yml").read_text())
    repository = config.setdefault("repository", {})
    url = (os.environ.get(REPO_URL, "") if repo_url is None else repo_url).strip() or (repository.get("url") or "")
    url = url.strip().rstrip("/").removesuffix(".git")
    launch, html = config.setdefault("launch_buttons", {}), config.setdefault("html", {})
    launch.update(binderhub_url="", jupyterhub_url="", colab_url="", thebe=False)
    html.update(use_repository_button=False, use_issues_button=False, use_edit_page_button=False)
    repository["url"] = url
    if not url:
        return config
    if not GITHUB.fullmatch(url):
        raise ValueError(f"the repository URL must be https://github.com/OWNER/REPO (Binder and Colab open GitHub "
                         f"repositories), not {url!r}")
    launch.update(binderhub_url=BINDER, colab_url=COLAB)
    html.update(use_repository_button=True, use_issues_button=True)
    sphinx = config.setdefault("sphinx", {})
    sphinx["extra_extensions"] = [*sphinx.get("extra_extensions", []), EXTENSION]
    return config


def launch_sources(pagename: str, root: Path = PACKAGE_PARENT) -> tuple[str | None, str | None]:
    """(what Binder opens, what Colab opens) for page ``pagename``, relative to the repository ``root``; None
    where the repository has no such file. Chapter ``_executed/<name>``: ``notebooks/<name>.md``; another
    page ``_<folder>/<name>``: ``notebooks/<folder>/<name>.md``; Colab's copy of ``notebooks/<path>.md`` is
    ``notebooks/colab/<path>.ipynb``."""
    folder, _, name = pagename.rpartition("/")
    if not folder.startswith("_") or not name:
        return None, None
    relative = f"{name}" if folder == EXECUTED else f"{folder.lstrip('_')}/{name}"
    source, colab = f"notebooks/{relative}.md", f"{COLAB_NOTEBOOKS}/{relative}.ipynb"
    return (source if (root / source).is_file() else None), (colab if (root / colab).is_file() else None)


def retarget(groups: list[dict], built: str, source: str | None, colab: str | None) -> list[dict]:
    """The theme's header buttons ``groups`` with the launch buttons' links to ``built`` (the executed notebook
    the page was rendered from, a build output that is not committed) pointed at ``colab`` for Colab and at
    ``source`` for the others; a button left without a target is dropped, and a group left empty."""
    out = []
    for group in groups:
        if group.get("label") != "launch-buttons":
            out.append(group)
            continue
        buttons = [{**b, "url": b["url"].replace(built, target)} for b in group.get("buttons", [])
                   for target in [colab if b.get("text") == "Colab" else source] if target and built in b.get("url", "")]
        if buttons:
            out.append({**group, "buttons": buttons})
    return out


def _launch_from_sources(app, pagename, templatename, context, doctree) -> None:
    """Sphinx's ``html-page-context``, after the theme's launch buttons: see :func:`retarget`."""
    docs = app.config.html_theme_options.get("path_to_docs", "").strip("/")
    built = f"{docs}/{pagename}.ipynb" if docs else f"{pagename}.ipynb"
    context["header_buttons"] = retarget(context.get("header_buttons", []), built, *launch_sources(pagename))


def setup(app):
    """This module as a Sphinx extension (:func:`book_config` lists it when the repository URL is set)."""
    app.connect("html-page-context", _launch_from_sources, priority=900)  # the theme adds its buttons at 501
    return {"parallel_read_safe": True, "parallel_write_safe": True}


COLAB_SETUP = """# Colab only: the repository (with its stored results) and the ncutils package; elsewhere nothing.
import os, subprocess, sys
try:
    import google.colab  # noqa: F401 (Colab's own package)
except ImportError:
    pass
else:
    if not os.path.isdir("/content/repo"):
        subprocess.run(["git", "clone", "--depth", "1", "{url}", "/content/repo"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", "/content/repo"], check=True)
    sys.path.insert(0, "/content/repo")
    os.chdir("/content/repo/{folder}")"""


def toc_pages(book: Path = BOOK) -> list[str]:
    """Every page the table of contents lists (the landing page left out)."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    return [c["file"] for part in [toc, *toc.get("parts", [])] for c in part.get("chapters", [])]


def colab_notebooks(repo_url: str | None = None, book: Path = BOOK, root: Path = PACKAGE_PARENT) -> list[Path]:
    """Write Colab's copy of every page's source, ``notebooks/colab/<path>.ipynb``: the source with a first cell
    that, in Colab only, clones the repository (``repo_url``, as :func:`book_config` reads it) and installs
    ncutils. Commit them for the Colab buttons, and write them again after editing a source."""
    url = book_config(book, repo_url)["repository"]["url"]
    if not url:
        raise ValueError(f"no repository URL (set {REPO_URL} or pass --repo-url): Colab's notebooks clone it")
    written = []
    for source in filter(None, (launch_sources(page, root)[0] for page in toc_pages(book))):
        notebook = jupytext.read(root / source)
        setup_cell = COLAB_SETUP.replace("{url}", url).replace("{folder}", str(Path(source).parent))
        notebook.cells.insert(0, nbformat.v4.new_code_cell(setup_cell, metadata={"tags": ["colab-setup"]}))
        notebook.metadata.pop("jupytext", None)
        out = root / COLAB_NOTEBOOKS / Path(source).relative_to("notebooks").with_suffix(".ipynb")
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out)
        written.append(out)
    return written


def render(book: Path = BOOK, repo_url: str | None = None) -> Path:
    """Render the executed pages of ``book`` with :func:`book_config`'s configuration (written beside the
    build) into ``book/_build/html``, a static site ready to publish (``.nojekyll`` included, for GitHub
    Pages served from a branch); return its index.html."""
    config = book / "_build" / "config.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(book_config(book, repo_url), sort_keys=False, allow_unicode=True))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"  # the CLI installed beside this Python
    with _this_package_first():  # the extension the configuration may list is this module
        subprocess.run([str(jupyter_book), "build", str(book), "--config", str(config), "--quiet"], check=True)
    html = book / "_build" / "html"
    (html / ".nojekyll").touch()
    return html / "index.html"


def build(scale: str = "cpu", compute: bool = False, book: Path = BOOK, into: Path | None = None,
          repo_url: str | None = None, workers: int | None = None) -> Path:
    """Execute every chapter and lab, ``workers`` at a time (default: one per core; each is a kernel of its
    own, running the cores' share of threads: :func:`_threads_per_kernel`), render the book (:func:`render`,
    ``repo_url``: see :func:`book_config`), return the path of its index.html. ``into``: build a copy of the
    book's sources there (executed chapters and HTML included), leaving ``book``'s own build untouched. A
    chapter that fails stops the build with its error."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    cores = len(os.sched_getaffinity(0))
    workers = cores if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if into is not None:
        shutil.copytree(book, into, ignore=shutil.ignore_patterns("_build", EXECUTED, labs.EXECUTED),
                        dirs_exist_ok=True)
        book = Path(into)
    pages = [(name, NOTEBOOKS, EXECUTED) for name in chapters(book)]
    pages += [(name, labs.NOTEBOOKS, labs.EXECUTED) for name in labs.lab_names(book)]  # notebooks/labs -> _labs

    def run(name: str, notebooks: Path, into: str) -> Path:
        print(f"executing {into}/{name} (scale {scale}{', computing missing runs' if compute else ''})", flush=True)
        return execute(name, scale, compute, book, notebooks, into=into)

    threads = max(1, cores // workers)
    with _this_package_first(), _threads_per_kernel(threads), ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(run, *page) for page in pages]
        try:
            for future in futures:  # in the book's order: the first failing page's error
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    (book / EXECUTED / FINDINGS).write_text(data_scale.findings(scale))  # the landing page includes it
    return render(book, repo_url)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m ncutils.book", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="cpu", choices=list(SCALES))
    p.add_argument("--compute", action="store_true", help="compute missing runs instead of failing")
    p.add_argument("--workers", type=int, help="chapters executed at a time (default: one per core)")
    p.add_argument("--repo-url", help=f"the repository's public GitHub URL, which adds launch buttons (default: "
                                      f"${REPO_URL}; empty: none)")
    p.add_argument("--colab-notebooks", action="store_true",
                   help=f"write {COLAB_NOTEBOOKS}/*.ipynb (what the Colab buttons open; needs the URL) and exit")
    a = p.parse_args(argv)
    try:
        if a.colab_notebooks:
            print("\n".join(str(path) for path in colab_notebooks(a.repo_url)))
            return
        index = build(a.scale, a.compute, repo_url=a.repo_url, workers=a.workers)
    except (ChapterFailed, FileNotFoundError, ValueError) as e:
        sys.exit(f"book build failed: {e}")
    print(f"book: {index}")


if __name__ == "__main__":
    main()
