"""The DPL toolchain: lexer → parser → checker → DIR → virtual machine on the XDV kernel.

``compile_dir`` runs the front-end, the checker and the DIR builder and returns the typed DIR
program (or raises :class:`DplStaticError` carrying every diagnostic); ``compile_source`` returns
the same program as its canonical JSON document. :func:`parse_dir` reads a document back into
typed nodes; every pass over DIR is a :class:`DirVisitor`. :func:`spawn_dpl` starts a compiled
:class:`Program`'s entry K process on a kernel (the runtime layer loads ``.ds`` files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdv.core import Operation
from xdv.dpl._build import build_dir
from xdv.dpl._checker import CheckedProgram, check
from xdv.dpl._codegen import compile_k
from xdv.dpl._diagnostics import (
    CODES,
    Diagnostic,
    Diagnostics,
    DplStaticError,
    Source,
    Span,
    TreeSource,
    render,
)
from xdv.dpl._dir import (
    DIR_FORMAT,
    DIR_VERSION,
    DirBind,
    DirClause,
    DirProcess,
    DirProgram,
    DirShape,
    DirUse,
    DirVisitor,
    DirWalker,
    canonical_bytes,
    dir_document,
)
from xdv.dpl._dir_parse import DirFormatError, parse_dir
from xdv.dpl._disassemble import disassemble
from xdv.dpl._init_helpers import read_dir_document, read_text, read_tree
from xdv.dpl._lower import PhiBuilder, QCircuit, lower_phi, lower_q
from xdv.dpl._parser import parse, parse_files
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
    "DirBind",
    "DirClause",
    "DirFormatError",
    "DirProcess",
    "DirProgram",
    "DirShape",
    "DirUse",
    "DirVisitor",
    "DirWalker",
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
    "TreeSource",
    "Witness",
    "analyze",
    "analyze_tree",
    "build_dir",
    "canonical_bytes",
    "check",
    "compile_dir",
    "compile_k",
    "compile_source",
    "compile_tree",
    "dir_document",
    "disassemble",
    "effect_record_text",
    "lower_phi",
    "lower_q",
    "parse",
    "parse_dir",
    "read_dir_document",
    "read_text",
    "read_tree",
    "render",
    "show",
    "spawn_dpl",
]


@dataclass
class Compiled:
    """The outcome of the front-end: diagnostics, and the DIR program when there are none."""

    source: Source
    diagnostics: list[Diagnostic]
    program: DirProgram | None
    _document: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the program compiled (no error diagnostics)."""
        return self.program is not None

    @property
    def dir(self) -> dict[str, Any] | None:
        """The DIR document (canonical JSON value) of the program, or None."""
        if self.program is not None and self._document is None:
            self._document = dir_document(self.program)
        return self._document


def analyze(text: str, name: str = "<input>", profile: str | None = None) -> Compiled:
    """Parse and check ``text``; never raises for bad input (every problem is a diagnostic)."""
    source = Source(text, name)
    program, diagnostics = parse(text)
    if any(d.severity == "error" for d in diagnostics):
        return Compiled(source, diagnostics, None)
    checked = check(program, profile)
    combined = Diagnostics(text)
    combined.extend(diagnostics)
    combined.extend(checked.diagnostics)
    diagnostics = combined.final()
    if not checked.ok:
        return Compiled(source, diagnostics, None)
    return Compiled(source, diagnostics, build_dir(checked))


def analyze_tree(
    files: list[tuple[str, str]], name: str = "<tree>", profile: str | None = None
) -> Compiled:
    """Parse and check the files of a source tree as one program (modules: each file's forge
    is visible to the others, and ``Forge::K::name`` names a process of another forge); the
    diagnostics' spans are in the joined text, which :class:`TreeSource` maps back to files."""
    program, diagnostics, starts = parse_files([text for _, text in files])
    source = TreeSource(files, starts, name)
    if any(d.severity == "error" for d in diagnostics):
        return Compiled(source, diagnostics, None)
    checked = check(program, profile)
    combined = Diagnostics(source.text)
    combined.extend(diagnostics)
    combined.extend(checked.diagnostics)
    diagnostics = combined.final()
    if not checked.ok:
        return Compiled(source, diagnostics, None)
    return Compiled(source, diagnostics, build_dir(checked))


def compile_tree(
    files: list[tuple[str, str]], name: str = "<tree>", profile: str | None = None
) -> dict[str, Any]:
    """The DIR document of a source tree (see :func:`analyze_tree`); raises
    :class:`DplStaticError` on any error."""
    compiled = analyze_tree(files, name, profile)
    if compiled.program is None:
        raise DplStaticError(compiled.diagnostics, compiled.source)
    return dir_document(compiled.program)


def compile_dir(text: str, name: str = "<input>", profile: str | None = None) -> DirProgram:
    """The typed DIR program of ``text``; raises :class:`DplStaticError` on any error."""
    compiled = analyze(text, name, profile)
    if compiled.program is None:
        raise DplStaticError(compiled.diagnostics, compiled.source)
    return compiled.program


def compile_source(text: str, name: str = "<input>", profile: str | None = None) -> dict[str, Any]:
    """The DIR document (canonical JSON value) of ``text``; raises :class:`DplStaticError` on
    any error."""
    return dir_document(compile_dir(text, name, profile))


def spawn_dpl(kernel: Any, program: Program) -> int:
    """Spawn the kernel process that runs ``program``; return its pid.

    The process declares K and every other regime the program uses whose manager the kernel has
    installed (so it is bound to them, with their capabilities, from the start); a regime whose
    manager is missing fails at its first cross-regime call, after every earlier effect.
    """

    used = program.regimes
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
