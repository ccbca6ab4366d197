"""Base classes of every algorithm kind: the public API plugins implement.

Aggregators derive from :class:`StreamingAggregation` (FedAvg family) or
:class:`AllAtOnceAggregation` (robust strategies) rather than :class:`BaseAggregation` itself;
their updates arrive as :class:`UpdateSource` objects (:class:`ArrayUpdate` for arrays in memory)
described by :class:`TensorSpec`. Update transforms (clipping, noise, compression) derive
from :class:`BaseUpdateTransform`. The kinds' helpers and value types stay in their modules
(``sedna_core.algorithms.aggregation``, ``.mtl``...).
"""

from sedna_core.algorithms._base import Algorithm
from sedna_core.algorithms.aggregation import (
    AllAtOnceAggregation,
    ArrayUpdate,
    BaseAggregation,
    StreamingAggregation,
    TensorSpec,
    UpdateSource,
)
from sedna_core.algorithms.backend import BaseBackend, LinearDecision
from sedna_core.algorithms.hem import BaseHardExampleMiner
from sedna_core.algorithms.mtl import (
    BaseInferenceIntegrate,
    BaseTaskAllocation,
    BaseTaskDefinition,
    BaseTaskRelationDiscover,
    BaseTaskRemodeling,
    BaseTaskUpdateDecision,
    BaseUnseenTaskDetector,
)
from sedna_core.algorithms.transform import BaseUpdateTransform, TransformContext

#: kind -> (base class, registration hook name)
KINDS: dict[str, tuple[type[Algorithm], str]] = {
    "backend": (BaseBackend, "sedna_register_backends"),
    "aggregation": (BaseAggregation, "sedna_register_aggregators"),
    "hard_example_mining": (BaseHardExampleMiner, "sedna_register_hard_example_miners"),
    "task_definition": (BaseTaskDefinition, "sedna_register_task_definitions"),
    "task_allocation": (BaseTaskAllocation, "sedna_register_task_allocators"),
    "task_relation_discovery": (
        BaseTaskRelationDiscover,
        "sedna_register_task_relation_discoverers",
    ),
    "task_remodeling": (BaseTaskRemodeling, "sedna_register_task_remodelers"),
    "inference_integrate": (BaseInferenceIntegrate, "sedna_register_inference_integrators"),
    "unseen_task_detection": (BaseUnseenTaskDetector, "sedna_register_unseen_task_detectors"),
    "task_update_decision": (BaseTaskUpdateDecision, "sedna_register_task_update_decisions"),
    "update_transform": (BaseUpdateTransform, "sedna_register_update_transforms"),
}

__all__ = [
    "KINDS",
    "Algorithm",
    "AllAtOnceAggregation",
    "ArrayUpdate",
    "BaseAggregation",
    "BaseBackend",
    "BaseHardExampleMiner",
    "BaseInferenceIntegrate",
    "BaseTaskAllocation",
    "BaseTaskDefinition",
    "BaseTaskRelationDiscover",
    "BaseTaskRemodeling",
    "BaseTaskUpdateDecision",
    "BaseUnseenTaskDetector",
    "BaseUpdateTransform",
    "LinearDecision",
    "StreamingAggregation",
    "TensorSpec",
    "TransformContext",
    "UpdateSource",
]
