"""The docs point at things that exist: every relative link and every repository path they name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# a path in backticks that starts at one of the repository's own folders, e.g. `benchmarks/cores.py`
PATH = re.compile(r"`((?:agents|cores|envs|configs|benchmarks|tests|docs|\.ci)/[\w./-]*)`")


def named_paths(doc: Path) -> list[tuple[str, Path]]:
    text = doc.read_text()
    found = [(target, doc.parent / target) for target in LINK.findall(text)
             if not target.startswith(("http://", "https://", "mailto:"))]
    found += [(target, ROOT / target.rstrip(".")) for target in PATH.findall(text) if "*" not in target]
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_path_a_doc_names_exists(doc):
    missing = [target for target, path in named_paths(doc) if not path.exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_the_docs_name_paths_at_all():
    """Guards the patterns above: a change that made them match nothing would pass every doc."""
    assert sum(len(named_paths(doc)) for doc in DOCS) > 50
