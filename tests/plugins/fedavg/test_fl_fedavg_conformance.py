"""The FedAvg-family strategies pass sedna-core's conformance checks and resolve by name."""

from __future__ import annotations

from typing import Any

import pytest
import sedna_plugin_fedavg.hooks as hooks
from sedna_plugin_fedavg import FedAdagrad, FedAdam, FedAvg, FedAvgM, FedProx, FedYogi

from sedna_core.plugins import create_algorithm
from sedna_core.testing import parametrize_with_checks

CLASSES = [FedAvg, FedProx, FedAvgM, FedAdam, FedYogi, FedAdagrad]


@parametrize_with_checks(CLASSES)
def test_conformance(algorithm: type, check: Any) -> None:
    check(algorithm)


def test_resolves_through_the_registry(sedna_pm: Any) -> None:
    sedna_pm.register(hooks)
    agg = create_algorithm("aggregation", {"method": "FedAdam", "param": {"eta": "0.05"}})
    assert isinstance(agg, FedAdam) and agg.eta == 0.05
    assert isinstance(create_algorithm("aggregation", "fedavgm"), FedAvgM)


@pytest.mark.parametrize(
    "spec",
    [
        {"method": "FedAvgM", "param": {"server_momentum": "1.5"}},
        {"method": "FedAdam", "param": {"tau": "0"}},
    ],
)
def test_bad_parameters_are_refused(sedna_pm: Any, spec: dict) -> None:
    from sedna_core.errors import InvalidParameterError

    sedna_pm.register(hooks)
    with pytest.raises(InvalidParameterError):
        create_algorithm("aggregation", spec)
