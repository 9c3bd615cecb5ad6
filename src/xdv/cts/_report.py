"""The conformance report: what ran, what it found, the level reached, signed by the node key.

A report file is one JSON document in canonical form (keys sorted, no insignificant white
space, UTF-8, integers and strings only, no floating-point numbers) followed by a newline:

``{"format": "xdv-cts-report/1", "report": {...}, "signature": {...}}``

The signature is a hybrid (Ed25519 + ML-DSA-65) signature of the canonical bytes of
``{"format", "report"}`` under the context ``xdv-cts-report``, made with the node key; the
signature object carries the public key, so anyone can check it, and ``--trusted-key`` says
whose signature to accept. :func:`verify_report` also recomputes every total, the coverage and
the certification from the per-case results, so a report cannot claim more than its results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xdv.cts._case import CASES_ROOT, LEVELS, Case, suite_digest
from xdv.cts._executor import Identity
from xdv.cts._runner import CaseResult
from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security import HybridPublicKey

__all__ = [
    "CTS_VERSION",
    "REPORT_FORMAT",
    "TIERS",
    "ReportCheck",
    "ReportError",
    "build_report",
    "canonical",
    "certification",
    "sign_report",
    "verify_report",
]

CTS_VERSION = "1.0"
"""The suite's version (its cases are pinned by the suite digest)."""

REPORT_FORMAT = "xdv-cts-report/1"
SIGNATURE_CONTEXT = b"xdv-cts-report"
SIGNATURE_ALGORITHM = "ed25519+ml-dsa-65"

TIERS = ("core", "distributed", "full-hybrid")
"""The certification ladder (XDV-084's compliance tiers), lowest first: ``core`` needs every
core case to pass; ``distributed`` adds every distributed case; ``full-hybrid`` adds every
hybrid (Q and Φ) case. A skipped case is not a pass, and a filtered run certifies nothing."""

_STATUSES = ("pass", "fail", "skip")
_CHECKS = ("ok", "failed", "none")


class ReportError(XdvError):
    """A report is malformed or inconsistent (CTS_REPORT_INVALID)."""

    default_code = ErrorCode.CTS_REPORT_INVALID


def canonical(value: Any) -> bytes:
    """The canonical encoding of a report value; CTS_REPORT_INVALID if it holds a float or
    another value outside the profile (maps with string keys, lists, strings, integers,
    booleans, null)."""

    def check(item: Any, path: str) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise ReportError(f"a key that is not a string at {path}", where=path)
                check(inner, f"{path}.{key}")
        elif isinstance(item, list):
            for index, inner in enumerate(item):
                check(inner, f"{path}[{index}]")
        elif not (item is None or isinstance(item, str | int | bool)):
            raise ReportError(f"a {type(item).__name__} at {path}", where=path)

    check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def certification(levels: Mapping[str, Mapping[str, int]], partial: bool) -> str:
    """The highest tier the per-level totals reach (``none`` if not even core, or if the run
    was filtered)."""
    if partial:
        return "none"

    def clean(level: str) -> bool:
        totals = levels.get(level, {})
        return totals.get("fail", 0) == 0 and totals.get("skip", 0) == 0

    core = levels.get("core", {}).get("pass", 0) > 0 and clean("core")
    if not core:
        return "none"
    if not clean("distributed") or levels.get("distributed", {}).get("pass", 0) == 0:
        return "core"
    hybrid = clean("hybrid") and levels.get("hybrid", {}).get("pass", 0) > 0
    return "full-hybrid" if hybrid else "distributed"


