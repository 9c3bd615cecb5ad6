"""The exact provider: admissibility of constraint sets, and exact Ising/QUBO/MaxCut
optimization, with OR-Tools CP-SAT.

The *admissible configuration* of a constraint set is defined as the lexicographically least
satisfying assignment over the variables in declaration order (``false < true``; integers by
value). The provider computes it by fixing the variables one at a time: for each variable in
order it asks CP-SAT for the least value that, together with the values already fixed, still
admits a solution, then fixes it. The answer is therefore a property of the constraint set
alone, independent of solver heuristics, thread count or seed. When the very first feasibility
check reports ``INFEASIBLE`` the set is inadmissible; CP-SAT's answer is a complete search, so
that status is a proof of inadmissibility (re-checkable by running the solver again).

``optimize`` minimizes an Ising energy exactly. The couplings and fields are scaled by the
least power of two that makes them all integers (at most ``2**SCALE_BITS_MAX``); every spin
becomes a boolean ``x_i`` with ``s_i = 2·x_i − 1`` and every coupling a boolean ``y_ij`` tied to
``x_i XOR x_j`` by four linear inequalities, so that ``s_i·s_j = 1 − 2·y_ij`` and the energy is a
linear integer objective. The search runs on one worker with a fixed seed and is bounded by
CP-SAT's deterministic time (a work measure, not wall time), so the same problem, seed and work
limit give the same answer. The outcome is ``OPTIMAL`` (optimality proved) or ``FEASIBLE`` (the
work limit ran out first) together with the best proven lower bound on the energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from xdv.domains.phi._problems import INT_BOUND_MAX, ConstraintProblem, IsingProblem
from xdv.errors import ErrorCode, XdvError
from xdv.security import (
    KeyStore,
    ProviderIdentity,
    StoredIdentity,
    embedded_provider,
    measure_provider,
)

__all__ = ["ExactAdmissibilityProvider", "ExactResult", "OptimizeResult"]

_BOUND = 2**62
SCALE_BITS_MAX = 32
"""Coefficients must be integers after scaling by at most ``2**SCALE_BITS_MAX``."""
_OBJECTIVE_MAX = 2**50
"""Largest sum of absolute scaled coefficients the integer objective may reach."""
_STATUS_NAMES: dict[Any, str] = {
    cp_model.UNKNOWN: "UNKNOWN",
    cp_model.MODEL_INVALID: "MODEL_INVALID",
    cp_model.FEASIBLE: "FEASIBLE",
    cp_model.INFEASIBLE: "INFEASIBLE",
    cp_model.OPTIMAL: "OPTIMAL",
}


class ExactResult:
    """The outcome of an admissibility query: status, assignment (or None), solver facts."""

    __slots__ = ("assignment", "solves", "status")

    def __init__(self, status: str, assignment: dict[str, int | bool] | None, solves: int) -> None:
        self.status = status
        self.assignment = assignment
        self.solves = solves


class OptimizeResult:
    """The outcome of an exact Ising optimization (spins, never phases)."""

    __slots__ = ("bound", "branches", "energy", "spins", "status", "work")

    def __init__(
        self,
        status: str,
        spins: list[int],
        energy: float,
        bound: float,
        work: float,
        branches: int,
    ) -> None:
        self.status = status
        self.spins = spins
        self.energy = energy
        self.bound = bound
        self.work = work
        self.branches = branches


@embedded_provider
class ExactAdmissibilityProvider(StoredIdentity):
    """Exact admissibility over bounded integers and booleans, and exact Ising optimization
    (OR-Tools CP-SAT)."""

    provider_id = "exact-cpsat"
    transforms = frozenset({"solve", "optimize"})

    def __init__(
        self,
        *,
        time_limit_s: float = 60.0,
        variables_max: int = 10_000,
        spins_max: int = 2_048,
        couplings_max: int = 65_536,
        work_limit: float = 10.0,
        work_limit_max: float = 600.0,
        identity: ProviderIdentity | None = None,
        key_store: KeyStore | None = None,
    ) -> None:
        self.time_limit_s = time_limit_s
        self.variables_max = variables_max
        self.spins_max = spins_max
        self.couplings_max = couplings_max
        self.work_limit = work_limit
        self.work_limit_max = work_limit_max
        self._identity = identity
        self._key_store = key_store

    def configuration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "time_limit_s": self.time_limit_s,
            "variables_max": self.variables_max,
            "spins_max": self.spins_max,
            "couplings_max": self.couplings_max,
            "work_limit": self.work_limit,
            "work_limit_max": self.work_limit_max,
        }

    def measurement(self) -> str:
        return measure_provider(
            [Path(__file__), Path(__file__).with_name("_problems.py")], self.configuration()
        )

    def declaration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "transforms": sorted(self.transforms),
            "problems": ["constraints", "ising"],
            "variables_max": self.variables_max,
            "int_bound": INT_BOUND_MAX,
            "admissible": "lexicographically least in declaration order (false < true)",
            "optimize": {
                "objective": "minimum Ising energy (maximum cut for zero-field problems)",
                "spins_max": self.spins_max,
                "couplings_max": self.couplings_max,
                "scale_bits_max": SCALE_BITS_MAX,
                "objective_max": _OBJECTIVE_MAX,
                "work_limit": self.work_limit,
                "work_limit_max": self.work_limit_max,
                "work_unit": "cp-sat deterministic time",
                "workers": 1,
            },
            "solver": "ortools-cp-sat",
        }

    def check_optimize(self, problem: IsingProblem, work_limit: float | None = None) -> int:
        """Refuse a problem beyond the declared limits (PHI_ERR_PROBLEM_INVALID, before any
        solve); return the scaling exponent that makes its coefficients integers."""
        where = "exact provider"
        if problem.n > self.spins_max or len(problem.weights) > self.couplings_max:
            raise XdvError(
                f"the problem has {problem.n} spins and {len(problem.weights)} couplings; the "
                f"exact provider optimizes at most {self.spins_max} spins and "
                f"{self.couplings_max} couplings",
                code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                where=where,
            )
        if work_limit is not None and not 0 < work_limit <= self.work_limit_max:
            raise XdvError(
                f"work_limit must be in (0, {self.work_limit_max}], got {work_limit}",
                code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                where=where,
            )
        coefficients = np.concatenate([problem.h, problem.weights])
        for bits in range(SCALE_BITS_MAX + 1):
            scaled = coefficients * float(2**bits)
            if np.all(scaled == np.round(scaled)):
                if float(np.abs(scaled).sum()) * 2 > _OBJECTIVE_MAX:
                    break
                return bits
        raise XdvError(
            "the fields and couplings are not integers after scaling by at most "
            f"2**{SCALE_BITS_MAX} within an objective range of 2**50; the exact provider "
            "optimizes only exactly representable problems",
            code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
            where=where,
        )

    def optimize(
        self, problem: IsingProblem, *, seed: int, work_limit: float | None = None
    ) -> OptimizeResult:
        """Minimize the Ising energy of ``problem`` within ``work_limit`` deterministic time."""
        limit = self.work_limit if work_limit is None else float(work_limit)
        bits = self.check_optimize(problem, limit)
        scale = float(2**bits)
        h = [int(v) for v in np.round(problem.h * scale)]
        weights = [int(v) for v in np.round(problem.weights * scale)]
        model = cp_model.CpModel()
        x = [model.new_bool_var(f"x{i}") for i in range(problem.n)]
        terms: list[Any] = []
        # E·scale = offset·scale + Σ h_i (2x_i − 1) + Σ J_ij (1 − 2y_ij)
        constant = sum(weights) - sum(h)
        for i, field_i in enumerate(h):
            if field_i:
                terms.append(2 * field_i * x[i])
        for k, (i, j) in enumerate(zip(problem.rows, problem.cols, strict=True)):
            if not weights[k]:
                continue
            a, b = x[int(i)], x[int(j)]
            y = model.new_bool_var(f"y{k}")
            model.add(y <= a + b)
            model.add(y <= 2 - a - b)
            model.add(y >= a - b)
            model.add(y >= b - a)
            terms.append(-2 * weights[k] * y)
        if not any(h) and problem.n:
            model.add(x[0] == 0)  # E(s) = E(−s) without fields: fix the first spin to −1
        model.minimize(sum(terms, start=0))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = int(seed % 2**31)
        solver.parameters.max_deterministic_time = limit
        solver.parameters.catch_sigint_signal = False  # Ctrl-C is the runtime's to handle
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            raise XdvError(
                f"CP-SAT found no configuration within {limit} units of deterministic time "
                f"(status {_STATUS_NAMES.get(status, str(status))})",
                code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                where="exact provider",
            )
        spins = [2 * int(solver.value(v)) - 1 for v in x]
        energy = float(problem.energy(np.array(spins)))
        if status == cp_model.OPTIMAL:
            bound = energy
        else:
            bound = problem.offset + (float(solver.best_objective_bound) + constant) / scale
        return OptimizeResult(
            "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE",
            spins,
            energy,
            min(bound, energy),
            float(solver.deterministic_time),
            int(solver.num_branches),
        )

    def solve(self, problem: ConstraintProblem) -> ExactResult:
        """The admissible configuration of ``problem``, or status INADMISSIBLE."""
        if len(problem.variables) > self.variables_max:
            raise XdvError(
                f"{len(problem.variables)} variables exceed the provider's limit of "
                f"{self.variables_max}",
                code=ErrorCode.RESOURCE_EXHAUSTED,
                where="exact provider",
            )
        model = cp_model.CpModel()
        variables: dict[str, Any] = {}
        bounds: dict[str, tuple[int, int]] = {}
        for variable in problem.variables:
            if variable.kind == "bool":
                variables[variable.name] = model.new_bool_var(variable.name)
            else:
                variables[variable.name] = model.new_int_var(
                    variable.lo, variable.hi, variable.name
                )
            bounds[variable.name] = (variable.lo, variable.hi)
        compiler = _Compiler(model, variables, bounds)
        for constraint in problem.constraints:
            compiler.require(constraint)

        solves = 0
        fixed: dict[str, int] = {}
        for variable in problem.variables:
            target = variables[variable.name]
            model.clear_objective()  # type: ignore[no-untyped-call]
            model.minimize(target)
            status, value = self._run(model, target)
            solves += 1
            if status == cp_model.INFEASIBLE:
                if fixed:  # pragma: no cover - a fixed prefix always extends to a solution
                    raise XdvError(
                        "the solver lost a solution it had found",
                        code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                        where="exact provider",
                    )
                return ExactResult("INADMISSIBLE", None, solves)
            if status != cp_model.OPTIMAL:
                raise XdvError(
                    f"CP-SAT did not decide {variable.name!r} within {self.time_limit_s}s "
                    f"(status {_STATUS_NAMES.get(status, str(status))})",
                    code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                    where="exact provider",
                )
            fixed[variable.name] = value
            model.add(target == value)
        if not problem.variables:
            model.clear_objective()  # type: ignore[no-untyped-call]
            status, _ = self._run(model, None)
            solves += 1
            if status == cp_model.INFEASIBLE:
                return ExactResult("INADMISSIBLE", None, solves)
        assignment: dict[str, int | bool] = {
            variable.name: bool(fixed[variable.name])
            if variable.kind == "bool"
            else fixed[variable.name]
            for variable in problem.variables
        }
        return ExactResult("ADMISSIBLE", assignment, solves)

    def _run(self, model: cp_model.CpModel, target: Any) -> tuple[int, int]:
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = 0
        solver.parameters.max_time_in_seconds = self.time_limit_s
        solver.parameters.catch_sigint_signal = False  # Ctrl-C is the runtime's to handle
        status = solver.solve(model)
        value = (
            int(solver.value(target)) if target is not None and status == cp_model.OPTIMAL else 0
        )
        return int(status), value


class _Compiler:
    """Compiles validated canonical expressions into CP-SAT constraints."""

    def __init__(
        self,
        model: cp_model.CpModel,
        variables: Mapping[str, Any],
        bounds: dict[str, tuple[int, int]],
    ) -> None:
        self.model = model
        self.variables = variables
        self.bounds = bounds
        self._fresh = 0

    def require(self, expression: Mapping[str, Any]) -> None:
        op = expression["op"]
        if op == "and":
            for arg in expression["args"]:
                self.require(arg)
        elif op == "bool":
            self.model.add(self.variables[expression["var"]] == 1)
        elif op in ("==", "!=", "<=", "<", ">=", ">"):
            self.model.add(self._comparison(expression))
        else:
            self.model.add(self.literal(expression) == 1)

    def literal(self, expression: Mapping[str, Any]) -> Any:
        """A boolean variable equivalent to ``expression``."""
        op = expression["op"]
        if op == "bool":
            return self.variables[expression["var"]]
        if op == "not":
            return self.literal(expression["arg"]).Not()
        if op in ("and", "or"):
            literals = [self.literal(arg) for arg in expression["args"]]
            result = self.model.new_bool_var("")
            if op == "and":
                self.model.add_bool_and(literals).only_enforce_if(result)
                self.model.add_bool_or([literal.Not() for literal in literals]).only_enforce_if(
                    result.Not()
                )
            else:
                self.model.add_bool_or(literals).only_enforce_if(result)
                self.model.add_bool_and([literal.Not() for literal in literals]).only_enforce_if(
                    result.Not()
                )
            return result
        result = self.model.new_bool_var("")
        self.model.add(self._comparison(expression)).only_enforce_if(result)
        negated = {"==": "!=", "!=": "==", "<=": ">", "<": ">=", ">=": "<", ">": "<="}[op]
        self.model.add(self._comparison({**expression, "op": negated})).only_enforce_if(
            result.Not()
        )
        return result

    def _comparison(self, expression: Mapping[str, Any]) -> Any:
        lhs, _ = self.term(expression["lhs"])
        rhs, _ = self.term(expression["rhs"])
        op = expression["op"]
        if op == "==":
            return lhs == rhs
        if op == "!=":
            return lhs != rhs
        if op == "<=":
            return lhs <= rhs
        if op == "<":
            return lhs < rhs
        if op == ">=":
            return lhs >= rhs
        return lhs > rhs

    def term(self, term: Mapping[str, Any]) -> tuple[Any, tuple[int, int]]:
        """A CP-SAT linear expression for ``term`` and its value bounds."""
        if "const" in term:
            value = int(term["const"])
            return value, (value, value)
        if "var" in term:
            return self.variables[term["var"]], self.bounds[term["var"]]
        parts = [self.term(arg) for arg in term["args"]]
        op = term["op"]
        if op == "+":
            expression = sum((part for part, _ in parts), start=0)
            lo = sum(bound[0] for _, bound in parts)
            hi = sum(bound[1] for _, bound in parts)
            return expression, _clamp(lo, hi)
        if op == "-":
            if len(parts) == 1:
                part, (lo, hi) = parts[0]
                return -part, (-hi, -lo)
            first, (lo, hi) = parts[0]
            expression = first - sum((part for part, _ in parts[1:]), start=0)
            lo -= sum(bound[1] for _, bound in parts[1:])
            hi -= sum(bound[0] for _, bound in parts[1:])
            return expression, _clamp(lo, hi)
        product, (lo, hi) = parts[0]
        for part, (plo, phi) in parts[1:]:
            corners = [lo * plo, lo * phi, hi * plo, hi * phi]
            nlo, nhi = _clamp(min(corners), max(corners))
            if isinstance(product, int) and isinstance(part, int):
                product, lo, hi = product * part, nlo, nhi
                continue
            if isinstance(product, int) or isinstance(part, int):
                product, lo, hi = product * part, nlo, nhi
                continue
            self._fresh += 1
            result = self.model.new_int_var(nlo, nhi, f"_product{self._fresh}")
            self.model.add_multiplication_equality(
                result, [self._as_var(product, lo, hi), self._as_var(part, plo, phi)]
            )
            product, lo, hi = result, nlo, nhi
        return product, (lo, hi)

    def _as_var(self, expression: Any, lo: int, hi: int) -> Any:
        if isinstance(expression, cp_model.IntVar):
            return expression
        self._fresh += 1
        variable = self.model.new_int_var(lo, hi, f"_term{self._fresh}")
        self.model.add(variable == expression)
        return variable


def _clamp(lo: int, hi: int) -> tuple[int, int]:
    if lo < -_BOUND or hi > _BOUND:
        raise XdvError(
            f"an intermediate term ranges over [{lo}, {hi}], beyond ±2**62",
            code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
            where="exact provider",
        )
    return lo, hi
