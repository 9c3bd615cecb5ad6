"""The node service from the command line: ``xdv serve``, ``xdv tenant …`` (run on the node,
against its ``$XDV_HOME``) and the client commands ``xdv submit``, ``jobs``, ``job`` and
``cancel`` (against a running node: ``--server``/``XDV_SERVER``, ``--token``/``XDV_TOKEN``).

The service package (FastAPI, uvicorn, httpx) is imported inside each command, never when
``xdv`` starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import EXIT_RUNTIME, EXIT_USAGE, err_console, fail
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import decode_text, read_bounded
from xdv.runtime import xdv_home

__all__ = ["register"]

_KINDS = ("dpl", "qasm", "bqm", "gset", "python")
_USAGE_CODES = frozenset(
    {
        ErrorCode.INVALID_ARGUMENT,
        ErrorCode.SERVICE_TENANT_EXISTS,
        ErrorCode.SERVICE_TENANT_UNKNOWN,
        ErrorCode.SERVICE_REQUEST_INVALID,
        ErrorCode.SERVICE_KIND_UNKNOWN,
        ErrorCode.SERVICE_JOB_UNKNOWN,
        ErrorCode.SERVICE_JOB_FINISHED,
        ErrorCode.CAPABILITY_INVALID,
    }
)


def _exit_for(error: XdvError) -> int:
    return EXIT_USAGE if error.code in _USAGE_CODES else EXIT_RUNTIME


def _home(home: Path | None) -> Path:
    return home if home is not None else xdv_home()


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's home (default $XDV_HOME or ~/.xdv): node.db, keys/, traces/.",
)
server_option = click.option(
    "--server", help="The node's URL (default $XDV_SERVER or http://127.0.0.1:8470)."
)
token_option = click.option("--token", help="Bearer token (default $XDV_TOKEN).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8470,
    show_default=True,
    help="Port (0: any free port; the first line printed names it).",
)
@home_option
@click.option(
    "--runners",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Runner processes (jobs run at once).",
)
@click.option(
    "--durable",
    is_flag=True,
    help="Make every commit reach the disk (SQLite synchronous=FULL); the default survives a "
    "killed server, this also a machine crash.",
)
def serve(host: str, port: int, home: Path | None, runners: int, durable: bool) -> None:
    """Run the node: the HTTP API under /v1 (OpenAPI document at /v1/openapi.json, interactive
    docs at /v1/docs, metrics at /metrics) and its job runners, until SIGINT or SIGTERM.

    Jobs a killed server left unfinished are made again from the start when it restarts."""
    from xdv.service import serve as run_node

    try:
        run_node(_home(home), host=host, port=port, runners=runners, durable=durable)
    except OSError as error:
        fail(
            XdvError(f"cannot listen on {host}:{port}: {error.strerror or error}"),
            EXIT_USAGE,
            False,
        )
    except XdvError as error:
        fail(error, EXIT_RUNTIME, False)


@click.group("tenant")
def tenant() -> None:
    """Tenants of this node (each a VHM) and their bearer tokens."""


def _quotas(values: tuple[str, ...]) -> dict[str, int]:
    quotas: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            if not sep:
                raise ValueError
            quotas[name.strip()] = int(number)
        except ValueError:
            raise click.BadParameter(
                f"expected NAME=INTEGER (for example processes=8), got {value!r}",
                param_hint="--quota",
            ) from None
    return quotas


@tenant.command("create")
@click.argument("name")
@click.option("--weight", type=click.IntRange(1, 1_000_000), default=1, show_default=True)
@click.option(
    "--quota",
    "quota_values",
    multiple=True,
    help="A VHM quota NAME=VALUE for each of the tenant's runs (processes, steps, qubits, shots, "
    "qubit_time, envelopes, window_steps); repeatable.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.001, 1e6),
    default=2000.0,
    show_default=True,
    help="Requests per second (429 beyond it).",
)
@click.option("--burst", type=click.IntRange(1, 10**7), default=4000, show_default=True)
@home_option
@json_option
def tenant_create(
    name: str,
    weight: int,
    quota_values: tuple[str, ...],
    rate: float,
    burst: int,
    home: Path | None,
    as_json: bool,
) -> None:
    """Create tenant NAME and print its bearer token (a capability token signed with the node
    key, scoped to the tenant's VHM). Keep it secret: it is the tenant's only credential."""
    from xdv.service import create_tenant

    try:
        created = create_tenant(
            _home(home), name, weight=weight, quotas=_quotas(quota_values), rate=rate, burst=burst
        )
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **created}, sort_keys=True))
    else:
        err_console.print(
            f"[dim]tenant {name} (VHM {created['tenant']['id']}, weight {weight}), "
            f"token #{created['token_id']}:[/]"
        )
        click.echo(created["token"])


@tenant.command("token")
@click.argument("name")
@click.option(
    "--read-only/--full",
    default=True,
    show_default=True,
    help="Read-only: may list and read jobs, never submit or cancel.",
)
@home_option
@json_option
def tenant_token(name: str, read_only: bool, home: Path | None, as_json: bool) -> None:
    """Derive another token for tenant NAME from its root token (attenuated to read-only by
    default); it can be revoked on its own, and revoking the root revokes it too."""
    from xdv.service import tenant_token as derive

    try:
        derived = derive(_home(home), name, read_only=read_only)
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **derived}, sort_keys=True))
    else:
        err_console.print(
            f"[dim]{'read-only' if read_only else 'full'} token #{derived['token_id']} "
            f"for {name}:[/]"
        )
        click.echo(derived["token"])


@tenant.command("revoke")
@click.argument("name")
@click.option(
    "--token-id",
    type=click.IntRange(1),
    help="Revoke this token only (default: the tenant's root token and all derived from it).",
)
@home_option
@json_option
def tenant_revoke(name: str, token_id: int | None, home: Path | None, as_json: bool) -> None:
    """Revoke a tenant's token; a running node refuses it from its next request on."""
    from xdv.service import revoke

    try:
        revoked = revoke(_home(home), name, token_id)
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, "revoked": revoked}, sort_keys=True))
    else:
        click.echo(f"revoked {', '.join(f'#{item}' for item in revoked) or 'nothing new'}")


