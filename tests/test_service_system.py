"""End-to-end tests of the node service (``--system``): a server killed with SIGKILL under
concurrent load loses and duplicates nothing; thousands of malformed requests get typed 4xx
answers; Q and Φ jobs run through the devices' lanes."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from node_helpers import Node, wait_finished
from xdv.runtime import replay
from xdv.service import create_tenant
from xdv.trace import verify_trace

pytestmark = pytest.mark.system

# A job that keeps a runner busy for a little while (the loop is DPL instructions).
WORK = "K main {{ mut let i = 0; while i < {n} {{ i = i + 1; }} emit i; }}"


@pytest.mark.spec("XDV-043-3.3")
def test_sigkill_under_concurrent_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    token = create_tenant(tmp_path, "load")["token"]
    node = Node(tmp_path, runners=2).start()
    acknowledged: dict[str, str] = {}  # idempotency key → job id
    bodies: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        with node.client(token) as http:
            for number in range(6):
                key = f"c{index}-{number}"
                body = {
                    "kind": "dpl",
                    "source": WORK.format(n=20000 + 1000 * (number % 3)),
                    "seed": number % 3,
                    "idempotency_key": key,
                }
                with lock:
                    bodies[key] = body
                if stop.is_set():
                    return
                try:
                    answer = http.post("/v1/jobs", json=body)
                except httpx.HTTPError:
                    return  # the server died with this request in flight
                if answer.status_code == 202:
                    with lock:
                        acknowledged[key] = answer.json()["id"]
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 16 and time.monotonic() < deadline:
        time.sleep(0.005)
    node.kill()  # mid-load: submissions in flight, jobs queued and running
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 16
    node = Node(tmp_path, runners=2).start()
    try:
        with node.client(token) as http:
            assert http.get("/v1/health").json()["recovered"] >= 0
            for key, job_id in acknowledged.items():  # every acknowledged job is there
                assert http.get(f"/v1/jobs/{job_id}").status_code == 200, key
            ids: dict[str, str] = {}
            for key, body in bodies.items():  # resubmitting never duplicates
                answer = http.post("/v1/jobs", json=body)
                assert answer.status_code == 202
                ids[key] = answer.json()["id"]
                if key in acknowledged:
                    assert ids[key] == acknowledged[key] and not answer.json()["created"]
            jobs = [wait_finished(http, job_id, timeout=120) for job_id in ids.values()]
            listed = http.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]
            assert len(listed) == len(set(ids.values())) == len(bodies)
            heads: dict[tuple[str, int], set[str]] = {}
            for job in jobs:
                assert job["state"] == "succeeded", job
                trace = http.get(f"/v1/jobs/{job['id']}/trace").content
                path = tmp_path / f"{job['id']}.xdvt"
                path.write_bytes(trace)
                report = verify_trace(path)
                assert report.ok
                head = report.head_hash
                source = next(b["source"] for k, b in bodies.items() if ids[k] == job["id"])
                heads.setdefault((source, job["seed"]), set()).add(head)
            rerun = [job for job in jobs if job["attempts"] > 1]
            # A job that was running at the kill ran again from the start: same inputs, same
            # trace bytes as every other job with the same inputs.
            assert all(len(found) == 1 for found in heads.values()), heads
            assert rerun, "no job was running when the server was killed"
    finally:
        node.stop()


def test_thousands_of_malformed_requests_get_typed_4xx_answers(tmp_path: Path) -> None:
    token = create_tenant(tmp_path, "fuzz", rate=1e6, burst=10**6)["token"]
    node = Node(tmp_path, runners=1).start()
    valid = (
        b'{"kind": "dpl", "source": "K main { emit 1; }", "params": {"entry": "main"}, '
        b'"seed": 1, "idempotency_key": "k"}'
    )
    statuses: list[int] = []
    problems: list[str] = []
    lock = threading.Lock()

    def fuzz(seed: int) -> None:
        generator = random.Random(seed)
        with httpx.Client(base_url=node.url, timeout=30) as http:
            for _ in range(500):
                data = bytearray(valid)
                for _ in range(generator.randint(1, 6)):
                    choice = generator.random()
                    position = generator.randrange(len(data))
                    if choice < 0.4:
                        data[position] = generator.randrange(256)
                    elif choice < 0.7:
                        del data[position : position + generator.randint(1, 8)]
                    else:
                        data[position:position] = bytes(generator.choice(b'{}[]",:0\\\xff'))
                headers = {"Content-Type": "application/json"}
                roll = generator.random()
                if roll < 0.85:
                    headers["Authorization"] = f"Bearer {token}"
                elif roll < 0.95:
                    headers["Authorization"] = (
                        f"Bearer {token[: generator.randrange(1, len(token))]}"
                    )
                method, path = generator.choice(
                    [("POST", "/v1/jobs")] * 8
                    + [("GET", "/v1/jobs/%00"), ("DELETE", "/v1/jobs/x"), ("PATCH", "/v1/jobs")]
                )
                answer = http.request(method, path, content=bytes(data), headers=headers)
                with lock:
                    statuses.append(answer.status_code)
                if answer.status_code >= 500:
                    problems.append(f"{answer.status_code} {bytes(data)[:80]!r}")
                elif answer.status_code >= 400 and "error" not in answer.json():
                    problems.append(f"untyped {answer.text[:80]}")

    threads = [threading.Thread(target=fuzz, args=(seed,)) for seed in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not problems, problems[:5]
        assert len(statuses) == 3000
        assert any(400 <= status < 500 for status in statuses)
        assert httpx.get(f"{node.url}/v1/health").json()["ok"]
    finally:
        node.stop()


@pytest.mark.spec("XDV-043-3.1", "XDV-043-6.1")
def test_q_and_phi_jobs_run_through_the_node(tmp_path: Path) -> None:
    token = create_tenant(tmp_path, "lab")["token"]
    small = create_tenant(tmp_path, "small", quotas={"qubits": 1})["token"]
    node = Node(tmp_path, runners=2).start()
    bell = (
        'OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; creg c[2]; '
        "h q[0]; cx q[0],q[1]; measure q -> c;"
    )
    try:
        with node.client(token) as http:
            submitted = {
                "bell": http.post(
                    "/v1/jobs", json={"kind": "qasm", "source": bell, "params": {"shots": 64}}
                ).json(),
                "broken": http.post(
                    "/v1/jobs", json={"kind": "qasm", "source": "OPENQASM 2.0; qreg q[2]; hh q[0];"}
                ).json(),
                "maxcut": http.post(
                    "/v1/jobs", json={"kind": "gset", "source": "3 3\n1 2 1\n2 3 1\n1 3 1\n"}
                ).json(),
                "bqm": http.post(
                    "/v1/jobs",
                    json={
                        "kind": "bqm",
                        "source": '{"n": 2, "J": [[0, 1, -1.0]], "h": [0, 0]}',
                        "params": {"provider": "exact"},
                    },
                ).json(),
            }
            done = {name: wait_finished(http, ack["id"], 120) for name, ack in submitted.items()}
            assert done["bell"]["state"] == "succeeded", done["bell"]
            counts = done["bell"]["result"]["value"]["job"]["counts"]
            assert sum(counts.values()) == 64 and set(counts) <= {"00", "11"}
            assert done["broken"]["state"] == "failed" and done["broken"]["exit_code"] == 65
            assert done["broken"]["error"]["code"] == "CIRCUIT_INVALID"
            assert done["maxcut"]["state"] == "succeeded", done["maxcut"]
            assert done["maxcut"]["result"]["value"]["energy"] == -1.0
            assert done["bqm"]["state"] == "succeeded", done["bqm"]
            trace = http.get(f"/v1/jobs/{submitted['bell']['id']}/trace").content
        path = tmp_path / "bell.xdvt"
        path.write_bytes(trace)
        assert replay(path, "reexecute").ok
        with node.client(small) as http:  # the tenant's VHM quota holds inside the run
            ack = http.post("/v1/jobs", json={"kind": "qasm", "source": bell}).json()
            job = wait_finished(http, ack["id"], 120)
        assert job["state"] == "failed" and job["error"]["code"] == "VHM_QUOTA_EXCEEDED", job
    finally:
        node.stop()
