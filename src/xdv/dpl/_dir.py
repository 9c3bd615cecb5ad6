"""DIR, the canonical intermediate form: build it, serialise it canonically, hash it, and
disassemble it into a readable listing. ``docs/dpl.md`` documents the format."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from xdv.dpl._checker import CheckedProgram

__all__ = ["DIR_FORMAT", "DIR_VERSION", "build_dir", "canonical_bytes", "disassemble"]

DIR_FORMAT = "xdv-dir"
DIR_VERSION = 1


def canonical_bytes(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def build_dir(checked: CheckedProgram) -> dict[str, Any]:
    """The DIR document of a checked program (which must have no errors)."""
    processes = []
    for key, info in checked.procs.items():
        proc = info.proc
        processes.append(
            {
                "name": key,
                "regime": proc.regime,
                "forge": proc.forge,
                "params": [
                    [param.name, _param_type(checked, info, index)]
                    for index, param in enumerate(proc.params)
                ],
                "returns": info.returns,
                "linear": proc.linear,
                "uses": [
                    {"name": r.name, "args": dict(sorted(r.arguments.items()))} for r in proc.uses
                ],
                "effects": sorted(info.all_effects),
                "slots": info.slots,
                "qubits": info.qubits,
                "body": info.body,
            }
        )
    program = {
        "format": DIR_FORMAT,
        "version": DIR_VERSION,
        "shapes": [
            {"name": name, "fields": [list(field) for field in fields]}
            for name, fields in checked.shapes.items()
        ],
        "processes": processes,
        "binds": [
            {"source": b["source"], "target": b["target"], "contract": b["contract"]}
            for b in checked.binds
        ],
    }
    program["sha256"] = hashlib.sha256(canonical_bytes(program)).hexdigest()
    return program


def _param_type(checked: CheckedProgram, info: Any, index: int) -> str:
    types: list[str] = info.param_types
    return types[index] if index < len(types) else "Any"


# ---------------------------------------------------------------------- disassembler


def disassemble(document: dict[str, Any]) -> str:
    """A listing of a DIR document, one statement per line, for people."""
    lines = [f"; {document['format']} v{document['version']}  sha256 {document['sha256']}"]
    for shape in document["shapes"]:
        fields = ", ".join(f"{n}: {t}" for n, t in shape["fields"])
        lines.append(f"shape {shape['name']} {{ {fields} }}")
    for bind in document["binds"]:
        clauses = ", ".join(
            f"{name} {c['op']} {json.dumps(c['value'])}"
            for name, c in sorted(bind["contract"].items())
        )
        lines.append(f"bind {bind['source']} -> {bind['target']} {{ {clauses} }}")
    for proc in document["processes"]:
        params = ", ".join(f"%{i}:{n}: {t}" for i, (n, t) in enumerate(proc["params"]))
        flags = []
        if proc["linear"]:
            flags.append("linear")
        if proc["effects"]:
            flags.append("effects=" + "+".join(proc["effects"]))
        if proc["uses"]:
            flags.append("uses=" + ",".join(u["name"] for u in proc["uses"]))
        lines.append(f"proc {proc['name']}({params}) -> {proc['returns']}  ; {' '.join(flags)}")
        _statements(proc["body"], lines, 1)
    return "\n".join(lines) + "\n"


def _statements(body: list[dict[str, Any]], lines: list[str], depth: int) -> None:
    pad = "  " * depth
    for node in body:
        kind = node["s"]
        if kind == "let":
            lines.append(f"{pad}%{node['slot']}:{node['name']}: {node['t']} = {_expr(node['e'])}")
        elif kind == "assign":
            lines.append(f"{pad}%{node['slot']}:{node['name']} := {_expr(node['e'])}")
        elif kind == "effect":
            lines.append(f"{pad}{node['effect'].upper()} {_expr(node['e'])}")
        elif kind in ("constrain", "expr"):
            lines.append(f"{pad}{kind} {_expr(node['e'])}")
        elif kind == "prove":
            lines.append(f"{pad}%{node['slot']}:{node['name']} = PROVE {_expr(node['e'])}")
        elif kind == "return":
            value = "" if node["e"] is None else " " + _expr(node["e"])
            lines.append(f"{pad}return{value}")
        elif kind == "if":
            lines.append(f"{pad}if {_expr(node['c'])}")
            _statements(node["then"], lines, depth + 1)
            if node["else"] is not None:
                lines.append(f"{pad}else")
                _statements(node["else"], lines, depth + 1)
            lines.append(f"{pad}end")
        elif kind == "while":
            lines.append(f"{pad}while {_expr(node['c'])}")
            _statements(node["body"], lines, depth + 1)
            lines.append(f"{pad}end")
        elif kind == "for":
            bounds = f"{_expr(node['lo'])}..{_expr(node['hi'])}"
            lines.append(f"{pad}for %{node['slot']}:{node['name']} in {bounds}")
            _statements(node["body"], lines, depth + 1)
            lines.append(f"{pad}end")
        else:
            lines.append(f"{pad}{kind}")


def _expr(node: dict[str, Any]) -> str:
    kind = node["k"]
    if kind == "lit":
        return json.dumps(node["v"], ensure_ascii=False)
    if kind == "var":
        return f"%{node['slot']}:{node['name']}"
    if kind == "bin":
        return f"({_expr(node['l'])} {node['op']} {_expr(node['r'])})"
    if kind == "un":
        return f"{node['op']}{_expr(node['e'])}"
    if kind == "call":
        return f"call {node['proc']}({', '.join(_expr(a) for a in node['args'])})"
    if kind == "xcall":
        args = ", ".join(_expr(a) for a in node["args"])
        return f"xcall[bind {node['bind']}] {node['target']}({args})"
    if kind == "std" and node["fn"] == "alloc":
        return f"q::alloc({node['size']})"
    if kind == "std":
        return f"{node['ns']}::{node['fn']}({', '.join(_expr(a) for a in node['args'])})"
    if kind == "interp":
        return (
            "fmt("
            + ", ".join(
                json.dumps(p, ensure_ascii=False) if isinstance(p, str) else _expr(p)
                for p in node["parts"]
            )
            + ")"
        )
    if kind == "shape":
        return (
            f"{node['name']} {{ " + ", ".join(f"{n}: {_expr(e)}" for n, e in node["fields"]) + " }"
        )
    if kind == "field":
        return f"{_expr(node['e'])}.{node['name']}"
    if kind == "array":
        return "[" + ", ".join(_expr(i) for i in node["items"]) + "]"
    if kind == "index":
        return f"{_expr(node['e'])}[{_expr(node['i'])}]"
    return f"<{kind}>"
