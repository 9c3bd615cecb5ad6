"""``xdv cts``: the conformance test suite (run, list, verify a signed report).

The suite (``xdv.cts``) is imported inside each command, never when ``xdv`` starts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, err_console, fail
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import NodeKey

__all__ = ["register"]


def _selected(
    filter_: str | None, level: str | None, cases_dir: Path | None
) -> tuple[Any, list[Any]]:
    from xdv import cts

    root = cases_dir or cts.CASES_ROOT
    cases = cts.load_cases(root)
    chosen = cts.select(cases, filter_, level)
    if not chosen:
        raise XdvError(
            "no case matches the selection",
            code=ErrorCode.CTS_FILTER_EMPTY,
            where=f"--filter {filter_!r} --level {level!r}",
        )
    return cases, chosen


@click.group("cts")
def cts_group() -> None:
    """The conformance test suite (XDV-084): run it, list its cases, verify a report."""


_LEVELS = click.Choice(["core", "hybrid", "distributed"])


@cts_group.command("run")
@click.option(
    "--impl",
    "impl",
    help="Test another implementation: the command line of its adapter (docs/conformance.md).",
)
@click.option(
    "--filter",
    "filter_",
    help="Only cases whose id, path or a spec clause contains this (a glob with *).",
)
@click.option("--level", type=_LEVELS, help="Only cases of this level (and core).")
@click.option(
    "--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON summary on stdout.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the signed report here.",
)
@click.option(
    "--key-store",
    type=click.Path(file_okay=False, path_type=Path),
    help="The node key store that signs the report (default $XDV_HOME/keys).",
)
@click.option(
    "--cases",
    "cases_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Another case directory (default: the shipped suite).",
)
def cts_run(
    impl: str | None,
    filter_: str | None,
    level: str | None,
    jobs: int,
    as_json: bool,
    output: Path | None,
    key_store: Path | None,
    cases_dir: Path | None,
) -> None:
    """Run the suite (in process against this XDV, or against --impl), print the verdicts and,
    with -o, write the signed report. Exit 0 when no selected case failed, 1 otherwise."""
    from xdv import cts

    started = time.monotonic()
    try:
        cases, chosen = _selected(filter_, level, cases_dir)
        root = cases_dir or cts.CASES_ROOT
        if impl is None:
            identity = cts.InProcessExecutor(Path(".")).identity()
        else:
            identity = cts.AdapterExecutor(impl, Path(".")).identity()

        def progress(result: Any) -> None:
            if not as_json and result.status != "pass":
                mark = "[red]FAIL[/]" if result.status == "fail" else "[yellow]skip[/]"
                err_console.print(f"{mark} {result.id}: {result.reason}", highlight=False)

        results = cts.run_cases(chosen, impl=impl, jobs=jobs, progress=progress)
        report = cts.build_report(
            chosen,
            results,
            identity=identity,
            suite_digest=cts.suite_digest(root),
            suite_cases=len(cases),
            selection={"filter": filter_, "level": level},
        )
        signer = None
        if output is not None:
            keys = NodeKey(key_store).keys()
            document = cts.sign_report(report, keys)
            try:
                output.write_bytes(cts.canonical(document) + b"\n")
            except OSError as error:
                raise XdvError(
                    f"cannot write the report: {error.strerror or error}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where=str(output),
                ) from None
            signer = keys.public.fingerprint
    except XdvError as error:
        fail(error, EXIT_USAGE, as_json)
    failed = [row for row in report["results"] if row["status"] == "fail"]
    summary = {
        "ok": not failed,
        "totals": report["totals"],
        "levels": report["levels"],
        "certification": report["certification"],
        "implementation": report["implementation"],
        "suite": {k: report["suite"][k] for k in ("version", "digest", "cases", "selected")},
        "failures": [{"id": row["id"], "reason": row["reason"]} for row in failed],
        "report": None if output is None else str(output),
        "signer": signer,
        "wall_seconds": round(time.monotonic() - started, 3),
    }
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True, ensure_ascii=False))
    else:
        totals = report["totals"]
        click.echo(
            f"{totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped "
            f"of {len(chosen)} cases; certification: {report['certification']}"
        )
        if output is not None:
            click.echo(f"report {output}, signed by {signer}")
    sys.exit(EXIT_MISMATCH if failed else EXIT_OK)


@cts_group.command("list")
@click.option(
    "--filter", "filter_", help="Only cases whose id, path or a spec clause contains this."
)
@click.option("--level", type=_LEVELS, help="Only cases of this level (and core).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option(
    "--cases",
    "cases_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Another case directory.",
)
def cts_list(filter_: str | None, level: str | None, as_json: bool, cases_dir: Path | None) -> None:
    """List the cases and the coverage per spec clause and document."""
    from xdv import cts

    try:
        _, chosen = _selected(filter_, level, cases_dir)
        digest = cts.suite_digest(cases_dir or cts.CASES_ROOT)
    except XdvError as error:
        fail(error, EXIT_USAGE, as_json)
    clauses: dict[str, list[str]] = {}
    documents: dict[str, int] = {}
    for case in chosen:
        for clause in case.spec:
            clauses.setdefault(clause, []).append(case.id)
        for document in case.documents:
            documents[document] = documents.get(document, 0) + 1
    if as_json:
        click.echo(
            json.dumps(
                {
                    "suite": {"version": cts.CTS_VERSION, "digest": digest, "cases": len(chosen)},
                    "cases": [
                        {
                            "id": case.id,
                            "file": case.relative,
                            "level": case.level,
                            "action": case.action,
                            "spec": list(case.spec),
                            "requires": list(case.requires),
                            "description": case.description,
                        }
                        for case in chosen
                    ],
                    "coverage": {key: clauses[key] for key in sorted(clauses)},
                    "documents": {key: documents[key] for key in sorted(documents)},
                },
                sort_keys=True,
                ensure_ascii=False,
            )
        )
        return
    for case in chosen:
        requires = f" [requires {', '.join(case.requires)}]" if case.requires else ""
        click.echo(f"{case.id}  {case.level}  {' '.join(case.spec)}{requires}")
    click.echo("")
    for key in sorted(documents):
        click.echo(f"{key}: {documents[key]} cases")
    click.echo(f"{len(chosen)} cases, {len(clauses)} clauses, suite digest {digest}")


@cts_group.command("verify")
@click.argument("report", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    help="Accept only a report signed by this key fingerprint (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def cts_verify(report: Path, trusted_keys: tuple[str, ...], as_json: bool) -> None:
    """Check a signed conformance report: its form, its figures against its results, and its
    signature. Exit 0 when it holds, 1 when it does not."""
    from xdv import cts

    try:
        data = report.read_bytes()
    except OSError as error:
        fail(
            XdvError(str(error), code=ErrorCode.INVALID_ARGUMENT, where=str(report)),
            EXIT_USAGE,
            as_json,
        )
    try:
        check = cts.verify_report(data, set(trusted_keys) or None)
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    if as_json:
        click.echo(json.dumps(check.to_json(), sort_keys=True))
    else:
        totals = check.totals
        trusted = " (trusted)" if check.trusted else ""
        click.echo(
            f"OK: signed by {check.signer}{trusted}; {totals['pass']} passed, "
            f"{totals['fail']} failed, {totals['skip']} skipped; certification "
            f"{check.certification}"
        )
        if not check.trusted:
            click.echo(
                "note: no --trusted-key given: the signature shows the report is unchanged "
                "since it was signed, not who signed it"
            )
        if not check.shipped_suite:
            click.echo(
                f"note: the report ran another suite than this XDV ships, so its claimed "
                f"certification ({check.claimed_certification}) does not count"
            )


def register(group: click.Group) -> None:
    """Add ``xdv cts`` to the command group."""
    group.add_command(cts_group)
