"""The house rules a newcomer relies on, checked so they stay true.

- No module grows past about 300 lines unless its docstring says why it is long.
- Code cites the repo's own docs, and every citation names a section that exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CODE_ROOTS = ("services", "shared", "tenin", "scripts")
MAX_LINES = 320  # "about 300"
LONG_REASON = re.compile(r"longer than .{0,40}because", re.IGNORECASE | re.DOTALL)
CITATION = re.compile(r"docs/(\w+)\.md § (.{1,60})")


def code_files() -> list[Path]:
    return sorted(p for root in CODE_ROOTS for p in (REPO / root).rglob("*.py"))


def doc_sections(name: str) -> set[str]:
    text = (REPO / "docs" / f"{name}.md").read_text(encoding="utf-8")
    return {m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.MULTILINE)}


def test_modules_stay_small_or_say_why() -> None:
    too_long = []
    for path in code_files():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if not LONG_REASON.search(docstring):
            too_long.append(f"{path.relative_to(REPO)} ({lines} lines)")
    assert not too_long, "split these by concept, or say in the docstring why they are longer"


def test_code_cites_the_docs_in_the_repo() -> None:
    outside = [
        str(p.relative_to(REPO))
        for p in code_files()
        if re.search(r"DESIGN(\.md)? ?§|DESIGN \d", p.read_text(encoding="utf-8"))
    ]
    assert not outside, "cite docs/interfaces.md or docs/architecture.md instead"


@pytest.mark.parametrize("doc", ["interfaces", "architecture"])
def test_every_citation_names_a_section_that_exists(doc: str) -> None:
    sections = doc_sections(doc)
    cited = {
        (str(p.relative_to(REPO)), m.group(2))
        for p in code_files()
        # Citations wrap across lines and comment leaders: read the text as one line.
        for m in CITATION.finditer(re.sub(r"\s+(# )?", " ", p.read_text(encoding="utf-8")))
        if m.group(1) == doc
    }
    assert cited, f"nothing cites docs/{doc}.md"
    missing = sorted(
        f"{where}: § {text}"
        for where, text in cited
        if not any(text.startswith(section) for section in sections)
    )
    assert not missing, f"docs/{doc}.md has no such section"
