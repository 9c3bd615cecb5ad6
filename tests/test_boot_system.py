"""The node's real measured boot: ``xdv serve`` boots measured and serves its quote; a changed
provider, plug-in, limit, configuration file or tenant changes the quote, component by
component (slow: each boot builds and attests the embedded providers)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from node_helpers import Node
from test_plugins import install
from xdv.cli._main import cli
from xdv.errors import ErrorCode
from xdv.inputs import LIMITS
from xdv.security import BootError, BootLog, KeyStore, expected_measurements, verify_quote
from xdv.service import boot_node, boot_number, create_tenant

pytestmark = pytest.mark.system


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("XDV_HOME", str(folder))
    yield folder


@pytest.mark.spec("XDV-062-3.4", "XDV-062-10")
def test_a_served_node_boots_measured_and_serves_a_fresh_quote(home: Path) -> None:
    node = Node(home).start()
    try:
        fingerprint = KeyStore(home / "keys").public_key().fingerprint
        answer = httpx.get(f"{node.url}/v1/node/quote", params={"nonce": "c0ffee"}, timeout=30)
        assert answer.status_code == 200, answer.text
        quote = verify_quote(answer.json(), trusted_key=fingerprint, nonce=bytes.fromhex("c0ffee"))
        refused = httpx.get(f"{node.url}/v1/node/quote", params={"nonce": "xyz"}, timeout=30)
        assert refused.status_code == 422
    finally:
        node.stop()
    assert quote.boot == boot_number(home) == 1
    # The boot log kept under the home chains to the quoted digest.
    assert BootLog.load(home / "boot" / "boot-log.jsonl").digest == quote.digest
    stages = [event.stage for event in quote.measurements]
    assert stages == sorted(stages, key=("kernel", "configuration", "providers", "root").index)
    components = {event.component for event in quote.measurements}
    assert {"xdv/core", "xdv/security", "runtime", "limits", "tenants", "service"} <= components
    assert {"q/aer", "q/stim", "phi/exact", "phi/phase"} <= components
    # `xdv node attest` measures what the server measured: the same boot, the same digest.
    quote_path, expected_path = home / "quote.json", home / "expected.json"
    result = CliRunner().invoke(
        cli,
        [
            "node",
            "attest",
            "--home",
            str(home),
            "-o",
            str(quote_path),
            "--expected-out",
            str(expected_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["digest"] == quote.digest
    verify_quote(answer.json(), expected=json.loads(expected_path.read_text()))
    checked = CliRunner().invoke(
        cli,
        [
            "node",
            "verify-quote",
            str(quote_path),
            "--expected",
            str(expected_path),
            "--trusted-key",
            fingerprint,
        ],
    )
    assert checked.exit_code == 0, checked.output


@pytest.mark.spec("XDV-062-4.3")
def test_a_changed_provider_or_configuration_changes_the_quote(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install(site)
    monkeypatch.syspath_prepend(str(site))

    def quote() -> dict[str, object]:
        return boot_node(home, options={"runners": 2}).quote(None).to_document()

    def changed(before: dict[str, object], after: dict[str, object]) -> set[str]:
        with pytest.raises(BootError) as caught:
            verify_quote(after, expected=expected_measurements(verify_quote(before)))
        assert caught.value.code is ErrorCode.QUOTE_MEASUREMENT_MISMATCH
        return {
            f"{item['stage']}/{item['component']}:{item['kind']}"
            for item in caught.value.details["differences"]
        }

    first = quote()
    assert quote()["digest"] == first["digest"]  # identical inputs: identical measurement
    plugin = verify_quote(first).measurements
    acme = next(event for event in plugin if event.component == "q/acme")  # the entry point
    assert acme.stage == "providers"
    # A plug-in configured in providers.toml.
    (home / "providers.toml").write_text("[q.acme]\nqubits_max = 5\n")
    configured = quote()
    assert changed(first, configured) == {
        "configuration/file:providers.toml:changed",
        "providers/q/acme:changed",
    }
    # Its configuration changed.
    (home / "providers.toml").write_text("[q.acme]\nqubits_max = 6\n")
    reconfigured = quote()
    assert changed(configured, reconfigured) == {
        "configuration/file:providers.toml:changed",
        "providers/q/acme:changed",
    }
    # Another version of the distribution installed (same code): each of its entry points.
    install(site, version="1.3.0")
    upgraded = quote()
    assert changed(reconfigured, upgraded) == {
        f"providers/q/{name}:changed"
        for name in ("acme", "acme-broken", "acme-missing", "acme-wrong")
    }
    # A new plug-in provider appears.
    (home / "providers.toml").write_text(
        '[q.acme]\nqubits_max = 6\n\n[q.acme-two]\nfactory = "acme_xdv:factory"\n'
        'provider_id = "acme-two"\n'
    )
    extended = quote()
    assert changed(upgraded, extended) == {
        "configuration/file:providers.toml:changed",
        "providers/q/acme-two:unexpected",
    }
    # A limit, a tenant and a service option.
    monkeypatch.setitem(
        LIMITS, "source_bytes_max", dataclasses.replace(LIMITS["source_bytes_max"], value=1)
    )
    limited = quote()
    assert changed(extended, limited) == {"configuration/limits:changed"}
    create_tenant(home, "alice")
    tenanted = quote()
    assert changed(limited, tenanted) == {"configuration/tenants:changed"}
    other = boot_node(home, options={"runners": 3}).quote(None).to_document()
    assert changed(tenanted, other) == {"configuration/service:changed"}
    sys.modules.pop("acme_xdv", None)


@pytest.mark.spec("XDV-062-8")
def test_a_malformed_configuration_aborts_the_boot_before_the_root(home: Path) -> None:
    (home / "providers.toml").write_text("[q.acme\n")
    result = CliRunner().invoke(cli, ["node", "attest", "--home", str(home), "--json"])
    assert result.exit_code == 70, result.output
    assert json.loads(result.output)["error"]["code"] == "BOOT_MEASUREMENT_FAILED"
    node = Node(home)
    with pytest.raises(AssertionError):
        node.start(timeout=5)  # the server does not start half-measured
    node.stop()
    assert node.process is not None and node.process.wait(timeout=30) == 70
    last = json.loads((home / "boot" / "boot-log.jsonl").read_text().splitlines()[-1])
    assert (last["stage"], last["component"]) == ("configuration", "failure:configuration")
