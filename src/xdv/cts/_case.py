"""Conformance cases: one file per case, with front matter, validated strictly.

A case file is ``cases/<area>/<name>.<ext>``. Its front matter (YAML) is a comment block at the
top of the file, so that the file stays a valid program of its language: ``/*--- … ---*/`` in a
DPL program (``.ds``) or an OpenQASM circuit (``.qasm``), a ``\"\"\"--- … ---\"\"\"`` docstring
in a Python workload (``.py``). A ``.yaml`` case is front matter only: its input (a Φ problem, a
trace to tamper with) is given by fields. ``docs/conformance.md`` describes every field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "ACTIONS",
    "CASES_ROOT",
    "CHANGES",
    "EXIT_CLASSES",
    "FEATURES",
    "HANDSHAKES",
    "LEVELS",
    "MUTATIONS",
    "SERVICE_TOKENS",
    "TAMPERS",
    "Case",
    "CaseError",
    "load_case",
    "load_cases",
    "parse_case",
    "suite_digest",
]

CASES_ROOT = Path(__file__).parent / "cases"
"""Where the shipped cases are (package data)."""

LEVELS = ("core", "hybrid", "distributed")
"""A case's level: ``core`` (mandatory: K, trace, replay, security, DPL), ``hybrid`` (the Q
and Φ domains), ``distributed`` (more than one node)."""

FEATURES = ("q", "phi", "service", "cluster", "view", "telemetry", "attest")
"""What a case may require beyond the core: an extra or a command of the implementation."""

ACTIONS = (
    "run",
    "check",
    "qrun",
    "phirun",
    "verify",
    "telemetry",
    "attest",
    "view",
    "model-check",
    "service",
    "cluster",
    "transport",
    "consensus",
)
"""What a case does with its input (the adapter command it drives)."""

CHANGES = ("none", "repeat", "config", "bad-config", "nonce", "untrusted", "signature")
"""What an ``attest`` case changes between producing a boot quote and verifying it."""

_BASED = ("verify", "telemetry", "view", "service")
SERVICE_TOKENS = ("submit", "read-only", "forged", "none")
"""Which token a service case submits with: the tenant's own, a read-only one derived from it,
one with a byte changed, or none."""

EXIT_CLASSES = ("ok", "static", "runtime", "admissibility", "contract", "usage")
"""A run's class of ending: the exit statuses 0, 65, 70, 71, 72 and 64."""

MUTATIONS = ("flip", "truncate", "drop", "swap", "duplicate", "append", "preamble")
"""How a verification case damages the trace of its base program."""

_FLIP_FIELDS = ("length", "header", "metadata", "check", "prev_hash", "seq", "event_type")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_SPEC = re.compile(r"^(XDV-\d{3}-\d+(\.\d+)*|DPL-(§\d+(\.\d+)*|v0\.2(-K)?))$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_EVENT = re.compile(r"^[A-Z][A-Z0-9_]*(:[A-Z][A-Z0-9_]*)?$")
_DIAGNOSTIC = re.compile(r"^[A-Z]\d{3}(@\d+)?$")
_EXTENSIONS = {".ds": "run", ".py": "run", ".qasm": "qrun", ".yaml": None}
_TELEMETRY = {"series", "alerts", "same_on_rerun"}
_VIEW = {"at", "state", "deterministic"}
_QUOTE = {"attest", "verify", "differences", "same_payload"}
_SERVICE = {"status", "code", "state", "exit_code", "outputs", "outputs_include", "trace"}
_CLUSTER = {
    "lines",
    "same_as_run",
    "placement",
    "deterministic",
    "lost",
    "epochs",
    "moved",
    "verify",
}
_TRANSPORT = {"handshake", "opened", "refused"}
_CONSENSUS = {
    "decided",
    "agreement",
    "view_changes_min",
    "evidence",
    "verify",
    "forged",
    "deterministic",
}
TAMPERS = ("node-trace", "job-trace", "manifest", "placement", "policy", "merge-root", "decision")
"""How a cluster case damages the cluster trace before verifying it."""
HANDSHAKES = ("ok", "hello-signature", "hello-truncated", "other-epoch")
"""How a transport case's handshake goes: as it should, or with a damaged or misdated hello."""
_DELIVERY = re.compile(r"^(own|\d+(:(header|ciphertext|tag|truncated|extended))?)$")
_MODEL = {"states_min", "transitions_min", "depth", "violation", "counterexample_max"}
_OPEN = {".ds": "/*---", ".qasm": "/*---", ".py": '"""---'}
_CLOSE = {".ds": "---*/", ".qasm": "---*/", ".py": '---"""'}
_TOP = {"id", "spec", "description", "level", "requires", "action", "options", "input", "expect"}
_REQUIRED = ("id", "spec", "description", "level", "expect")
_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "seed": int,
    "entry": str,
    "faults": (str, dict),
    "profile": str,
    "shots": int,
    "calibration": str,
    "noise": bool,
    "fidelity_min": (int, float),
    "provider": str,
    "format": str,
    "work_limit": (int, float),
    "depth": int,
    "planted": str,
    "isolate": bool,
}
_EXPECT = {
    "exit",
    "code",
    "diagnostics",
    "outputs",
    "outputs_include",
    "counts",
    "result",
    "trace",
    "verify",
    "replay",
    "telemetry",
    "view",
    "quote",
    "model",
    "service",
    "cluster",
    "transport",
    "consensus",
}
_TRACE = {"present", "absent", "order", "counts", "at_least"}