def _totals(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {status: sum(1 for r in results if r["status"] == status) for status in _STATUSES}


def _derived(results: Sequence[Mapping[str, Any]], partial: bool) -> dict[str, Any]:
    """Everything a report derives from its results: totals, per level, coverage per spec
    clause and per document, replay and invariant status, the certification."""
    levels = {level: _totals([r for r in results if r["level"] == level]) for level in LEVELS}
    coverage: dict[str, dict[str, int]] = {}
    documents: dict[str, dict[str, int]] = {}
    for result in results:
        for clause in result["spec"]:
            document = "DPL" if clause.startswith("DPL-") else clause[:7]
            for table, key in ((coverage, clause), (documents, document)):
                row = table.setdefault(key, dict.fromkeys(_STATUSES, 0))
                row[result["status"]] += 1
    replays = [r["replay"] for r in results if r["replay"] != "none"]
    verifies = [r["verify"] for r in results if r["verify"] != "none"]
    invariants = [
        r for r in results if r["area"].startswith(("invariants", "kernel", "hypervisor"))
    ]
    return {
        "totals": _totals(results),
        "levels": levels,
        "coverage": {key: coverage[key] for key in sorted(coverage)},
        "documents": {key: documents[key] for key in sorted(documents)},
        "replay_status": {
            "checked": len(replays),
            "failed": sum(1 for r in replays if r != "ok"),
            "status": "ok" if replays and all(r == "ok" for r in replays) else "failed",
        },
        "verify_status": {
            "checked": len(verifies),
            "failed": sum(1 for r in verifies if r != "ok"),
        },
        "invariant_status": "ok"
        if invariants and all(r["status"] == "pass" for r in invariants)
        else "failed",
        "certification": certification(levels, partial),
    }


def build_report(
    cases: Sequence[Case],
    results: Sequence[CaseResult],
    *,
    identity: Identity,
    suite_digest: str,
    suite_cases: int,
    selection: Mapping[str, Any],
) -> dict[str, Any]:
    """The report (unsigned) of ``results`` for ``cases`` (in the same order)."""
    rows = []
    for case, result in zip(cases, results, strict=True):
        rows.append(
            {
                **result.to_json(),
                "level": case.level,
                "spec": list(case.spec),
                "area": case.area,
                "digest": case.digest,
            }
        )
    partial = len(rows) != suite_cases
    return {
        "implementation": identity.to_json(),
        "kernel_version": identity.version,
        "runtime_version": identity.version,
        "suite": {
            "version": CTS_VERSION,
            "digest": suite_digest,
            "cases": suite_cases,
            "selected": len(rows),
            "selection": dict(selection),
        },
        "results": rows,
        **_derived(rows, partial),
    }


def sign_report(report: Mapping[str, Any], keys: Any) -> dict[str, Any]:
    """The signed report document (``keys``: the node's
    :class:`~xdv.security.HybridKeyPair`)."""
    body = {"format": REPORT_FORMAT, "report": dict(report)}
    signature = keys.sign(canonical(body), context=SIGNATURE_CONTEXT)
    return {
        **body,
        "signature": {
            "algorithm": SIGNATURE_ALGORITHM,
            "public_key": keys.public.to_record(),
            "signer": keys.public.fingerprint,
            "value": signature.hex(),
        },
    }


@dataclass(frozen=True)
class ReportCheck:
    """What :func:`verify_report` established."""

    signer: str
    trusted: bool  # signed by one of the trusted keys given (False: none was given)
    certification: str  # the report's tier, or "none" when it ran another suite
    totals: Mapping[str, int]
    shipped_suite: bool  # the report's suite digest is this XDV's shipped suite's
    claimed_certification: str  # the tier the report itself states

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "signer": self.signer,
            "trusted": self.trusted,
            "certification": self.certification,
            "claimed_certification": self.claimed_certification,
            "shipped_suite": self.shipped_suite,
            "totals": dict(self.totals),
        }


_REPORT_KEYS = {
    "implementation",
    "kernel_version",
    "runtime_version",
    "suite",
    "results",
    "totals",
    "levels",
    "coverage",
    "documents",
    "replay_status",
    "verify_status",
    "invariant_status",
    "certification",
}
_RESULT_KEYS = {"id", "status", "reason", "verify", "replay", "level", "spec", "area", "digest"}


