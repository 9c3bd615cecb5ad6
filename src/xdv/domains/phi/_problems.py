"""Φ problems: constraint sets over bounded integers and booleans, and Ising/QUBO problems.

Both kinds are validated into immutable, canonical forms with a stable SHA-256 hash, and both
can be *evaluated classically*: a constraint set checks an assignment, an Ising problem computes
the energy of a spin configuration. The kernel uses these evaluations to verify every
configuration a provider returns before it becomes a witness.

Constraint problems use the canonical dictionary form shared with DPL's Φ regime::

    {"variables": [{"name": "x", "kind": "bool"}, {"name": "n", "kind": "int", "lo": 0, "hi": 9}],
     "constraints": [{"op": "<=", "lhs": {"var": "n"}, "rhs": {"const": 3}}, ...]}

Ising problems minimise ``E(s) = offset + Σ h_i s_i + Σ_{i<j} J_ij s_i s_j`` over ``s_i ∈ {-1,+1}``;
their dictionary form is ``{"kind": "ising", "n": N, "h": [...], "J": [[i, j, J_ij], ...]}``
(``h`` may be omitted or given as ``[[i, h_i], ...]``), and ``{"kind": "qubo", "n": N,
"Q": [[i, j, q], ...]}`` is converted to the equivalent Ising problem.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import numpy.typing as npt

from xdv.errors import ErrorCode, XdvError, safe_repr
from xdv.inputs import decode_text, exceeded, limit, read_bounded
from xdv.trace import canonicalize

__all__ = [
    "ConstraintProblem",
    "IsingProblem",
    "PhiProblemError",
    "Variable",
    "canonical_hash",
    "ising_cut",
    "ising_cut_for_energy",
    "ising_from_bqm",
    "parse_gset",
]

INT_BOUND_MAX = 2**40
"""Integer variable bounds must lie within ±2**40 (CP-SAT works on 64-bit integers)."""

VARIABLES_MAX = 100_000
SPINS_MAX = limit("problem_spins_max")
COUPLINGS_MAX = limit("problem_couplings_max")
NUMBER_MAX = limit("problem_number_max")

_COMPARISONS = ("==", "!=", "<=", "<", ">=", ">")
_LOGICAL = ("and", "or")
_ARITHMETIC = ("+", "-", "*")


class PhiProblemError(XdvError):
    """A Φ problem is malformed (code PHI_ERR_PROBLEM_INVALID); ``where`` names the path."""

    default_code = ErrorCode.PHI_ERR_PROBLEM_INVALID


def canonical_hash(value: Any) -> str:
    """Hex SHA-256 over the canonical trace encoding of ``value``."""
    return hashlib.sha256(cbor2.dumps(canonicalize(value, "Φ problem"))).hexdigest()


@dataclass(frozen=True, slots=True)
class Variable:
    """A declared variable: ``kind`` is ``bool`` (0/1) or ``int`` with inclusive bounds."""

    name: str
    kind: str
    lo: int
    hi: int

    def to_record(self) -> dict[str, Any]:
        if self.kind == "bool":
            return {"name": self.name, "kind": "bool"}
        return {"name": self.name, "kind": "int", "lo": self.lo, "hi": self.hi}


def _require_int(value: Any, where: str) -> int:
    if type(value) is not int:
        raise PhiProblemError(f"expected an integer, got {safe_repr(value)}", where=where)
    if abs(value) > INT_BOUND_MAX:
        raise PhiProblemError(f"integer {value} exceeds ±2**40", where=where)
    return value


@dataclass(frozen=True)
class ConstraintProblem:
    """A validated constraint problem (declaration order kept: it defines the admissible order)."""

    variables: tuple[Variable, ...]
    constraints: tuple[Mapping[str, Any], ...]
    record: Mapping[str, Any] = field(repr=False)
    digest: str = ""

    @classmethod
    def parse(cls, problem: Any) -> ConstraintProblem:
        """Validate ``problem`` (canonical dictionary form); raise :class:`PhiProblemError`."""
        if isinstance(problem, ConstraintProblem):
            return problem
        if not isinstance(problem, Mapping):
            raise PhiProblemError(
                f"a constraint problem is a mapping, got {type(problem).__name__}",
                where="problem",
            )
        unknown = sorted(str(key) for key in set(problem) - {"variables", "constraints"})
        if unknown:
            raise PhiProblemError(f"unknown keys {unknown}", where="problem")
        raw_variables = problem.get("variables")
        if not isinstance(raw_variables, Sequence) or isinstance(raw_variables, str | bytes):
            raise PhiProblemError("'variables' must be a list", where="problem.variables")
        if len(raw_variables) > VARIABLES_MAX:
            raise PhiProblemError(
                f"{len(raw_variables)} variables exceed the limit of {VARIABLES_MAX}",
                where="problem.variables",
            )
        variables: list[Variable] = []
        names: set[str] = set()
        for index, raw in enumerate(raw_variables):
            where = f"problem.variables[{index}]"
            if not isinstance(raw, Mapping):
                raise PhiProblemError("a variable is a mapping", where=where)
            name, kind = raw.get("name"), raw.get("kind")
            if not isinstance(name, str) or not name:
                raise PhiProblemError(f"bad variable name {safe_repr(name)}", where=where)
            if name in names:
                raise PhiProblemError(f"variable {name!r} is declared twice", where=where)
            names.add(name)
            if kind == "bool":
                if set(raw) - {"name", "kind"}:
                    raise PhiProblemError("a bool variable takes only name and kind", where=where)
                variables.append(Variable(name, "bool", 0, 1))
            elif kind == "int":
                if set(raw) - {"name", "kind", "lo", "hi"}:
                    raise PhiProblemError(
                        "an int variable takes name, kind, lo and hi", where=where
                    )
                lo = _require_int(raw.get("lo"), f"{where}.lo")
                hi = _require_int(raw.get("hi"), f"{where}.hi")
                if lo > hi:
                    raise PhiProblemError(f"empty domain [{lo}, {hi}]", where=where)
                variables.append(Variable(name, "int", lo, hi))
            else:
                raise PhiProblemError(
                    f"variable kind must be 'bool' or 'int', got {safe_repr(kind)}", where=where
                )
        raw_constraints = problem.get("constraints", [])
        if not isinstance(raw_constraints, Sequence) or isinstance(raw_constraints, str | bytes):
            raise PhiProblemError("'constraints' must be a list", where="problem.constraints")
        kinds = {variable.name: variable.kind for variable in variables}
        constraints = []
        for index, expression in enumerate(raw_constraints):
            _check_expression(expression, kinds, f"problem.constraints[{index}]")
            constraints.append(canonicalize(expression, "constraint"))
        record = {
            "variables": [variable.to_record() for variable in variables],
            "constraints": constraints,
        }
        return cls(tuple(variables), tuple(constraints), record, canonical_hash(record))

    def to_record(self) -> dict[str, Any]:
        """The canonical dictionary form."""
        return dict(self.record)

    def check(self, assignment: Mapping[str, Any]) -> list[int]:
        """Indices of the constraints ``assignment`` violates (empty: all hold).

        Raise :class:`PhiProblemError` if the assignment does not give every variable a value
        within its domain.
        """
        values = self.values_of(assignment)
        return [
            index
            for index, constraint in enumerate(self.constraints)
            if not _evaluate(constraint, values)
        ]

    def values_of(self, assignment: Mapping[str, Any]) -> dict[str, int]:
        """Integer values of an assignment, validated against the declared domains."""
        if not isinstance(assignment, Mapping):
            raise PhiProblemError("an assignment is a mapping", where="assignment")
        extra = sorted(set(assignment) - {variable.name for variable in self.variables})
        if extra:
            raise PhiProblemError(f"unknown variables {extra}", where="assignment")
        values: dict[str, int] = {}
        for variable in self.variables:
            if variable.name not in assignment:
                raise PhiProblemError(f"no value for {variable.name!r}", where="assignment")
            value = assignment[variable.name]
            if variable.kind == "bool":
                if type(value) is not bool:
                    raise PhiProblemError(
                        f"{variable.name!r} is a bool, got {safe_repr(value)}", where="assignment"
                    )
                values[variable.name] = int(value)
            else:
                if type(value) is not int or not variable.lo <= value <= variable.hi:
                    raise PhiProblemError(
                        f"{variable.name!r} must be an int in [{variable.lo}, {variable.hi}], "
                        f"got {safe_repr(value)}",
                        where="assignment",
                    )
                values[variable.name] = value
        return values


def _check_expression(expression: Any, kinds: Mapping[str, str], where: str) -> None:
    if not isinstance(expression, Mapping):
        raise PhiProblemError("an expression is a mapping", where=where)
    op = expression.get("op")
    if op in _COMPARISONS:
        if set(expression) != {"op", "lhs", "rhs"}:
            raise PhiProblemError(f"a {op!r} comparison has exactly lhs and rhs", where=where)
        _check_term(expression["lhs"], kinds, f"{where}.lhs")
        _check_term(expression["rhs"], kinds, f"{where}.rhs")
    elif op in _LOGICAL:
        args = expression.get("args")
        if set(expression) != {"op", "args"} or not isinstance(args, list) or not args:
            raise PhiProblemError(f"{op!r} takes a non-empty list 'args'", where=where)
        for index, arg in enumerate(args):
            _check_expression(arg, kinds, f"{where}.args[{index}]")
    elif op == "not":
        if set(expression) != {"op", "arg"}:
            raise PhiProblemError("'not' takes one 'arg'", where=where)
        _check_expression(expression["arg"], kinds, f"{where}.arg")
    elif op == "bool":
        name = expression.get("var")
        if set(expression) != {"op", "var"} or kinds.get(name) != "bool":  # type: ignore[arg-type]
            raise PhiProblemError(
                f"'bool' names a declared bool variable, got {safe_repr(name)}", where=where
            )
    else:
        raise PhiProblemError(f"unknown expression operator {safe_repr(op)}", where=where)


def _check_term(term: Any, kinds: Mapping[str, str], where: str) -> None:
    if not isinstance(term, Mapping):
        raise PhiProblemError("a term is a mapping", where=where)
    if "const" in term:
        if set(term) != {"const"}:
            raise PhiProblemError("a constant term has only 'const'", where=where)
        _require_int(term["const"], f"{where}.const")
    elif "var" in term:
        if set(term) != {"var"} or term["var"] not in kinds:
            raise PhiProblemError(
                f"unknown variable {safe_repr(term.get('var'))}", where=f"{where}.var"
            )
    elif term.get("op") in _ARITHMETIC:
        args = term.get("args")
        if set(term) != {"op", "args"} or not isinstance(args, list) or not args:
            raise PhiProblemError(f"{term['op']!r} takes a non-empty list 'args'", where=where)
        for index, arg in enumerate(args):
            _check_term(arg, kinds, f"{where}.args[{index}]")
    else:
        raise PhiProblemError(f"unknown term {safe_repr(term.get('op'))}", where=where)


def evaluate_term(term: Mapping[str, Any], values: Mapping[str, int]) -> int:
    """The integer value of a validated term under ``values``."""
    if "const" in term:
        return int(term["const"])
    if "var" in term:
        return values[term["var"]]
    results = [evaluate_term(arg, values) for arg in term["args"]]
    op = term["op"]
    if op == "+":
        return sum(results)
    if op == "-":
        return -results[0] if len(results) == 1 else results[0] - sum(results[1:])
    product = 1
    for result in results:
        product *= result
    return product


def _evaluate(expression: Mapping[str, Any], values: Mapping[str, int]) -> bool:
    op = expression["op"]
    if op == "and":
        return all(_evaluate(arg, values) for arg in expression["args"])
    if op == "or":
        return any(_evaluate(arg, values) for arg in expression["args"])
    if op == "not":
        return not _evaluate(expression["arg"], values)
    if op == "bool":
        return values[expression["var"]] == 1
    lhs, rhs = evaluate_term(expression["lhs"], values), evaluate_term(expression["rhs"], values)
    return {
        "==": lhs == rhs,
        "!=": lhs != rhs,
        "<=": lhs <= rhs,
        "<": lhs < rhs,
        ">=": lhs >= rhs,
        ">": lhs > rhs,
    }[op]


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class IsingProblem:
    """A validated Ising problem on spins ``0..n-1`` (couplings merged, ``i < j``)."""

    n: int
    h: FloatArray
    rows: IntArray
    cols: IntArray
    weights: FloatArray
    offset: float = 0.0
    labels: tuple[Any, ...] | None = None
    digest: str = ""

    @classmethod
    def build(
        cls,
        n: int,
        h: Mapping[int, float] | Sequence[float] | None,
        couplings: Sequence[tuple[int, int, float]] | Any,
        offset: float = 0.0,
        labels: tuple[Any, ...] | None = None,
    ) -> IsingProblem:
        """Validate and normalise an Ising problem; raise :class:`PhiProblemError` naming the
        field at fault (``problem.J[3][2]``), or INPUT_LIMIT_EXCEEDED for a problem past the
        limits ``problem_spins_max``, ``problem_couplings_max`` or ``problem_number_max``."""
        if type(n) is not int or n < 1:
            raise PhiProblemError(f"n must be an integer in [1, {SPINS_MAX}]", where="problem.n")
        if n > SPINS_MAX:
            raise exceeded("problem_spins_max", f"n = {n}", "problem.n")
        fields = np.zeros(n, dtype=np.float64)
        if isinstance(h, Mapping):
            _count(h, "problem.h")
            for index, value in h.items():
                fields[_spin_index(index, n, "problem.h")] += _finite(
                    value, f"problem.h[{index!r}]"
                )
        elif h is not None:
            if not isinstance(h, Sequence | np.ndarray) or isinstance(h, str | bytes):
                raise PhiProblemError(
                    f"h is a list of n numbers or of [i, h_i] pairs, got {type(h).__name__}",
                    where="problem.h",
                )
            items = list(h[: COUPLINGS_MAX + 1])
            _count(items, "problem.h")
            if items and isinstance(items[0], list | tuple):
                for position, pair in enumerate(items):
                    where = f"problem.h[{position}]"
                    if not isinstance(pair, list | tuple) or len(pair) != 2:
                        raise PhiProblemError("h pairs are [i, h_i]", where=where)
                    fields[_spin_index(pair[0], n, f"{where}[0]")] += _finite(
                        pair[1], f"{where}[1]"
                    )
            else:
                if len(items) != n:
                    raise PhiProblemError(
                        f"h has {len(items)} entries, n is {n}", where="problem.h"
                    )
                fields[:] = [
                    _finite(value, f"problem.h[{position}]") for position, value in enumerate(items)
                ]
        i, j, w = _couplings(couplings, n)
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        keys = lo * n + hi
        unique, inverse = np.unique(keys, return_inverse=True)
        merged = np.zeros(len(unique), dtype=np.float64)
        np.add.at(merged, inverse, w)
        rows, cols = unique // n, unique % n
        offset = _finite(offset, "problem.offset")
        digest = canonical_hash(
            {
                "kind": "ising",
                "n": n,
                "h": [float(x) for x in fields],
                "J": [
                    [int(a), int(b), float(c)] for a, b, c in zip(rows, cols, merged, strict=True)
                ],
                "offset": float(offset),
            }
        )
        return cls(n, fields, rows, cols, merged, float(offset), labels, digest)

    @classmethod
    def parse(cls, problem: Any) -> IsingProblem:
        """Accept an :class:`IsingProblem`, a dimod BQM, or the dictionary forms."""
        if isinstance(problem, IsingProblem):
            return problem
        if hasattr(problem, "to_ising") and hasattr(problem, "variables"):
            return ising_from_bqm(problem)
        if not isinstance(problem, Mapping):
            raise PhiProblemError(
                f"an Ising problem is a mapping or a dimod BQM, got {type(problem).__name__}",
                where="problem",
            )
        kind = problem.get("kind", "ising")
        n = problem.get("n")
        if type(n) is int and n > SPINS_MAX:
            raise exceeded("problem_spins_max", f"n = {n}", "problem.n")
        if kind == "ising":
            unknown = sorted(str(key) for key in set(problem) - {"kind", "n", "h", "J", "offset"})
            if unknown:
                raise PhiProblemError(f"unknown keys {unknown}", where="problem")
            return cls.build(
                n,  # type: ignore[arg-type]
                problem.get("h"),
                problem.get("J", []),
                _finite(problem.get("offset", 0.0), "problem.offset"),
            )
        if kind == "qubo":
            unknown = sorted(str(key) for key in set(problem) - {"kind", "n", "Q", "offset"})
            if unknown:
                raise PhiProblemError(f"unknown keys {unknown}", where="problem")
            if type(n) is not int or n < 1:
                raise PhiProblemError("n must be a positive integer", where="problem.n")
            return _ising_from_qubo(n, problem.get("Q", []), problem.get("offset", 0.0))
        raise PhiProblemError(
            f"kind must be 'ising' or 'qubo', got {safe_repr(kind)}", where="problem"
        )

    def to_record(self) -> dict[str, Any]:
        """The canonical dictionary form (``kind: ising``)."""
        return {
            "kind": "ising",
            "n": self.n,
            "h": [float(x) for x in self.h],
            "J": [
                [int(a), int(b), float(c)]
                for a, b, c in zip(self.rows, self.cols, self.weights, strict=True)
            ],
            "offset": self.offset,
        }

    def energy(self, spins: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Energies of spin configurations (shape ``(n,)`` or ``(replicas, n)``)."""
        s = np.asarray(spins, dtype=np.float64)
        pair = (s[..., self.rows] * s[..., self.cols] * self.weights).sum(axis=-1)
        return np.asarray(self.offset + s @ self.h + pair, dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """Size and hash, for traces (the problem body stays out of them)."""
        return {"kind": "ising", "n": self.n, "couplings": len(self.weights), "hash": self.digest}


def _ising_from_qubo(n: int, entries: Any, offset: Any) -> IsingProblem:
    # x = (1 + s) / 2:  q_ii x_i -> q_ii/2 (1 + s_i);
    # q_ij x_i x_j -> q/4 (1 + s_i + s_j + s_i s_j)
    if n > SPINS_MAX:
        raise exceeded("problem_spins_max", f"n = {n}", "problem.n")
    h = np.zeros(n)
    couplings: list[tuple[int, int, float]] = []
    constant = _finite(offset, "problem.offset")
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise PhiProblemError("Q is [[i, j, q], ...]", where="problem.Q")
    _count(entries, "problem.Q")
    for position, entry in enumerate(entries):
        where = f"problem.Q[{position}]"
        if not isinstance(entry, list | tuple) or len(entry) != 3:
            raise PhiProblemError("Q entries are [i, j, q]", where=where)
        i, j = _spin_index(entry[0], n, f"{where}[0]"), _spin_index(entry[1], n, f"{where}[1]")
        q = _finite(entry[2], f"{where}[2]")
        if i == j:
            h[i] += q / 2
            constant += q / 2
        else:
            constant += q / 4
            h[i] += q / 4
            h[j] += q / 4
            couplings.append((i, j, q / 4))
    return IsingProblem.build(n, [float(x) for x in h], couplings, constant)


def ising_from_bqm(bqm: Any) -> IsingProblem:
    """Convert a dimod ``BinaryQuadraticModel`` (SPIN or BINARY) to an Ising problem.

    Spins are numbered in the BQM's variable order; the labels are kept for readouts.
    """
    try:
        linear, quadratic, offset = bqm.to_ising()
        labels = tuple(bqm.variables)
    except Exception as error:
        raise PhiProblemError(f"cannot read the BQM: {error}", where="problem") from None
    index = {label: position for position, label in enumerate(labels)}
    h = [float(linear.get(label, 0.0)) for label in labels]
    couplings = [(index[u], index[v], float(bias)) for (u, v), bias in quadratic.items()]
    return IsingProblem.build(len(labels), h, couplings, float(offset), labels)


def parse_problem_document(document: Any) -> tuple[IsingProblem, dict[str, Any]]:
    """Read a decoded bqm-json document: the Φ dictionary form (``kind: ising`` or ``qubo``)
    or dimod's serialization of a binary quadratic model (``BinaryQuadraticModel
    .to_serializable()``, recognised by its ``type``). Returns the Ising problem and how to
    present its solution: ``{"vartype": "SPIN" | "BINARY", "labels": [...] | None}`` (the
    model's variable labels in spin order, text or integers, others as text)."""
    if isinstance(document, Mapping) and document.get("type") == "BinaryQuadraticModel":
        try:
            import dimod

            bqm = dimod.BinaryQuadraticModel.from_serializable(dict(document))
        except Exception as error:  # dimod's own refusal, whatever its type
            raise PhiProblemError(
                f"not a readable dimod BinaryQuadraticModel serialization: {error}",
                where="problem",
            ) from None
        problem = ising_from_bqm(bqm)
        labels = [
            label if type(label) in (str, int) else str(label) for label in problem.labels or ()
        ]
        return problem, {"vartype": bqm.vartype.name, "labels": labels}
    problem = IsingProblem.parse(document)
    kind = document.get("kind", "ising") if isinstance(document, Mapping) else "ising"
    return problem, {"vartype": "BINARY" if kind == "qubo" else "SPIN", "labels": None}


def parse_gset(source: str | Path) -> tuple[IsingProblem, float]:
    """Read a G-set MaxCut graph; return the Ising problem and the total edge weight ``W``.

    The cut of spins ``s`` is ``(W - (E(s) - offset)) / 2`` with ``J_ij = w_ij`` and ``h = 0``.

    The file is read through :func:`xdv.inputs.read_bounded` (regular files only, at most
    ``problem_bytes_max``) and decoded as ASCII; the header's counts are checked against
    ``problem_spins_max`` and ``problem_couplings_max`` before anything is allocated, and each
    weight against ``problem_number_max``. A malformed line is PHI_ERR_PROBLEM_INVALID naming
    the file and the line.
    """
    path = Path(source)
    text = decode_text(
        read_bounded(path, "problem_bytes_max", what="G-set file"), str(path), encoding="ascii"
    )
    lines = (
        (number, line.split())
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    )
    number, header = next(lines, (1, []))
    if len(header) != 2:
        raise PhiProblemError("the first line must be 'nodes edges'", where=f"{path.name}:{number}")
    n, m = (_gset_int(token, f"{path.name}:{number}") for token in header)
    if n < 1 or m < 0:
        raise PhiProblemError(
            f"the graph needs at least one node and no negative edge count, got {n} {m}",
            where=f"{path.name}:{number}",
        )
    if n > SPINS_MAX:
        raise exceeded("problem_spins_max", f"{n} nodes", f"{path.name}:{number}")
    if m > COUPLINGS_MAX:
        raise exceeded("problem_couplings_max", f"{m} edges", f"{path.name}:{number}")
    couplings = np.zeros((m, 3), dtype=np.float64)
    count = 0
    total = 0
    for number, row in lines:
        where = f"{path.name}:{number}"
        if count == m:
            raise PhiProblemError(f"more than the {m} edges the header declares", where=where)
        if len(row) != 3:
            raise PhiProblemError("an edge line is 'u v w'", where=where)
        u, v, weight = (_gset_int(token, where) for token in row)
        if not (1 <= u <= n and 1 <= v <= n):
            raise PhiProblemError(f"an edge end lies outside [1, {n}]", where=where)
        if u == v:
            raise PhiProblemError(f"an edge joins node {u} to itself", where=where)
        if abs(weight) > NUMBER_MAX:
            raise exceeded("problem_number_max", f"the weight {weight}", where)
        couplings[count] = (u - 1, v - 1, weight)
        total += weight
        count += 1
    if count != m:
        raise PhiProblemError(f"expected {m} edges 'u v w', got {count} lines", where=path.name)
    problem = IsingProblem.build(n, None, couplings)
    return problem, float(total)


def _gset_int(token: str, where: str) -> int:
    """A G-set integer (a token of at most 20 characters: nothing longer fits the limits)."""
    if len(token) > 20:
        raise exceeded("problem_number_max", f"a number of {len(token)} digits", where)
    try:
        return int(token)
    except ValueError:
        raise PhiProblemError(f"G-set lines hold integers, got {token!r}", where=where) from None


def _count(items: Any, where: str) -> None:
    if len(items) > COUPLINGS_MAX:
        raise exceeded("problem_couplings_max", f"more than {COUPLINGS_MAX} entries", where)


def _couplings(couplings: Any, n: int) -> tuple[IntArray, IntArray, FloatArray]:
    """The coupling columns ``(i, j, J_ij)`` of ``[[i, j, J_ij], ...]``, validated."""
    where = "problem.J"
    if isinstance(couplings, np.ndarray) and couplings.dtype.kind in "iuf":
        # A numeric array (a G-set file's edges): checked column by column.
        if couplings.size == 0:
            couplings = couplings.reshape(0, 3)
        if couplings.ndim != 2 or couplings.shape[1] != 3:
            raise PhiProblemError("couplings are [[i, j, J_ij], ...]", where=where)
        _count(couplings, where)
        ends = couplings[:, :2].astype(np.float64)
        weights = couplings[:, 2].astype(np.float64)
        if not np.all(np.isfinite(weights)):
            raise PhiProblemError("a coupling is not finite", where=where)
        if np.any(np.abs(weights) > NUMBER_MAX):
            raise exceeded("problem_number_max", "a coupling weight", where)
        if np.any(ends != np.floor(ends)) or np.any((ends < 0) | (ends >= n)):
            raise PhiProblemError(f"a coupling index lies outside [0, {n})", where=where)
        i, j = ends[:, 0].astype(np.int64), ends[:, 1].astype(np.int64)
        w = weights
    else:
        if not isinstance(couplings, Sequence | np.ndarray) or isinstance(couplings, str | bytes):
            raise PhiProblemError(
                f"couplings are [[i, j, J_ij], ...], got {type(couplings).__name__}", where=where
            )
        _count(couplings, where)
        i = np.zeros(len(couplings), dtype=np.int64)
        j = np.zeros(len(couplings), dtype=np.int64)
        w = np.zeros(len(couplings), dtype=np.float64)
        for position, entry in enumerate(couplings):
            at = f"{where}[{position}]"
            if not isinstance(entry, list | tuple | np.ndarray) or len(entry) != 3:
                raise PhiProblemError("a coupling is [i, j, J_ij]", where=at)
            i[position] = _spin_index(entry[0], n, f"{at}[0]")
            j[position] = _spin_index(entry[1], n, f"{at}[1]")
            w[position] = _finite(entry[2], f"{at}[2]")
    if np.any(i == j):
        raise PhiProblemError("a coupling joins a spin to itself", where=where)
    return i, j, w


def ising_cut(problem: IsingProblem, spins: npt.NDArray[Any]) -> float | None:
    """The cut weight of ``spins`` when ``problem`` is a MaxCut instance (all fields zero):
    the total coupling weight across opposite spins, ``(ΣJ − (E(s) − offset)) / 2``; else None.
    """
    if np.any(problem.h != 0):
        return None
    return ising_cut_for_energy(problem, float(problem.energy(np.asarray(spins))))


def ising_cut_for_energy(problem: IsingProblem, energy: float) -> float:
    """The cut that corresponds to ``energy`` on a zero-field problem."""
    return (float(problem.weights.sum()) - (energy - problem.offset)) / 2


def _spin_index(value: Any, n: int, where: str) -> int:
    if isinstance(value, np.integer):
        value = value.item()
    if type(value) is not int or not 0 <= value < n:
        raise PhiProblemError(f"spin index {safe_repr(value)} outside [0, {n})", where=where)
    return value


def _finite(value: Any, where: str) -> float:
    """A finite number within ``problem_number_max`` in magnitude, as a float (an integer too
    large for a float is refused by the limit, never met as an OverflowError)."""
    if isinstance(value, np.floating | np.integer):
        value = value.item()
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        raise PhiProblemError(f"expected a finite number, got {safe_repr(value)}", where=where)
    if abs(value) > NUMBER_MAX:
        raise exceeded("problem_number_max", safe_repr(value), where)
    return float(value)
