"""Reading DPL source files and DIR documents (shared by the loader and the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, WorkloadError
from xdv.inputs import decode_text, limit, load_json, read_bounded

__all__ = ["read_dir_document", "read_text", "read_tree"]


def read_text(path: Path) -> str:
    """A ``.ds`` file's text (UTF-8).

    Read through :mod:`xdv.inputs`: only a regular file, at most ``dpl_source_bytes_max`` bytes,
    decoded strictly. A missing file is a WorkloadError; any other refusal keeps its own code
    (INPUT_NOT_REGULAR, INPUT_LIMIT_EXCEEDED, INPUT_DECODE_FAILED with the byte offset).
    """
    if not path.exists() and not path.is_symlink():
        raise WorkloadError(f"DPL source not found: {path}", where=str(path))
    data = read_bounded(path, "dpl_source_bytes_max", what="DPL source")
    return decode_text(data, f"DPL source {path}")


def read_dir_document(path: Path) -> Any:
    """The JSON value of a DIR document file: a regular file of at most ``document_bytes_max``
    bytes, strict UTF-8, nesting at most ``json_depth_max`` (so a DIR document read from
    outside is shallower than the deepest program the compiler accepts), parsed by
    :func:`xdv.inputs.load_json`. The value still has to pass :func:`~xdv.dpl.parse_dir`."""
    data = read_bounded(path, "document_bytes_max", what="DIR document")
    return load_json(data, f"DIR document {path}")


def read_tree(path: Path) -> list[tuple[str, str]]:
    """The ``.ds`` files under directory ``path``, as (path relative to it, text) in the order
    of their relative paths (so a tree always compiles the same way wherever it lies). Each
    file is read like :func:`read_text`; at most ``dpl_files_max`` files, and symbolic links
    are not followed."""
    if not path.is_dir():
        raise WorkloadError(f"DPL source tree not found: {path}", where=str(path))
    found = sorted(
        (item for item in path.rglob("*.ds") if item.is_file() and not item.is_symlink()),
        key=lambda item: item.relative_to(path).as_posix(),
    )
    bound = limit("dpl_files_max")
    if len(found) > bound:
        raise WorkloadError(
            f"a DPL source tree of {len(found)} files: exceeds the limit dpl_files_max = {bound}",
            code=ErrorCode.INPUT_LIMIT_EXCEEDED,
            where=str(path),
        )
    if not found:
        raise WorkloadError(f"no .ds files under {path}", where=str(path))
    return [(item.relative_to(path).as_posix(), read_text(item)) for item in found]
