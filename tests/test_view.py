"""XDV View without a browser: the state fold and its checkpoints, deterministic rendering,
the routes of ``xdv view`` and the node's token-gated ``/view``, and the built assets."""

from __future__ import annotations

import hashlib
import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, WORKLOADS
from xdv.core import AuditConfig
from xdv.errors import ErrorCode
from xdv.runtime import run_workload
from xdv.trace import first_divergence
from xdv.view import (
    CATEGORIES,
    COOKIE,
    MANIFEST,
    STATIC,
    Renderer,
    TraceIndex,
    ViewError,
    check_assets,
    create_view_app,
    fold,
)
from xdv.view._app import Sessions

HYBRID = ROOT / "tests" / "golden" / "view" / "hybrid.xdvt"
STEPS = f"{WORKLOADS / 'view_steps.py'}:main"


def _steps(path: Path, rounds: int = 40, workers: int = 3) -> Path:
    run_workload(
        STEPS,
        trace=path,
        fsync="never",
        audit=AuditConfig(interval=16),
        params={"workers": workers, "rounds": rounds},
    )
    return path


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _steps(tmp_path_factory.mktemp("view") / "steps.xdvt")


@pytest.fixture(scope="module")
def hybrid() -> TraceIndex:
    return TraceIndex.open(HYBRID)


