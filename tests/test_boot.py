"""Measured boot: the boot log's order and chain, the capability root it gates, boot quotes and
their offline verification (synthetic measurements; the real init sequence of the node is
checked in tests/test_boot_system.py).

Regenerate the quote golden file with ``XDV_REGENERATE_GOLDEN=1 pytest tests/test_boot.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.cli._main import cli
from xdv.errors import ErrorCode, XdvError
from xdv.security import (
    BOOT_STAGES,
    BootError,
    BootEvent,
    BootLog,
    BootQuote,
    HybridKeyPair,
    MeasuredBoot,
    expected_measurements,
    measure_files,
    measure_kernel,
    verify_quote,
)

GOLDEN = Path(__file__).parent / "golden" / "boot-quote.json"
KEY = HybridKeyPair.from_seed(b"xdv-boot-test")
OTHER = HybridKeyPair.from_seed(b"xdv-boot-other")
NONCE = bytes(range(8))


def booted(
    key: HybridKeyPair = KEY,
    *,
    boot: int = 1,
    limit: int = 100,
    provider: str = "1.0",
    log_path: Path | None = None,
) -> MeasuredBoot:
    """A measured boot of a small synthetic node, its root active."""
    measured = MeasuredBoot(key, boot=boot, log_path=log_path)
    measured.measure("kernel", "xdv/core", {"code": "core"})
    measured.measure("kernel", "xdv/security", {"code": "security"})
    measured.measure("configuration", "limits", {"jobs_max": limit})
    measured.measure("configuration", "file:providers.toml", {"absent": True})
    measured.measure("providers", "q/aer", {"version": provider})
    measured.measure("providers", "phi/exact", {"version": "2.0"})
    measured.complete()
    measured.activate_root()
    return measured


@pytest.mark.spec("XDV-062-5.1")
def test_the_root_cannot_be_minted_before_the_measurement_completes() -> None:
    measured = MeasuredBoot(KEY)
    for ask in (measured.activate_root, measured.authority, lambda: measured.quote(None)):
        with pytest.raises(BootError) as caught:
            ask()
        assert caught.value.code is ErrorCode.BOOT_NOT_MEASURED
    measured.measure("kernel", "xdv/core", 1)
    measured.measure("configuration", "limits", 2)
    with pytest.raises(BootError) as caught:  # the providers stage has not run
        measured.complete()
    assert caught.value.code is ErrorCode.BOOT_NOT_MEASURED
    with pytest.raises(BootError):
        measured.activate_root()
    measured.measure("providers", "q/aer", 3)
    with pytest.raises(BootError) as caught:
        measured.activate_root()  # measured, but not declared complete
    assert caught.value.code is ErrorCode.BOOT_NOT_MEASURED
    measured.complete()
    root = measured.activate_root()
    assert measured.authority().keys is KEY
    # The activation is the log's last event, after every measurement, and it is signed.
    assert [event.stage for event in measured.log.events][-1] == "root"
    assert root.logical_timestamp == 3 and root.issuer == KEY.public.fingerprint
    root.verify(KEY.public)
    with pytest.raises(BootError) as caught:
        measured.activate_root()
    assert caught.value.code is ErrorCode.BOOT_ORDER_VIOLATED


@pytest.mark.spec("XDV-062-4")
def test_stages_run_in_their_fixed_order_and_never_reopen() -> None:
    measured = MeasuredBoot(KEY)
    measured.measure("kernel", "xdv/core", 1)
    measured.measure("providers", "q/aer", 2)
    for stage, component in (("configuration", "limits"), ("kernel", "xdv/dpl")):
        with pytest.raises(BootError) as caught:
            measured.measure(stage, component, 3)
        assert caught.value.code is ErrorCode.BOOT_ORDER_VIOLATED
    with pytest.raises(BootError) as caught:
        measured.measure("providers", "q/aer", 4)  # measured twice
    assert caught.value.code is ErrorCode.BOOT_ORDER_VIOLATED
    with pytest.raises(BootError) as caught:
        measured.measure("root", "root-capability", 5)  # only activate_root writes the root
    assert caught.value.code is ErrorCode.BOOT_ORDER_VIOLATED
    with pytest.raises(XdvError) as caught:
        BootLog().extend("firmware", "rom", "0" * 64)
    assert caught.value.code is ErrorCode.BOOT_LOG_INVALID
    done = booted()
    with pytest.raises(BootError) as caught:
        done.measure("providers", "q/late", 1)
    assert caught.value.code is ErrorCode.BOOT_ORDER_VIOLATED
    with pytest.raises(BootError):
        done.log.extend("root", "again", "0" * 64)  # the log is closed


@pytest.mark.spec("XDV-062-8")
def test_a_failed_boot_logs_the_failure_and_activates_nothing() -> None:
    measured = MeasuredBoot(KEY)
    measured.measure("kernel", "xdv/core", 1)
    error = measured.fail("configuration", "providers.toml", XdvError("not valid TOML"))
    assert error.code is ErrorCode.BOOT_MEASUREMENT_FAILED
    last = measured.log.events[-1]
    assert (last.stage, last.component) == ("configuration", "failure:providers.toml")
    assert measured.log.closed
    for ask in (measured.complete, measured.activate_root, measured.authority):
        with pytest.raises(BootError) as caught:
            ask()
        assert caught.value.code is ErrorCode.BOOT_NOT_MEASURED


@pytest.mark.spec("XDV-062-3.1")
def test_the_log_is_a_hash_chain_that_survives_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "boot-log.jsonl"
    measured = booted(log_path=path)
    assert BootLog.load(path).digest == measured.log.digest
    assert BootLog.replay(measured.log.events).digest == measured.log.digest
    # The origin is 32 zero bytes, and every event moves the digest.
    seen = {BootLog().digest}
    log = BootLog()
    for event in measured.log.events:
        log.extend(event.stage, event.component, event.digest)
        assert log.digest not in seen
        seen.add(log.digest)
    assert BootLog().digest == "0" * 64
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["digest"] = "f" * 64
    lines[2] = json.dumps(record, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BootError) as caught:
        BootLog.load(path)
    assert caught.value.code is ErrorCode.BOOT_LOG_INVALID


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(BOOT_STAGES[:-1]), st.integers(0, 5), st.binary(max_size=8)),
        min_size=1,
        max_size=8,
        unique_by=lambda item: (item[0], item[1]),
    ),
    st.data(),
)
@pytest.mark.spec("XDV-062-3.1")
def test_changing_any_event_changes_the_final_digest(
    items: list[tuple[str, int, bytes]], data: st.DataObject
) -> None:
    order = {stage: index for index, stage in enumerate(BOOT_STAGES)}
    events = [
        BootEvent(stage, f"c{number}", hashlib.sha256(value).hexdigest())
        for stage, number, value in sorted(items, key=lambda item: order[item[0]])
    ]
    digest = BootLog.replay(events).digest
    index = data.draw(st.integers(0, len(events) - 1))
    changed = list(events)
    changed[index] = BootEvent(
        events[index].stage, events[index].component, hashlib.sha256(b"x" + bytes(1)).hexdigest()
    )
    if changed[index] != events[index]:
        assert BootLog.replay(changed).digest != digest
    if len(events) > 1 and events[0].stage == events[-1].stage:
        assert BootLog.replay(events[::-1]).digest != digest  # position counts


@pytest.mark.spec("XDV-062-10")
def test_a_quote_verifies_offline_with_key_nonce_and_expected_measurements() -> None:
    measured = booted()
    quote = measured.quote(NONCE)
    document = json.loads(quote.to_json())
    checked = verify_quote(
        document,
        trusted_key=KEY.public.fingerprint,
        nonce=NONCE,
        expected=expected_measurements(quote),
    )
    assert checked.digest == measured.log.digest
    assert checked.measurements == measured.log.events
    verify_quote(document)  # no requirements: still a genuine, complete boot


@pytest.mark.spec("XDV-062-10")
def test_a_nonce_mismatch_or_a_missing_nonce_is_refused() -> None:
    measured = booted()
    for quoted, asked in ((NONCE, b"other"), (None, NONCE)):
        with pytest.raises(BootError) as caught:
            verify_quote(measured.quote(quoted).to_document(), nonce=asked)
        assert caught.value.code is ErrorCode.QUOTE_NONCE_MISMATCH


@pytest.mark.spec("XDV-062-10")
def test_a_quote_by_another_key_is_refused_under_the_trusted_key() -> None:
    genuine_elsewhere = booted(OTHER).quote(NONCE).to_document()
    verify_quote(genuine_elsewhere, nonce=NONCE)  # genuine for its own key
    with pytest.raises(BootError) as caught:
        verify_quote(genuine_elsewhere, trusted_key=KEY.public.fingerprint, nonce=NONCE)
    assert caught.value.code is ErrorCode.QUOTE_KEY_UNTRUSTED


def _tampered(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


_FLIP = "f" * 64
_SIGNATURE = ErrorCode.QUOTE_SIGNATURE_INVALID
TAMPERS: dict[str, tuple[tuple[Any, ...], Any, ErrorCode]] = {
    "format": (("format",), "xdv-other", ErrorCode.QUOTE_MALFORMED),
    "version": (("version",), 2, ErrorCode.QUOTE_MALFORMED),
    "node": (("node",), OTHER.public.fingerprint, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "public_key": (("public_key",), OTHER.public.to_record(), ErrorCode.QUOTE_SIGNATURE_INVALID),
    "boot": (("boot",), 2, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "digest": (("digest",), _FLIP, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "nonce": (("nonce",), "ff" * 8, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "nonce-removed": (("nonce",), None, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "signature": (("signature",), "00" * 3376, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "event-stage": (
        ("measurements", 1, "stage"),
        "configuration",
        ErrorCode.QUOTE_SIGNATURE_INVALID,
    ),
    "event-component": (
        ("measurements", 0, "component"),
        "xdv/x",
        ErrorCode.QUOTE_SIGNATURE_INVALID,
    ),
    "event-digest": (("measurements", 4, "digest"), _FLIP, ErrorCode.QUOTE_SIGNATURE_INVALID),
    "root-event": (("measurements", 6, "digest"), _FLIP, ErrorCode.QUOTE_SIGNATURE_INVALID),
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
@pytest.mark.spec("XDV-062-10")
def test_tampering_with_any_field_of_a_quote_fails_verification(field: str) -> None:
    document = booted().quote(NONCE).to_document()
    path, value, code = TAMPERS[field]
    with pytest.raises(BootError) as caught:
        verify_quote(_tampered(document, path, value), nonce=NONCE)
    assert caught.value.code is code


@pytest.mark.spec("XDV-062-7")
def test_a_resigned_quote_with_an_altered_list_still_fails_the_chain() -> None:
    """An attacker holding a key can re-sign, but cannot make a list chain to another digest,
    skip the root's activation, or claim another boot number for the same root event."""
    events = list(booted().log.events)
    digest = BootLog.replay(events).digest
    forged = BootQuote.sign(KEY, 1, events, NONCE)
    altered = BootQuote(forged.node, forged.public_key, 1, tuple(events[:-1]), digest, NONCE)
    resigned = BootQuote(
        altered.node,
        altered.public_key,
        altered.boot,
        altered.measurements,
        altered.digest,
        altered.nonce,
        KEY.sign(altered.payload(), context=b"xdv-boot-quote"),
    )
    with pytest.raises(BootError) as caught:
        verify_quote(resigned)
    assert caught.value.code is ErrorCode.QUOTE_CHAIN_MISMATCH
    without_root = BootQuote.sign(KEY, 1, events[:-1], NONCE)
    with pytest.raises(BootError) as caught:
        verify_quote(without_root)
    assert caught.value.code is ErrorCode.QUOTE_CHAIN_MISMATCH
    other_boot = BootQuote.sign(KEY, 7, events, NONCE)  # the root event names boot 1
    with pytest.raises(BootError) as caught:
        verify_quote(other_boot)
    assert caught.value.code is ErrorCode.QUOTE_CHAIN_MISMATCH


