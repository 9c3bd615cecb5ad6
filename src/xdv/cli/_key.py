"""``xdv key``: the node key that signs audit files and witnesses."""

from __future__ import annotations

import json
from pathlib import Path

import click

from xdv.cli._common import EXIT_RUNTIME, err_console, fail
from xdv.errors import XdvError
from xdv.runtime import NodeKey

__all__ = ["key"]


@click.group("key")
def key() -> None:
    """The node key (signs audit files and witnesses)."""


@key.command("show")
@click.option(
    "--key-store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Node key store (default $XDV_HOME/keys or ~/.xdv/keys).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def key_show(key_store: Path | None, as_json: bool) -> None:
    """Print the node key's fingerprint: what `--trusted-key` of `xdv verify`, `xdv audit
    verify-proof` and `xdv witness verify` takes. The key is created if there is none yet."""
    node = NodeKey(key_store)
    try:
        fingerprint = node.fingerprint
    except XdvError as error:
        fail(error, EXIT_RUNTIME, as_json)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "fingerprint": fingerprint,
                    "key_store": str(node.store.path),
                    "created": node.created,
                },
                sort_keys=True,
            )
        )
        return
    if node.created:
        err_console.print(f"[dim]created node key in {node.store.path}[/]")
    click.echo(fingerprint)
