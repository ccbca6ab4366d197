"""``LifelongLearning``: per-task models behind task allocation and unseen-task detection, kept
in a knowledge base.

This module holds the job's constructor (Sedna's signatures and spellings, every algorithm
resolved up front) and its small public conveniences; the work is in its parts: the knowledge
at hand (``_knowledge_access``), training and updates (``_training``, ``_update``), inference
and evaluation (``_inference``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sedna_core.algorithms import BaseBackend
from sedna_core.algorithms.mtl import (
    BaseInferenceIntegrate,
    BaseTaskAllocation,
    BaseTaskDefinition,
    BaseTaskRelationDiscover,
    BaseTaskRemodeling,
    BaseTaskUpdateDecision,
)
from sedna_core.clock import Clock
from sedna_core.config.lifelong import LifelongConfig
from sedna_core.errors import ConfigError, JobError, KnowledgeBaseError
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.lifelong._estimators import new_backend
from sedna_core.jobs.lifelong._inference import Inference
from sedna_core.jobs.lifelong._knowledge_access import KnowledgeAccess
from sedna_core.jobs.lifelong._state import Knowledge
from sedna_core.jobs.lifelong._storage import Storage
from sedna_core.jobs.lifelong._training import Training
from sedna_core.log import get_logger
from sedna_core.plugins import create_algorithm

__all__ = ["LifelongLearning"]

log = get_logger(__name__)

Spec = Any  # "Name", {"method": ..., "param": ...}, an algorithm class or instance

#: Sedna's documented attributes of ``TaskDefinitionByDataAttr`` (its ``LifelongLearning``
#: example), given to the method when it is named without parameters
SEDNA_TASK_ATTRIBUTES = ["season", "city"]


def _sedna_defaults(spec: Spec) -> Spec:
    """``"TaskDefinitionByDataAttr"`` by name alone (or without ``attribute``) gets Sedna's
    documented attributes instead of the method's own default column ``task``."""
    if isinstance(spec, str) and spec.strip() == "TaskDefinitionByDataAttr":
        params: dict[str, Any] = {}
    elif (
        isinstance(spec, Mapping)
        and spec.get("method") == "TaskDefinitionByDataAttr"
        and isinstance(spec.get("param") or {}, Mapping)
        and "attribute" not in (spec.get("param") or {})
    ):
        params = dict(spec.get("param") or {})
    else:
        return spec
    log.info(
        "TaskDefinitionByDataAttr named without attributes: Sedna's defaults",
        attribute=SEDNA_TASK_ATTRIBUTES,
    )
    return {
        "method": "TaskDefinitionByDataAttr",
        "param": {**params, "attribute": SEDNA_TASK_ATTRIBUTES},
    }