@pytest.mark.spec("XDV-090-4.1")
@pytest.mark.spec("XDV-090-8.2")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(interval=st.integers(1, 64), fraction=st.floats(0, 1.05), which=st.sampled_from([0, 1]))
def test_the_state_at_L_from_checkpoints_equals_a_fold_from_the_start(
    steps: Path, interval: int, fraction: float, which: int
) -> None:
    index = TraceIndex.open([steps, HYBRID][which], interval=interval)
    L = int(fraction * index.last_time)
    expected = fold([entry for entry in index.entries if entry.logical_time <= L])
    actual = index.state_at(L)
    assert actual.summary() == expected.summary()
    assert actual.applied == sum(1 for entry in index.entries if entry.logical_time <= L)
    assert actual.clock <= L
    assert len(index.checkpoints) == -(-len(index.entries) // interval)


@pytest.mark.spec("XDV-090-4.2")
def test_the_same_trace_at_the_same_L_renders_the_same_bytes(steps: Path) -> None:
    documents = []
    for _ in range(2):  # two independent indexes, renderers and applications
        client = TestClient(create_view_app(steps))
        documents.append([client.get(f"/?L={L}").content for L in (0, 7, 30, 10**6)])
        documents[-1].append(client.get("/panels?L=12").content)
        documents[-1].append(client.get("/timeline?low=3&high=40").content)
    assert documents[0] == documents[1]
    first, seventh = documents[0][0], documents[0][1]
    assert first != seventh  # the state moved between L 0 and L 7
    # The end of the run is the default L, and an L past it is the end.
    client = TestClient(create_view_app(steps))
    assert client.get("/").content == documents[0][3]
    renderer = Renderer("/")
    index = TraceIndex.open(steps)
    assert renderer.page(index, 7, base="/").encode() == seventh


@pytest.mark.spec("XDV-090-5.1")
@pytest.mark.spec("XDV-090-5.2")
@pytest.mark.spec("XDV-090-5.3")
@pytest.mark.spec("XDV-090-12")
def test_the_panels_show_the_recorded_values(hybrid: TraceIndex) -> None:
    renderer = Renderer("/")
    end = renderer.page(hybrid, None, base="/")
    # K: the process, its lifecycle, emitted lines, the logical clock.
    assert "dpl:K::main" in end and "bell pair measured 11" in end
    assert re.search(r'id="clock">18<', end) and "RELEASED" in end
    # Q: the calibration profile, contract, container, fidelity, margins, measurement log.
    assert re.search(r'id="calibration">fake_sherbrooke<', end)
    assert "0.937319" in end and "T1 231985 ns" in end and "00: 126" in end
    # Φ: the envelope and its window, stability, the witness.
    assert "L 11–27" in end and re.search(r'id="stability">1 \(tolerance 0.5', end)
    assert "ADMISSIBLE" in end and "ad7137b883652b70" in end
    # Audit: an intact chain, a verified signed audit file, attestations.
    assert re.search(r'id="chain-status" class="pass">intact<', end)
    assert re.search(r'id="audit-status" class="pass">verified, signed<', end)
    assert "exact-cpsat" in end and "recorded trace: read-only replay, not live" in end
    # Before the Q reservation (L 3) there is no calibration, and before L 9 no such line.
    early = renderer.panels(hybrid, 2)
    assert re.search(r'id="calibration">none<', early) and "bell pair" not in early
    assert "fake_sherbrooke" in renderer.panels(hybrid, 3)
    # No raw Q or Φ state: the state holds only recorded, structured values.
    state = hybrid.state_at(hybrid.last_time).summary()
    assert "amplitude" not in repr(state) and "phases" not in repr(state)


@pytest.mark.spec("XDV-090-5.1")
@pytest.mark.spec("XDV-090-8.2")
def test_channels_and_faults_show_in_the_k_panel(tmp_path: Path) -> None:
    channels = tmp_path / "channels.xdvt"
    run_workload(f"{ROOT / 'examples' / 'producer_consumer.py'}", trace=channels, fsync="never")
    index = TraceIndex.open(channels)
    state = index.state_at(index.last_time)
    assert [c["name"] for c in state.channels.values()] == ["jobs", "results"]
    assert all(
        c["sent"] == c["received"] > 0 and c["state"] == "closed" for c in state.channels.values()
    )
    assert '<table id="channels">' in Renderer("/").panels(index, None)
    failed = tmp_path / "failed.xdvt"
    run_workload(STEPS, trace=failed, fsync="never", params={"rounds": 5, "fail": True})
    index = TraceIndex.open(failed)
    panels = Renderer("/").panels(index, None)
    assert index.state_at(index.last_time).faults >= 1
    assert "the view shows this fault" in panels and 'id="faults"' in panels
    fault = next(e for e in index.entries if e.event_name == "FAULT")
    assert index.categories[fault.seq] == CATEGORIES.index("fault")  # marked on the timeline
    assert "the view shows this fault" not in Renderer("/").panels(index, fault.logical_time - 1)


@pytest.mark.spec("XDV-090-12")
def test_the_inclusion_proof_is_computed_and_verified_by_the_server(tmp_path: Path) -> None:
    index = TraceIndex.open(HYBRID)
    for entry in (0, 17, len(index.entries) - 1):
        check = index.inclusion(entry)
        assert check.ok and check.root_source == "the final signed tree head"
        assert check.leaf == index.entries[entry].hash.hex()
    client = TestClient(create_view_app(HYBRID, index=index))
    answer = client.get("/proof?entry=17")
    assert answer.status_code == 200 and 'data-ok="true"' in answer.text and "PASS" in answer.text
    # A leaf that is not the recorded entry fails against the signed root.
    index.hashes[17] = hashlib.sha256(b"forged").digest()
    forged = client.get("/proof?entry=17")
    assert 'data-ok="false"' in forged.text and "FAIL" in forged.text
    missing = client.get(f"/proof?entry={len(index.entries)}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "VIEW_ENTRY_UNKNOWN"


@pytest.mark.spec("XDV-090-6.1")
@pytest.mark.spec("XDV-090-8.1")
def test_routes_timeline_paging_and_bad_requests(steps: Path, tmp_path: Path) -> None:
    before = steps.read_bytes()
    index = TraceIndex.open(steps)
    client = TestClient(create_view_app(steps, index=index))
    page = client.get("/?L=5")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/?L=-1").status_code == 400
    for digits in ("²", "١٢", "０"):  # digits to str.isdigit, but not numbers of the address
        assert client.get(f"/state?L={digits}").status_code == 400
    bad = client.get("/panels?L=x")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VIEW_REQUEST_INVALID"
    assert client.get("/proof").status_code == 400
    # The step buttons go to the previous and next recorded logical times.
    times = sorted({entry.logical_time for entry in index.entries})
    middle = times[len(times) // 2]
    assert index.step(middle, 1) == times[len(times) // 2 + 1]
    assert index.step(middle, -1) == times[len(times) // 2 - 1]
    assert index.step(times[-1], 1) == times[-1] and index.step(0, -1) == 0
    # The timeline answers a window, every entry in it, or buckets whose counts add up.
    window = client.get("/timeline?low=10&high=20").json()
    inside = [e for e in index.entries if 10 <= e.logical_time <= 20]
    assert window["entries"] == len(inside) == len(window["points"])
    assert all(10 <= point[0] <= 20 for point in window["points"])
    assert window["categories"] == list(CATEGORIES)
    pairs = len({(row, kind) for row, kind in zip(index.rows, index.categories, strict=True)})
    for limit in (10, 30, 100):
        coarse = index.timeline(0, index.last_time, limit=limit)
        assert coarse["bucket"] > 1 and len(coarse["points"]) <= max(limit, pairs)
        assert sum(p[3] for p in coarse["points"]) == len(index.entries)
    assert client.get("/timeline?low=9&high=3").status_code == 400
    state = client.get("/state?L=5").json()
    assert state["L"] == 5 and state["state"]["applied"] == index.count_at(5)
    # Only the manifest's assets are served; nothing is written to the trace.
    assert client.get("/static/view.js").status_code == 200
    assert client.get("/static/MANIFEST.json").status_code == 404
    assert client.get("/diff").status_code in (404, 405)
    assert steps.read_bytes() == before


@pytest.mark.spec("XDV-090-8.1")
def test_the_diff_view_shows_the_first_divergence_field_by_field(
    steps: Path, tmp_path: Path
) -> None:
    other = _steps(tmp_path / "other.xdvt", rounds=41)
    left, right = TraceIndex.open(steps), TraceIndex.open(other)
    divergence = first_divergence(left.entries, right.entries)
    assert divergence is not None
    client = TestClient(create_view_app(steps, index=left, other=right))
    assert 'href="/diff"' in client.get("/").text
    page = client.get("/diff").text
    assert f"They first differ at entry {divergence.index}" in page
    for name, _, _ in divergence.differences:
        assert f"<td>{name}</td>" in page
    same = TestClient(create_view_app(steps, index=left, other=left)).get("/diff").text
    assert "The traces are identical" in same


def test_unreadable_traces_are_refused_with_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ViewError) as refused:
        TraceIndex.open(tmp_path / "missing.xdvt")
    assert refused.value.code == ErrorCode.VIEW_TRACE_UNREADABLE
    junk = tmp_path / "junk.xdvt"
    junk.write_bytes(b"not a trace at all")
    with pytest.raises(ViewError):
        TraceIndex.open(junk)
    # A torn trace is shown up to its first problem, and says so.
    torn = tmp_path / "torn.xdvt"
    torn.write_bytes(HYBRID.read_bytes()[:-10])
    index = TraceIndex.open(torn)
    assert index.audit is not None and index.audit.chain == "damaged"
    assert index.audit.audit_error == "not checked: the trace is damaged"
    assert len(index.entries) == 50 and not index.complete
    page = Renderer("/").page(index, None, base="/")
    assert 'id="chain-status" class="fail">damaged' in page
    from xdv.cli._main import cli

    result = CliRunner().invoke(cli, ["view", str(junk), "--port", "0"])
    assert result.exit_code == 64 and "VIEW_TRACE_UNREADABLE" in result.output


def test_the_built_assets_match_their_manifest_and_ship_as_package_data() -> None:
    manifest = check_assets()
    built = sorted(p.name for p in STATIC.iterdir() if p.name != MANIFEST.name)
    assert sorted(manifest) == built == ["view.css", "view.js"]
    for name, digest in manifest.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest
    # Nothing is fetched from elsewhere at run time.
    page = Renderer("/").page(TraceIndex.open(HYBRID), 0, base="/")
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["xdv.view"]
    package = STATIC.parent
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    wanted = {*STATIC.iterdir(), *(package / "templates").iterdir()}
    assert wanted <= shipped


# -- the node's /view ------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from xdv.service import create_app, create_tenant, tenant_token

    home = tmp_path_factory.mktemp("node")
    tokens = {
        "alice": create_tenant(home, "alice")["token"],
        "bob": create_tenant(home, "bob")["token"],
    }
    tokens["alice-ro"] = tenant_token(home, "alice")["token"]
    with TestClient(create_app(home, runners=1)) as client:
        submitted = client.post(
            "/v1/jobs",
            json={"kind": "dpl", "source": 'K main { emit "seen by alice"; }'},
            headers={"Authorization": f"Bearer {tokens['alice']}"},
        )
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while True:
            state = client.get(
                f"/v1/jobs/{job}", headers={"Authorization": f"Bearer {tokens['alice']}"}
            ).json()["state"]
            if state in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        yield {"client": client, "tokens": tokens, "job": job, "home": home}


@pytest.mark.spec("XDV-090-7.1")
def test_the_node_view_is_gated_by_the_tenants_token(node: dict[str, Any]) -> None:
    client: TestClient = node["client"]
    tokens, job = node["tokens"], node["job"]
    client.cookies.clear()
    assert client.get("/view/").status_code == 401  # the sign-in form
    assert client.get(f"/view/jobs/{job}/").status_code == 401
    # A token is never taken from the address (it would stay in histories and logs, and a
    # link could sign a victim into another tenant): only the posted form signs in, and a
    # form posted from another site is refused.
    tokened = client.get(f"/view/?token={tokens['alice-ro']}", follow_redirects=False)
    assert tokened.status_code == 401 and COOKIE not in tokened.cookies
    forged_site = client.post(
        "/view/login",
        data={"token": tokens["alice-ro"]},
        headers={"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert forged_site.status_code == 403 and COOKIE not in forged_site.cookies
    older_browser = client.post(  # no Sec-Fetch-Site: the Origin of another host tells
        "/view/login",
        data={"token": tokens["alice-ro"]},
        headers={"Origin": "https://elsewhere.example"},
        follow_redirects=False,
    )
    assert older_browser.status_code == 403
    refused = client.post("/view/login", data={"token": "forged"}, follow_redirects=False)
    assert refused.status_code == 401 and COOKIE not in refused.cookies
    # A read-only token is exchanged for an HttpOnly, SameSite=Strict cookie on /view.
    signed = client.post("/view/login", data={"token": tokens["alice-ro"]}, follow_redirects=False)
    assert signed.status_code == 303
    header = signed.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/view" in header
    listing = client.get("/view/")
    assert listing.status_code == 200 and job in listing.text
    page = client.get(f"/view/jobs/{job}/")
    assert page.status_code == 200 and "seen by alice" in page.text
    assert f"/view/jobs/{job}/timeline" in page.text and "/view/static/view.js" in page.text
    assert client.get(f"/view/jobs/{job}/proof?entry=1").status_code == 200
    assert client.get("/view/static/view.css").status_code == 200
    # Another tenant's job is unknown, as in the API; so is a job that does not exist.
    client.cookies.clear()
    client.post("/view/login", data={"token": tokens["bob"]})
    other = client.get(f"/view/jobs/{job}/")
    assert other.status_code == 404 and other.json()["error"]["code"] == "SERVICE_JOB_UNKNOWN"
    assert job not in client.get("/view/").text
    assert client.get("/view/jobs/nope/panels").status_code == 404
    client.post("/view/logout")
    client.cookies.clear()
    assert client.get(f"/view/jobs/{job}/").status_code == 401


def test_sessions_are_capped_per_tenant_so_no_tenant_signs_another_out() -> None:
    sessions = Sessions(per_tenant=2)
    bob = sessions.open(2, "bob-token")
    alice = [sessions.open(1, f"alice-{n}") for n in range(50)]
    assert sessions.token(bob) == "bob-token"
    assert [sessions.token(s) for s in alice[-2:]] == ["alice-48", "alice-49"]
    assert sessions.token(alice[0]) is None  # a tenant's own oldest goes first
    sessions.close(bob)
    assert sessions.token(bob) is None
