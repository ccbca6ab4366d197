"""The lifelong-learning kinds: task definition, allocation, relations, remodeling,
inference integration, unseen-task detection and update decisions.

Data flow (one row = one sample)::

    train:     x, y --TaskDefinition.fit--> TaskDefinitionResult(tasks, task_ids, allocator)
                    --TaskRelationDiscover.discover--> [TaskGroup]  --> one model per group
    inference: x --TaskAllocation.allocate--> task ids (UNSEEN = -1 where no task fits)
                 --UnseenTaskDetector.detect--> unseen mask
                 --TaskRemodeling.remodel--> [(task id, rows)] --per-task models--> results
                 --InferenceIntegrate.integrate--> one result per row, in input order

Samples are *tables*: a 2-D numpy array (columns by position), a numpy structured array, a
mapping of column name to array (``{"season": [...], "pixels": 2-D array}``), or a pandas
DataFrame (duck-typed; pandas is never imported here). The helpers :func:`n_rows`,
:func:`take_rows`, :func:`has_column`, :func:`column_values`, :func:`drop_columns` and
:func:`feature_matrix` work on all of them, so algorithms stay vectorised whatever the container.

Fitted algorithms keep their learned state as JSON (:meth:`get_state`/:meth:`set_state`, arrays
through :func:`array_to_json`) because the knowledge base's task index is JSON, never a pickle.
"""

from __future__ import annotations

import abc
import base64
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from sedna_core.algorithms._base import Algorithm
from sedna_core.errors import InvalidParameterError

__all__ = [
    "UNSEEN",
    "BaseInferenceIntegrate",
    "BaseTaskAllocation",
    "BaseTaskDefinition",
    "BaseTaskRelationDiscover",
    "BaseTaskRemodeling",
    "BaseTaskUpdateDecision",
    "BaseUnseenTaskDetector",
    "Column",
    "DetectionData",
    "Task",
    "TaskDefinitionResult",
    "TaskGroup",
    "TaskResult",
    "UpdatePlan",
    "array_from_json",
    "array_to_json",
    "column_values",
    "drop_columns",
    "feature_matrix",
    "has_column",
    "n_rows",
    "take_rows",
    "task_key",
]

#: task id meaning "no known task fits this sample"
UNSEEN = -1

#: a column of a table: a name, or a position in a 2-D array
Column = str | int


# -- tables ------------------------------------------------------------------------------------


def _is_frame(x: Any) -> bool:
    return hasattr(x, "iloc") and hasattr(x, "columns")


