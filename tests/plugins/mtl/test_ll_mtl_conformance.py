"""Every algorithm of sedna-plugin-mtl passes sedna-core's conformance kit and is registered."""

from __future__ import annotations

import pytest
from sedna_plugin_mtl import hooks

from sedna_core.testing import check_algorithm, parametrize_with_checks

CLASSES = [
    cls
    for hook in (
        hooks.sedna_register_task_definitions,
        hooks.sedna_register_task_allocators,
        hooks.sedna_register_task_relation_discoverers,
        hooks.sedna_register_task_remodelers,
        hooks.sedna_register_inference_integrators,
        hooks.sedna_register_unseen_task_detectors,
        hooks.sedna_register_task_update_decisions,
    )
    for cls in hook()
]


@parametrize_with_checks(CLASSES)
def test_ll_conformance(algorithm, check):
    check(algorithm)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_ll_resolves_through_plugin_manager(cls, sedna_pm):
    sedna_pm.register(hooks, name="mtl")
    check_algorithm(cls, plugin_manager=sedna_pm)
