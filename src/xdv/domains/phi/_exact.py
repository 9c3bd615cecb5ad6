"""The exact provider: admissibility of constraint sets with OR-Tools CP-SAT.

The *admissible configuration* of a constraint set is defined as the lexicographically least
satisfying assignment over the variables in declaration order (``false < true``; integers by
value). The provider computes it by fixing the variables one at a time: for each variable in
order it asks CP-SAT for the least value that, together with the values already fixed, still
admits a solution, then fixes it. The answer is therefore a property of the constraint set
alone, independent of solver heuristics, thread count or seed. When the very first feasibility
check reports ``INFEASIBLE`` the set is inadmissible; CP-SAT's answer is a complete search, so
that status is a proof of inadmissibility (re-checkable by running the solver again).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ortools.sat.python import cp_model

from xdv.domains.phi._problems import INT_BOUND_MAX, ConstraintProblem
from xdv.domains.phi._provider import measure_sources
from xdv.errors import ErrorCode, XdvError

__all__ = ["ExactAdmissibilityProvider", "ExactResult"]

_BOUND = 2**62
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


class ExactAdmissibilityProvider:
    """Exact admissibility over bounded integers and booleans (OR-Tools CP-SAT)."""

    provider_id = "exact-cpsat"
    transforms = frozenset({"solve"})

    def __init__(self, *, time_limit_s: float = 60.0, variables_max: int = 10_000) -> None:
        self.time_limit_s = time_limit_s
        self.variables_max = variables_max

    def configuration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "time_limit_s": self.time_limit_s,
            "variables_max": self.variables_max,
        }

    def measurement(self) -> str:
        return measure_sources(
            [Path(__file__), Path(__file__).with_name("_problems.py")], self.configuration()
        )

    def declaration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "transforms": sorted(self.transforms),
            "problems": ["constraints"],
            "variables_max": self.variables_max,
            "int_bound": INT_BOUND_MAX,
            "admissible": "lexicographically least in declaration order (false < true)",
            "solver": "ortools-cp-sat",
        }

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
