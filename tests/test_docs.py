"""The search documents shown in the READMEs are valid searches (docs that drift are caught here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyperhive.search_spaces import load

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "service/README.md", "workers/README.md", "search_spaces/README.md", "docs/deploy.md"]


def search_blocks() -> list[tuple[str, str]]:
    found = []
    for name in DOCS:
        text = (REPO / name).read_text()
        for i, block in enumerate(re.findall(r"```ya?ml\n(.*?)```", text, re.S)):
            if re.search(r"^name:", block, re.M) and re.search(r"^max_trials:", block, re.M):
                found.append((f"{name}#{i}", block))
    return found


BLOCKS = search_blocks()


def test_the_readme_shows_a_search() -> None:
    assert any(where.startswith("README.md") for where, _ in BLOCKS)


@pytest.mark.parametrize("block", [b for _, b in BLOCKS], ids=[w for w, _ in BLOCKS])
def test_documented_searches_validate(block: str) -> None:
    spec = load(block, "yaml")
    assert spec.parameter_labels, "a documented search searches something"


@pytest.mark.parametrize("name", DOCS)
def test_docs_hold_no_internal_notes_and_one_install_story(name: str) -> None:
    """Newcomers followed these: no merge notes for the team, no `pip install hyperhive` (it is not on
    PyPI), and GPU machines install the `gpu` extra (not a hand-picked TensorFlow build)."""
    text = (REPO / name).read_text()
    assert not re.search(r"to merge|for the lead", text, re.I), "an internal note"
    assert not re.search(r"pip install (-U |--upgrade )?['\"]?hyperhive\b", text), "install from the checkout"
    assert "and-cuda" not in text, "GPU machines: pip install -e '.[gpu]'"
