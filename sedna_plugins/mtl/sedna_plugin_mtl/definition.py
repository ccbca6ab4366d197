"""Task definition: split training samples into tasks, each with a fitted allocator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.mtl import (
    BaseTaskDefinition,
    Task,
    TaskDefinitionResult,
    column_values,
    feature_matrix,
    has_column,
    n_rows,
    task_key,
)
from sedna_core.errors import DataSourceError, InvalidParameterError
from sedna_plugin_mtl._conformance import ConformanceCalls
from sedna_plugin_mtl._util import as_columns, require_columns, row_keys, split_key
from sedna_plugin_mtl.allocation import (
    TaskAllocationByCluster,
    TaskAllocationByDataAttr,
    TaskAllocationByOrigin,
    TaskAllocationBySVC,
)

__all__ = [
    "TaskDefinitionByCluster",
    "TaskDefinitionByDataAttr",
    "TaskDefinitionByOrigin",
    "TaskDefinitionBySVC",
]


def _tasks_from_labels(
    labels: np.ndarray, names: list[str], metas: list[dict[str, Any]]
) -> list[Task]:
    tasks = []
    for k, (entry, meta) in enumerate(zip(names, metas, strict=True)):
        rows = np.flatnonzero(labels == k)
        tasks.append(Task(entry=entry, task_id=k, meta_attr=meta, rows=rows, sample_num=len(rows)))
    return tasks


def _scalar(value: Any) -> Any:
    """A JSON-friendly python scalar for an attribute value."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


class TaskDefinitionByDataAttr(ConformanceCalls, BaseTaskDefinition):
    """One task per combination of attribute values (Sedna's ``TaskDefinitionByDataAttr``).

    Task names follow Sedna (``"summer_berlin"``); the attribute columns are not model features.
    Unlike Sedna, the caller's data is never modified and rows are addressed by position.

    Parameters
    ----------
    attribute
        Attribute columns: names (``["season", "city"]`` or ``"season, city"``), or positions in a
        2-D array.
    """

    name: ClassVar[str] = "TaskDefinitionByDataAttr"

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{"attribute": ["season"]}, {"attribute": ("season",)}]

    def __init__(self, attribute: Sequence[str | int] = ("task",)) -> None:
        self.attribute = attribute

    def fit(self, x: Any, y: np.ndarray | None = None) -> TaskDefinitionResult:
        columns = as_columns(self.attribute)
        if not columns:
            raise InvalidParameterError(
                f"{self.name} needs at least one attribute column", kind=self.kind
            )
        require_columns(x, columns, self.name)
        if n_rows(x) == 0:
            raise DataSourceError(f"{self.name}: no samples to define tasks on")
        keys, inverse = row_keys(x, columns)
        first = np.zeros(len(keys), dtype=np.intp)  # a row of each key, for typed values
        first[inverse[::-1]] = np.arange(len(inverse))[::-1]
        raw = [column_values(x, c) for c in columns]
        metas, names = [], []
        for j, key in enumerate(keys):
            values = [_scalar(col[first[j]]) for col in raw]
            assert [str(v) for v in values] == split_key(str(key))
            metas.append({str(c): v for c, v in zip(columns, values, strict=True)})
            names.append(task_key(values))
        tasks = _tasks_from_labels(inverse, names, metas)
        allocator = TaskAllocationByDataAttr(attribute=list(columns)).fit(x, inverse, tasks)
        return TaskDefinitionResult(
            tasks=tasks,
            task_ids=inverse.astype(np.int64),
            allocator=allocator,
            attribute_columns=tuple(columns),
        )


