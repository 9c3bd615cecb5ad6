"""Reading DPL source files (shared by the loader and the CLI)."""

from __future__ import annotations

from pathlib import Path

from xdv.errors import WorkloadError

__all__ = ["read_text"]


def read_text(path: Path) -> str:
    """A ``.ds`` file's text (UTF-8); a missing or undecodable file is a WorkloadError."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise WorkloadError(f"DPL source not found: {path}", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise WorkloadError(f"cannot read {path}: {error}", where=str(path)) from None
