"""Hook specifications: what a plugin may implement.

Registration hooks return algorithm classes (subclasses of the kind's base class in
:mod:`sedna_core.algorithms`); every implementation is collected. ``sedna_detect_backend`` is the
only ``firstresult`` hook. Lifecycle hooks let plugins observe jobs; their return values are
ignored and an exception in one is logged, never raised into the job.

Specs only grow: a new argument is added so that old implementations (which may accept fewer
arguments, as pluggy allows) keep working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sedna_core.plugins._markers import hookspec

if TYPE_CHECKING:
    from sedna_core.algorithms import (
        BaseAggregation,
        BaseBackend,
        BaseHardExampleMiner,
        BaseInferenceIntegrate,
        BaseTaskAllocation,
        BaseTaskDefinition,
        BaseTaskRelationDiscover,
        BaseTaskRemodeling,
        BaseTaskUpdateDecision,
        BaseUnseenTaskDetector,
        BaseUpdateTransform,
    )


# -- registration: one hook per algorithm kind ------------------------------------------------


@hookspec
def sedna_register_backends() -> Sequence[type[BaseBackend]]:
    """Backend classes (kind ``backend``)."""


@hookspec
def sedna_register_aggregators() -> Sequence[type[BaseAggregation]]:
    """Aggregation classes (kind ``aggregation``)."""


@hookspec
def sedna_register_hard_example_miners() -> Sequence[type[BaseHardExampleMiner]]:
    """Hard-example miner classes (kind ``hard_example_mining``)."""


@hookspec
def sedna_register_task_definitions() -> Sequence[type[BaseTaskDefinition]]:
    """Task-definition classes (kind ``task_definition``)."""


@hookspec
def sedna_register_task_allocators() -> Sequence[type[BaseTaskAllocation]]:
    """Task-allocation classes, Sedna's "task mining" (kind ``task_allocation``)."""


@hookspec
def sedna_register_task_relation_discoverers() -> Sequence[type[BaseTaskRelationDiscover]]:
    """Task-relation-discovery classes (kind ``task_relation_discovery``)."""


@hookspec
def sedna_register_task_remodelers() -> Sequence[type[BaseTaskRemodeling]]:
    """Task-remodeling classes (kind ``task_remodeling``)."""


@hookspec
def sedna_register_inference_integrators() -> Sequence[type[BaseInferenceIntegrate]]:
    """Inference-integration classes (kind ``inference_integrate``)."""


@hookspec
def sedna_register_unseen_task_detectors() -> Sequence[type[BaseUnseenTaskDetector]]:
    """Unseen-task detector classes (kind ``unseen_task_detection``)."""


@hookspec
def sedna_register_task_update_decisions() -> Sequence[type[BaseTaskUpdateDecision]]:
    """Task-update-decision classes (kind ``task_update_decision``)."""


@hookspec
def sedna_register_update_transforms() -> Sequence[type[BaseUpdateTransform]]:
    """Update-transform classes (kind ``update_transform``): clipping, noise, compression."""


# -- backend detection -----------------------------------------------------------------------


@hookspec(firstresult=True)
def sedna_detect_backend(estimator: Any) -> str | None:
    """The name of the backend for ``estimator``, or None if this plugin does not know it.

    Consulted only when the user named no backend (argument or ``BACKEND_TYPE``). Return a
    *name*, never an object, so a plugin cannot hijack an explicit choice.
    """


# -- lifecycle: observe jobs -----------------------------------------------------------------


@hookspec
def sedna_job_started(job_kind: str, job_name: str, info: Mapping[str, Any]) -> None:
    """A job (``jointinference``, ``federatedlearning``, ...) started."""


@hookspec
def sedna_job_finished(
    job_kind: str, job_name: str, status: str, info: Mapping[str, Any]
) -> None:
    """A job finished with ``status`` (``completed`` or ``failed``)."""


@hookspec
def sedna_round_aggregated(
    job_name: str, round_number: int, num_clients: int, metrics: Mapping[str, float]
) -> None:
    """A federated round closed and new global weights exist."""


@hookspec
def sedna_hard_example_found(job_name: str, count: int, stats: Mapping[str, float]) -> None:
    """``count`` hard examples were found; ``stats`` are the job's counters after that."""


@hookspec
def sedna_model_deployed(job_name: str, version: str, metrics: Mapping[str, float]) -> None:
    """A model version was deployed (or rolled back to)."""
