"""The reference tables in the docs list every code the code defines."""

from __future__ import annotations

import re

from helpers import ROOT
from xdv.errors import ErrorCode
from xdv.inputs import LIMITS
from xdv.trace import EventType


def test_every_error_code_has_a_row_in_the_error_table() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    rows = {
        int(number): name
        for number, name in re.findall(r"^\| *(\d+) *\| *([A-Z_0-9]+) *\|", text, re.M)
    }
    missing = [code.name for code in ErrorCode if rows.get(int(code)) != code.name]
    assert missing == []


def test_every_event_type_has_a_row_in_the_trace_format() -> None:
    text = (ROOT / "docs" / "trace-format.md").read_text()
    rows = {
        int(number): name
        for number, name in re.findall(r"^\| *(\d+) *\| *([A-Z_]+) *\|", text, re.M)
    }
    missing = [event.name for event in EventType if rows.get(int(event)) != event.name]
    assert missing == []


def test_every_input_limit_has_a_row_in_section_7_of_the_error_reference() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    section = text[text.index("## 7. Input limits") :]
    rows = set(re.findall(r"^\| *`([a-z0-9_]+)` *\|", section, re.M))
    assert sorted(set(LIMITS) - rows) == []
    assert sorted(rows - set(LIMITS)) == []  # and no row for a limit the code lacks