@pytest.mark.spec("XDV-062-4")
def test_identical_inputs_give_an_identical_quote() -> None:
    first, second = booted().quote(NONCE), booted().quote(NONCE)
    assert first.payload() == second.payload()
    assert first.signature[:67] == second.signature[:67]  # tag and Ed25519 half: deterministic
    assert booted(boot=2).quote(NONCE).payload() != first.payload()  # a new boot, a new root


@pytest.mark.spec("XDV-062-4.3")
def test_a_changed_provider_or_configuration_is_reported_per_component() -> None:
    reference = expected_measurements(booted().quote(None))
    for changed, component in (
        (booted(provider="1.1"), "q/aer"),
        (booted(limit=101), "limits"),
    ):
        quote = changed.quote(None)
        with pytest.raises(BootError) as caught:
            verify_quote(quote.to_document(), expected=reference)
        assert caught.value.code is ErrorCode.QUOTE_MEASUREMENT_MISMATCH
        differences = caught.value.details["differences"]
        assert [(item["component"], item["kind"]) for item in differences] == [
            (component, "changed")
        ]
    trimmed = copy.deepcopy(reference)
    trimmed["measurements"] = [
        item for item in trimmed["measurements"] if item["component"] != "phi/exact"
    ]
    trimmed["measurements"].append(
        {"stage": "providers", "component": "q/gone", "digest": "a" * 64}
    )
    with pytest.raises(BootError) as caught:
        verify_quote(booted().quote(None).to_document(), expected=trimmed)
    kinds = {item["component"]: item["kind"] for item in caught.value.details["differences"]}
    assert kinds == {"phi/exact": "unexpected", "q/gone": "missing"}


