"""Unseen-task detection: is a sample from a task the knowledge base has no model for?

Three signals, usable alone or together: the attribute combination (``TaskAttrFilter``), the
distance in feature space to each known task's training data (``MahalanobisFilter``), and the
confidence of the allocated task's model (``ModelProbeFilter``). Score thresholds are chosen by
:meth:`~sedna_core.algorithms.mtl.BaseUnseenTaskDetector.calibrate` on validation data split from
the training side, for a target false-positive rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from sedna_core.algorithms.mtl import (
    UNSEEN,
    BaseUnseenTaskDetector,
    Column,
    DetectionData,
    Task,
    array_from_json,
    array_to_json,
    has_column,
    n_rows,
)
from sedna_core.errors import InvalidParameterError
from sedna_core.log import get_logger
from sedna_plugin_mtl._conformance import ConformanceCalls
from sedna_plugin_mtl._util import as_columns, key_of, row_keys
from sedna_plugin_mtl.allocation import gaussian, mahalanobis

__all__ = ["MahalanobisFilter", "ModelProbeFilter", "SampleRegonitionDefault", "TaskAttrFilter"]

log = get_logger(__name__)


class TaskAttrFilter(ConformanceCalls, BaseUnseenTaskDetector):
    """Unseen when the sample's attribute combination belongs to no known task.

    Scores are 1.0 (unseen) or 0.0 (known); the threshold is fixed at 0.5. Samples without the
    attribute columns cannot be judged and score 0.0.

    Parameters
    ----------
    attribute
        Attribute columns; ``None`` takes the attribute names of the tasks' ``meta_attr``.
    """

    name: ClassVar[str] = "TaskAttrFilter"
    requires: ClassVar[frozenset[str]] = frozenset({"attributes"})

    def __init__(self, attribute: Sequence[str | int] | None = None) -> None:
        self.attribute = attribute
        self.columns_: list[Column] | None = None
        self.known_: set[str] | None = None

    def fit(self, data: DetectionData, tasks: Sequence[Task]) -> Self:
        columns = as_columns(self.attribute)
        if not columns:
            names = {k for t in tasks for k in t.meta_attr}
            columns = as_columns(sorted(names))
        known = set()
        for t in tasks:
            values = [t.meta_attr.get(str(c)) for c in columns]
            if all(v is not None for v in values):
                known.add(key_of(values))
        self.columns_, self.known_ = columns, known
        self.threshold_ = 0.5
        return self

    def calibrate(self, data: DetectionData) -> float:
        self.threshold_ = 0.5  # scores are decisions already
        return self.threshold_

    def score(self, data: DetectionData) -> np.ndarray:
        if self.columns_ is None or self.known_ is None:
            raise InvalidParameterError(f"{self.name} is not fitted", kind=self.kind)
        n = n_rows(data.x)
        if n == 0:
            return np.empty(0)
        if not self.columns_ or not all(has_column(data.x, c) for c in self.columns_):
            log.warning("attribute columns absent: samples not judged", columns=self.columns_)
            return np.zeros(n)
        keys, inverse = row_keys(data.x, self.columns_)
        unknown = np.array([str(k) not in self.known_ for k in keys], dtype=float)
        return unknown[inverse]

    def get_state(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold_,
            "columns": self.columns_,
            "known": sorted(k.split("\x1f") for k in (self.known_ or ())),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self.columns_ = as_columns(state["columns"])
        self.known_ = {key_of(k) for k in state["known"]}


class MahalanobisFilter(ConformanceCalls, BaseUnseenTaskDetector):
    """Distance in feature space to the nearest known task's training data.

    Each task is modelled by Gaussians (one per class when labels are known and
    ``per_class`` is set, else one per task) with covariances shrunk toward a scaled identity; the
    score is the smallest squared Mahalanobis distance.

    Parameters
    ----------
    shrinkage
        Weight of the identity in each covariance estimate, in [0, 1].
    per_class
        Model each class of a task separately (tighter clusters, better separation).
    target_fpr
        Share of seen validation samples allowed above the threshold.
    """

    name: ClassVar[str] = "MahalanobisFilter"
    requires: ClassVar[frozenset[str]] = frozenset({"features"})

    def __init__(
        self, shrinkage: float = 0.1, per_class: bool = True, target_fpr: float = 0.05
    ) -> None:
        self.shrinkage = shrinkage
        self.per_class = per_class
        self.target_fpr = target_fpr
        self.threshold_ = None
        self.means_: np.ndarray | None = None
        self.precisions_: np.ndarray | None = None
        self.component_tasks_: np.ndarray | None = None

    def fit(self, data: DetectionData, tasks: Sequence[Task]) -> Self:
        if not 0.0 <= float(self.shrinkage) <= 1.0:
            raise InvalidParameterError(
                f"shrinkage={self.shrinkage!r}: expected a number in [0, 1]", kind=self.kind
            )
        feats, ids = data.features, np.asarray(data.task_ids)
        means, precisions, owners = [], [], []
        for k in np.unique(ids[ids != UNSEEN]):
            rows = ids == k
            groups = [rows]
            if self.per_class and data.y is not None:
                labels = np.asarray(data.y)[rows]
                classes, counts = np.unique(labels, return_counts=True)
                if len(classes) > 1 and counts.min() > 1:
                    groups = [rows & (np.asarray(data.y) == c) for c in classes]
            for g in groups:
                mean, precision = gaussian(feats[g], "mahalanobis", float(self.shrinkage))
                means.append(mean)
                precisions.append(precision)
                owners.append(int(k))
        if not means:
            raise InvalidParameterError(f"{self.name}: no task samples to fit", kind=self.kind)
        self.means_, self.precisions_ = np.stack(means), np.stack(precisions)
        self.component_tasks_ = np.asarray(owners, dtype=np.int64)
        return self

    def score(self, data: DetectionData) -> np.ndarray:
        if self.means_ is None or self.precisions_ is None:
            raise InvalidParameterError(f"{self.name} is not fitted", kind=self.kind)
        if len(data.features) == 0:
            return np.empty(0)
        return mahalanobis(data.features, self.means_, self.precisions_).min(axis=1)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.means_ is not None and self.precisions_ is not None:
            state["means"] = array_to_json(self.means_)
            state["precisions"] = array_to_json(self.precisions_)
            state["component_tasks"] = array_to_json(self.component_tasks_)
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self.means_ = array_from_json(state["means"])
        self.precisions_ = array_from_json(state["precisions"])
        self.component_tasks_ = array_from_json(state["component_tasks"])


class SampleRegonitionDefault(MahalanobisFilter):
    """Sedna's default name for seen/unseen recognition (spelling kept for compatibility).

    Sedna's version split samples at random or in halves; this one is :class:`MahalanobisFilter`.
    """

    name: ClassVar[str] = "SampleRegonitionDefault"


class ModelProbeFilter(ConformanceCalls, BaseUnseenTaskDetector):
    """Low confidence of the allocated task's model means unseen.

    Sedna's ``ModelProbeFilter`` with its comparison fixed (it flagged *confident* samples).
    ``measure="max_proba"`` gives ``1 - max p``; ``"entropy"`` the normalised entropy of ``p``.
    Samples allocated to no task score 1.0.

    Parameters
    ----------
    measure
        ``"max_proba"`` or ``"entropy"``.
    target_fpr
        Share of seen validation samples allowed above the threshold.
    """

    name: ClassVar[str] = "ModelProbeFilter"
    requires: ClassVar[frozenset[str]] = frozenset({"models"})

    def __init__(self, measure: str = "max_proba", target_fpr: float = 0.05) -> None:
        self.measure = measure
        self.target_fpr = target_fpr
        self.threshold_ = None

    def fit(self, data: DetectionData, tasks: Sequence[Task]) -> Self:
        if self.measure not in {"max_proba", "entropy"}:
            raise InvalidParameterError(
                f"measure={self.measure!r}: expected 'max_proba' or 'entropy'", kind=self.kind
            )
        return self

    def score(self, data: DetectionData) -> np.ndarray:
        ids = np.asarray(data.task_ids)
        out = np.ones(len(ids))
        if data.proba is None:
            raise InvalidParameterError(
                f"{self.name} needs the task models' probabilities", kind=self.kind
            )
        for k in np.unique(ids[ids != UNSEEN]):
            rows = np.flatnonzero(ids == k)
            p = np.clip(np.asarray(data.proba(int(k), rows), dtype=float), 0.0, 1.0)
            p = p.reshape(len(rows), -1)
            if self.measure == "max_proba":
                out[rows] = 1.0 - p.max(axis=1)
            else:
                m = p.shape[1]
                ent = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
                out[rows] = ent / np.log(m) if m > 1 else 0.0
        return out
