"""The spec profile covers every published document: the table of docs/spec/README.md lists
each one with its status and clause files, every listed file exists, and every clause file is
listed. Where the upstream corpus is present beside the project, the table's documents are
exactly the corpus's (the corpus is reference material, not test data: without it that check is
skipped, under CI too)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import ROOT

SPEC = ROOT / "docs" / "spec"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "xdv-spec"
ROW = re.compile(r"^\| (XDV-\d{3}) \| ([^|]+) \| ([^|]+) \| ([^|]*) \|$", re.MULTILINE)
LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
STATUSES = {"implemented", "partly", "not implemented"}


def table() -> dict[str, tuple[str, str, list[str]]]:
    """document id → (title, status, clause files), from the README's table."""
    rows: dict[str, tuple[str, str, list[str]]] = {}
    for document, title, status, files in ROW.findall(SPEC.joinpath("README.md").read_text()):
        assert document not in rows, f"{document} is listed twice"
        links = LINK.findall(files)
        assert all(text == target for text, target in links), (
            f"{document}: a link's text is not its file"
        )
        rows[document] = (title.strip(), status.strip(), [target for _, target in links])
    return rows


def test_the_table_lists_documents_in_order_with_a_status_and_files() -> None:
    rows = table()
    assert len(rows) >= 41, "the README's table of documents is missing or unreadable"
    assert list(rows) == sorted(rows)
    for document, (title, status, files) in rows.items():
        assert title, document
        assert status in STATUSES, f"{document}: unknown status {status!r}"
        assert files, f"{document} names no clause file"
        for name in files:
            assert re.fullmatch(re.escape(document) + r"(-[a-z]+)?\.md", name), (document, name)


def test_every_published_document_has_its_clause_files() -> None:
    missing = [
        f"{document}: {name}"
        for document, (_, _, files) in table().items()
        for name in files
        if not SPEC.joinpath(name).is_file()
    ]
    assert missing == [], "documents of the table without their clause file"


def test_every_clause_file_is_in_the_table() -> None:
    listed = {name for _, _, files in table().values() for name in files}
    present = {path.name for path in SPEC.glob("XDV-*.md")}
    assert sorted(present - listed) == []


def test_the_table_lists_exactly_the_corpus_documents() -> None:
    if not CORPUS.is_dir():
        pytest.skip("the upstream corpus is not beside the project")
    published = {
        match[1]
        for path in CORPUS.glob("XDV-*.md")
        if (match := re.match(r"(XDV-\d{3})-", path.name)) is not None
    }
    assert published, "the corpus folder holds no documents"
    assert sorted(set(table())) == sorted(published)
