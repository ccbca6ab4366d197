"""The robust strategies pass sedna-core's conformance checks and resolve by name."""

from __future__ import annotations

from typing import Any

import sedna_plugin_robust.hooks as hooks
from sedna_plugin_robust import FedMedian, FedTrimmedAvg, Krum, MultiKrum

from sedna_core.plugins import create_algorithm, get_plugin_manager
from sedna_core.testing import parametrize_with_checks


@parametrize_with_checks([FedMedian, FedTrimmedAvg, Krum, MultiKrum])
def test_conformance(algorithm: type, check: Any) -> None:
    check(algorithm)


def test_resolves_through_the_registry(sedna_pm: Any) -> None:
    sedna_pm.register(hooks)
    agg = create_algorithm(
        "aggregation", {"method": "MultiKrum", "param": {"num_malicious_clients": "2"}}
    )
    assert isinstance(agg, MultiKrum) and agg.num_malicious_clients == 2
    assert agg.needs_all_updates


def test_installed_entry_point_is_discovered() -> None:
    names = get_plugin_manager().algorithms("aggregation")
    assert {"FedMedian", "FedTrimmedAvg", "Krum", "MultiKrum"} <= set(names)