@tenant.command("list")
@home_option
@json_option
def tenant_list(home: Path | None, as_json: bool) -> None:
    """List the node's tenants."""
    from xdv.service import node_store

    store = node_store(_home(home))
    try:
        tenants = store.tenants()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"tenants": tenants}, sort_keys=True))
        return
    for item in tenants:
        quotas = ", ".join(f"{k}={v}" for k, v in item["quotas"].items()) or "no quotas"
        click.echo(f"{item['name']}: VHM {item['id']}, weight {item['weight']}, {quotas}")


def _client(server: str | None, token: str | None) -> Any:
    from xdv.service import ServiceClient

    return ServiceClient(server, token)


def _params(values: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint="--param")
        try:
            params[name] = json.loads(text)
        except ValueError:
            params[name] = text
    return params


@click.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(_KINDS),
    help="Job kind (default from the file name: .ds dpl, .qasm qasm, .json bqm, .py python, "
    "else gset).",
)
@click.option("--param", "param_values", multiple=True, help="A job parameter NAME=VALUE.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--idempotency-key", help="Submitting again with the same key gives the same job.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit with its exit code.")
@server_option
@token_option
@json_option
def submit(
    file: Path,
    kind: str | None,
    param_values: tuple[str, ...],
    seed: int,
    idempotency_key: str | None,
    wait: bool,
    server: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Submit FILE as a job to a node; print the job's id (with --wait, its outputs)."""
    from xdv.service import kind_for

    try:
        source = decode_text(read_bounded(file, "source_bytes_max", what="job"), str(file))
    except XdvError as error:
        fail(error, EXIT_USAGE, as_json)
    client = _client(server, token)
    try:
        ack = client.submit(
            kind or kind_for(file),
            source,
            params=_params(param_values),
            seed=seed,
            idempotency_key=idempotency_key,
        )
        if not wait:
            if as_json:
                click.echo(json.dumps({"ok": True, **ack}, sort_keys=True))
            else:
                click.echo(ack["id"])
            return
        job = client.wait(ack["id"])
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    finally:
        client.close()
    _show_job(job, as_json)
    sys.exit(job["exit_code"] if isinstance(job.get("exit_code"), int) else EXIT_RUNTIME)


def _show_job(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(job, sort_keys=True))
        return
    for output in job.get("outputs") or ():
        click.echo(output if isinstance(output, str) else json.dumps(output, sort_keys=True))
    error = job.get("error")
    if error:
        err_console.print(f"[red]{error.get('code')}[/]: {error.get('message')}")
        for diagnostic in error.get("diagnostics") or ():
            err_console.print(
                f"  {diagnostic.get('line')}:{diagnostic.get('column')} "
                f"[{diagnostic.get('code')}] {diagnostic.get('message')}"
            )
    err_console.print(
        f"[dim]job {job['id']} ({job['kind']}): {job['state']}, exit code {job.get('exit_code')}, "
        f"attempts {job['attempts']}[/]"
    )


@click.command("jobs")
@click.option("--state", help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@server_option
@token_option
@json_option
def jobs(
    state: str | None, limit: int, server: str | None, token: str | None, as_json: bool
) -> None:
    """List your jobs on a node, newest first."""
    client = _client(server, token)
    try:
        found = client.jobs(state, limit)
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps({"jobs": found}, sort_keys=True))
        return
    for job in found:
        click.echo(f"{job['id']}  {job['kind']:<6} {job['state']:<11} exit {job['exit_code']}")


@click.command("job")
@click.argument("job_id")
@click.option(
    "--trace",
    "trace_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the job's trace here (and its audit file beside it, as OUT.audit).",
)
@server_option
@token_option
@json_option
def job(
    job_id: str, trace_out: Path | None, server: str | None, token: str | None, as_json: bool
) -> None:
    """Show one of your jobs: state, exit code, outputs, result."""
    client = _client(server, token)
    try:
        found = client.job(job_id)
        if trace_out is not None:
            trace_out.write_bytes(client.trace(job_id))
            try:
                Path(f"{trace_out}.audit").write_bytes(client.audit(job_id))
            except XdvError as error:
                if error.code is not ErrorCode.SERVICE_TRACE_UNAVAILABLE:
                    raise
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    except OSError as error:
        fail(XdvError(f"cannot write {trace_out}: {error.strerror}"), EXIT_USAGE, as_json)
    finally:
        client.close()
    _show_job(found, as_json)
    if trace_out is not None and not as_json:
        err_console.print(f"[dim]trace saved to {trace_out}[/]")


@click.command("cancel")
@click.argument("job_id")
@server_option
@token_option
@json_option
def cancel(job_id: str, server: str | None, token: str | None, as_json: bool) -> None:
    """Cancel one of your jobs (a running one is interrupted and ends as cancelled)."""
    client = _client(server, token)
    try:
        answer = client.cancel(job_id)
    except XdvError as error:
        fail(error, _exit_for(error), as_json)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **answer}, sort_keys=True))
    else:
        click.echo(
            f"{job_id}: {answer['state']}"
            + (" (cancelling)" if answer.get("cancel_requested") else "")
        )


def register(group: click.Group) -> None:
    """Add the node service's commands to the ``xdv`` command group."""
    for command in (serve, tenant, submit, jobs, job, cancel):
        group.add_command(command)
