"""What a trained lifelong-learning job knows, in memory and as a JSON task index.

:class:`Knowledge` holds the tasks, groups (each with its model reference and, once loaded, its
backend), the task-definition allocator, the inference allocator and the fitted unseen-task
detectors. :meth:`Knowledge.to_index` writes the index the knowledge base publishes;
:meth:`Knowledge.from_index` rebuilds everything but the model backends from one.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms import Algorithm, BaseBackend
from sedna_core.algorithms.mtl import (
    BaseTaskAllocation,
    BaseUnseenTaskDetector,
    Column,
    Task,
    drop_columns,
    feature_matrix,
    has_column,
)
from sedna_core.errors import DataSourceError
from sedna_core.jobs.lifelong._stacked import LinearStacks
from sedna_core.knowledge_base import INDEX_SCHEMA_NAME, INDEX_SCHEMA_VERSION
from sedna_core.plugins import create_algorithm

__all__ = [
    "Group",
    "Knowledge",
    "algorithm_doc",
    "load_samples",
    "restore_algorithm",
    "save_samples",
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def algorithm_doc(alg: Algorithm, *, state: bool = True) -> dict[str, Any]:
    """``{"method", "param", "state"}`` of an algorithm for the index."""
    doc: dict[str, Any] = {"method": alg.name, "param": _jsonable(alg.get_params())}
    if state and hasattr(alg, "get_state"):
        doc["state"] = _jsonable(alg.get_state())
    return doc


def restore_algorithm(kind: str, doc: Mapping[str, Any], plugin_manager: Any) -> Any:
    """An algorithm rebuilt from :func:`algorithm_doc` output (state restored)."""
    alg = create_algorithm(
        kind,
        {"method": doc["method"], "param": dict(doc.get("param") or {})},
        plugin_manager=plugin_manager,
    )
    if doc.get("state") and hasattr(alg, "set_state"):
        alg.set_state(doc["state"])
    return alg


@dataclass
class Group:
    """A task group: its tasks, deployment status, model reference and loaded backend."""

    entry: str
    tasks: list[Task]
    deployed: bool = True
    model: dict[str, Any] | None = None
    backend: BaseBackend | None = None
    sample_num: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Knowledge:
    """Everything inference and updates need."""

    groups: list[Group]
    definition: Any
    definition_allocator: BaseTaskAllocation
    allocator: BaseTaskAllocation
    detectors: list[BaseUnseenTaskDetector]
    attribute_columns: tuple[Column, ...] = ()
    feature_columns: list[Column] | None = None
    global_model: dict[str, Any] | None = None
    global_backend: BaseBackend | None = None
    samples: dict[int, dict[str, Any]] = field(default_factory=dict)  # task id -> artifact ref
    version: int | None = None
    backend_name: str | None = None
    #: stacked coefficients of the linear task models, for inference over many small groups
    stacks: LinearStacks = field(default_factory=LinearStacks, repr=False, compare=False)

    # -- lookups -----------------------------------------------------------------------------

    @property
    def tasks(self) -> list[Task]:
        return [t for g in self.groups for t in g.tasks]

    def group_of(self) -> dict[int, int]:
        """task id -> position of its group."""
        return {t.task_id: i for i, g in enumerate(self.groups) for t in g.tasks}

    def next_task_id(self) -> int:
        return max((t.task_id for t in self.tasks), default=-1) + 1

    # -- inputs ------------------------------------------------------------------------------

    def features(self, x: Any) -> np.ndarray | None:
        """Numeric features of ``x`` (attribute columns excluded), None if not numeric."""
        try:
            if self.feature_columns and isinstance(x, Mapping):
                missing = [c for c in self.feature_columns if c not in x]
                if not missing:
                    x = {c: x[c] for c in self.feature_columns}
            return feature_matrix(x, exclude=self.attribute_columns)
        except (ValueError, TypeError):
            return None

    def model_input(self, x: Any, features: np.ndarray | None) -> Any:
        """What the task models take: a DataFrame keeps its type (attribute columns dropped,
        as in Sedna); other tables become the numeric feature matrix."""
        if hasattr(x, "iloc") and hasattr(x, "columns"):
            return drop_columns(x, self.attribute_columns)
        if features is not None:
            return features
        return drop_columns(x, self.attribute_columns)

    def allocator_input(
        self, alloc: BaseTaskAllocation, x: Any, features: np.ndarray | None
    ) -> Any:
        if getattr(alloc, "input", "features") == "table":
            return x
        if features is None:
            raise DataSourceError(
                f"{alloc.name} allocates by numeric features, but the samples are not numeric; "
                "use an attribute-based allocation (TaskAllocationByDataAttr)"
            )
        return features

    def has_attributes(self, x: Any) -> bool:
        return bool(self.attribute_columns) and all(
            has_column(x, c) for c in self.attribute_columns
        )

    # -- index -------------------------------------------------------------------------------

    def to_index(self, *, job: str, create_time: float) -> dict[str, Any]:
        groups = []
        for g in self.groups:
            tasks = []
            for t in g.tasks:
                tasks.append(
                    {
                        "entry": t.entry,
                        "task_id": int(t.task_id),
                        "meta_attr": _jsonable(t.meta_attr),
                        "sample_num": int(t.sample_num),
                        "samples": self.samples.get(t.task_id),
                    }
                )
            groups.append(
                {
                    "entry": g.entry,
                    "deployed": bool(g.deployed),
                    "sample_num": int(g.sample_num or sum(t.sample_num for t in g.tasks)),
                    "tasks": tasks,
                    "model": g.model,
                }
            )
        definition = algorithm_doc(self.definition, state=False)
        definition["state"] = {
            "allocator": algorithm_doc(self.definition_allocator),
            "attribute_columns": list(self.attribute_columns),
        }
        return {
            "schema": INDEX_SCHEMA_NAME,
            "schema_version": INDEX_SCHEMA_VERSION,
            "job": job,
            "create_time": float(create_time),
            "attribute_columns": list(self.attribute_columns),
            "feature_columns": None if self.feature_columns is None else list(self.feature_columns),
            "backend": self.backend_name,
            "seen_task": {
                "task_groups": groups,
                "definition": definition,
                "allocator": algorithm_doc(self.allocator),
                "detectors": [algorithm_doc(d) for d in self.detectors],
            },
            "unseen_task": {"task_groups": []},
            "global_model": self.global_model,
        }

    @classmethod
    def from_index(cls, doc: Mapping[str, Any], plugin_manager: Any) -> Knowledge:
        seen = doc["seen_task"]
        groups, samples = [], {}
        for g in seen["task_groups"]:
            tasks = []
            for t in g["tasks"]:
                tasks.append(
                    Task(
                        entry=t["entry"],
                        task_id=int(t["task_id"]),
                        meta_attr=dict(t.get("meta_attr") or {}),
                        sample_num=int(t.get("sample_num", 0)),
                    )
                )
                if t.get("samples"):
                    samples[int(t["task_id"])] = t["samples"]
            groups.append(
                Group(
                    entry=g["entry"],
                    tasks=tasks,
                    deployed=bool(g.get("deployed", True)),
                    model=g.get("model"),
                    sample_num=int(g.get("sample_num", 0)),
                    metrics=dict((g.get("model") or {}).get("metrics") or {}),
                )
            )
        definition_doc = seen.get("definition") or {"method": "TaskDefinitionByDataAttr"}
        definition = restore_algorithm(
            "task_definition",
            {
                "method": definition_doc["method"],
                "param": definition_doc.get("param") or {},
            },
            plugin_manager,
        )
        state = definition_doc.get("state") or {}
        allocator = restore_algorithm("task_allocation", seen["allocator"], plugin_manager)
        definition_allocator = (
            restore_algorithm("task_allocation", state["allocator"], plugin_manager)
            if state.get("allocator")
            else allocator
        )
        detectors = [
            restore_algorithm("unseen_task_detection", d, plugin_manager)
            for d in seen.get("detectors") or []
        ]
        return cls(
            groups=groups,
            definition=definition,
            definition_allocator=definition_allocator,
            allocator=allocator,
            detectors=detectors,
            attribute_columns=tuple(doc.get("attribute_columns") or ()),
            feature_columns=doc.get("feature_columns"),
            global_model=doc.get("global_model"),
            samples=samples,
            version=doc.get("version"),
            backend_name=doc.get("backend"),
        )


def save_samples(path: Path, features: np.ndarray, y: np.ndarray | None, valid: np.ndarray) -> Path:
    """A task's samples as ``.npz`` without Python objects (loadable with allow_pickle=False)."""
    arrays: dict[str, np.ndarray] = {
        "x": np.asarray(features, dtype=float),
        "valid": np.asarray(valid, dtype=bool),
    }
    if y is not None:
        labels = np.asarray(y)
        if labels.dtype.kind == "O":
            labels = labels.astype(str)
        arrays["y"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    return path


def load_samples(read: Callable[[], bytes]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(features, y, valid mask)`` from :func:`save_samples`' bytes; never unpickles."""
    with np.load(io.BytesIO(read()), allow_pickle=False) as data:
        y = data["y"] if "y" in data.files else None
        return data["x"], y, data["valid"]


def stack_samples(
    parts: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray, int]],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Concatenate per-task samples: ``(features, y, valid mask, task ids)``."""
    feats = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, 0))
    ys = [p[1] for p in parts]
    y = None if any(v is None for v in ys) or not ys else np.concatenate(ys)  # type: ignore[arg-type]
    valid = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, dtype=bool)
    ids = (
        np.concatenate([np.full(len(p[0]), p[3], dtype=np.int64) for p in parts])
        if parts
        else (np.empty(0, dtype=np.int64))
    )
    return feats, y, valid, ids