class CaseError(XdvError):
    """A case file is malformed (CTS_CASE_INVALID) or its id is taken (CTS_CASE_DUPLICATE);
    ``where`` is ``FILE: field``."""

    default_code = ErrorCode.CTS_CASE_INVALID


@dataclass(frozen=True)
class Case:
    """One conformance case, as its file declares it (see ``docs/conformance.md``)."""

    id: str
    spec: tuple[str, ...]
    description: str
    level: str
    requires: tuple[str, ...]
    action: str
    path: Path
    relative: str
    options: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, Any] = field(default_factory=dict)
    expect: Mapping[str, Any] = field(default_factory=dict)
    digest: str = ""

    @property
    def area(self) -> str:
        """The case's directory under ``cases/`` (``kernel``, ``dpl/types``...)."""
        return self.relative.rsplit("/", 1)[0] if "/" in self.relative else ""

    @property
    def documents(self) -> tuple[str, ...]:
        """The spec documents the case's clauses belong to (``XDV-005``, ``DPL``)."""
        return tuple(sorted({_document(item) for item in self.spec}))


def _document(spec: str) -> str:
    return "DPL" if spec.startswith("DPL-") else spec[:7]


def _fail(path: str, where: str, message: str) -> CaseError:
    return CaseError(message, where=f"{path}: {where}")


def _front_matter(text: str, suffix: str, where: str) -> tuple[str, str]:
    """(front matter, body) of a case file's text."""
    if suffix == ".yaml":
        return text, ""
    opener, closer = _OPEN[suffix], _CLOSE[suffix]
    first, _, rest = text.partition("\n")
    if first.rstrip() != opener:
        raise _fail(where, "front matter", f"a {suffix} case starts with a line {opener!r}")
    matter, found, body = rest.partition("\n" + closer)
    if not found:
        raise _fail(where, "front matter", f"the front matter is not closed by {closer!r}")
    return matter, body


