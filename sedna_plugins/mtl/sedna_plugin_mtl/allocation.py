"""Task allocation (Sedna's "task mining"): which known task each sample belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from sedna_core.algorithms.mtl import (
    UNSEEN,
    BaseTaskAllocation,
    Column,
    Task,
    array_from_json,
    array_to_json,
    column_values,
    feature_matrix,
    has_column,
    n_rows,
)
from sedna_core.errors import DataSourceError, InvalidParameterError
from sedna_plugin_mtl._conformance import ConformanceCalls
from sedna_plugin_mtl._util import as_columns, key_of, require_columns, row_keys

__all__ = [
    "TaskAllocationByCluster",
    "TaskAllocationByDataAttr",
    "TaskAllocationByOrigin",
    "TaskAllocationBySVC",
    "TaskAllocationDefault",
    "TaskMiningByDataAttr",
    "TaskMiningBySVC",
]


def _not_fitted(obj: object) -> InvalidParameterError:
    return InvalidParameterError(
        f"{type(obj).__name__} is not fitted: call fit() or set_state() first",
        kind="task_allocation",
    )


class TaskAllocationDefault(ConformanceCalls, BaseTaskAllocation):
    """Every sample to one task (Sedna's default); :data:`UNSEEN` if that task does not exist.

    Parameters
    ----------
    task
        Id of the task that receives every sample.
    """

    name: ClassVar[str] = "TaskAllocationDefault"
    input: ClassVar[str] = "table"

    def __init__(self, task: int = 0) -> None:
        self.task = task
        self.known_: list[int] | None = None

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        self.known_ = sorted(t.task_id for t in tasks)
        return self

    def allocate(self, x: Any) -> np.ndarray:
        target = int(self.task) if self.known_ is None or int(self.task) in self.known_ else UNSEEN
        return np.full(n_rows(x), target, dtype=np.int64)

    def get_state(self) -> dict[str, Any]:
        return {"known": self.known_}

    def set_state(self, state: Mapping[str, Any]) -> None:
        known = state.get("known")
        self.known_ = None if known is None else [int(k) for k in known]


class TaskAllocationByDataAttr(ConformanceCalls, BaseTaskAllocation):
    """Task by attribute values: a combination that no task has is :data:`UNSEEN`.

    Sedna sent unknown combinations silently to task 0; here they are reported, so the unseen
    path can handle them.

    Parameters
    ----------
    attribute
        Attribute columns (names, or positions in a 2-D array; ``"season, city"`` also works).
        ``None`` takes the attribute names of the tasks' ``meta_attr``.
    """

    name: ClassVar[str] = "TaskAllocationByDataAttr"
    input: ClassVar[str] = "table"

    def __init__(self, attribute: Sequence[str | int] | None = None) -> None:
        self.attribute = attribute
        self.columns_: list[Column] | None = None
        self.table_: dict[str, int] | None = None

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        columns = as_columns(self.attribute)
        if not columns:
            columns = as_columns(list(tasks[0].meta_attr)) if tasks else []
        table: dict[str, int] = {}
        for task in tasks:
            values = [task.meta_attr.get(str(c)) for c in columns]
            if any(v is None for v in values):
                continue  # a task defined some other way: not reachable by attributes
            table[key_of(values)] = task.task_id
        self.columns_, self.table_ = columns, table
        return self

    def allocate(self, x: Any) -> np.ndarray:
        if self.table_ is None or self.columns_ is None:
            raise _not_fitted(self)
        if n_rows(x) == 0:
            return np.empty(0, dtype=np.int64)
        require_columns(x, self.columns_, self.name)
        keys, inverse = row_keys(x, self.columns_)
        ids = np.array([self.table_.get(str(k), UNSEEN) for k in keys], dtype=np.int64)
        return ids[inverse]

    def get_state(self) -> dict[str, Any]:
        return {
            "columns": self.columns_,
            "table": [
                {"key": k.split("\x1f"), "task_id": v} for k, v in (self.table_ or {}).items()
            ],
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.columns_ = as_columns(state["columns"])
        self.table_ = {key_of(item["key"]): int(item["task_id"]) for item in state["table"]}


class TaskAllocationByOrigin(ConformanceCalls, BaseTaskAllocation):
    """Task by origin (Sedna's real/simulated split).

    A sample whose ``column`` value contains ``city`` comes from ``attribute[0]`` (e.g. ``real``),
    any other from ``attribute[-1]``; without the column, every sample goes to ``default``.

    Parameters
    ----------
    attribute
        Origin names, first the one marked by ``city`` (``"real, sim"`` also works).
    city
        Substring of the column value that marks the first origin.
    column
        Column holding the sample's path or source.
    default
        Origin for samples when ``column`` is absent (``None``: the column is required).
    """

    name: ClassVar[str] = "TaskAllocationByOrigin"
    input: ClassVar[str] = "table"

    def __init__(
        self,
        attribute: Sequence[str] = ("real", "sim"),
        city: str = "berlin",
        column: str | int | None = 0,
        default: str | None = None,
    ) -> None:
        self.attribute = attribute
        self.city = city
        self.column = column
        self.default = default
        self.table_: dict[str, int] | None = None

    def origins(self, values: np.ndarray) -> np.ndarray:
        """Origin name of each value (vectorised substring test)."""
        names = [str(a) for a in as_columns(self.attribute)]
        marked = np.char.find(np.asarray(values).astype(str), str(self.city)) >= 0
        return np.where(marked, names[0], names[-1])

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        self.table_ = {str(t.meta_attr.get("origin", t.entry)): t.task_id for t in tasks}
        return self

    def allocate(self, x: Any) -> np.ndarray:
        if self.table_ is None:
            raise _not_fitted(self)
        n = n_rows(x)
        if self.column is not None and has_column(x, self.column):
            origin = self.origins(column_values(x, self.column))
        elif self.default is not None:
            origin = np.full(n, str(self.default))
        else:
            raise DataSourceError(
                f"{self.name} needs column {self.column!r} in the samples, or a `default` origin"
            )
        keys, inverse = np.unique(origin, return_inverse=True)
        ids = np.array([self.table_.get(str(k), UNSEEN) for k in keys], dtype=np.int64)
        return ids[inverse.reshape(-1)] if n else np.empty(0, dtype=np.int64)

    def get_state(self) -> dict[str, Any]:
        return {"table": self.table_}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.table_ = {str(k): int(v) for k, v in state["table"].items()}


class TaskAllocationByCluster(ConformanceCalls, BaseTaskAllocation):
    """Nearest task in feature space: each task is a Gaussian (mean and shrunk covariance).

    ``metric="mahalanobis"`` measures the distance to each task's mean with that task's
    covariance, shrunk toward a scaled identity by ``shrinkage`` (stable with few samples);
    ``"euclidean"`` uses plain distance to the mean (nearest centroid). The state is a mean and a
    precision matrix per task: it is JSON, and new tasks add to it without the old samples.

    Parameters
    ----------
    metric
        ``"mahalanobis"`` or ``"euclidean"``.
    shrinkage
        Weight of the identity in the covariance estimate, in [0, 1].
    """

    name: ClassVar[str] = "TaskAllocationByCluster"

    def __init__(self, metric: str = "mahalanobis", shrinkage: float = 0.1) -> None:
        self.metric = metric
        self.shrinkage = shrinkage
        self.task_ids_: np.ndarray | None = None
        self.means_: np.ndarray | None = None
        self.precisions_: np.ndarray | None = None

    def _check(self) -> None:
        if self.metric not in {"mahalanobis", "euclidean"}:
            raise InvalidParameterError(
                f"metric={self.metric!r}: expected 'mahalanobis' or 'euclidean'",
                kind=self.kind,
            )
        if not 0.0 <= float(self.shrinkage) <= 1.0:
            raise InvalidParameterError(
                f"shrinkage={self.shrinkage!r}: expected a number in [0, 1]", kind=self.kind
            )

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        self._check()
        feats = feature_matrix(x)
        task_ids = np.asarray(task_ids)
        ids = np.unique(task_ids[task_ids >= 0])
        if ids.size == 0:
            raise DataSourceError(f"{self.name}: no samples with a task to learn from")
        means, precisions = [], []
        for k in ids:
            mean, precision = gaussian(feats[task_ids == k], self.metric, float(self.shrinkage))
            means.append(mean)
            precisions.append(precision)
        self.task_ids_ = ids.astype(np.int64)
        self.means_ = np.stack(means)
        self.precisions_ = np.stack(precisions)
        return self

    def distances(self, x: Any) -> np.ndarray:
        """Squared distance of every sample to every task: shape (samples, tasks)."""
        if self.means_ is None or self.precisions_ is None:
            raise _not_fitted(self)
        return mahalanobis(feature_matrix(x), self.means_, self.precisions_)

    def allocate(self, x: Any) -> np.ndarray:
        if self.task_ids_ is None:
            raise _not_fitted(self)
        if n_rows(x) == 0:
            return np.empty(0, dtype=np.int64)
        return self.task_ids_[np.argmin(self.distances(x), axis=1)]

    def get_state(self) -> dict[str, Any]:
        if self.task_ids_ is None or self.means_ is None or self.precisions_ is None:
            return {}
        return {
            "task_ids": array_to_json(self.task_ids_),
            "means": array_to_json(self.means_),
            "precisions": array_to_json(self.precisions_),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.task_ids_ = array_from_json(state["task_ids"]).astype(np.int64)
        self.means_ = array_from_json(state["means"])
        self.precisions_ = array_from_json(state["precisions"])


def gaussian(feats: np.ndarray, metric: str, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision (inverse shrunk covariance) of ``feats``; identity for Euclidean."""
    d = feats.shape[1]
    mean = feats.mean(axis=0)
    if metric == "euclidean" or len(feats) < 2:
        return mean, np.eye(d)
    cov = np.cov(feats, rowvar=False).reshape(d, d)
    scale = float(np.trace(cov)) / d if d else 0.0
    scale = scale if scale > 0 else 1.0
    cov = (1.0 - shrinkage) * cov + shrinkage * scale * np.eye(d)
    return mean, np.linalg.pinv(cov, hermitian=True)


def mahalanobis(feats: np.ndarray, means: np.ndarray, precisions: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances, (samples, components), one BLAS product per component."""
    out = np.empty((len(feats), len(means)))
    for j, (mean, precision) in enumerate(zip(means, precisions, strict=True)):
        diff = feats - mean
        out[:, j] = np.einsum("ij,ij->i", diff @ precision, diff)
    return out


class TaskAllocationBySVC(ConformanceCalls, BaseTaskAllocation):
    """A support-vector classifier over tasks (RBF kernel), as Sedna's ``TaskAllocationBySVC``.

    Trained with scikit-learn; the fitted support vectors, coefficients and intercepts are kept
    as JSON and the one-vs-one decision is evaluated with numpy, so no pickled model is needed.

    Parameters
    ----------
    gamma
        RBF kernel coefficient, or ``"scale"`` (scikit-learn's default rule).
    c
        Regularisation parameter ``C``.
    """

    name: ClassVar[str] = "TaskAllocationBySVC"

    def __init__(self, gamma: float | str = "scale", c: float = 1.0) -> None:
        self.gamma = gamma
        self.c = c
        self.state_: dict[str, np.ndarray] | None = None

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        from sklearn.svm import SVC

        feats = feature_matrix(x)
        task_ids = np.asarray(task_ids)
        keep = task_ids >= 0
        classes = np.unique(task_ids[keep])
        if classes.size == 1:  # nothing to separate: a constant allocator
            self.state_ = {"classes": classes.astype(np.int64)}
            return self
        gamma: float | str = self.gamma
        if isinstance(gamma, str) and gamma not in {"scale", "auto"}:
            gamma = float(gamma)
        svc = SVC(kernel="rbf", gamma=gamma, C=float(self.c)).fit(feats[keep], task_ids[keep])
        self.state_ = {
            "classes": svc.classes_.astype(np.int64),
            "support_vectors": np.asarray(svc.support_vectors_, dtype=float),
            # libsvm's own signs (the public attributes are negated for two classes)
            "dual_coef": np.asarray(svc._dual_coef_, dtype=float),
            "intercept": np.asarray(svc._intercept_, dtype=float),
            "n_support": np.asarray(svc.n_support_, dtype=np.int64),
            "gamma": np.asarray([svc._gamma], dtype=float),
        }
        return self

    def allocate(self, x: Any) -> np.ndarray:
        if self.state_ is None:
            raise _not_fitted(self)
        classes = self.state_["classes"]
        n = n_rows(x)
        if classes.size == 1 or n == 0:
            return np.full(n, classes[0] if classes.size else UNSEEN, dtype=np.int64)
        return classes[ovo_votes(feature_matrix(x), self.state_)]

    def get_state(self) -> dict[str, Any]:
        return {k: array_to_json(v) for k, v in (self.state_ or {}).items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.state_ = {k: array_from_json(v) for k, v in state.items()}


def ovo_votes(feats: np.ndarray, state: Mapping[str, np.ndarray]) -> np.ndarray:
    """libsvm's one-vs-one prediction (class index per row) from a fitted SVC's arrays."""
    sv, coef = state["support_vectors"], state["dual_coef"]
    n_support, intercept = state["n_support"], state["intercept"]
    gamma = float(state["gamma"][0])
    sq = (feats**2).sum(1)[:, None] + (sv**2).sum(1)[None, :] - 2.0 * feats @ sv.T
    np.maximum(sq, 0.0, out=sq)
    kernel = np.exp(-gamma * sq, out=sq)
    starts = np.concatenate([[0], np.cumsum(n_support)])
    n_class = len(n_support)
    # one product for every partial sum: column (c, r) = coef[r] over class c's support vectors
    weights = np.zeros((len(sv), n_class * (n_class - 1)))
    for c in range(n_class):
        rows = slice(starts[c], starts[c + 1])
        weights[rows, c * (n_class - 1) : (c + 1) * (n_class - 1)] = coef[:, rows].T
    partial = kernel @ weights
    votes = np.zeros((len(feats), n_class), dtype=np.int64)
    p = 0
    for i in range(n_class):
        for j in range(i + 1, n_class):
            dec = (
                partial[:, i * (n_class - 1) + (j - 1)]
                + partial[:, j * (n_class - 1) + i]
                + intercept[p]
            )
            votes[:, i] += dec > 0
            votes[:, j] += dec <= 0
            p += 1
    return np.argmax(votes, axis=1)


class TaskMiningByDataAttr(TaskAllocationByDataAttr):
    """Sedna's older name (its ``MulTaskLearning`` "task mining") for
    :class:`TaskAllocationByDataAttr`; kept so scripts written for it run unchanged."""

    name: ClassVar[str] = "TaskMiningByDataAttr"


class TaskMiningBySVC(TaskAllocationBySVC):
    """Sedna's older name for :class:`TaskAllocationBySVC`."""

    name: ClassVar[str] = "TaskMiningBySVC"
