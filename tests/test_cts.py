"""The conformance test suite (xdv cts): case files, runs, adapters, the signed report."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, xdv
from xdv import cts
from xdv.errors import ErrorCode, XdvError
from xdv.security import KeyStore

CASES = cts.load_cases()
SPEC_DIR = ROOT / "docs" / "spec"
_CLAUSE = re.compile(r"^- \*\*(XDV-\d{3}-[0-9.]+)\*\*", re.MULTILINE)
PROFILE = {m for path in SPEC_DIR.glob("XDV-*.md") for m in _CLAUSE.findall(path.read_text())}
# Profile documents that no case covers: the suite itself (checked by this file).
UNCOVERED_DOCUMENTS = {"XDV-084"}


def _keys(tmp_path: Path) -> Any:
    return KeyStore(tmp_path / "keys").load_or_create()[0]


@pytest.mark.spec("XDV-084-3")
def test_shipped_cases_are_valid_and_cover_the_profile() -> None:
    assert len(CASES) >= 290
    assert len({case.id for case in CASES}) == len(CASES)
    named = {clause for case in CASES for clause in case.spec if clause.startswith("XDV-")}
    assert named <= PROFILE, f"cases name clauses the profile does not define: {named - PROFILE}"
    documents = {clause[:7] for clause in PROFILE}
    covered = {clause[:7] for clause in named}
    assert documents - covered == UNCOVERED_DOCUMENTS
    assert {case.level for case in CASES} == set(cts.LEVELS)
    assert any(case.action == "verify" for case in CASES)
    assert any("faults" in case.options for case in CASES)
    assert {case.action for case in CASES} == set(cts.ACTIONS)
    # The suite digest covers every file, in a canonical order: it is stable.
    assert cts.suite_digest() == cts.suite_digest()


_GOOD = {
    "id": "kernel.example",
    "spec": ["XDV-005-7"],
    "description": "an example",
    "level": "core",
    "expect": {"exit": "ok", "outputs": [1]},
}

_BAD_VALUES: list[tuple[str, Any]] = [
    ("id", "Not An Id"),
    ("id", 7),
    ("spec", "XDV-005-7"),
    ("spec", ["XDV-5-7"]),
    ("spec", []),
    ("description", ""),
    ("level", "gold"),
    ("requires", ["warp-drive"]),
    ("action", "dance"),
    ("options", {"seed": "zero"}),
    ("options", {"colour": 1}),
    ("expect", {}),
    ("expect", {"exit": "sideways"}),
    ("expect", {"exit": "ok", "code": "NOT_A_CODE"}),
    ("expect", {"exit": "ok", "trace": {"present": ["lower"]}}),
    ("expect", {"exit": "ok", "surprise": 1}),
    ("surprise", 1),
    ("expect", {"exit": "ok", "telemetry": {"alerts": []}}),  # only a telemetry case
    ("action", "telemetry"),  # a .yaml case, with a base program
    ("action", "view"),  # a .yaml case, with a base program
    ("options", {"depth": "deep"}),
    ("action", "cluster"),  # a .yaml case, with its jobs
    ("options", {"isolate": "yes"}),
    ("expect", {"exit": "ok", "transport": {"handshake": "ok"}}),  # only a transport case
]


def _text(document: dict[str, Any]) -> str:
    return '"""---\n' + yaml.safe_dump(document) + '---"""\ndef main(kernel):\n    pass\n'


@pytest.mark.spec("XDV-084-3")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(_BAD_VALUES), st.sampled_from(["drop", "set"]))
def test_case_validation_names_file_and_field(
    tmp_path: Path, bad: tuple[str, Any], how: str
) -> None:
    path = tmp_path / "kernel" / "example.py"
    path.parent.mkdir(exist_ok=True)
    assert cts.parse_case(_text(_GOOD), path, "kernel/example.py").id == "kernel.example"
    document = dict(_GOOD)
    name, value = bad
    if how == "drop" and name in ("id", "spec", "description", "level", "expect"):
        del document[name]
    else:
        document[name] = value
    with pytest.raises(cts.CaseError) as caught:
        cts.parse_case(_text(document), path, "kernel/example.py")
    assert caught.value.code is ErrorCode.CTS_CASE_INVALID
    assert caught.value.where is not None
    assert caught.value.where.startswith("kernel/example.py: ")
    assert caught.value.where.split(": ", 1)[1].split(".")[0] in (name, "front matter")


@pytest.mark.spec("XDV-084-3")
def test_front_matter_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(cts.CaseError, match="starts with a line"):
        cts.parse_case("def main(kernel): pass\n", tmp_path / "a.py", "a.py")
    with pytest.raises(cts.CaseError, match="not closed"):
        cts.parse_case('"""---\nid: x\n', tmp_path / "a.py", "a.py")
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(_text(_GOOD), encoding="utf-8")
    with pytest.raises(cts.CaseError) as caught:
        cts.load_cases(tmp_path)
    assert caught.value.code is ErrorCode.CTS_CASE_DUPLICATE


