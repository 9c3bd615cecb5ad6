"""Serving the node: ``xdv serve`` (uvicorn on a socket bound before it starts, so that
``--port 0`` picks a free port and the first line printed names it)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn

from xdv.service._app import create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470


def serve(
    home: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    runners: int = 2,
    durable: bool = False,
) -> None:
    """Run the node until SIGINT or SIGTERM. Prints ``xdv serve: listening on URL`` first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    bound = listener.getsockname()[1]
    app = create_app(home, runners=runners, durable=durable)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_keep_alive=30, backlog=2048
    )
    server = uvicorn.Server(config)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"xdv serve: listening on http://{shown}:{bound} (home {home})", flush=True)
    sys.stdout.flush()
    server.run(sockets=[listener])