def _as_array(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def n_rows(x: Any) -> int:
    """The number of samples in ``x``."""
    if _is_frame(x):
        return len(x)
    if isinstance(x, Mapping):
        if not x:
            return 0
        return len(next(iter(x.values())))
    return len(x)


def take_rows(x: Any, rows: np.ndarray | Sequence[int]) -> Any:
    """The samples of ``x`` at positions ``rows``, in the same kind of container."""
    rows = np.asarray(rows, dtype=np.intp)
    if _is_frame(x):
        return x.iloc[rows]
    if isinstance(x, Mapping):
        return {k: _as_array(v)[rows] for k, v in x.items()}
    return _as_array(x)[rows]


def has_column(x: Any, column: Column) -> bool:
    """Whether ``x`` has ``column`` (a name, or a position in a 2-D array)."""
    if _is_frame(x):
        return column in x.columns
    if isinstance(x, Mapping):
        return column in x
    arr = _as_array(x)
    if arr.dtype.names is not None:
        return isinstance(column, str) and column in arr.dtype.names
    if isinstance(column, int | np.integer) and not isinstance(column, bool):
        return arr.ndim == 2 and -arr.shape[1] <= int(column) < arr.shape[1]
    return False


def column_values(x: Any, column: Column) -> np.ndarray:
    """The values of one column as a 1-D array (``KeyError`` if ``x`` lacks it)."""
    if not has_column(x, column):
        raise KeyError(column)
    if _is_frame(x):
        return x[column].to_numpy()
    if isinstance(x, Mapping):
        return _as_array(x[column])
    arr = _as_array(x)
    if arr.dtype.names is not None:
        return arr[column]
    return arr[:, int(column)]


def drop_columns(x: Any, columns: Sequence[Column]) -> Any:
    """The table ``x`` without ``columns`` (absent ones are ignored); never modifies ``x``."""
    present = [c for c in columns if has_column(x, c)]
    if not present:
        return x
    if _is_frame(x):
        return x.drop(columns=present)
    if isinstance(x, Mapping):
        return {k: v for k, v in x.items() if k not in present}
    arr = _as_array(x)
    if arr.dtype.names is not None:
        keep = [n for n in arr.dtype.names if n not in present]
        return arr[keep]
    drop = {int(c) % arr.shape[1] for c in present}
    return arr[:, [i for i in range(arr.shape[1]) if i not in drop]]


def feature_matrix(x: Any, exclude: Sequence[Column] = ()) -> np.ndarray:
    """The numeric features of ``x`` as a float 2-D array (rows x features), without ``exclude``.

    Mapping columns are stacked in their order (a 2-D column contributes all its columns);
    a structured array's fields likewise. Non-numeric features raise ``ValueError``.
    """
    x = drop_columns(x, exclude)
    if _is_frame(x):
        return np.asarray(x.to_numpy(dtype=float), dtype=float)
    if isinstance(x, Mapping):
        blocks = [np.asarray(v, dtype=float).reshape(n_rows(x), -1) for v in x.values()]
        return np.hstack(blocks) if blocks else np.empty((n_rows(x), 0))
    arr = _as_array(x)
    if arr.dtype.names is not None:
        return np.column_stack([np.asarray(arr[n], dtype=float) for n in arr.dtype.names])
    arr = np.asarray(arr, dtype=float)
    return arr.reshape(len(arr), -1)


# -- JSON state ----------------------------------------------------------------------------------

_SAFE_DTYPES = frozenset(
    ["|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8"]
)


def array_to_json(a: Any) -> dict[str, Any]:
    """A numeric array as JSON: ``{"dtype", "shape", "data"}`` (little-endian bytes, base64)."""
    arr = np.ascontiguousarray(a)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"only numeric arrays can be stored in a task index, not {arr.dtype}")
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return {
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
        "data": base64.b64encode(arr.tobytes()).decode("ascii"),
    }


