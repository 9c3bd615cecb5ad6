"""The node service against a real server (``xdv serve`` on an ephemeral loopback port, one for
the module): jobs, tenants and tokens, isolation between tenants, bad input, the CLI client."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import xdv
from node_helpers import Node, wait_finished
from xdv.core import FairSharePolicy
from xdv.runtime import replay
from xdv.service import (
    JOB_KINDS,
    RunnerPool,
    create_tenant,
    node_store,
    revoke,
    tenant_token,
)
from xdv.trace import EventType, read_trace, verify_trace

HELLO = 'K main { emit "hello"; let x = 6 * 7; emit "x = {x}"; }'
LONG = "K main { mut let i = 0; while i < 100000000 { i = i + 1; } emit 1; }"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("node")
    tokens = {
        "alice": create_tenant(home, "alice", weight=2)["token"],
        "bob": create_tenant(home, "bob")["token"],
        "slow": create_tenant(home, "slow", rate=0.5, burst=3)["token"],
        "doomed": create_tenant(home, "doomed")["token"],
        "tiny": create_tenant(home, "tiny", quotas={"processes": 1})["token"],
    }
    tokens["alice-ro"] = tenant_token(home, "alice")["token"]
    server = Node(home, runners=1).start()
    try:
        yield {"server": server, "home": home, "tokens": tokens}
    finally:
        server.stop()


def _http(node: dict[str, Any], tenant: str) -> httpx.Client:
    server: Node = node["server"]
    return server.client(node["tokens"][tenant])


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["number"], int)
    return str(body["error"]["code"])


@pytest.mark.spec("XDV-043-3.1", "XDV-043-6.1")
def test_a_dpl_job_runs_in_its_tenant_vhm_with_a_signed_trace_that_replays(
    node: dict[str, Any], tmp_path: Path
) -> None:
    with _http(node, "alice") as http:
        ack = http.post("/v1/jobs", json={"kind": "dpl", "source": HELLO, "seed": 7})
        assert ack.status_code == 202, ack.text
        assert ack.json()["state"] == "queued"
        job = wait_finished(http, ack.json()["id"])
        assert job["state"] == "succeeded", job
        assert job["exit_code"] == 0 and job["outputs"] == ["hello", "x = 42"]
        assert job["seed"] == 7 and job["attempts"] == 1
        assert job["timings"]["run_s"] >= 0
        trace = http.get(f"/v1/jobs/{job['id']}/trace")
        audit = http.get(f"/v1/jobs/{job['id']}/audit")
    assert trace.status_code == 200 and audit.status_code == 200
    path = tmp_path / "job.xdvt"
    path.write_bytes(trace.content)
    Path(f"{path}.audit").write_bytes(audit.content)
    assert verify_trace(path).ok
    entries = read_trace(path).entries
    start = entries[0].metadata
    assert start["seed"] == 7
    assert start["workload"]["vhms"] == [{"name": "alice", "weight": 2}]
    created = next(entry for entry in entries if entry.event_name == "VHM_CREATE")
    spawned = [entry for entry in entries if entry.event_name == "PROCESS_CREATE"]
    assert spawned and all(entry.vhm == created.metadata["id"] != 0 for entry in spawned)
    assert replay(path, "reexecute").ok  # the trace alone rebuilds the run, VHM included


@pytest.mark.spec("XDV-043-3.3")
def test_the_same_idempotency_key_gives_the_same_job(node: dict[str, Any]) -> None:
    body = {"kind": "dpl", "source": HELLO, "idempotency_key": "once"}
    with _http(node, "alice") as http:
        first = http.post("/v1/jobs", json=body).json()
        again = http.post("/v1/jobs", json=body).json()
        assert first["id"] == again["id"] and first["created"] and not again["created"]
        clash = http.post("/v1/jobs", json={**body, "seed": 1})
        assert clash.status_code == 409 and _error(clash) == "SERVICE_IDEMPOTENCY_CONFLICT"
    with _http(node, "bob") as http:  # keys are per tenant
        other = http.post("/v1/jobs", json=body).json()
    assert other["id"] != first["id"]


@pytest.mark.spec("XDV-043-5.2")
def test_no_tenant_sees_reads_or_cancels_another_tenants_job(node: dict[str, Any]) -> None:
    with _http(node, "alice") as alice:
        job = alice.post("/v1/jobs", json={"kind": "dpl", "source": HELLO}).json()
        wait_finished(alice, job["id"])
    with _http(node, "bob") as bob:
        for method, path in (
            ("GET", f"/v1/jobs/{job['id']}"),
            ("GET", f"/v1/jobs/{job['id']}/trace"),
            ("GET", f"/v1/jobs/{job['id']}/audit"),
            ("DELETE", f"/v1/jobs/{job['id']}"),
            ("GET", "/v1/jobs/jdoesnotexist"),
        ):
            answer = bob.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
            assert _error(answer) == "SERVICE_JOB_UNKNOWN"
        listed = bob.get("/v1/jobs").json()["jobs"]
    assert job["id"] not in {item["id"] for item in listed}


@pytest.mark.spec("XDV-043-5.2", "XDV-015-3.4")
def test_tokens_read_only_revoked_forged_and_missing_are_refused(node: dict[str, Any]) -> None:
    server: Node = node["server"]
    with _http(node, "alice") as alice:
        job = alice.post("/v1/jobs", json={"kind": "dpl", "source": HELLO}).json()
    with _http(node, "alice-ro") as read_only:
        assert read_only.get(f"/v1/jobs/{job['id']}").status_code == 200
        refused = read_only.post("/v1/jobs", json={"kind": "dpl", "source": HELLO})
        assert refused.status_code == 403 and _error(refused) == "SERVICE_FORBIDDEN"
        cancel = read_only.delete(f"/v1/jobs/{job['id']}")
        assert cancel.status_code == 403 and _error(cancel) == "SERVICE_FORBIDDEN"
    assert _error(httpx.get(f"{server.url}/v1/jobs")) == "SERVICE_UNAUTHENTICATED"
    token = node["tokens"]["bob"]
    flipped = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    for bad in ("nonsense", "xdv1.!!!", flipped):
        answer = httpx.get(f"{server.url}/v1/jobs", headers={"Authorization": f"Bearer {bad}"})
        assert answer.status_code == 401, answer.text
    # A revocation made by another process applies to the very next request.
    with _http(node, "doomed") as doomed:
        assert doomed.get("/v1/jobs").status_code == 200
        assert revoke(node["home"], "doomed")
        answer = doomed.get("/v1/jobs")
        assert answer.status_code == 401 and _error(answer) == "CAPABILITY_REVOKED"


def test_bad_input_gets_a_typed_4xx_never_a_5xx(node: dict[str, Any]) -> None:
    cases: list[tuple[bytes, str]] = [
        (b"", "SERVICE_REQUEST_INVALID"),
        (b"{not json", "INPUT_DECODE_FAILED"),
        (b"\xff\xfe", "INPUT_DECODE_FAILED"),
        (b"[" * 5000 + b"]" * 5000, "INPUT_LIMIT_EXCEEDED"),
        (b"[1, 2]", "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "fortran", "source": ""}', "SERVICE_KIND_UNKNOWN"),
        (b'{"kind": 3, "source": ""}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": 3}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "seed": -1}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "seed": true}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "seed": 1e300}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "extra": 1}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "qasm", "source": "", "params": {"shots": "many"}}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "qasm", "source": "", "params": {"shots": 0}}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "params": {"nope": 1}}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "params": []}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "", "idempotency_key": ""}', "SERVICE_REQUEST_INVALID"),
        (b'{"kind": "dpl", "source": "x", "seed": NaN}', "INPUT_DECODE_FAILED"),
    ]
    huge = json.dumps({"kind": "dpl", "source": "x" * (3 << 20)}).encode()
    cases.append((huge, "SERVICE_BODY_TOO_LARGE"))
    with _http(node, "bob") as http:
        for body, code in cases:
            answer = http.post(
                "/v1/jobs", content=body, headers={"Content-Type": "application/json"}
            )
            assert 400 <= answer.status_code < 500, (body[:60], answer.text)
            assert _error(answer) == code, (body[:60], answer.text)
        assert http.get("/v1/jobs", params={"limit": "x"}).status_code == 422
        assert http.get("/v1/jobs", params={"state": "bogus"}).status_code == 422
        assert http.put("/v1/jobs").status_code == 405
        assert _error(http.get("/v1/nowhere")) == "SERVICE_NOT_FOUND"
        # A small random slice of the fuzz test (the system test sends thousands).
        generator = random.Random(12)
        valid = json.dumps({"kind": "dpl", "source": HELLO, "params": {}, "seed": 1}).encode()
        for _ in range(60):
            data = bytearray(valid)
            for _ in range(generator.randint(1, 4)):
                data[generator.randrange(len(data))] = generator.randrange(256)
            answer = http.post("/v1/jobs", content=bytes(data))
            assert answer.status_code in (202, 400, 401, 413, 422), answer.text
            if answer.status_code != 202:
                _error(answer)


@pytest.mark.spec("XDV-043-3.3")
def test_a_program_with_errors_fails_with_its_diagnostics(node: dict[str, Any]) -> None:
    with _http(node, "bob") as http:
        ack = http.post("/v1/jobs", json={"kind": "dpl", "source": "K main { emit y; }"}).json()
        job = wait_finished(http, ack["id"])
        assert job["state"] == "failed" and job["exit_code"] == 65
        assert job["error"]["code"] == "DPL_CHECK"
        assert job["error"]["diagnostics"][0]["code"] == "T202"
        assert job["error"]["diagnostics"][0]["line"] == 1
        answer = http.get(f"/v1/jobs/{ack['id']}/trace")  # it never ran: no trace
        assert answer.status_code == 409 and _error(answer) == "SERVICE_TRACE_UNAVAILABLE"
        entry = http.post(
            "/v1/jobs", json={"kind": "dpl", "source": HELLO, "params": {"entry": "nope"}}
        ).json()
        assert wait_finished(http, entry["id"])["exit_code"] == 65


@pytest.mark.spec("XDV-043-6.1")
def test_a_tenant_over_its_rate_limit_gets_429(node: dict[str, Any]) -> None:
    with _http(node, "slow") as http:
        answers = [http.get("/v1/jobs") for _ in range(5)]
    codes = [answer.status_code for answer in answers]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:], codes
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert _error(limited) == "SERVICE_RATE_LIMITED" and int(limited.headers["Retry-After"]) >= 1


@pytest.mark.spec("XDV-043-3.3")
def test_cancelling_a_running_and_a_queued_job(node: dict[str, Any]) -> None:
    with _http(node, "bob") as http:
        long = http.post("/v1/jobs", json={"kind": "dpl", "source": LONG}).json()
        queued = http.post("/v1/jobs", json={"kind": "dpl", "source": HELLO, "seed": 3}).json()
        deadline = time.monotonic() + 30
        while http.get(f"/v1/jobs/{long['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        answer = http.delete(f"/v1/jobs/{queued['id']}")  # one runner: it is still queued
        assert answer.status_code == 202 and answer.json()["state"] == "cancelled"
        answer = http.delete(f"/v1/jobs/{long['id']}")
        assert answer.status_code == 202 and answer.json()["cancel_requested"]
        ended = wait_finished(http, long["id"])
        assert ended["state"] == "cancelled" and ended["exit_code"] == 130, json.dumps(ended)[:1500]
        assert ended["result"]["status"] == "interrupted"
        again = http.delete(f"/v1/jobs/{long['id']}")
        assert again.status_code == 409 and _error(again) == "SERVICE_JOB_FINISHED"
        assert http.get(f"/v1/jobs/{queued['id']}").json()["state"] == "cancelled"
        # The interrupted run's trace is complete and says so.
        trace = http.get(f"/v1/jobs/{long['id']}/trace").content
    assert read_trace(trace).entries[-1].metadata["status"] == "interrupted"


def test_health_metrics_and_the_openapi_document(node: dict[str, Any]) -> None:
    server: Node = node["server"]
    with _http(node, "bob") as http:
        assert http.post("/v1/jobs", json={"kind": "dpl", "source": HELLO}).status_code == 202
    health = httpx.get(f"{server.url}/v1/health").json()
    assert health["ok"] and health["runners"] == 1 and health["python_isolation"]
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.status_code == 200
    assert 'xdv_jobs_submitted_total{kind="dpl"}' in metrics.text
    assert "xdv_jobs_queued" in metrics.text
    document = httpx.get(f"{server.url}/v1/openapi.json").json()
    paths = document["paths"]
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/trace", "/v1/health"} <= set(paths)
    schema = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["kind"]["enum"] == list(JOB_KINDS)
    assert httpx.get(f"{server.url}/v1/docs").status_code == 200


def test_the_cli_quick_start(node: dict[str, Any], tmp_path: Path) -> None:
    server: Node = node["server"]
    home = str(node["home"])
    created = xdv("tenant", "create", "carol", "--weight", "3", "--home", home, "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    program = tmp_path / "hello.ds"
    program.write_text(HELLO, encoding="utf-8")
    environment = {"XDV_SERVER": server.url, "XDV_TOKEN": token}
    done = xdv("submit", str(program), "--wait", env=environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hello", "x = 42"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        job_id = http.get("/v1/jobs").json()["jobs"][0]["id"]
    trace = tmp_path / "out.xdvt"
    shown = xdv("job", job_id, "--trace", str(trace), "--json", env=environment)
    assert shown.returncode == 0 and json.loads(shown.stdout)["state"] == "succeeded"
    assert verify_trace(trace).ok and Path(f"{trace}.audit").is_file()
    missing = xdv("cancel", "jnothere", env=environment)
    assert missing.returncode == 64 and "SERVICE_JOB_UNKNOWN" in missing.stderr


@pytest.mark.spec("XDV-043-4.2")
def test_queued_jobs_are_ordered_by_weighted_fair_share(tmp_path: Path) -> None:
    store = node_store(tmp_path)
    pool = RunnerPool(store, tmp_path, runners=1)
    for seq in range(12):
        tenant = 1 if seq < 6 else 2  # tenant 1 (weight 2) queues first, then tenant 2
        pool.enqueue({"seq": seq, "tenant": tenant, "id": f"j{seq}", "kind": "dpl"}, 2 // tenant)
    order = []
    for _ in range(12):
        item = pool._take()
        assert item is not None
        order.append(item.vhm)
        pool._done(item, 0)
    store.close()
    # Both backlogged: weight 2 gets two dispatches for each of weight 1's, in a fixed order.
    # (Tenant 2's first job is level with tenant 1's first: an idle tenant banks no credit.)
    assert order == [1, 2, 1, 1, 2, 1, 1, 2, 1, 2, 2, 2], order
    assert isinstance(pool._policy, FairSharePolicy)


PYTHON_JOB = """
from xdv.syscalls import Emit