class LifelongLearning(KnowledgeAccess, Training, Inference, JobBase):
    """Lifelong learning: a model per task, chosen per sample, with unseen tasks detected.

    Both of Sedna's signatures work: the README's
    (``LifelongLearning(estimator=..., task_definition="TaskDefinitionByDataAttr", ...)``) and
    the current one (``seen_estimator``, ``unseen_estimator``, ``task_definition``,
    ``task_relationship_discovery``, ``task_allocation``, ``task_remodeling``,
    ``inference_integrate``, ``task_update_decision``, ``unseen_task_allocation``,
    ``unseen_sample_recognition``, ``unseen_sample_re_recognition``). Each algorithm is a
    name, ``{"method": name, "param": {...}}``, a class or an instance.

    Parameters
    ----------
    estimator
        The base model (instance, class or factory); every task trains its own copy.
    unseen_estimator
        Optional model or function for samples of unseen tasks; without one they are
        predicted by their nearest task's model (or the global model) and flagged.
    task_definition
        How training samples split into tasks (default ``TaskDefinitionByDataAttr``).
    task_relationship_discovery
        How tasks group; each group gets one model (default: one group per task).
    task_allocation
        How inference samples find their task; default: the allocator the task definition
        fitted (attribute lookup, nearest cluster...).
    task_remodeling, inference_integrate
        Splitting a batch by task and merging results back in order.
    task_update_decision
        How :meth:`update` treats new data (default ``UpdateStrategyDefault``).
    unseen_task_allocation
        Allocation among unseen tasks (Sedna's ``UnseenTaskAllocationDefault``; one unseen
        estimator means one unseen task).
    unseen_sample_recognition
        Unseen-task detector(s), a spec or a list; default ``TaskAttrFilter`` for
        attribute-defined tasks, ``MahalanobisFilter`` otherwise.
    unseen_sample_re_recognition
        Detector(s) separating new tasks from known ones in :meth:`update`'s data; default:
        the task definition's attributes when present, else the fitted detectors.
    seen_estimator, task_mining, unseen_task_detect
        Sedna's other spellings of ``estimator``, ``task_allocation`` and
        ``unseen_sample_recognition``.
    config
        Settings; built from the environment when None (``KB_SERVER``, ``OUTPUT_URL``,
        ``MIN_TRAIN_SAMPLE``, ``operator``, ``model_threshold``...), with ``kb_server`` and
        ``output_url`` as explicit overrides.
    backend, plugin_manager, clock
        As for every job.
    """

    job_kind = "lifelonglearningjob"

    def __init__(
        self,
        estimator: Any = None,
        unseen_estimator: Any = None,
        task_definition: Spec = None,
        task_relationship_discovery: Spec = None,
        task_allocation: Spec = None,
        task_remodeling: Spec = None,
        inference_integrate: Spec = None,
        task_update_decision: Spec = None,
        unseen_task_allocation: Spec = None,
        unseen_sample_recognition: Spec | Sequence[Spec] = None,
        unseen_sample_re_recognition: Spec | Sequence[Spec] = None,
        *,
        seen_estimator: Any = None,
        task_mining: Spec = None,
        unseen_task_detect: Spec = None,
        config: LifelongConfig | None = None,
        kb_server: str | None = None,
        output_url: str | None = None,
        backend: str | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if estimator is not None and seen_estimator is not None:
            raise ConfigError(
                "seen_estimator", seen_estimator, "only one of estimator/seen_estimator"
            )
        estimator = estimator if estimator is not None else seen_estimator
        if estimator is None:
            raise JobError("LifelongLearning needs an estimator (the base model of every task)")
        for name, alias, value in (
            ("task_allocation", "task_mining", task_mining),
            ("unseen_sample_recognition", "unseen_task_detect", unseen_task_detect),
        ):
            if value is not None and locals()[name] is not None:
                raise ConfigError(alias, value, f"only one of {name}/{alias}")
        task_allocation = task_allocation if task_allocation is not None else task_mining
        if unseen_sample_recognition is None:
            unseen_sample_recognition = unseen_task_detect
        config = config or LifelongConfig.from_env(kb_server=kb_server, output_url=output_url)
        super().__init__(
            None, config=config, backend=backend, plugin_manager=plugin_manager, clock=clock
        )
        self.config: LifelongConfig = config
        self.base_estimator = estimator
        self.backend_type = backend
        self.unseen_estimator = unseen_estimator
        pm = plugin_manager

        def make(kind: str, spec: Spec, default: str) -> Any:
            return create_algorithm(kind, spec if spec is not None else default, plugin_manager=pm)

        self.task_definition: BaseTaskDefinition = make(
            "task_definition", _sedna_defaults(task_definition), "TaskDefinitionByDataAttr"
        )
        self.task_relationship_discovery: BaseTaskRelationDiscover = make(
            "task_relation_discovery", task_relationship_discovery, "DefaultTaskRelationDiscover"
        )
        self.task_allocation_spec = task_allocation
        if task_allocation is not None:  # resolve now: a wrong name fails here, not in train
            make("task_allocation", task_allocation, "")
        self.task_remodeling: BaseTaskRemodeling = make(
            "task_remodeling", task_remodeling, "DefaultTaskRemodeling"
        )
        self.inference_integrate: BaseInferenceIntegrate = make(
            "inference_integrate", inference_integrate, "DefaultInferenceIntegrate"
        )
        self.task_update_decision: BaseTaskUpdateDecision = make(
            "task_update_decision", task_update_decision, "UpdateStrategyDefault"
        )
        self.unseen_task_allocation: BaseTaskAllocation = make(
            "task_allocation", unseen_task_allocation, "TaskAllocationDefault"
        )
        self.detector_specs = self._spec_list(unseen_sample_recognition)
        self.re_detector_specs = self._spec_list(unseen_sample_re_recognition)
        for spec in [*self.detector_specs, *self.re_detector_specs]:
            make("unseen_task_detection", spec, "")
        self._probe = new_backend(estimator, backend, config, pm)  # fails now if unwrappable
        self._unseen_backend: BaseBackend | None = None
        self._knowledge: Knowledge | None = None
        self._storage: Storage | None = None
        self._lock = threading.RLock()

    @staticmethod
    def _spec_list(spec: Spec | Sequence[Spec]) -> list[Spec]:
        if spec is None:
            return []
        if isinstance(spec, list | tuple):
            return list(spec)
        return [spec]

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()
        super().close()

    # -- Sedna-compatible conveniences ---------------------------------------------------------

    @property
    def knowledge(self) -> Knowledge:
        """The current knowledge (tasks, groups, allocator, detectors)."""
        return self._knowledge_now(refresh=False)

    def task_index(self) -> dict[str, Any]:
        """The latest published task index (JSON)."""
        doc = self.storage.latest()
        if doc is None:
            raise KnowledgeBaseError("no task index published yet")
        return doc
