"""Every clause of the spec profile in docs/spec is referenced by a test, and vice versa."""

from __future__ import annotations

import re

from helpers import ROOT

CLAUSE = re.compile(r"^- \*\*(XDV-\d{3}-[0-9.]+)\*\*", re.MULTILINE)
REFERENCE = re.compile(r"""spec\(\s*["'](XDV-\d{3}-[0-9.]+)["']""")


def clauses() -> set[str]:
    found: set[str] = set()
    for path in sorted((ROOT / "docs" / "spec").glob("XDV-*.md")):
        ids = CLAUSE.findall(path.read_text(encoding="utf-8"))
        assert ids, f"{path.name} has no clauses"
        # XDV-NNN.md, or XDV-NNN-part.md for one domain's share of a document.
        assert all(clause.startswith(path.stem[:7] + "-") for clause in ids), path.name
        found.update(ids)
    return found


def references() -> set[str]:
    found: set[str] = set()
    for folder in ("src", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            found.update(REFERENCE.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_clause_is_tested_and_every_reference_exists() -> None:
    documented, referenced = clauses(), references()
    assert documented, "docs/spec holds no clauses"
    assert sorted(documented - referenced) == [], "clauses without a test"
    assert sorted(referenced - documented) == [], "tests citing clauses that do not exist"
