"""Third-party providers as plug-ins: the entry-point groups and ``$XDV_HOME/providers.toml``.

The plug-in under test (``tests/plugins/acme_xdv.py``) is installed as a real distribution: a
folder on ``sys.path`` holding the module and an ``acme_xdv-1.2.0.dist-info`` with its
``METADATA`` and ``entry_points.txt``, exactly what ``pip install`` leaves behind, so
``importlib.metadata`` finds it as it would any installed package.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from xdv.domains import PLUGIN_GROUPS, PluginError, available_plugins, find_plugin, load_plugin
from xdv.domains.q import QProvider
from xdv.domains.q.testing import BELL, assert_provider_consistent
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import RunRequest, q_job, q_report, replay, run
from xdv.trace import read_trace

FIXTURE = Path(__file__).parent / "plugins" / "acme_xdv.py"
Q = PLUGIN_GROUPS["q"]


def install(site: Path, version: str = "1.2.0", entries: str | None = None) -> None:
    """Install the acme-xdv distribution into ``site`` (as pip would)."""
    shutil.copy(FIXTURE, site / "acme_xdv.py")
    for old in site.glob("acme_xdv-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"acme_xdv-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: acme-xdv\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        entries
        if entries is not None
        else "[xdv.q_providers]\nacme = acme_xdv:factory\nacme-broken = acme_xdv:failing_factory\n"
        "acme-wrong = acme_xdv:wrong_type\nacme-missing = acme_xdv_absent:factory\n"
    )
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh XDV home and a site folder with acme-xdv installed, on sys.path."""
    folder = tmp_path / "site"
    folder.mkdir()
    install(folder)
    monkeypatch.setenv("XDV_HOME", str(tmp_path / "home"))
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("acme_xdv", None)


def test_an_installed_entry_point_is_found_with_its_distribution(site: Path) -> None:
    spec = find_plugin(Q, "acme")
    assert (spec.distribution, spec.version, spec.target) == (
        "acme-xdv",
        "1.2.0",
        "acme_xdv:factory",
    )
    assert "acme" in available_plugins(Q)
    provider = load_plugin(Q, "acme", interface=QProvider)
    assert provider.provider_id == "acme"
    assert_provider_consistent(provider)


def test_a_plugin_provider_runs_a_job_through_the_kernel_and_its_trace_replays(
    site: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "bell.xdvt"
    outcome = run(RunRequest(q_job(BELL, shots=300, provider="acme"), seed=3, trace=trace))
    report = q_report(outcome)
    assert sum(report["counts"].values()) == 300
    assert set(report["counts"]) <= {"00", "11"} and len(report["counts"]) == 2
    start = read_trace(trace.read_bytes()).entries[0].metadata
    recorded = start["domains"]["Q"]["providers"]["acme"]["plugin"]
    assert recorded == {
        "group": "xdv.q_providers",
        "name": "acme",
        "factory": "acme_xdv:factory",
        "distribution": "acme-xdv",
        "version": "1.2.0",
    }
    assert replay(trace).ok
    # Another version of the distribution is other code: the replay is refused, typed.
    install(site, version="1.3.0")
    with pytest.raises(XdvError) as caught:
        replay(trace)
    assert caught.value.code is ErrorCode.PLUGIN_VERSION_MISMATCH
    assert "1.2.0" in caught.value.message


def test_the_configuration_file_names_factories_and_configures_them(
    site: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "providers.toml").write_text(
        '[q.acme-lab]\nfactory = "acme_xdv:factory"\nprovider_id = "acme-lab"\nqubits_max = 5\n'
    )
    spec = find_plugin(Q, "acme-lab")
    assert spec.source == "config" and spec.distribution is None
    provider = load_plugin(Q, "acme-lab", interface=QProvider)
    assert provider.qubits_max("statevector") == 5
    # A configured identity fingerprint that the provider's key does not match is refused.
    (home / "providers.toml").write_text(
        '[q.acme-lab]\nfactory = "acme_xdv:factory"\nprovider_id = "acme-lab"\nidentity = "00"\n'
    )
    with pytest.raises(XdvError) as caught:
        load_plugin(Q, "acme-lab")
    assert caught.value.code is ErrorCode.PROVIDER_KEY_MISMATCH


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nobody", ErrorCode.PLUGIN_NOT_FOUND),
        ("acme-missing", ErrorCode.PLUGIN_LOAD_FAILED),
        ("acme-broken", ErrorCode.PLUGIN_FACTORY_FAILED),
        ("acme-wrong", ErrorCode.PLUGIN_INVALID),
    ],
)
def test_load_failures_are_typed(site: Path, name: str, code: ErrorCode) -> None:
    with pytest.raises(PluginError) as caught:
        load_plugin(Q, name, interface=QProvider)
    assert caught.value.code is code
    assert name in str(caught.value)


def test_a_provider_id_other_than_the_plugin_name_is_refused(site: Path) -> None:
    with pytest.raises(PluginError) as caught:
        load_plugin(Q, "acme", config={"provider_id": "aer"})
    assert caught.value.code is ErrorCode.PLUGIN_INVALID


def test_a_malformed_configuration_file_is_typed(site: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for text in ("[q.acme\n", "q = 3\n", '[q.acme]\nfactory = "no colon"\n', "[q.Bad]\n"):
        (home / "providers.toml").write_text(text)
        with pytest.raises(PluginError) as caught:
            find_plugin(Q, "acme")
        assert caught.value.code is ErrorCode.PLUGIN_CONFIG_INVALID, text


def test_a_declared_but_unknown_provider_fails_the_job_typed(site: Path) -> None:
    with pytest.raises(XdvError) as caught:
        run(RunRequest(q_job(BELL, shots=10, provider="nobody")))
    assert caught.value.code is ErrorCode.PLUGIN_NOT_FOUND
    assert "nobody" in caught.value.message


def test_a_plugin_whose_identity_key_changed_is_refused(site: Path, tmp_path: Path) -> None:
    run(RunRequest(q_job(BELL, shots=10, provider="acme"), audit=False))
    key = tmp_path / "home" / "keys" / "provider-acme.key"
    key.unlink()  # the provider comes back with another key: its pinned one no longer matches
    with pytest.raises(XdvError) as caught:
        run(RunRequest(q_job(BELL, shots=10, provider="acme"), audit=False))
    assert caught.value.code is ErrorCode.PROVIDER_KEY_MISMATCH
