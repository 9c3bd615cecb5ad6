"""Node state in SQLite: ``$XDV_HOME/node.db``.

One file in WAL mode with ``synchronous=NORMAL``: a commit is in the write-ahead log (in the
operating system's page cache) when ``COMMIT`` returns, so it survives the server process being
killed (SIGKILL) at any moment; only a crash of the machine itself may lose the last commits
(``--durable`` makes every commit reach the disk: ``synchronous=FULL``). Tables:

- ``tenants``: name, scheduling weight, VHM quotas, rate limit; a tenant is a VHM of the node;
- ``tokens``: every capability token the node issued (its exported, signed bytes), its tenant,
  its parent and whether it is read-only;
- ``revocations``: revoked token ids, in the order revoked (the server polls for new rows, so
  ``xdv tenant revoke`` in another process takes effect at the next request);
- ``jobs``: every acknowledged job, its inputs (kind, source, params, seed, idempotency key),
  state, attempts, result and timings;
- ``traces``: the trace index (job → trace file, audit file, head hash, entries, signer).

Invariant: a job row exists before its submission is acknowledged, and a job's state only
moves queued → running → (succeeded | failed | cancelled), queued → cancelled, or running →
queued when the node restarts after a crash (the run is made again from the start).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode
from xdv.service._errors import ServiceError

__all__ = ["FINISHED", "JOB_KINDS", "JOB_STATES", "NodeStore"]

JOB_KINDS = ("dpl", "qasm", "bqm", "gset", "python")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINISHED = frozenset({"succeeded", "failed", "cancelled", "interrupted"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    weight INTEGER NOT NULL,
    quotas TEXT NOT NULL,
    rate REAL NOT NULL,
    burst INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    tenant INTEGER NOT NULL REFERENCES tenants(id),
    parent INTEGER,
    read_only INTEGER NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    token INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant INTEGER NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    idempotency_key TEXT,
    request_digest TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    error TEXT,
    outputs TEXT,
    result TEXT,
    submitted REAL NOT NULL,
    started REAL,
    finished REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, seq);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS traces (
    job TEXT PRIMARY KEY REFERENCES jobs(id),
    path TEXT NOT NULL,
    audit TEXT,
    head_hash TEXT,
    entries INTEGER,
    signer TEXT
);
"""

_JOB_COLUMNS = (
    "seq, id, tenant, kind, source, params, seed, idempotency_key, request_digest, state, "
    "attempts, exit_code, error, outputs, result, submitted, started, finished, cancel_requested"
)


