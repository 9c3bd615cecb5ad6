"""The ``xdv`` command."""

from xdv.cli._common import cli
from xdv.cli._main import main

__all__ = ["cli", "main"]