_SMALL = ["kernel.round-robin-alternation", "trace.tamper.k-flip-check-1", "trace.tamper.k-intact"]


def _small_run(**options: Any) -> tuple[list[cts.Case], list[cts.CaseResult]]:
    chosen = [case for case in CASES if case.id in _SMALL]
    return chosen, cts.run_cases(chosen, **options)


@pytest.mark.spec("XDV-084-4.1")
@pytest.mark.spec("XDV-084-9.1")
@pytest.mark.spec("XDV-084-13")
def test_filtered_run_signed_report_and_tampering(tmp_path: Path) -> None:
    chosen, results = _small_run()
    assert [r.status for r in results] == ["pass"] * 3, results
    by_id = {r.id: r for r in results}
    assert by_id["kernel.round-robin-alternation"].replay == "ok"
    assert by_id["trace.tamper.k-flip-check-1"].verify == "ok"
    identity = cts.Identity("xdv", "0.1.0", "ab" * 32)
    report = cts.build_report(
        chosen,
        results,
        identity=identity,
        suite_digest=cts.suite_digest(),
        suite_cases=len(CASES),
        selection={"filter": "small", "level": None},
    )
    assert report["certification"] == "none"  # a filtered run certifies nothing
    keys = _keys(tmp_path)
    data = cts.canonical(cts.sign_report(report, keys)) + b"\n"
    check = cts.verify_report(data, {keys.public.fingerprint})
    assert check.trusted is True and check.totals == {"pass": 3, "fail": 0, "skip": 0}
    assert check.shipped_suite and not cts.verify_report(data).trusted
    # A report of another suite (a few hand-picked cases, say) certifies nothing here,
    # whatever tier it states.
    other = cts.verify_report(data, shipped_digest="0" * 64)
    assert not other.shipped_suite and other.certification == "none"
    with pytest.raises(XdvError) as caught:
        cts.verify_report(data, {"0" * 64})
    assert caught.value.code is ErrorCode.CTS_REPORT_UNTRUSTED

    # Every field of every class, changed, makes the report fail.
    document = json.loads(data)

    def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if isinstance(value, dict):
            return [p for key in value for p in leaves(value[key], (*path, key))]
        if isinstance(value, list):
            return [p for i, item in enumerate(value) for p in leaves(item, (*path, i))]
        return [path]

    def changed(value: Any) -> Any:
        if isinstance(value, bool):
            return not value
        if isinstance(value, int):
            return value + 1
        if value is None:
            return "x"
        text = str(value)
        return text[:-1] + ("0" if text[-1:] != "0" else "1") if text else "x"

    paths = leaves(document)
    assert len(paths) > 80
    for path in paths:
        copy = json.loads(data)
        target = copy
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = changed(target[path[-1]])
        with pytest.raises(XdvError):
            cts.verify_report(cts.canonical(copy) + b"\n")
    # Not canonical (pretty-printed), or bytes appended: refused too.
    with pytest.raises(XdvError):
        cts.verify_report(json.dumps(document, indent=1).encode())
    with pytest.raises(XdvError):
        cts.verify_report(data + b" ")
    # A report re-signed by another key after an edit still has to be consistent.
    edited = dict(report, totals={"pass": 4, "fail": 0, "skip": 0})
    other = cts.canonical(cts.sign_report(edited, keys)) + b"\n"
    with pytest.raises(XdvError) as caught:
        cts.verify_report(other)
    assert caught.value.code is ErrorCode.CTS_REPORT_INVALID


@pytest.mark.spec("XDV-084-12")
def test_certification_tiers() -> None:
    def totals(passed: int, failed: int = 0, skipped: int = 0) -> dict[str, int]:
        return {"pass": passed, "fail": failed, "skip": skipped}

    everything = {"core": totals(5), "hybrid": totals(3), "distributed": totals(2)}
    assert cts.certification(everything, partial=False) == "full-hybrid"
    assert cts.certification(everything, partial=True) == "none"
    assert cts.certification({**everything, "hybrid": totals(2, 1)}, False) == "distributed"
    assert cts.certification({**everything, "distributed": totals(1, 0, 1)}, False) == "core"
    assert cts.certification({**everything, "distributed": totals(0)}, False) == "core"
    assert cts.certification({**everything, "core": totals(4, 0, 1)}, False) == "none"
    assert cts.certification({**everything, "core": totals(4, 1)}, False) == "none"


