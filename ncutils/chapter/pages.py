"""The book's chapters as written: their order in the table of contents, their titles and the headings of
their figure targets (read from ``book/_toc.yml`` and ``notebooks/<chapter>.md``)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..paths import PACKAGE_PARENT

BOOK = PACKAGE_PARENT / "book"  # the book is built in a checkout of this repository
NOTEBOOKS = PACKAGE_PARENT / "notebooks"
EXECUTED = "_executed"


def chapters(book: Path = BOOK) -> list[str]:
    """Names of the chapters the table of contents lists, in order."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    files = [c["file"] for part in [toc] + toc.get("parts", []) for c in part.get("chapters", [])]
    return [f.split("/", 1)[1] for f in files if f.startswith(EXECUTED + "/")]


def title(chapter: str, notebooks: Path = NOTEBOOKS) -> str:
    """The chapter's title (its ``# `` heading), else its name."""
    path = notebooks / f"{chapter}.md"
    found = re.search(r"^# (.+)$", path.read_text(), re.M) if path.exists() else None
    return found.group(1) if found else chapter


def targets(chapter: str, notebooks: Path = NOTEBOOKS) -> dict[str, str]:
    """{MyST target: the heading right after it} of the chapter: ``(name)=`` then ``## heading``."""
    path = notebooks / f"{chapter}.md"
    return dict(re.findall(r"^\(([^)]+)\)=\s*\n#+ (.+)$", path.read_text(), re.M)) if path.exists() else {}
