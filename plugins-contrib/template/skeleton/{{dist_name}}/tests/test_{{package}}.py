"""Tests every plugin has: the conformance kit, and registration under its names."""

from __future__ import annotations

import importlib

from sedna_core.plugins import resolve_algorithm
from sedna_core.testing import check_algorithm, parametrize_with_checks

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}
# the module the entry point names
hooks = importlib.import_module("{{ package }}.hooks")

DIST = "{{ dist_name }}"
ENTRY_POINT = "{{ entry_point }}"


@parametrize_with_checks([Algo])
def test_conformance(algorithm, check) -> None:
    check(algorithm)


def test_registered_under_its_names(sedna_pm) -> None:
    # what an installed copy answers to: the distribution's and the entry point's names
    sedna_pm.register(hooks, name=DIST, entry_point=ENTRY_POINT)
    check_algorithm(Algo, plugin_manager=sedna_pm)  # its name resolves to the class
    for qualifier in (DIST, ENTRY_POINT):
        assert resolve_algorithm(Algo.kind, f"{qualifier}:{Algo.name}") is Algo
