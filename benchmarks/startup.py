"""Start-up time of the ``xdv`` command, as whole processes.

Runs each command below as a fresh subprocess several times and prints the median and the range
of the wall time and of the CPU time the process used (user + system: on a busy machine the
wall time also counts waiting for a core, the CPU time does not). Then it runs each command once
more under ``python -X importtime`` and prints the imports that cost the most (by package,
cumulative, and by module, self time)::

    xdv --help
    xdv run examples/ping_pong.py          (K only, no trace)
    xdv qrun bell.qasm                     (a 2-qubit circuit on the embedded Aer provider)

Targets on a 2-core machine: ``--help`` at most 0.3 s, the K-only run at most 0.6 s, the Q job
at most 2 s. The commands run with the ``xdv`` package the interpreter finds (``PYTHONPATH``
chooses the source tree) and a scratch ``XDV_HOME``. Compiled bytecode goes to a scratch
``PYTHONPYCACHEPREFIX`` (written by a first run, even where ``PYTHONDONTWRITEBYTECODE`` is set),
so every later run is a warm start, as with an installed package; each command's first run (it
compiles the modules not yet cached) is timed and printed apart. The import profile is one run.

    python benchmarks/startup.py [--runs 7] [--top 8] [--no-importtime]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from xdv.domains.q.testing import BELL

ROOT = Path(__file__).resolve().parents[1]
TARGETS_S = {"help": 0.3, "run": 0.6, "qrun": 2.0}


def commands(scratch: Path) -> dict[str, list[str]]:
    circuit = scratch / "bell.qasm"
    circuit.write_text(BELL, encoding="utf-8")
    return {
        "help": ["--help"],
        "run": ["run", str(ROOT / "examples" / "ping_pong.py")],
        "qrun": ["qrun", str(circuit), "--shots", "100"],
    }


def run_once(arguments: Sequence[str], environment: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``xdv arguments``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "xdv", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"xdv {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def import_costs(
    arguments: Sequence[str], environment: dict[str, str]
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(cumulative µs, package) per top-level package and (self µs, module) per module."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "xdv", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    by_package: dict[str, int] = {}
    by_module: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        module = name.strip()
        package = module.split(".")[0]
        # A package's first import carries everything it pulled in; later entries are smaller.
        by_package[package] = max(by_package.get(package, 0), int(cumulative_us))
        by_module.append((int(self_us), module))
    packages = sorted(((us, name) for name, us in by_package.items()), reverse=True)
    return packages, sorted(by_module, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command")
    parser.add_argument("--top", type=int, default=8, help="import offenders to list")
    parser.add_argument("--no-importtime", action="store_true", help="skip the import profile")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="xdv-startup-") as scratch_name:
        scratch = Path(scratch_name)
        environment = dict(
            os.environ, XDV_HOME=str(scratch / "home"), PYTHONPYCACHEPREFIX=str(scratch / "pyc")
        )
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        import xdv

        print(f"xdv from {Path(xdv.__file__).parent}, {sys.executable}, {os.cpu_count()} CPUs")
        for name, arguments in commands(scratch).items():
            cold_wall, cold_cpu = run_once(arguments, environment)  # writes the bytecode
            runs = [run_once(arguments, environment) for _ in range(options.runs)]
            wall = [elapsed for elapsed, _ in runs]
            cpu = [used for _, used in runs]
            median = statistics.median(wall)
            verdict = "ok" if median <= TARGETS_S[name] else "over"
            print(
                f"\nxdv {' '.join(arguments[:1])}: wall median {median:.3f} s, "
                f"range {min(wall):.3f}-{max(wall):.3f} s; CPU median "
                f"{statistics.median(cpu):.3f} s, range {min(cpu):.3f}-{max(cpu):.3f} s; "
                f"{options.runs} runs (target {TARGETS_S[name]} s wall on the median: {verdict})"
            )
            print(
                f"  first run (compiles the bytecode not yet cached): wall {cold_wall:.3f} s, "
                f"CPU {cold_cpu:.3f} s"
            )
            if options.no_importtime:
                continue
            packages, modules = import_costs(arguments, environment)
            print("  imports by package (cumulative ms): " + ", ".join(
                f"{package} {us / 1000:.0f}" for us, package in packages[: options.top]
            ))  # fmt: skip
            print("  slowest modules (self ms): " + ", ".join(
                f"{module} {us / 1000:.0f}" for us, module in modules[: options.top]
            ))  # fmt: skip


if __name__ == "__main__":
    main()