def _strings(
    value: Any, where: str, name: str, pattern: re.Pattern[str] | None = None
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(where, name, "must be a list of strings")
    for item in value:
        if pattern is not None and not pattern.match(item):
            raise _fail(where, name, f"{item!r} is not of the form {pattern.pattern}")
    return tuple(value)


def _check_trace(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _fail(where, "expect.trace", "must be a map")
    for key, item in value.items():
        if key not in _TRACE:
            raise _fail(where, f"expect.trace.{key}", f"unknown field (known: {sorted(_TRACE)})")
        if key in ("counts", "at_least"):
            if not isinstance(item, dict) or not all(
                isinstance(k, str) and type(n) is int and n >= 0 for k, n in item.items()
            ):
                raise _fail(where, f"expect.trace.{key}", "must map event names to counts")
            names = list(item)
        else:
            names = list(_strings(item, where, f"expect.trace.{key}"))
        for name in names:
            if not _EVENT.match(name):
                raise _fail(where, f"expect.trace.{key}", f"{name!r} is not TYPE or TYPE:STATUS")


def _check_expect(value: Any, action: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise _fail(where, "expect", "must be a non-empty map")
    for key in value:
        if key not in _EXPECT:
            raise _fail(where, f"expect.{key}", f"unknown field (known: {sorted(_EXPECT)})")
    exit_class = value.get("exit")
    if exit_class is not None and exit_class not in EXIT_CLASSES:
        raise _fail(where, "expect.exit", f"must be one of {list(EXIT_CLASSES)}")
    kinds = {
        "telemetry": "telemetry",
        "view": "view",
        "attest": "quote",
        "model-check": "model",
        "service": "service",
        "cluster": "cluster",
        "transport": "transport",
        "consensus": "consensus",
    }
    for name, wanted in kinds.items():
        if (action == name) != (wanted in value):
            raise _fail(where, f"expect.{wanted}", f"stated by (and only by) a {name} case")
    if action in kinds:
        _check_feature_expect(value[kinds[action]], kinds[action], where)
    elif action == "verify":
        if "verify" not in value:
            raise _fail(where, "expect.verify", "a verify case states its verdict")
    elif exit_class is None:
        raise _fail(where, "expect.exit", "required (the run's class of ending)")
    code = value.get("code")
    if code is not None and (not isinstance(code, str) or code not in ErrorCode.__members__):
        raise _fail(where, "expect.code", f"{code!r} is not an error code name")
    if "diagnostics" in value:
        _strings(value["diagnostics"], where, "expect.diagnostics", _DIAGNOSTIC)
    for key in ("outputs", "outputs_include"):
        if key in value and not isinstance(value[key], list):
            raise _fail(where, f"expect.{key}", "must be a list")
    if "counts" in value and (
        not isinstance(value["counts"], dict)
        or not all(isinstance(k, str) and type(n) is int for k, n in value["counts"].items())
    ):
        raise _fail(where, "expect.counts", "must map bit strings to shot counts")
    if "result" in value and not isinstance(value["result"], dict):
        raise _fail(where, "expect.result", "must be a map")
    if "trace" in value:
        _check_trace(value["trace"], where)
    verdict = value.get("verify")
    if verdict is not None and verdict != "ok" and verdict not in ErrorCode.__members__:
        raise _fail(where, "expect.verify", "must be 'ok' or an error code name")
    if "replay" in value and value["replay"] not in ("ok", "both", "none"):
        raise _fail(where, "expect.replay", "must be 'ok', 'both' or 'none'")
    return dict(value)


def _check_fields(value: Any, known: set[str], where: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise _fail(where, name, "must be a non-empty map")
    for key in value:
        if key not in known:
            raise _fail(where, f"{name}.{key}", f"unknown field (known: {sorted(known)})")
    return value


def _check_feature_expect(value: Any, kind: str, where: str) -> None:
    """The expectations of a telemetry, view, attest or model-check case."""
    name = f"expect.{kind}"
    if kind == "telemetry":
        fields = _check_fields(value, _TELEMETRY, where, name)
        for index, series in enumerate(fields.get("series", [])):
            if (
                not isinstance(series, dict)
                or set(series) - {"metric", "labels", "value"}
                or not isinstance(series.get("metric"), str)
                or not isinstance(series.get("value"), int | float)
                or not isinstance(series.get("labels", {}), dict)
            ):
                raise _fail(where, f"{name}.series[{index}]", "is {metric, labels?, value}")
        if "alerts" in fields:
            _strings(fields["alerts"], where, f"{name}.alerts")
    elif kind == "view":
        fields = _check_fields(value, _VIEW, where, name)
        if type(fields.get("at")) is not int or fields["at"] < 0:
            raise _fail(where, f"{name}.at", "a logical time (a non-negative integer)")
        if "state" in fields and not isinstance(fields["state"], dict):
            raise _fail(where, f"{name}.state", "must be a map")
    elif kind == "quote":
        fields = _check_fields(value, _QUOTE, where, name)
        failed = fields.get("attest")
        if failed is not None and failed not in ErrorCode.__members__:
            raise _fail(where, f"{name}.attest", "the error code the boot fails with")
        verdict = fields.get("verify")
        if (failed is None or verdict is not None) and (
            verdict != "ok" and verdict not in ErrorCode.__members__
        ):
            raise _fail(where, f"{name}.verify", "must be 'ok' or an error code name")
        if "differences" in fields:
            _strings(fields["differences"], where, f"{name}.differences")
    elif kind == "service":
        fields = _check_fields(value, _SERVICE, where, name)
        for key in ("status", "exit_code"):
            if key in fields and type(fields[key]) is not int:
                raise _fail(where, f"{name}.{key}", "must be an integer")
        code = fields.get("code")
        if code is not None and code not in ErrorCode.__members__:
            raise _fail(where, f"{name}.code", f"{code!r} is not an error code name")
        for key in ("outputs", "outputs_include"):
            if key in fields and not isinstance(fields[key], list):
                raise _fail(where, f"{name}.{key}", "must be a list")
        if "trace" in fields:
            _check_trace(fields["trace"], where)
    elif kind in ("cluster", "transport", "consensus"):
        known = {"cluster": _CLUSTER, "transport": _TRANSPORT, "consensus": _CONSENSUS}[kind]
        fields = _check_fields(value, known, where, name)
        for key in ("lines", "lost", "refused", "evidence"):
            if key in fields:
                _strings(fields[key], where, f"{name}.{key}")
        for key in ("epochs", "moved", "decided", "view_changes_min"):
            if key in fields and (type(fields[key]) is not int or fields[key] < 0):
                raise _fail(where, f"{name}.{key}", "must be a non-negative integer")
        if "opened" in fields and not (
            isinstance(fields["opened"], list)
            and all(type(item) is int for item in fields["opened"])
        ):
            raise _fail(where, f"{name}.opened", "must be a list of frame numbers")
        for key in ("verify", "forged", "handshake"):
            verdict = fields.get(key)
            if verdict is not None and verdict != "ok" and verdict not in ErrorCode.__members__:
                raise _fail(where, f"{name}.{key}", "must be 'ok' or an error code name")
        for key in ("same_as_run", "placement", "agreement"):
            if key in fields and not isinstance(fields[key], bool):
                raise _fail(where, f"{name}.{key}", "must be true or false")
    else:
        fields = _check_fields(value, _MODEL, where, name)
        for key in ("states_min", "transitions_min", "depth", "counterexample_max"):
            if key in fields and (type(fields[key]) is not int or fields[key] < 0):
                raise _fail(where, f"{name}.{key}", "must be a non-negative integer")
        if not isinstance(fields.get("violation"), bool):
            raise _fail(where, f"{name}.violation", "required: true or false")
    for key in ("same_on_rerun", "deterministic", "same_payload"):
        if key in fields and not isinstance(fields[key], bool):
            raise _fail(where, f"{name}.{key}", "must be true or false")


def _check_options(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "options", "must be a map")
    for key, item in value.items():
        kind = _OPTIONS.get(key)
        if kind is None:
            raise _fail(where, f"options.{key}", f"unknown option (known: {sorted(_OPTIONS)})")
        if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
            raise _fail(where, f"options.{key}", f"has the wrong type ({type(item).__name__})")
    return dict(value)


def _check_input(value: Any, action: str, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "input", "must be a map")
    if action == "phirun":
        problem = value.get("problem")
        if not isinstance(problem, str | dict) or set(value) != {"problem"}:
            raise _fail(where, "input.problem", "a phirun case gives its problem (text or map)")
    elif action == "attest":
        if set(value) - {"change", "nonce"} or value.get("change", "none") not in CHANGES:
            raise _fail(where, "input.change", f"an attest case's change is one of {CHANGES}")
        nonce = value.get("nonce")
        if nonce is not None and not (
            isinstance(nonce, str) and re.fullmatch(r"([0-9a-f]{2}){1,64}", nonce)
        ):
            raise _fail(where, "input.nonce", "lower-case hex, 1 to 64 bytes")
    elif action == "cluster":
        jobs = value.get("jobs")
        if set(value) - {"jobs", "nodes", "kill", "tamper"} or not (
            isinstance(jobs, list) and jobs and all(isinstance(job, str) for job in jobs)
        ):
            raise _fail(where, "input.jobs", "a cluster case lists its jobs (files beside it)")
        for job in jobs:
            if not (path.parent / job).is_file():
                raise _fail(where, "input.jobs", f"no file {job!r} beside the case")
        nodes = value.get("nodes", 2)
        if type(nodes) is not int or not 1 <= nodes <= 8:
            raise _fail(where, "input.nodes", "an integer from 1 to 8")
        if "kill" in value and not isinstance(value["kill"], str):
            raise _fail(where, "input.kill", "the id of the node to lose")
        if value.get("tamper", TAMPERS[0]) not in TAMPERS:
            raise _fail(where, "input.tamper", f"one of {list(TAMPERS)}")
    elif action == "transport":
        frames = value.get("frames", 0)
        deliver = value.get("deliver", [])
        if set(value) - {"handshake", "frames", "deliver"} or type(frames) is not int:
            raise _fail(where, "input", "a transport case has handshake, frames and deliver")
        if value.get("handshake", "ok") not in HANDSHAKES:
            raise _fail(where, "input.handshake", f"one of {list(HANDSHAKES)}")
        for step in _strings(deliver, where, "input.deliver", _DELIVERY):
            number = step.partition(":")[0]
            if number != "own" and int(number) >= frames:
                raise _fail(where, "input.deliver", f"{step!r}: there are {frames} frames")
    elif action == "consensus":
        n = value.get("n", 4)
        if set(value) - {"n", "values", "crash", "equivocate", "forge"} or not (
            type(n) is int and 1 <= n <= 10
        ):
            raise _fail(where, "input", "n (1 to 10), values, crash, equivocate, forge")
        _strings(value.get("equivocate", []), where, "input.equivocate")
        if type(value.get("values", 1)) is not int or value.get("values", 1) < 0:
            raise _fail(where, "input.values", "how many values to agree on")
        _strings(value.get("crash", []), where, "input.crash")
        if value.get("forge", "signature") not in ("signature", "value", "signer"):
            raise _fail(where, "input.forge", "signature, value or signer")
    elif action in _BASED:
        allowed = {
            "verify": {"base", "mutate"},
            "telemetry": {"base", "thresholds"},
            "service": {"base", "tenant", "token", "params"},
        }
        if set(value) - allowed.get(action, {"base"}) or not isinstance(value.get("base"), str):
            raise _fail(where, "input.base", f"a {action} case names its base program (a file)")
        if action == "service" and (
            value.get("tenant", "alice") not in ("alice", "tiny")
            or value.get("token", "submit") not in SERVICE_TOKENS
            or not isinstance(value.get("params", {}), dict)
        ):
            raise _fail(where, "input", f"tenant alice|tiny, token one of {SERVICE_TOKENS}")
        if "thresholds" in value and not isinstance(value["thresholds"], dict):
            raise _fail(where, "input.thresholds", "must be a map of alert thresholds")
        if not (path.parent / value["base"]).is_file():
            raise _fail(
                where, "input.base", f"no file {value['base']!r} relative to the case's folder"
            )
        mutate = value.get("mutate")
        if mutate is not None:
            if not isinstance(mutate, dict) or mutate.get("kind") not in MUTATIONS:
                raise _fail(where, "input.mutate.kind", f"must be one of {list(MUTATIONS)}")
            extra = set(mutate) - {"kind", "entry", "field"}
            if extra:
                raise _fail(where, f"input.mutate.{sorted(extra)[0]}", "unknown field")
            if "entry" in mutate and type(mutate["entry"]) is not int:
                raise _fail(where, "input.mutate.entry", "must be an integer (negative: from end)")
            if mutate["kind"] == "flip" and mutate.get("field") not in _FLIP_FIELDS:
                raise _fail(where, "input.mutate.field", f"must be one of {list(_FLIP_FIELDS)}")
    elif value:
        raise _fail(where, "input", f"a {action} case takes its input from its body")
    return dict(value)


def parse_case(text: str, path: Path, relative: str) -> Case:
    """The case in ``text`` (the content of ``path``); :class:`CaseError` naming the file and
    field when anything is wrong."""
    import yaml

    where = relative
    suffix = path.suffix
    if suffix not in _EXTENSIONS:
        raise _fail(where, "file", f"a case file ends in one of {sorted(_EXTENSIONS)}")
    matter, _ = _front_matter(text, suffix, where)
    try:
        document = yaml.load(matter, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise _fail(where, "front matter", f"not YAML: {error}") from None
    if not isinstance(document, dict):
        raise _fail(where, "front matter", "must be a map")
    for key in document:
        if key not in _TOP:
            raise _fail(where, str(key), f"unknown field (known: {sorted(_TOP)})")
    for key in _REQUIRED:
        if key not in document:
            raise _fail(where, key, "required")
    case_id = document["id"]
    if not isinstance(case_id, str) or not _ID.match(case_id):
        raise _fail(where, "id", "lower-case letters, digits, '.', '_', '-' (at most 100)")
    spec = _strings(document["spec"], where, "spec", _SPEC)
    if not spec:
        raise _fail(where, "spec", "names at least one clause")
    description = document["description"]
    if not isinstance(description, str) or not description.strip():
        raise _fail(where, "description", "must be a non-empty string")
    level = document["level"]
    if level not in LEVELS:
        raise _fail(where, "level", f"must be one of {list(LEVELS)}")
    requires = _strings(document.get("requires", []), where, "requires")
    for feature in requires:
        if feature not in FEATURES:
            raise _fail(where, "requires", f"{feature!r} is not one of {list(FEATURES)}")
    action = document.get("action", _EXTENSIONS[suffix])
    if action not in ACTIONS:
        raise _fail(where, "action", f"must be one of {list(ACTIONS)}")
    if suffix == ".yaml" and action in ("run", "check", "qrun"):
        raise _fail(where, "action", f"a {action} case is a program file, not .yaml")
    if suffix != ".yaml" and action in (
        "cluster",
        "transport",
        "consensus",
        "phirun",
        "verify",
        "telemetry",
        "view",
        "attest",
        "service",
    ):
        raise _fail(where, "action", f"a {action} case is a .yaml file")
    if action == "model-check" and suffix != ".py":
        raise _fail(where, "action", "a model-check case is a .py file (its system)")
    options = _check_options(document.get("options", {}), where)
    faults = options.get("faults")
    if isinstance(faults, str) and not (path.parent / faults).is_file():
        raise _fail(where, "options.faults", f"no file {faults!r} beside the case")
    inputs = _check_input(document.get("input", {}), action, path, where)
    expect = _check_expect(document["expect"], action, where)
    return Case(
        id=case_id,
        spec=spec,
        description=description.strip(),
        level=level,
        requires=requires,
        action=action,
        path=path,
        relative=relative,
        options=options,
        input=inputs,
        expect=expect,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def load_case(path: Path, root: Path = CASES_ROOT) -> Case:
    """Read and validate one case file."""
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _fail(relative, "file", f"cannot be read: {error}") from None
    return parse_case(text, path, relative)


def _case_files(root: Path) -> list[Path]:
    """Case files in canonical order (relative POSIX path); files only used by cases (the base
    programs of verify cases, fault plans) are named ``*.base.*`` or ``*.json``."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix not in _EXTENSIONS or ".base." in path.name:
            continue
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_cases(root: Path = CASES_ROOT) -> list[Case]:
    """Every case under ``root``, validated, in canonical order; CTS_CASE_DUPLICATE if two
    declare one id."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in _case_files(root):
        case = load_case(path, root)
        if case.id in seen:
            raise CaseError(
                f"case id {case.id!r} is also declared by {seen[case.id]}",
                code=ErrorCode.CTS_CASE_DUPLICATE,
                where=f"{case.relative}: id",
            )
        seen[case.id] = case.relative
        cases.append(case)
    return cases


def suite_digest(root: Path = CASES_ROOT) -> str:
    """SHA-256 over every file under ``root`` (cases and the files they use), in canonical
    order: each file's relative path and content, length-prefixed."""
    hasher = hashlib.sha256()
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    for path in files:
        for part in (path.relative_to(root).as_posix().encode("utf-8"), path.read_bytes()):
            hasher.update(len(part).to_bytes(8, "big") + part)
    return hasher.hexdigest()


def select(cases: Iterable[Case], pattern: str | None, level: str | None) -> list[Case]:
    """The cases whose id, path or a spec clause contains ``pattern`` (a glob when it has
    ``*``), at ``level`` (with the levels below it: hybrid and distributed include core)."""
    import fnmatch

    chosen = []
    for case in cases:
        if level is not None and case.level not in ("core", level):
            continue
        if pattern:
            names = (case.id, case.relative, *case.spec)
            if "*" in pattern or "?" in pattern:
                if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                    continue
            elif not any(pattern in name for name in names):
                continue
        chosen.append(case)
    return chosen