@pytest.mark.spec("XDV-084-10")
def test_fault_injection_case_runs_its_plan() -> None:
    chosen = [case for case in CASES if case.id == "fault.vhm-restart-then-end"]
    assert chosen and isinstance(chosen[0].options["faults"], str)
    (result,) = cts.run_cases(chosen)
    assert result.status == "pass", result.reason
    assert result.replay == "ok"


_BROKEN = """import json, sys
args = sys.argv[1:]
if args[:1] == ["--version"]:
    print("broken 0.0")
elif args[:1] in (["run"], ["qrun"], ["phirun"]):
    print(json.dumps({"ok": True, "outputs": ["made up"], "exits": {}}))
else:
    print(json.dumps({"ok": True}))
"""


@pytest.mark.spec("XDV-084-14")
def test_a_broken_adapter_fails_cases(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(_BROKEN, encoding="utf-8")
    impl = f"{sys.executable} {script}"
    identity = cts.AdapterExecutor(impl, tmp_path).identity()
    assert identity.name == "broken" and identity.command == impl
    _, results = _small_run(impl=impl, jobs=2)
    assert [r.status for r in results] == ["fail"] * 3
    reasons = {r.id: r.reason for r in results}
    assert "outputs" in reasons["kernel.round-robin-alternation"]
    assert "wrote no trace" in reasons["trace.tamper.k-flip-check-1"]


@pytest.mark.system
@pytest.mark.spec("XDV-084-14")
def test_xdv_cli_satisfies_the_adapter_contract(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    answer = xdv(
        "cts", "run", "--impl", f"{sys.executable} -m xdv", "--filter", "kernel.w*", "--jobs", "2",
        "--json", "-o", str(report), "--key-store", str(tmp_path / "keys"),
        env={"XDV_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    summary = json.loads(answer.stdout)
    assert summary["totals"] == {"pass": 2, "fail": 0, "skip": 0}
    assert summary["implementation"]["command"].endswith("-m xdv")
    verified = xdv("cts", "verify", str(report), "--trusted-key", summary["signer"], "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.system
@pytest.mark.spec("XDV-084-4.1")
@pytest.mark.spec("XDV-084-9.1")
@pytest.mark.spec("XDV-084-12")
@pytest.mark.spec("XDV-084-13")
def test_full_suite_run_and_verify(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    answer = xdv(
        "cts", "run", "--jobs", "2", "--json", "-o", str(report),
        "--key-store", str(tmp_path / "keys"), env={"XDV_HOME": str(tmp_path / "home")},
        timeout=300,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    summary = json.loads(answer.stdout)
    assert summary["totals"]["fail"] == 0
    assert summary["certification"] in ("core", "distributed", "full-hybrid")
    listed = xdv("cts", "list", "--json")
    assert json.loads(listed.stdout)["suite"]["digest"] == summary["suite"]["digest"]
    verified = xdv("cts", "verify", str(report), "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    data = bytearray(report.read_bytes())
    data[data.index(b'"pass":') + 7] ^= 0x01
    report.write_bytes(bytes(data))
    assert xdv("cts", "verify", str(report)).returncode == 1


def _feature_case(tmp_path: Path, case_id: str, **expect: Any) -> cts.Case:
    """The shipped ``.yaml`` case ``case_id``, its expectations changed as given, in a copy
    beside its files."""
    (original,) = [case for case in CASES if case.id == case_id]
    folder = tmp_path / original.area
    if not folder.exists():
        shutil.copytree(original.path.parent, folder)
    document = yaml.safe_load(original.path.read_text(encoding="utf-8"))
    kinds = {"telemetry", "view", "quote", "model", "cluster", "transport", "consensus"}
    kind = next(iter(set(document["expect"]) & kinds))
    document["expect"][kind] = {**document["expect"][kind], **expect}
    # Files the case names by a path relative to its folder may lie in another folder.
    home = original.path.parent
    for section, key in (("input", "base"), ("options", "faults")):
        named = document.get(section, {}).get(key)
        if isinstance(named, str):
            document[section][key] = str((home / named).resolve())
    path = folder / "changed.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return cts.load_case(path, tmp_path)


@pytest.mark.spec("XDV-084-3")
@pytest.mark.spec("XDV-070-9")
@pytest.mark.spec("XDV-053-9")
def test_telemetry_and_model_check_cases_pass_and_can_fail(tmp_path: Path) -> None:
    chosen = [
        case
        for case in CASES
        if case.id
        in (
            "telemetry.k-processes-and-channels",
            "model-check.capabilities",
            "model-check.capabilities-planted-bug",
        )
    ]
    assert [r.status for r in cts.run_cases(chosen)] == ["pass"] * 3
    wrong = _feature_case(
        tmp_path,
        "telemetry.k-processes-and-channels",
        series=[{"metric": "xdv_k_channel_messages_total", "value": 19}],
    )
    (result,) = cts.run_cases([wrong])
    assert result.status == "fail" and "is 20.0, expected 19" in result.reason
    alerts = _feature_case(tmp_path, "telemetry.k-processes-and-channels", alerts=["node.panic"])
    assert cts.run_cases([alerts])[0].status == "fail"


@pytest.mark.system
@pytest.mark.spec("XDV-084-14")
@pytest.mark.spec("XDV-062-10")
@pytest.mark.spec("XDV-090-4.2")
@pytest.mark.spec("XDV-043-5.2")
def test_new_actions_through_the_adapter_contract(tmp_path: Path) -> None:
    """One case of each new action through `python -m xdv` (telemetry, node attest and
    verify-quote, view served on a port, a node serving jobs); model checking has no command,
    so it skips."""
    names = (
        "telemetry.fault-escalations-and-alerts",
        "boot.configuration-changed",
        "boot.stale-nonce",
        "view.k-state-at-logical-time",
        "service.dpl-job-in-tenant-vhm",
        "service.read-only-token-cannot-submit",
        "model-check.capabilities",
    )
    chosen = [case for case in CASES if case.id in names]
    results = {r.id: r for r in cts.run_cases(chosen, impl=f"{sys.executable} -m xdv", jobs=2)}
    for name in names[:-1]:
        assert results[name].status == "pass", results[name]
    assert results["model-check.capabilities"].status == "skip"
    assert "model-checking" in results["model-check.capabilities"].reason
    # A changed view expectation fails through the adapter too.
    wrong = _feature_case(tmp_path, "view.k-state-at-logical-time", state={"clock": 31})
    (result,) = cts.run_cases([wrong], impl=f"{sys.executable} -m xdv")
    assert result.status == "fail" and "clock" in result.reason


@pytest.mark.spec("XDV-084-3")
@pytest.mark.spec("XDV-040-3.2")
@pytest.mark.spec("XDV-041-4.2")
@pytest.mark.spec("XDV-042-7")
def test_cluster_transport_and_consensus_cases_pass_and_can_fail(tmp_path: Path) -> None:
    """One case of each cluster action passes in process, without Ray; changed expectations
    fail with the reason."""
    names = (
        "transport.replay-and-reorder-refused",
        "consensus.missing-signer-refused",
        "cluster.tamper-manifest",
    )
    chosen = [case for case in CASES if case.id in names]
    assert [r.status for r in cts.run_cases(chosen, features=frozenset())] == ["pass"] * 3
    wrong = _feature_case(
        tmp_path, "transport.replay-and-reorder-refused", refused=["TRANSPORT_FRAME_REPLAYED"]
    )
    (result,) = cts.run_cases([wrong])
    assert result.status == "fail" and "link refused" in result.reason
    forged = _feature_case(tmp_path, "consensus.missing-signer-refused", forged="ok")
    (result,) = cts.run_cases([forged])
    assert result.status == "fail" and "CONSENSUS_CERTIFICATE_INVALID" in result.reason
    accepted = _feature_case(tmp_path, "cluster.tamper-manifest", verify="ok")
    (result,) = cts.run_cases([accepted])
    assert result.status == "fail" and "CLUSTER_SIGNATURE_INVALID" in result.reason


@pytest.mark.system
@pytest.mark.spec("XDV-084-14")
@pytest.mark.spec("XDV-041-3.1")
@pytest.mark.spec("XDV-081-13")
def test_cluster_and_reference_cases_through_the_adapter_contract(tmp_path: Path) -> None:
    """The cluster cases through `python -m xdv` (`cluster run --local`, `verify DIR`), and the
    reference cases (one an isolated run, `run --isolate`); a lost node, a link and agreement
    replicas have no command, so those cases skip with the reason."""
    chosen = [
        case for case in CASES if case.area in ("cluster", "transport", "consensus", "reference")
    ]
    results = cts.run_cases(chosen, impl=f"{sys.executable} -m xdv", jobs=2)
    by_id = {r.id: r for r in results}
    skipped = {r.id for r in results if r.status == "skip"}
    assert skipped == {"cluster.lost-node-jobs-move"} | {
        case.id for case in chosen if case.area in ("transport", "consensus")
    }
    assert all(r.status == "pass" for r in results if r.id not in skipped), [
        r for r in results if r.status == "fail"
    ]
    assert "loses a node" in by_id["cluster.lost-node-jobs-move"].reason
    assert "link" in by_id["transport.in-order-frames-open"].reason
    # A changed expectation fails through the adapter too.
    wrong = _feature_case(tmp_path, "cluster.one-node-equals-run", lines=["left 0"])
    (result,) = cts.run_cases([wrong], impl=f"{sys.executable} -m xdv")
    assert result.status == "fail" and "cluster lines" in result.reason
