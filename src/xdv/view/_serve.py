"""Serving one trace's view on the loopback interface (``xdv view``)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn

from xdv.view._app import create_view_app
from xdv.view._index import TraceIndex

__all__ = ["LOOPBACK", "serve_view"]

LOOPBACK = "127.0.0.1"


def serve_view(trace: str | Path, *, port: int = 0, diff: str | Path | None = None) -> None:
    """Index ``trace`` (and ``diff``), then serve the view on 127.0.0.1:``port`` (0: any free
    port) until interrupted. Prints ``xdv view: listening on URL`` once the index is built."""
    index = TraceIndex.open(trace)
    other = TraceIndex.open(diff) if diff is not None else None
    app = create_view_app(trace, index=index, other=other)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, port))
    listener.listen(128)
    bound = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(
        f"xdv view: listening on http://{LOOPBACK}:{bound}/ ({index.name}, "
        f"{len(index.entries)} entries)",
        flush=True,
    )
    sys.stdout.flush()
    server.run(sockets=[listener])
