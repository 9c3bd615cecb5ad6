"""A real node for the service tests: ``xdv serve`` in a separate process on an ephemeral
loopback port, talked to over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from helpers import ROOT


class Node:
    """One ``xdv serve --port 0`` process with its home."""

    def __init__(self, home: Path, *, runners: int = 2) -> None:
        self.home = home
        self.runners = runners
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> Node:
        environment = {**os.environ, "XDV_HOME": str(self.home)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xdv",
                "serve",
                "--port",
                "0",
                "--home",
                str(self.home),
                "--runners",
                str(self.runners),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("xdv serve: listening on "), line
        self.url = line.split()[4]
        deadline = time.monotonic() + timeout
        while True:  # the socket is bound before start-up ends: wait for the first answer
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the server dies at once (its runners die with it)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


def wait_finished(http: httpx.Client, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll a job until it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.03)