def array_from_json(doc: Mapping[str, Any]) -> np.ndarray:
    """The array a :func:`array_to_json` document describes.

    Parameters
    ----------
    doc
        ``{"dtype", "shape", "data"}`` as :func:`array_to_json` writes it.

    Returns
    -------
    numpy.ndarray
        A new array (never a view of the document's bytes).

    Raises
    ------
    ValueError
        A malformed document, a non-numeric dtype, or data that does not match the shape.
    """
    try:
        dtype = np.dtype(doc["dtype"])
        shape = tuple(int(s) for s in doc["shape"])
        raw = base64.b64decode(doc["data"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed array in task index: {exc}") from exc
    if dtype.str not in _SAFE_DTYPES:
        raise ValueError(f"array dtype {dtype.str!r} is not allowed in a task index")
    if any(s < 0 for s in shape) or math.prod(shape) * dtype.itemsize != len(raw):
        raise ValueError(f"array data does not match shape {list(shape)} and dtype {dtype.str}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


# -- what flows between the kinds ------------------------------------------------------------------


@dataclass
class Task:
    """One task: a name (``entry``), its id, the attributes that define it, and its training rows.

    ``task_id`` is unique among the knowledge base's tasks; ``rows`` are positions in the data
    given to the definition (not stored in the index) and ``sample_num`` their count;
    ``meta_attr`` must be JSON-compatible (it goes to the knowledge base).
    """

    entry: str
    task_id: int
    meta_attr: dict[str, Any] = field(default_factory=dict)
    rows: np.ndarray | None = None
    sample_num: int = 0


@dataclass
class TaskGroup:
    """Related tasks sharing one model (by default one task per group, as in Sedna).

    ``entry`` names the group (and its model); ``tasks`` are its members.
    """

    entry: str
    tasks: list[Task]

    @property
    def task_ids(self) -> list[int]:
        """The ids of the group's tasks, in order."""
        return [t.task_id for t in self.tasks]


@dataclass
class TaskDefinitionResult:
    """What a task definition produces.

    ``task_ids[i]`` is the task of training row ``i``; ``allocator`` is fitted to map samples to
    these tasks; ``attribute_columns`` were used to define tasks and are not model features.
    """

    tasks: list[Task]
    task_ids: np.ndarray
    allocator: BaseTaskAllocation
    attribute_columns: tuple[Column, ...] = ()


@dataclass
class TaskResult:
    """The result of one task's model on its rows.

    ``entry`` and ``task_id`` name the task (or group), ``rows`` index the inference batch,
    ``result`` is the model's output on those rows, and ``is_unseen`` marks rows of an unseen
    task answered by a fallback model.
    """

    entry: str
    task_id: int
    rows: np.ndarray
    result: Any = None
    is_unseen: bool = False


@dataclass
class DetectionData:
    """What an unseen-task detector sees.

    ``x`` is the raw table (attribute columns included when the caller has them), ``features``
    its numeric features, ``task_ids`` the allocation (true tasks when fitting), ``y`` labels when
    known, and ``proba(task_id, rows)`` the class probabilities of that task's model on those rows
    of ``x`` (``None`` when models are not available yet).
    """

    x: Any
    features: np.ndarray
    task_ids: np.ndarray
    y: np.ndarray | None = None
    proba: Callable[[int, np.ndarray], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class UpdatePlan:
    """How new training data updates the knowledge base.

    ``updates[task_id]`` are the rows that go to an existing task, trained by
    ``strategies[task_id]`` (``"finetune"``: continue from the current model on the new rows;
    ``"retrain"``: a fresh model on the task's stored and new rows); ``new_rows`` form new tasks
    (defined by the job's task definition).
    """

    updates: dict[int, np.ndarray]
    strategies: dict[int, str]
    new_rows: np.ndarray


# -- base classes ------------------------------------------------------------------------------


class _Stateful:
    """Fitted algorithms expose their learned state as JSON for the task index."""

    def get_state(self) -> dict[str, Any]:
        """The fitted state as a JSON-compatible dict (arrays via :func:`array_to_json`)."""
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (a fitted algorithm, ready to use)."""


class BaseTaskDefinition(Algorithm, abc.ABC):
    """Splits training samples into tasks and fits an allocator for them."""

    kind: ClassVar[str] = "task_definition"

    @abc.abstractmethod
    def fit(self, x: Any, y: np.ndarray | None = None) -> TaskDefinitionResult:
        """Define tasks on the table ``x`` (labels ``y`` where the rule needs them).

        Returns
        -------
        TaskDefinitionResult
            The tasks, each training row's task, a fitted allocator and the attribute columns.
        """


class BaseTaskAllocation(_Stateful, Algorithm, abc.ABC):
    """Assigns samples to known tasks (Sedna's "task mining"), vectorised.

    ``fit`` learns from samples whose tasks are known; ``allocate`` answers :data:`UNSEEN`
    where no known task fits (an allocator that always answers a task never does).
    """

    kind: ClassVar[str] = "task_allocation"
    #: what ``fit``/``allocate`` receive: ``"features"`` (a float matrix without the
    #: task-defining attribute columns) or ``"table"`` (the samples as given, attributes included)
    input: ClassVar[str] = "features"

    @abc.abstractmethod
    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        """Learn to allocate samples to ``tasks``.

        Parameters
        ----------
        x
            The training samples (features or the table, as :attr:`input` says).
        task_ids
            ``task_ids[i]`` is row ``i``'s task.
        tasks
            The known tasks.

        Returns
        -------
        Self
            This allocator, fitted.
        """

    @abc.abstractmethod
    def allocate(self, x: Any) -> np.ndarray:
        """The task id of each sample of ``x``.

        Returns
        -------
        numpy.ndarray
            An int array of ``n_rows(x)``; :data:`UNSEEN` where no known task fits.
        """


class BaseTaskRelationDiscover(Algorithm, abc.ABC):
    """Groups related tasks; each group gets one model."""

    kind: ClassVar[str] = "task_relation_discovery"

    @abc.abstractmethod
    def discover(self, tasks: Sequence[Task]) -> list[TaskGroup]:
        """Group related ``tasks``.

        Returns
        -------
        list of TaskGroup
            Groups covering every task exactly once.
        """


class BaseTaskRemodeling(Algorithm, abc.ABC):
    """Splits a batch by allocated task."""

    kind: ClassVar[str] = "task_remodeling"

    @abc.abstractmethod
    def remodel(self, task_ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Split a batch by each row's task id in ``task_ids``.

        Returns
        -------
        list of tuple
            ``(task id, row positions)`` per distinct task, covering every row exactly once.
        """


class BaseInferenceIntegrate(Algorithm, abc.ABC):
    """Merges per-task results back into the original sample order."""

    kind: ClassVar[str] = "inference_integrate"

    @abc.abstractmethod
    def integrate(self, results: Sequence[TaskResult], n_samples: int) -> np.ndarray:
        """Merge per-task ``results`` back into input order.

        Parameters
        ----------
        results
            One :class:`TaskResult` per task (its rows of the batch and its model's output).
        n_samples
            The batch's number of samples.

        Returns
        -------
        numpy.ndarray
            One result per input sample, in input order; never drops a sample silently.
        """


class BaseUnseenTaskDetector(_Stateful, Algorithm, abc.ABC):
    """Scores how unlike every known task each sample is; higher means more likely unseen.

    ``fit`` learns the known tasks from training data; ``calibrate`` then chooses
    ``threshold_`` on validation data split from the training side (never on the stream being
    judged), so that about ``target_fpr`` of seen samples are flagged. Detectors whose scores are
    already decisions (attribute matching) set a fixed threshold in ``fit``.
    """

    kind: ClassVar[str] = "unseen_task_detection"
    #: what the detector needs from :class:`DetectionData`: "features", "attributes", "models"
    requires: ClassVar[frozenset[str]] = frozenset({"features"})

    target_fpr: float = 0.05
    threshold_: float | None = None

    @abc.abstractmethod
    def fit(self, data: DetectionData, tasks: Sequence[Task]) -> Self:
        """Learn what the known ``tasks`` look like from ``data`` (its ``task_ids`` are true).

        Returns
        -------
        Self
            This detector, fitted.
        """

    @abc.abstractmethod
    def score(self, data: DetectionData) -> np.ndarray:
        """A float per sample of ``data``; higher means more likely unseen."""

    def calibrate(self, data: DetectionData) -> float:
        """Choose ``threshold_`` from seen validation samples: their ``1 - target_fpr`` quantile.

        Parameters
        ----------
        data
            Validation samples of known tasks (split from the training side).

        Returns
        -------
        float
            The threshold set (infinite when no score is finite).
        """
        scores = np.asarray(self.score(data), dtype=float)
        scores = scores[np.isfinite(scores)]
        if scores.size == 0:
            self.threshold_ = math.inf
        else:
            q = min(max(1.0 - float(self.target_fpr), 0.0), 1.0)
            self.threshold_ = float(np.quantile(scores, q, method="higher"))
        return self.threshold_

    def detect(self, data: DetectionData) -> np.ndarray:
        """Whether each sample of ``data`` belongs to no known task (``score > threshold_``)."""
        if self.threshold_ is None:
            raise InvalidParameterError(
                f"{type(self).__name__} has no threshold: call fit() and calibrate() first",
                kind=self.kind,
            )
        return np.asarray(self.score(data), dtype=float) > self.threshold_

    def get_state(self) -> dict[str, Any]:
        return {"threshold": self.threshold_}

    def set_state(self, state: Mapping[str, Any]) -> None:
        threshold = state.get("threshold")
        self.threshold_ = None if threshold is None else float(threshold)


class BaseTaskUpdateDecision(Algorithm, abc.ABC):
    """Decides how new training data updates existing tasks or adds new ones."""

    kind: ClassVar[str] = "task_update_decision"

    @abc.abstractmethod
    def decide(
        self,
        x: Any,
        y: np.ndarray | None,
        tasks: Sequence[Task],
        allocation: np.ndarray,
        unseen: np.ndarray,
    ) -> UpdatePlan:
        """The update plan for ``(x, y)`` given its allocation to known ``tasks``.

        ``allocation`` holds each row's task id (:data:`UNSEEN` where none fits) and ``unseen``
        marks rows the unseen-task detectors flagged.
        """


def task_key(values: Sequence[Hashable]) -> str:
    """The task name Sedna gives attribute ``values``: each ``str(value)`` without spaces and
    with ``_`` replaced by ``-``, joined with ``_``."""
    return "_".join(str(v).replace("_", "-").replace(" ", "") for v in values)
