"""The DPL toolchain: lexer → parser → checker → DIR → virtual machine on the XDV kernel.

``compile_source`` runs the front-end and the checker and returns the DIR document (or raises
:class:`DplStaticError` carrying every diagnostic); :func:`spawn_dpl` starts a compiled
:class:`Program`'s entry K process on a kernel (the runtime layer loads ``.ds`` files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xdv.core import KDomainManager, Operation
from xdv.dpl._checker import CheckedProgram, check
from xdv.dpl._diagnostics import CODES, Diagnostic, DplStaticError, Source, Span, render
from xdv.dpl._dir import DIR_FORMAT, DIR_VERSION, build_dir, canonical_bytes, disassemble
from xdv.dpl._init_helpers import read_text
from xdv.dpl._lower import PhiBuilder, QCircuit, lower_q
from xdv.dpl._parser import parse
from xdv.dpl._values import (
    DplAdmissibilityFailure,
    DplContractViolation,
    DplRuntimeFailure,
    ShapeValue,
    Witness,
    show,
)
from xdv.dpl._vm import (
    BIND_EXERCISE_STEPS_MIN,
    DomainAdapter,
    KernelDomainAdapter,
    Program,
    compile_k,
    effect_record_text,
)
from xdv.errors import XdvError
from xdv.trace import Domain

__all__ = [
    "BIND_EXERCISE_STEPS_MIN",
    "CODES",
    "DIR_FORMAT",
    "DIR_VERSION",
    "CheckedProgram",
    "Compiled",
    "Diagnostic",
    "DomainAdapter",
    "DplAdmissibilityFailure",
    "DplContractViolation",
    "DplRuntimeFailure",
    "DplStaticError",
    "KernelDomainAdapter",
    "PhiBuilder",
    "Program",
    "QCircuit",
    "ShapeValue",
    "Source",
    "Span",
    "Witness",
    "analyze",
    "build_dir",
    "canonical_bytes",
    "check",
    "compile_k",
    "compile_source",
    "disassemble",
    "dpl_domains",
    "effect_record_text",
    "lower_q",
    "parse",
    "read_text",
    "render",
    "show",
    "spawn_dpl",
]


@dataclass
class Compiled:
    """The outcome of the front-end: diagnostics, and the DIR document when there are none."""

    source: Source
    diagnostics: list[Diagnostic]
    dir: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.dir is not None


def analyze(text: str, name: str = "<input>", profile: str | None = None) -> Compiled:
    """Parse and check ``text``; never raises for bad input (every problem is a diagnostic)."""
    source = Source(text, name)
    program, diagnostics = parse(text)
    if any(d.severity == "error" for d in diagnostics):
        return Compiled(source, diagnostics, None)
    checked = check(program, profile)
    diagnostics = diagnostics + checked.diagnostics
    if not checked.ok:
        return Compiled(source, diagnostics, None)
    return Compiled(source, diagnostics, build_dir(checked))


def compile_source(text: str, name: str = "<input>", profile: str | None = None) -> dict[str, Any]:
    """The DIR document of ``text``; raises :class:`DplStaticError` on any error."""
    compiled = analyze(text, name, profile)
    if compiled.dir is None:
        raise DplStaticError(compiled.diagnostics, compiled.source)
    return compiled.dir


def spawn_dpl(kernel: Any, program: Program) -> int:
    """Spawn the kernel process that runs ``program``; return its pid.

    The process declares K and every other regime the program uses whose manager the kernel has
    installed (so it is bound to them, with their capabilities, from the start); a regime whose
    manager is missing fails at its first cross-regime call, after every earlier effect.
    """

    used = {proc["regime"] for proc in program.document["processes"]}
    domains = [Domain.K]
    for regime, domain in (("Q", Domain.Q), ("Φ", Domain.PHI)):
        if regime in used:
            try:
                kernel.manager(domain)
            except XdvError:
                continue
            domains.append(domain)
    program.adapter = KernelDomainAdapter(frozenset(domains))
    pid: int = kernel.spawn(program.anchor, name=f"dpl:{program.entry}", domains=domains)
    # The rights beyond EXECUTE that the managers ask for: a Q job that measures needs MEASURE,
    # a Φ readout PROJECT (granted by the workload's owner, recorded in the trace).

    if Domain.Q in domains:
        kernel.grant(pid, Operation.MEASURE, Domain.Q, Domain.K)
    if Domain.PHI in domains:
        kernel.grant(pid, Operation.PROJECT, Domain.PHI, Domain.K)
    return pid


def dpl_domains(document: dict[str, Any]) -> list[Any]:
    """The domain managers a run of ``document`` needs: K, plus the Q manager (Aer provider)
    and the Φ manager when the program has Q or Φ processes."""

    regimes = {proc["regime"] for proc in document["processes"]}
    managers: list[Any] = [KDomainManager()]
    if "Q" in regimes:
        from xdv.domains.q import QDomainManager, provider_factories

        managers.append(QDomainManager({"aer": provider_factories()["aer"]()}))
    if "Φ" in regimes:
        from xdv.domains.phi import PhiDomainManager

        managers.append(PhiDomainManager())
    return managers