def _golden_view(quote: BootQuote) -> dict[str, Any]:
    document = quote.to_document()
    signature = bytes.fromhex(document.pop("signature"))
    return {
        "quote": document,
        "payload_sha256": hashlib.sha256(quote.payload()).hexdigest(),
        "signature_ed25519": signature[3:67].hex(),
        "signature_bytes": len(signature),
    }


@pytest.mark.spec("XDV-062-3.1")
def test_the_quote_format_matches_its_golden_file() -> None:
    quote = booted(boot=3).quote(NONCE)
    actual = json.dumps(_golden_view(quote), indent=1, sort_keys=True) + "\n"
    if os.environ.get("XDV_REGENERATE_GOLDEN"):
        GOLDEN.write_text(actual)
    assert GOLDEN.read_text() == actual, "the boot quote format differs from its golden file"
    verify_quote(json.loads(GOLDEN.read_text())["quote"] | {"signature": quote.signature.hex()})


def test_measure_files_orders_by_relative_path_and_names_each_file(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.py").write_text("x")
    (tmp_path / "b" / "c.py").write_text("y")
    files = [tmp_path / "b" / "c.py", tmp_path / "a.py"]
    digest = measure_files(tmp_path, files)
    assert digest == measure_files(tmp_path, files[::-1])
    (tmp_path / "b" / "c.py").write_text("z")
    assert measure_files(tmp_path, files) != digest
    (tmp_path / "b" / "c.py").rename(tmp_path / "b" / "d.py")
    (tmp_path / "b" / "d.py").write_text("y")
    assert measure_files(tmp_path, [tmp_path / "a.py", tmp_path / "b" / "d.py"]) != digest


@pytest.mark.spec("XDV-062-10")
def test_verify_quote_command_reports_each_differing_component(tmp_path: Path) -> None:
    quote_path, expected_path = tmp_path / "quote.json", tmp_path / "expected.json"
    quote_path.write_text(booted(provider="9.9").quote(NONCE).to_json())
    expected_path.write_text(json.dumps(expected_measurements(booted().quote(None))))
    runner = CliRunner()
    fingerprint = KEY.public.fingerprint
    ok = runner.invoke(
        cli,
        [
            "node",
            "verify-quote",
            str(quote_path),
            "--trusted-key",
            fingerprint,
            "--nonce",
            NONCE.hex(),
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    differs = runner.invoke(
        cli, ["node", "verify-quote", str(quote_path), "--expected", str(expected_path)]
    )
    assert differs.exit_code == 1
    assert "changed" in differs.output and "providers/q/aer" in differs.output
    stale = runner.invoke(cli, ["node", "verify-quote", str(quote_path), "--nonce", "00"])
    assert stale.exit_code == 65 and "QUOTE_NONCE_MISMATCH" in stale.output
    wrong = runner.invoke(
        cli,
        ["node", "verify-quote", str(quote_path), "--trusted-key", OTHER.public.fingerprint],
    )
    assert wrong.exit_code == 65 and "QUOTE_KEY_UNTRUSTED" in wrong.output


@pytest.mark.spec("XDV-062-3.4")
def test_the_kernel_stage_measures_each_subpackage_of_the_code(tmp_path: Path) -> None:
    import xdv

    installed = MeasuredBoot(KEY)
    measure_kernel(installed)
    components = [event.component for event in installed.log.events]
    package = Path(xdv.__file__).parent
    subpackages = {
        f"xdv/{path.name}" for path in package.iterdir() if (path / "__init__.py").is_file()
    }
    assert subpackages <= set(components) and {"xdv/*", "runtime"} <= set(components)
    assert {event.stage for event in installed.log.events} == {"kernel"}
    # A copy of a small package: a changed file changes its subpackage's component only, and
    # compiled caches are not measured.
    root = tmp_path / "pkg"
    (root / "core" / "__pycache__").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "core" / "__init__.py").write_text("A = 1\n")
    (root / "core" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    (root / "trace").mkdir()
    (root / "trace" / "__init__.py").write_text("B = 1\n")

    def digests() -> dict[str, str]:
        boot = MeasuredBoot(KEY)
        measure_kernel(boot, root)
        return {event.component: event.digest for event in boot.log.events}

    first = digests()
    assert set(first) == {"xdv/*", "xdv/core", "xdv/trace", "runtime"}
    (root / "core" / "__pycache__" / "x.pyc").write_bytes(b"other cache")
    assert digests() == first
    (root / "core" / "__init__.py").write_text("A = 2\n")
    changed = digests()
    assert {name for name in first if first[name] != changed[name]} == {"xdv/core"}