class TaskDefinitionByOrigin(ConformanceCalls, BaseTaskDefinition):
    """Tasks by the origin of samples (Sedna's real/simulated split).

    A sample whose ``column`` value (its path; the label when ``column`` is ``None``, as in Sedna)
    contains ``city`` belongs to origin ``attribute[0]``, any other to ``attribute[-1]``.

    Parameters
    ----------
    attribute
        Origin names (``"real, sim"``).
    city
        Substring marking the first origin.
    column
        Column of the samples holding the path; ``None`` reads the labels.
    """

    name: ClassVar[str] = "TaskDefinitionByOrigin"

    def __init__(
        self,
        attribute: Sequence[str] = ("real", "sim"),
        city: str = "berlin",
        column: str | int | None = None,
    ) -> None:
        self.attribute = attribute
        self.city = city
        self.column = column

    def fit(self, x: Any, y: np.ndarray | None = None) -> TaskDefinitionResult:
        if self.column is not None:
            if not has_column(x, self.column):
                raise DataSourceError(f"{self.name} needs column {self.column!r} in the samples")
            values = column_values(x, self.column)
        elif y is not None:
            values = np.asarray(y)
        else:
            raise DataSourceError(f"{self.name} needs labels (paths) or a `column` to read")
        allocator = TaskAllocationByOrigin(
            attribute=self.attribute, city=self.city, column=self.column
        )
        origin = allocator.origins(values)
        keys, inverse = np.unique(origin, return_inverse=True)
        inverse = inverse.reshape(-1)
        names = [str(k) for k in keys]
        tasks = _tasks_from_labels(inverse, names, [{"origin": n} for n in names])
        allocator.fit(x, inverse, tasks)
        return TaskDefinitionResult(
            tasks=tasks, task_ids=inverse.astype(np.int64), allocator=allocator
        )


class TaskDefinitionByCluster(ConformanceCalls, BaseTaskDefinition):
    """Tasks by k-means clusters of the numeric features; allocated to the nearest cluster.

    Parameters
    ----------
    n_clusters
        Number of tasks.
    random_state
        Seed of k-means.
    """

    name: ClassVar[str] = "TaskDefinitionByCluster"

    def __init__(self, n_clusters: int = 2, random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state

    def fit(self, x: Any, y: np.ndarray | None = None) -> TaskDefinitionResult:
        from sklearn.cluster import KMeans

        feats = feature_matrix(x)
        k = max(1, min(int(self.n_clusters), len(feats)))
        labels = KMeans(n_clusters=k, random_state=int(self.random_state), n_init=10).fit_predict(
            feats
        )
        labels = _relabel(labels)
        names = [f"cluster_{i}" for i in range(labels.max() + 1)]
        tasks = _tasks_from_labels(labels, names, [{} for _ in names])
        allocator = TaskAllocationByCluster(metric="euclidean").fit(feats, labels, tasks)
        return TaskDefinitionResult(tasks=tasks, task_ids=labels, allocator=allocator)


class TaskDefinitionBySVC(ConformanceCalls, BaseTaskDefinition):
    """Sedna's ``TaskDefinitionBySVC``: agglomerative clusters, allocated by an RBF SVC.

    Parameters
    ----------
    n_class
        Number of tasks (at least 2, as in Sedna).
    gamma
        RBF coefficient of the allocating SVC (Sedna: 0.01).
    """

    name: ClassVar[str] = "TaskDefinitionBySVC"

    def __init__(self, n_class: int = 2, gamma: float = 0.01) -> None:
        self.n_class = n_class
        self.gamma = gamma

    def fit(self, x: Any, y: np.ndarray | None = None) -> TaskDefinitionResult:
        from sklearn.cluster import AgglomerativeClustering

        feats = feature_matrix(x)
        k = max(2, int(self.n_class))
        if len(feats) < k:
            raise DataSourceError(f"{self.name}: {len(feats)} samples cannot form {k} tasks")
        labels = _relabel(AgglomerativeClustering(n_clusters=k).fit_predict(feats))
        names = [f"svc_{i}" for i in range(labels.max() + 1)]
        tasks = _tasks_from_labels(labels, names, [{} for _ in names])
        allocator = TaskAllocationBySVC(gamma=float(self.gamma)).fit(feats, labels, tasks)
        return TaskDefinitionResult(tasks=tasks, task_ids=labels, allocator=allocator)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Cluster labels renumbered by first appearance (stable task ids across equal runs)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse.reshape(-1)].astype(np.int64)
