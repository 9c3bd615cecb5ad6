"""Managers from a workload's declaration: the short form, settings, and clear refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xdv.errors import ErrorCode, WorkloadError, XdvError
from xdv.runtime import declared_managers, load_workload, recorded_managers
from xdv.trace import Domain


def test_the_short_form_takes_the_managers_defaults() -> None:
    from xdv.domains.phi import PhiDomainManager

    k, phi = declared_managers({"Φ": {"manager": "phi"}})
    assert k.domain is Domain.K and isinstance(phi, PhiDomainManager)
    assert phi.describe() == PhiDomainManager().describe()
    (_, tuned) = declared_managers({"PHI": {"manager": "phi", "window": 99, "tolerance": 0.25}})
    assert tuned.describe()["window"] == 99 and tuned.describe()["tolerance"] == 0.25
    # A recorded description round-trips through the same registry.
    (_, again) = recorded_managers({"K": k.describe(), "Φ": tuned.describe()})
    assert again.describe() == tuned.describe()


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        ({"X": {"manager": "phi"}}, "is not a domain"),
        ({"Φ": {"kind": "phi"}}, "must name its manager"),
        ({"Φ": {"manager": "nonesuch"}}, "does not describe a manager"),
        ({"Q": {"manager": "phi"}}, "manages the Φ domain, not Q"),
        ({"Φ": {"manager": "phi", "windw": 3}}, "has no setting(s) ['windw']"),
        ({"Φ": {"manager": "phi", "window": "wide"}}, "does not describe a manager"),
        ({"K": {"manager": "k", "lanes": 0}}, "does not describe a manager"),
    ],
)
def test_a_wrong_description_is_a_clear_workload_error(declared: Any, says: str) -> None:
    with pytest.raises(WorkloadError) as raised:
        declared_managers(declared)
    assert raised.value.code is ErrorCode.WORKLOAD_INVALID
    assert says in raised.value.message and "XDV_DOMAINS" in raised.value.message


def test_a_module_declaring_the_short_form_loads(tmp_path: Path) -> None:
    path = tmp_path / "declares.py"
    path.write_text('XDV_DOMAINS = {"Φ": {"manager": "phi"}}\ndef main(kernel):\n    pass\n')
    assert load_workload(str(path)).domains == {"Φ": {"manager": "phi"}}
    path.write_text('XDV_DOMAINS = {"Φ": "phi"}\ndef main(kernel):\n    pass\n')
    with pytest.raises(XdvError) as raised:
        load_workload(str(path))
    assert raised.value.code is ErrorCode.WORKLOAD_INVALID
