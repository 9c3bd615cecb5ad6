"""The trace: format, writer, reader and verifier, and divergence diffs."""

from xdv.trace._diff import Divergence, diff_traces, first_divergence
from xdv.trace._format import (
    FORMAT_VERSION,
    GENESIS_HASH,
    TraceEntry,
    canonical_metadata,
    canonicalize,
)
from xdv.trace._reader import Trace, TraceScan, VerifyReport, read_trace, scan_trace, verify_trace
from xdv.trace._writer import FsyncPolicy, TraceWriter

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "Divergence",
    "FsyncPolicy",
    "Trace",
    "TraceEntry",
    "TraceScan",
    "TraceWriter",
    "VerifyReport",
    "canonical_metadata",
    "canonicalize",
    "diff_traces",
    "first_divergence",
    "read_trace",
    "scan_trace",
    "verify_trace",
]