class NodeStore:
    """The node's SQLite database; every method is one short transaction.

    One connection is shared by the threads of a server process (the event loop and the runner
    threads), serialized by a lock; each command-line process opens its own.
    """

    def __init__(self, path: Path, *, durable: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise ServiceError(
                f"cannot open the node database: {error}",
                code=ErrorCode.SERVICE_STATE_INVALID,
                where=str(path),
            ) from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers from other processes wait)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------ tenants and tokens

    def tenant(self, name: str) -> dict[str, Any]:
        """The tenant called ``name``; SERVICE_TENANT_UNKNOWN if there is none."""
        rows = self.query(
            "SELECT id, name, weight, quotas, rate, burst FROM tenants WHERE name = ?", (name,)
        )
        if not rows:
            raise ServiceError(
                f"no tenant {name!r}", code=ErrorCode.SERVICE_TENANT_UNKNOWN, where="tenant"
            )
        return _tenant(rows[0])

    def tenant_by_id(self, tenant_id: int) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT id, name, weight, quotas, rate, burst FROM tenants WHERE id = ?", (tenant_id,)
        )
        return _tenant(rows[0]) if rows else None

    def tenants(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, name, weight, quotas, rate, burst FROM tenants ORDER BY id")
        return [_tenant(row) for row in rows]

    def token_row(self, token_id: int) -> tuple[int, int | None, bool, bytes] | None:
        """(tenant, parent, read_only, signed bytes) of issued token ``token_id``."""
        rows = self.query(
            "SELECT tenant, parent, read_only, data FROM tokens WHERE id = ?", (token_id,)
        )
        if not rows:
            return None
        tenant, parent, read_only, data = rows[0]
        return int(tenant), parent, bool(read_only), bytes(data)

    def tokens(self) -> list[tuple[int, bytes]]:
        """Every issued token, in id order: (id, signed bytes)."""
        return [
            (int(i), bytes(d)) for i, d in self.query("SELECT id, data FROM tokens ORDER BY id")
        ]

    def revocations_after(self, seq: int) -> list[tuple[int, int]]:
        """Revocations recorded after ``seq``: (seq, token id), in order."""
        return [
            (int(s), int(t))
            for s, t in self.query(
                "SELECT seq, token FROM revocations WHERE seq > ? ORDER BY seq", (seq,)
            )
        ]

    # ------------------------------------------------------------ jobs

    def insert_job(self, job: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Commit a new job (state ``queued``); return it and True. With an idempotency key the
        tenant used before, return that job and False instead (SERVICE_IDEMPOTENCY_CONFLICT if
        its request differs). The row is committed when this returns: one statement in
        autocommit mode, so a submission costs one write transaction."""
        key = job["idempotency_key"]
        row = (
            job["id"],
            job["tenant"],
            job["kind"],
            job["source"],
            json.dumps(job["params"], sort_keys=True),
            job["seed"],
            key,
            job["request_digest"],
            job["submitted"],
        )
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO jobs (id, tenant, kind, source, params, seed, idempotency_key, "
                "request_digest, state, submitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?) "
                "ON CONFLICT (tenant, idempotency_key) DO NOTHING",
                row,
            )
            if cursor.rowcount == 1:
                return {**job, "seq": cursor.lastrowid, "state": "queued", "attempts": 0}, True
            found = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = ? AND idempotency_key = ?",
                (job["tenant"], key),
            ).fetchone()
        existing = _job(found)
        if existing["request_digest"] != job["request_digest"]:
            raise ServiceError(
                f"idempotency key {key!r} was used for another request (job {existing['id']})",
                code=ErrorCode.SERVICE_IDEMPOTENCY_CONFLICT,
                where="idempotency_key",
            )
        return existing, False

    def unfinished_count(self, tenant: int) -> int:
        rows = self.query(
            "SELECT count(*) FROM jobs WHERE tenant = ? AND state IN ('queued', 'running')",
            (tenant,),
        )
        return int(rows[0][0])

    def job(self, job_id: str, tenant: int | None = None) -> dict[str, Any] | None:
        """Job ``job_id`` (only if it belongs to ``tenant``, when given)."""
        rows = self.query(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        job = _job(rows[0])
        if tenant is not None and job["tenant"] != tenant:
            return None
        return job

    def jobs(self, tenant: int, state: str | None, limit: int) -> list[dict[str, Any]]:
        """The tenant's most recent jobs, newest first."""
        if state is None:
            rows = self.query(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = ? ORDER BY seq DESC LIMIT ?",
                (tenant, limit),
            )
        else:
            rows = self.query(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = ? AND state = ? "
                "ORDER BY seq DESC LIMIT ?",
                (tenant, state, limit),
            )
        return [_job(row) for row in rows]

    def unfinished_jobs(self) -> list[dict[str, Any]]:
        """Every queued or running job, in submission order."""
        rows = self.query(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq"
        )
        return [_job(row) for row in rows]

    def recover(self) -> int:
        """After a restart: jobs the previous server left running go back to the queue (they
        run again from the start with their recorded seed), except those whose cancel was
        asked, which end cancelled. Returns how many were queued again."""
        with self.transaction() as db:
            # A running job whose cancel was asked stays cancelled: it is not made again.
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ? "
                "WHERE state = 'running' AND cancel_requested = 1",
                (time.time(),),
            )
            cursor = db.execute(
                "UPDATE jobs SET state = 'queued', started = NULL WHERE state = 'running'"
            )
        return cursor.rowcount

    def start_job(self, job_id: str) -> bool:
        """Mark a queued job running; False if it is no longer queued (cancelled)."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1 "
                "WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
        return cursor.rowcount == 1

    def finish_job(self, job_id: str, state: str, report: dict[str, Any]) -> None:
        """Record a run's end: state, exit code, error, outputs, result and the trace index."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, exit_code = ?, error = ?, outputs = ?, result = ?, "
                "finished = ? WHERE id = ?",
                (
                    state,
                    report.get("exit_code"),
                    _dumps(report.get("error")),
                    _dumps(report.get("outputs")),
                    _dumps(report.get("result")),
                    time.time(),
                    job_id,
                ),
            )
            trace = report.get("trace")
            if trace is not None:
                db.execute(
                    "INSERT OR REPLACE INTO traces (job, path, audit, head_hash, entries, signer) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        trace,
                        report.get("audit"),
                        report.get("head_hash"),
                        report.get("events"),
                        report.get("signer"),
                    ),
                )

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a queued job; False if it is not queued."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ?, cancel_requested = 1 "
                "WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
        return cursor.rowcount == 1

    def request_cancel(self, job_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def trace_row(self, job_id: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT path, audit, head_hash, entries, signer FROM traces WHERE job = ?", (job_id,)
        )
        if not rows:
            return None
        path, audit, head_hash, entries, signer = rows[0]
        return {
            "path": path,
            "audit": audit,
            "head_hash": head_hash,
            "entries": entries,
            "signer": signer,
        }

    def counts(self) -> dict[str, int]:
        """Jobs by state."""
        rows = self.query("SELECT state, count(*) FROM jobs GROUP BY state")
        found = dict.fromkeys(JOB_STATES, 0)
        found.update({str(state): int(count) for state, count in rows})
        return found


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _tenant(row: tuple[Any, ...]) -> dict[str, Any]:
    tenant_id, name, weight, quotas, rate, burst = row
    return {
        "id": int(tenant_id),
        "name": name,
        "weight": int(weight),
        "quotas": json.loads(quotas),
        "rate": float(rate),
        "burst": int(burst),
    }


def _job(row: tuple[Any, ...]) -> dict[str, Any]:
    (
        seq,
        job_id,
        tenant,
        kind,
        source,
        params,
        seed,
        key,
        digest,
        state,
        attempts,
        exit_code,
        error,
        outputs,
        result,
        submitted,
        started,
        finished,
        cancel_requested,
    ) = row
    return {
        "seq": seq,
        "id": job_id,
        "tenant": tenant,
        "kind": kind,
        "source": source,
        "params": json.loads(params),
        "seed": int(seed),
        "idempotency_key": key,
        "request_digest": digest,
        "state": state,
        "attempts": attempts,
        "exit_code": exit_code,
        "error": _loads(error),
        "outputs": _loads(outputs),
        "result": _loads(result),
        "submitted": submitted,
        "started": started,
        "finished": finished,
        "cancel_requested": bool(cancel_requested),
    }
