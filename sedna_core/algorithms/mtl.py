"""The lifelong-learning kinds: task definition, allocation, relations, remodeling,
inference integration, unseen-task detection and update decisions."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms._base import Algorithm

__all__ = [
    "BaseInferenceIntegrate",
    "BaseTaskAllocation",
    "BaseTaskDefinition",
    "BaseTaskRelationDiscover",
    "BaseTaskRemodeling",
    "BaseTaskUpdateDecision",
    "BaseUnseenTaskDetector",
]


class BaseTaskDefinition(Algorithm, abc.ABC):
    """Splits training samples into tasks."""

    kind: ClassVar[str] = "task_definition"

    @abc.abstractmethod
    def fit(self, samples: Any) -> Any:
        """Define tasks on ``samples``; returns the tasks and a fitted allocator description."""


class BaseTaskAllocation(Algorithm, abc.ABC):
    """Assigns samples to known tasks (Sedna's "task mining"), vectorised."""

    kind: ClassVar[str] = "task_allocation"

    @abc.abstractmethod
    def allocate(self, samples: Any) -> np.ndarray:
        """Task id per sample (-1 where no known task fits)."""


class BaseTaskRelationDiscover(Algorithm, abc.ABC):
    """Groups related tasks."""

    kind: ClassVar[str] = "task_relation_discovery"

    @abc.abstractmethod
    def discover(self, tasks: Any) -> Any:
        """Task groups for ``tasks``."""


class BaseTaskRemodeling(Algorithm, abc.ABC):
    """Splits samples by their allocated task."""

    kind: ClassVar[str] = "task_remodeling"

    @abc.abstractmethod
    def remodel(self, samples: Any, task_ids: np.ndarray) -> Any:
        """Per-task subsets of ``samples`` with the row positions they came from."""


class BaseInferenceIntegrate(Algorithm, abc.ABC):
    """Merges per-task results back into the original sample order."""

    kind: ClassVar[str] = "inference_integrate"

    @abc.abstractmethod
    def integrate(self, results: Any, n_samples: int) -> Any:
        """One result per input sample, in input order."""


class BaseUnseenTaskDetector(Algorithm, abc.ABC):
    """Scores how unlike every known task each sample is."""

    kind: ClassVar[str] = "unseen_task_detection"

    @abc.abstractmethod
    def fit(self, task_data: Any) -> None:
        """Learn what the known tasks look like (threshold chosen on training-side data)."""

    @abc.abstractmethod
    def score(self, samples: Any) -> np.ndarray:
        """Higher means more likely unseen."""


class BaseTaskUpdateDecision(Algorithm, abc.ABC):
    """Decides how new data updates existing tasks or adds new ones."""

    kind: ClassVar[str] = "task_update_decision"

    @abc.abstractmethod
    def decide(self, index: Any, samples: Any) -> Any:
        """The update plan for ``samples`` against the knowledge-base ``index``."""
