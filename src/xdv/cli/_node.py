"""``xdv node``: the node's measured boot and its signed boot quote.

``xdv node attest`` runs the same measured boot as ``xdv serve`` (without counting a boot or
writing its log) and prints or writes the signed quote; ``xdv node verify-quote`` checks a
quote offline. The service package is imported inside each command, never when ``xdv`` starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import EXIT_MISMATCH, EXIT_RUNTIME, EXIT_STATIC, EXIT_USAGE, fail
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import load_json, read_bounded
from xdv.runtime import xdv_home
from xdv.security import expected_measurements, verify_quote

__all__ = ["register"]


def _nonce(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        nonce = bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter("a nonce is hex (an even number of hex digits)") from None
    if len(nonce) > 64:
        raise click.BadParameter("a nonce is at most 64 bytes")
    return nonce


def _write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@click.group("node")
def node() -> None:
    """This node's measured boot: signed boot quotes and their verification."""


@node.command("attest")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's home (default $XDV_HOME or ~/.xdv).",
)
@click.option("--nonce", help="Hex nonce of the verifier (at most 64 bytes), quoted for freshness.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the quote here."
)
@click.option(
    "--expected-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the reference measurements (for verify-quote --expected).",
)
@click.option(
    "--runners",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="The runners `xdv serve` would use (a measured service option).",
)
@click.option("--durable", is_flag=True, help="Measure as `xdv serve --durable` would.")
@click.option("--json", "as_json", is_flag=True, help="Print the quote as one JSON document.")
def attest(
    home: Path | None,
    nonce: str | None,
    output: Path | None,
    expected_out: Path | None,
    runners: int,
    durable: bool,
    as_json: bool,
) -> None:
    """Measure this node as `xdv serve` does (kernel code, configuration, providers), activate
    the capability root, and print the boot quote signed with the node key."""
    from xdv.service import boot_node

    value = _nonce(nonce)
    try:
        boot = boot_node(
            home if home is not None else xdv_home(),
            options={"runners": runners, "durable": durable},
        )
        quote = boot.quote(value)
    except XdvError as error:
        fail(error, EXIT_RUNTIME, as_json)
    if output is not None:
        _write(output, quote.to_document())
    if expected_out is not None:
        _write(expected_out, expected_measurements(quote))
    if as_json:
        click.echo(quote.to_json())
        return
    click.echo(f"node     {quote.node}")
    click.echo(f"boot     {quote.boot}")
    click.echo(f"digest   {quote.digest}")
    click.echo(f"nonce    {'-' if quote.nonce is None else quote.nonce.hex()}")
    for event in quote.measurements:
        click.echo(f"  {event.stage:<13} {event.component:<28} {event.digest[:16]}")


@node.command("verify-quote")
@click.argument("quote", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--expected",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Reference measurements (`xdv node attest --expected-out`).",
)
@click.option("--trusted-key", help="The fingerprint of the node key the quote must be signed by.")
@click.option("--nonce", help="The hex nonce the quote must carry.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def verify_quote_command(
    quote: Path,
    expected: Path | None,
    trusted_key: str | None,
    nonce: str | None,
    as_json: bool,
) -> None:
    """Check a boot quote offline: its signature, its measurement chain, its nonce and its
    measurements against the expected ones. Exit 0 if it holds, 1 if measurements differ (each
    differing component is listed), 65 if the quote is malformed, forged or stale."""
    value = _nonce(nonce)
    try:
        document = load_json(read_bounded(quote, "document_bytes_max", what="quote"), str(quote))
        reference = (
            None
            if expected is None
            else load_json(
                read_bounded(expected, "document_bytes_max", what="expected"), str(expected)
            )
        )
        checked = verify_quote(document, trusted_key=trusted_key, nonce=value, expected=reference)
    except XdvError as error:
        differences = error.details.get("differences")
        if error.code is ErrorCode.QUOTE_MEASUREMENT_MISMATCH and differences is not None:
            if as_json:
                click.echo(
                    json.dumps(
                        {"ok": False, "error": error.to_record(), "differences": differences},
                        sort_keys=True,
                    )
                )
            else:
                click.echo(f"quote differs from the expected measurements: {len(differences)}")
                for item in differences:
                    click.echo(
                        f"  {item['kind']:<10} {item['stage']}/{item['component']}: "
                        f"expected {str(item['expected'])[:16]}, found {str(item['found'])[:16]}"
                    )
            raise SystemExit(EXIT_MISMATCH) from None
        code = EXIT_USAGE if error.code is ErrorCode.INVALID_ARGUMENT else EXIT_STATIC
        fail(error, code, as_json)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "node": checked.node,
                    "boot": checked.boot,
                    "digest": checked.digest,
                    "measurements": len(checked.measurements),
                    "nonce": None if checked.nonce is None else checked.nonce.hex(),
                    "expected": expected is not None,
                },
                sort_keys=True,
            )
        )
        return
    click.echo(
        f"quote ok: node {checked.node[:16]}…, boot {checked.boot}, "
        f"{len(checked.measurements)} measurements, digest {checked.digest[:16]}…"
        + ("" if expected is None else ", measurements as expected")
    )


def register(group: click.Group) -> None:
    """Add ``xdv node`` to the ``xdv`` command group."""
    group.add_command(node)
