"""The reference tables in the docs list every code the code defines."""

from __future__ import annotations

import re

from helpers import ROOT
from xdv.errors import ErrorCode
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