def _check_results(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    results = report["results"]
    if not isinstance(results, list):
        raise ReportError("results is not a list", where="report.results")
    seen = set()
    for index, row in enumerate(results):
        where = f"report.results[{index}]"
        if not isinstance(row, dict) or set(row) != _RESULT_KEYS:
            raise ReportError("a result does not have the result fields", where=where)
        if not all(isinstance(row[key], str) for key in ("id", "reason", "area", "digest")):
            raise ReportError("a result's id, reason, area or digest is not text", where=where)
        spec = row["spec"]
        if not isinstance(spec, list) or not all(isinstance(item, str) for item in spec):
            raise ReportError("a result's spec is not a list of clause ids", where=where)
        if row["status"] not in _STATUSES or row["level"] not in LEVELS:
            raise ReportError("a result's status or level is unknown", where=where)
        if row["verify"] not in _CHECKS or row["replay"] not in _CHECKS:
            raise ReportError("a result's verify or replay check is unknown", where=where)
        if row["status"] == "pass" and row["reason"]:
            raise ReportError("a passed case gives a failure reason", where=where)
        if row["status"] != "pass" and not row["reason"]:
            raise ReportError("a failed or skipped case gives no reason", where=where)
        if row["id"] in seen:
            raise ReportError(f"case {row['id']!r} appears twice", where=where)
        seen.add(row["id"])
    return results


def verify_report(
    data: bytes, trusted: set[str] | None = None, *, shipped_digest: str | None = None
) -> ReportCheck:
    """Check a report file's bytes: canonical form, fields, consistency of every derived
    figure with the results, and the signature (by one of ``trusted``, when given).

    Without ``trusted`` the signature only shows that the report is self-consistent and
    unchanged since someone signed it, not who: :attr:`ReportCheck.trusted` is then False.
    A certification counts only for the suite it names: when the report's suite digest is not
    ``shipped_digest`` (this XDV's shipped suite, by default), the check's certification is
    ``none`` (the report's own claim stays in ``claimed_certification``)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"not a JSON document: {error}", where="report") from None
    if not isinstance(document, dict) or set(document) != {"format", "report", "signature"}:
        raise ReportError("a report has the fields format, report and signature", where="$")
    if document["format"] != REPORT_FORMAT:
        raise ReportError(f"unknown report format {document['format']!r}", where="format")
    if data != canonical(document) + b"\n":
        raise ReportError("the file is not in canonical form", where="$")
    report = document["report"]
    if not isinstance(report, dict) or set(report) != _REPORT_KEYS:
        raise ReportError("the report does not have the report fields", where="report")
    signature = document["signature"]
    if not isinstance(signature, dict) or set(signature) != {
        "algorithm",
        "public_key",
        "signer",
        "value",
    }:
        raise ReportError("the signature does not have its fields", where="signature")
    if signature["algorithm"] != SIGNATURE_ALGORITHM:
        raise ReportError(f"unknown algorithm {signature['algorithm']!r}", where="signature")
    public = HybridPublicKey.from_record(signature["public_key"])
    if public.fingerprint != signature["signer"]:
        raise UnauthorizedError(
            "the signer fingerprint is not the public key's",
            code=ErrorCode.SIGNATURE_INVALID,
            where="signature.signer",
        )
    try:
        value = bytes.fromhex(str(signature["value"]))
    except ValueError:
        raise ReportError("the signature value is not hex", where="signature.value") from None
    body = {"format": document["format"], "report": report}
    public.verify(canonical(body), value, context=SIGNATURE_CONTEXT)
    # Signed, so authentic: now its figures must follow from its results.
    results = _check_results(report)
    suite = report["suite"]
    if not isinstance(suite, dict) or suite.get("selected") != len(results):
        raise ReportError("the suite's selected count is not the results'", where="report.suite")
    partial = len(results) != suite.get("cases")
    derived = _derived(results, partial)
    for key, value_ in derived.items():
        if report[key] != value_:
            raise ReportError(f"{key} does not follow from the results", where=f"report.{key}")
    trusted_flag = False
    if trusted:
        if public.fingerprint not in trusted:
            raise XdvError(
                f"the report is signed by {public.fingerprint}, not a trusted key",
                code=ErrorCode.CTS_REPORT_UNTRUSTED,
                where="signature.signer",
            )
        trusted_flag = True
    if shipped_digest is None:
        shipped_digest = suite_digest(CASES_ROOT)
    shipped = suite.get("digest") == shipped_digest
    claimed = report["certification"]
    return ReportCheck(
        public.fingerprint,
        trusted_flag,
        claimed if shipped else "none",
        report["totals"],
        shipped,
        claimed,
    )
