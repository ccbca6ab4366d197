"""Hook implementations of this plugin (the module its entry point names).

Imports stay light: the algorithm modules need numpy only at import time; scikit-learn is
imported inside the methods that use it.
"""

from __future__ import annotations

from typing import Any

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_task_definitions() -> list[type[Any]]:
    from sedna_plugin_mtl import definition

    return [
        definition.TaskDefinitionByDataAttr,
        definition.TaskDefinitionByCluster,
        definition.TaskDefinitionBySVC,
        definition.TaskDefinitionByOrigin,
    ]


@hookimpl
def sedna_register_task_allocators() -> list[type[Any]]:
    from sedna_plugin_mtl import allocation

    return [
        allocation.TaskAllocationByDataAttr,
        allocation.TaskAllocationByCluster,
        allocation.TaskAllocationBySVC,
        allocation.TaskAllocationByOrigin,
        allocation.TaskAllocationDefault,
        allocation.TaskMiningByDataAttr,
        allocation.TaskMiningBySVC,
    ]


@hookimpl
def sedna_register_task_relation_discoverers() -> list[type[Any]]:
    from sedna_plugin_mtl.grouping import DefaultTaskRelationDiscover

    return [DefaultTaskRelationDiscover]


@hookimpl
def sedna_register_task_remodelers() -> list[type[Any]]:
    from sedna_plugin_mtl.grouping import DefaultTaskRemodeling

    return [DefaultTaskRemodeling]


@hookimpl
def sedna_register_inference_integrators() -> list[type[Any]]:
    from sedna_plugin_mtl.grouping import DefaultInferenceIntegrate

    return [DefaultInferenceIntegrate]


@hookimpl
def sedna_register_unseen_task_detectors() -> list[type[Any]]:
    from sedna_plugin_mtl import detection

    return [
        detection.TaskAttrFilter,
        detection.MahalanobisFilter,
        detection.ModelProbeFilter,
        detection.SampleRegonitionDefault,
    ]


@hookimpl
def sedna_register_task_update_decisions() -> list[type[Any]]:
    from sedna_plugin_mtl import update

    return [update.UpdateStrategyDefault, update.UpdateStrategyByFinetune]
