"""Testing tools for plugin authors: conformance checks, test doubles and a pytest fixture.

::

    from sedna_core.testing import check_algorithm, parametrize_with_checks

    @parametrize_with_checks([IBTFilter, ThresholdFilter])
    def test_conformance(algorithm, check):
        check(algorithm)

The pytest plugin :mod:`sedna_core.testing.pytest_plugin` (loaded automatically through the
``pytest11`` entry point) provides the ``sedna_pm`` fixture; :mod:`sedna_core.testing.doubles`
has an in-memory estimator, a scripted miner and a recording lifecycle plugin.

This package is imported by every pytest run (as the parent of the pytest plugin), so its
names are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "check_algorithm": "sedna_core.testing._checks",
    "algorithm_checks": "sedna_core.testing._checks",
    "parametrize_with_checks": "sedna_core.testing._checks",
    "DoublesPlugin": "sedna_core.testing.doubles",
    "InMemoryEstimator": "sedna_core.testing.doubles",
    "RecordingPlugin": "sedna_core.testing.doubles",
    "ScriptedMiner": "sedna_core.testing.doubles",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sedna_core.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
