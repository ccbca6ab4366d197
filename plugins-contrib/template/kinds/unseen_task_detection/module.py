"""``{{ algorithm_name }}``: distance to the nearest known task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from sedna_core.algorithms import BaseUnseenTaskDetector
from sedna_core.algorithms.mtl import DetectionData, Task, array_from_json, array_to_json

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseUnseenTaskDetector):
    """Euclidean distance from a sample's features to the nearest known task's centroid.

    ``fit`` learns one centroid per task; the job then calls ``calibrate`` on validation data
    of known tasks, which sets ``threshold_`` so that about ``target_fpr`` of them are flagged;
    ``detect`` flags samples whose score is above it.

    Parameters
    ----------
    target_fpr
        Share of samples of known tasks that ``calibrate`` lets be flagged.
    """

    name: ClassVar[str] = "{{ algorithm_name }}"
    requires: ClassVar[frozenset[str]] = frozenset({"features"})

    def __init__(self, target_fpr: float = 0.05) -> None:
        self.target_fpr = target_fpr
        self.centroids_ = np.zeros((0, 0))

    def fit(self, data: DetectionData, tasks: Sequence[Task]) -> Self:
        """One centroid of ``data.features`` per task (rows of ``data.task_ids``)."""
        known = [t for t in tasks if np.any(data.task_ids == t.task_id)]
        self.centroids_ = np.stack(
            [data.features[data.task_ids == t.task_id].mean(axis=0) for t in known]
        )
        return self

    def score(self, data: DetectionData) -> np.ndarray:
        """Distance to the nearest centroid, per sample: higher is more likely unseen."""
        gaps = np.asarray(data.features, dtype=float)[:, None, :] - self.centroids_[None, :, :]
        return np.sqrt((gaps**2).sum(axis=2)).min(axis=1)

    def get_state(self) -> dict[str, Any]:
        """The threshold (the base class's state) and the centroids, as JSON."""
        return {**super().get_state(), "centroids": array_to_json(self.centroids_)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        super().set_state(state)
        self.centroids_ = array_from_json(state["centroids"])

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        rng = np.random.default_rng(0)
        ids = np.repeat([0, 1], 10)
        features = rng.normal(size=(20, 2)) + 4.0 * ids[:, None]
        data = DetectionData(x=features, features=features, task_ids=ids)
        tasks = [Task("a", 0), Task("b", 1)]
        return [
            ("fit", (data, tasks)),
            ("calibrate", (data,)),
            ("score", (data,)),
            ("detect", (data,)),
        ]
