"""Server-side rendering of the view's HTML (Jinja2 templates shipped in the package).

Every document is a function of the trace and the request's parameters alone: no clock, no
random token, no per-process identity enters the bytes, so the same trace at the same logical
time renders the same document. Asset URLs carry the asset's SHA-256 from the manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from xdv.errors import ErrorCode
from xdv.view._index import InclusionCheck, TraceIndex, ViewError

__all__ = [
    "MANIFEST",
    "PROCESS_ROWS_MAX",
    "STATIC",
    "Renderer",
    "asset_manifest",
    "check_assets",
]

_HERE = Path(__file__).parent
STATIC = _HERE / "static"
MANIFEST = STATIC / "MANIFEST.json"
PROCESS_ROWS_MAX = 200
_PLOT_POINTS_MAX = 2000


def asset_manifest() -> dict[str, str]:
    """The committed manifest: asset file name → SHA-256 (hex)."""
    try:
        document = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ViewError(
            f"the asset manifest cannot be read ({error})",
            code=ErrorCode.VIEW_ASSET_MISSING,
            where=MANIFEST.name,
        ) from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        raise ViewError(
            "the asset manifest has no files map",
            code=ErrorCode.VIEW_ASSET_MISSING,
            where=MANIFEST.name,
        )
    return {str(name): str(digest) for name, digest in files.items()}


def check_assets() -> dict[str, str]:
    """Check every asset named in the manifest against its SHA-256; return the manifest."""
    manifest = asset_manifest()
    for name, digest in manifest.items():
        path = STATIC / name
        if not path.is_file():
            raise ViewError(
                f"the asset {name} is missing", code=ErrorCode.VIEW_ASSET_MISSING, where=name
            )
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise ViewError(
                f"the asset {name} has SHA-256 {actual}, the manifest says {digest}",
                code=ErrorCode.VIEW_ASSET_MISSING,
                where=name,
            )
    return manifest


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= 240 else text[:239] + "…"


def _kv(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return "–"
    return ", ".join(f"{key} {item}" for key, item in sorted(value.items()))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    environment.filters["num"] = _num
    environment.filters["show"] = _show
    environment.filters["kv"] = _kv
    return environment


class Renderer:
    """Renders the documents of one mount point.

    ``root`` is the URL prefix of the mount (``/`` for ``xdv view``, ``/view/`` on a node)
    and ``base`` the prefix of one trace's pages under it.
    """

    def __init__(self, root: str = "/") -> None:
        self.root = root if root.endswith("/") else root + "/"
        self._versions = asset_manifest()

    def asset(self, name: str) -> str:
        digest = self._versions.get(name, "")
        return f"{self.root}static/{name}?v={digest[:12]}"

    def _render(self, template: str, **context: Any) -> str:
        return (
            _environment()
            .get_template(template)
            .render(asset=self.asset, home=self.root, root=self.root, **context)
        )

    def _clamp(self, index: TraceIndex, logical_time: int | None) -> int:
        if logical_time is None:
            return index.last_time
        if logical_time < 0:
            raise ViewError(
                f"the logical time must be non-negative, got {logical_time}",
                code=ErrorCode.VIEW_REQUEST_INVALID,
                where="L",
            )
        return min(logical_time, index.last_time)

    def _panel_context(self, index: TraceIndex, logical_time: int) -> dict[str, Any]:
        state = index.state_at(logical_time)
        processes = sorted(state.processes.items())
        return {
            "index": index,
            "L": logical_time,
            "state": state,
            "processes": processes[:PROCESS_ROWS_MAX],
            "hidden_processes": max(0, len(processes) - PROCESS_ROWS_MAX),
            "decisions": sorted(state.decisions.items()),
            "vhms": sorted(state.vhms.items()),
            "recent": index.recent(logical_time, 20),
            "previous": index.step(logical_time, -1),
            "next": index.step(logical_time, 1),
        }

    def page(
        self,
        index: TraceIndex,
        logical_time: int | None,
        *,
        base: str,
        diff_url: str | None = None,
    ) -> str:
        """The whole page of one trace at logical time ``logical_time`` (default: the end)."""
        L = self._clamp(index, logical_time)
        context = self._panel_context(index, L)
        plots = json.dumps(
            {"fidelity": _thin(index.fidelity), "stability": _thin(index.stability)},
            separators=(",", ":"),
        )
        return self._render(
            "page.html",
            base=base,
            diff_url=diff_url,
            plots=plots,
            first=0,
            proof_entry=len(index.entries) - 1,
            **context,
        )

    def panels(self, index: TraceIndex, logical_time: int | None) -> str:
        """The panels fragment alone (what the time slider swaps in)."""
        L = self._clamp(index, logical_time)
        return self._render("panels.html", **self._panel_context(index, L))

    def proof(self, check: InclusionCheck) -> str:
        """The verdict of an inclusion-proof check, with the proof."""
        return self._render("proof.html", check=check)

    def diff(self, left: TraceIndex, right: TraceIndex, *, back: str) -> str:
        """The first divergence of ``right`` from ``left``, field by field."""
        divergence = left.divergence(right)
        context: list[Any] = []
        if divergence is not None:
            context = left.entries[max(0, divergence.index - 5) : divergence.index]
        return self._render(
            "diff.html", left=left, right=right, divergence=divergence, context=context, back=back
        )

    def jobs(self, tenant: str, jobs: list[dict[str, Any]]) -> str:
        """A tenant's job list (the node's ``/view``)."""
        return self._render("jobs.html", tenant=tenant, jobs=jobs)

    def login(self, message: str | None = None) -> str:
        """The sign-in form of the node's ``/view``."""
        return self._render("login.html", message=message)


def _thin(points: list[tuple[int, float]]) -> list[list[float]]:
    stride = max(1, -(-len(points) // _PLOT_POINTS_MAX))
    return [[float(t), value] for t, value in points[::stride]]
