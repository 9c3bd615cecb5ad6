"""XDV View: a read-only web view of traces (``xdv view``, and ``/view`` on a node).

The view indexes a trace once (:class:`TraceIndex`), folds the recorded entries into the state
the panels show (:class:`ViewState`, :func:`fold`) with a copy kept every few entries so the
state at any logical time is quick to reach, and renders server-side HTML (Jinja2) with a small
script layer and a charting library, all served from the package (``docs/view.md``).
"""

from xdv.view._app import COOKIE, IndexCache, create_view_app, mount_node_view
from xdv.view._index import (
    CATEGORIES,
    CHECKPOINT_INTERVAL,
    TIMELINE_POINTS_MAX,
    AuditStatus,
    InclusionCheck,
    TraceIndex,
    ViewError,
)
from xdv.view._render import MANIFEST, STATIC, Renderer, asset_manifest, check_assets
from xdv.view._serve import LOOPBACK, serve_view
from xdv.view._state import RECENT_MAX, ViewState, apply, fold

__all__ = [
    "CATEGORIES",
    "CHECKPOINT_INTERVAL",
    "COOKIE",
    "LOOPBACK",
    "MANIFEST",
    "RECENT_MAX",
    "STATIC",
    "TIMELINE_POINTS_MAX",
    "AuditStatus",
    "InclusionCheck",
    "IndexCache",
    "Renderer",
    "TraceIndex",
    "ViewError",
    "ViewState",
    "apply",
    "asset_manifest",
    "check_assets",
    "create_view_app",
    "fold",
    "mount_node_view",
    "serve_view",
]
