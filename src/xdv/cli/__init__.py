"""The ``xdv`` command."""

from xdv.cli._main import cli, main

__all__ = ["cli", "main"]
