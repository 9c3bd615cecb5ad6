"""The one way tests find the shared test data: skip when it is absent, fail under CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TESTDATA, in_ci, shared_testdata


def test_present_data_is_returned(tmp_path: Path) -> None:
    (tmp_path / "gset").mkdir()
    (tmp_path / "gset" / "G1.txt").write_text("800 19176\n", encoding="utf-8")
    assert shared_testdata("gset", "G1.txt", root=tmp_path) == tmp_path / "gset" / "G1.txt"
    assert shared_testdata("gset", root=tmp_path).is_dir()


def test_absent_data_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="testdata/qasm is absent"):
        shared_testdata("qasm", root=tmp_path / "missing")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        shared_testdata("qasm", root=tmp_path / "missing")


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_absent_data_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    (tmp_path / "qasm").mkdir()  # the folder is there, the file is not
    with pytest.raises(pytest.fail.Exception, match="required when CI is set"):
        shared_testdata("qasm", "INDEX.tsv", root=tmp_path)
    with pytest.raises(pytest.fail.Exception):
        shared_testdata("rfc9162", root=tmp_path / "missing")


def test_what_counts_as_ci() -> None:
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CI": "yes"})
    assert not in_ci({}) and not in_ci({"CI": ""}) and not in_ci({"CI": "0"})
    assert not in_ci({"CI": "false"}) and not in_ci({"CI": "False"})


def test_no_test_finds_the_shared_data_another_way() -> None:
    """Every test reaches ../shared/testdata through shared_testdata (so CI can fail on it)."""
    root = TESTDATA.parent.parent
    project = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("src", "tests"):
        for path in sorted((project / folder).rglob("*.py")):
            if path.name.endswith("_test.py") or path.name.startswith("test_"):
                if path == Path(__file__).resolve():
                    continue
                text = path.read_text(encoding="utf-8")
                if '"testdata"' in text or "'testdata'" in text or "shared/testdata" in text:
                    offenders.append(str(path.relative_to(project)))
    assert root == project.parent
    assert offenders == []