def count(n):
    for i in range(n):
        yield Emit(i)

def main(kernel):
    kernel.spawn(count, 3, vhm=kernel.vhms.find("bob"))
"""


def test_python_jobs_run_isolated_under_their_limits(node: dict[str, Any]) -> None:
    with _http(node, "bob") as http:
        ok = http.post("/v1/jobs", json={"kind": "python", "source": PYTHON_JOB}).json()
        hang = http.post(
            "/v1/jobs",
            json={
                "kind": "python",
                "source": "import time\n\ndef main(kernel):\n    time.sleep(60)\n",
                "params": {"wall_s": 0.5},
            },
        ).json()
        bad = http.post(
            "/v1/jobs", json={"kind": "python", "source": "def main(kernel) oops"}
        ).json()
        done = wait_finished(http, ok["id"])
        assert done["state"] == "succeeded" and done["outputs"] == [0, 1, 2], done
        hung = wait_finished(http, hang["id"])
        assert hung["state"] == "failed" and hung["error"]["code"].startswith("WORKER_"), hung
        broken = wait_finished(http, bad["id"])
        assert broken["exit_code"] == 65 and broken["error"]["code"] == "WORKLOAD_INVALID"
        refused = http.post(
            "/v1/jobs", json={"kind": "python", "source": "", "params": {"memory_mb": 1}}
        )
        assert refused.status_code == 422 and _error(refused) == "SERVICE_REQUEST_INVALID"


@pytest.mark.spec("XDV-043-3.1")
def test_a_python_jobs_unplaced_processes_run_under_its_tenants_quotas(
    node: dict[str, Any],
) -> None:
    # The setup names no VHM: its processes go into the tenant's VHM (one process at most).
    source = PYTHON_JOB.replace(', vhm=kernel.vhms.find("bob"))', ")\n    kernel.spawn(count, 2)")
    with _http(node, "tiny") as http:
        job = wait_finished(
            http, http.post("/v1/jobs", json={"kind": "python", "source": source}).json()["id"]
        )
    assert job["state"] == "failed" and job["outputs"] == [], job
    assert "VHM_QUOTA_EXCEEDED" in json.dumps(job)
    with _http(node, "bob") as http:
        job = wait_finished(
            http, http.post("/v1/jobs", json={"kind": "python", "source": source}).json()["id"]
        )
        trace = read_trace(http.get(f"/v1/jobs/{job['id']}/trace").content)
    assert job["state"] == "succeeded" and sorted(job["outputs"]) == [0, 0, 1, 1, 2], job
    spawned = {e.vhm for e in trace.entries if e.event_type is EventType.PROCESS_CREATE}
    assert spawned == {1}  # the tenant's VHM, never the root (0)


@pytest.mark.spec("XDV-070-5.2")
def test_metrics_carry_trace_derived_totals_per_tenant(node: dict[str, Any]) -> None:
    """A finished job's trace is measured once and added to its tenant's totals on /metrics;
    the figures are the trace's own (xdv.telemetry over the downloaded trace)."""
    from prometheus_client.parser import text_string_to_metric_families

    from xdv.telemetry import metrics_from_trace

    server: Node = node["server"]

    def totals() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{server.url}/metrics").text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith("xdv_traced_")
        }

    with _http(node, "alice") as http:
        # The tenant's earlier jobs end first, so that only this job moves its totals.
        for earlier in http.get("/v1/jobs").json()["jobs"]:
            wait_finished(http, earlier["id"])
        before = totals()
        ack = http.post("/v1/jobs", json={"kind": "dpl", "source": HELLO, "seed": 11})
        job = wait_finished(http, ack.json()["id"])
        trace = http.get(f"/v1/jobs/{job['id']}/trace").content
    snapshot = metrics_from_trace(trace)
    after = totals()
    tenant = (("tenant", "alice"),)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        key = (name, tuple(sorted(tenant + labels)))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("xdv_traced_jobs_total") == 1
    assert grew("xdv_traced_entries_total") == snapshot.run.entries
    assert grew("xdv_traced_steps_total") == snapshot.value("xdv_run_steps_total") > 0
    assert after[("xdv_traced_traces", ())] >= 1
    # Scrapes read the totals only: a second scrape is the same.
    assert totals() == after
