"""Hook implementations of ``sedna-compat`` (its ``sedna.plugins`` entry point).

Each registration hook returns the classes registered so far through
:class:`sedna.common.class_factory.ClassFactory` that fit the hook's kind (Sedna-style filters
and aggregations wrapped; sedna-core algorithm classes as they are). Registrations made later
make the plugin manager rebuild its tables (:func:`sedna._adapters.refresh_registry`).
"""

from __future__ import annotations

from typing import Any

from sedna_core.plugins import hookimpl


def _of(kind: str) -> list[type[Any]]:
    from sedna import _adapters

    return list(_adapters.algorithms(kind))


@hookimpl
def sedna_register_hard_example_miners() -> list[type[Any]]:
    return _of("hard_example_mining")


@hookimpl
def sedna_register_aggregators() -> list[type[Any]]:
    return _of("aggregation")


@hookimpl
def sedna_register_backends() -> list[type[Any]]:
    return _of("backend")


@hookimpl
def sedna_register_task_definitions() -> list[type[Any]]:
    return _of("task_definition")


@hookimpl
def sedna_register_task_allocators() -> list[type[Any]]:
    return _of("task_allocation")


@hookimpl
def sedna_register_task_relation_discoverers() -> list[type[Any]]:
    return _of("task_relation_discovery")


@hookimpl
def sedna_register_task_remodelers() -> list[type[Any]]:
    return _of("task_remodeling")


@hookimpl
def sedna_register_inference_integrators() -> list[type[Any]]:
    return _of("inference_integrate")


@hookimpl
def sedna_register_unseen_task_detectors() -> list[type[Any]]:
    return _of("unseen_task_detection")


@hookimpl
def sedna_register_task_update_decisions() -> list[type[Any]]:
    return _of("task_update_decision")
