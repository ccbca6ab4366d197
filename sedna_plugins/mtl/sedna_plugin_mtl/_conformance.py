"""Tiny inputs for sedna-core's conformance kit (``_conformance_inputs`` of each class)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.mtl import DetectionData, Task, TaskResult

__all__ = ["ConformanceCalls", "calls"]

Calls = list[tuple[str, tuple[Any, ...]]]


class ConformanceCalls:
    """Mixed into every algorithm of the plugin: the kit runs :func:`calls` for its ``name``."""

    name: ClassVar[str]

    @classmethod
    def _conformance_inputs(cls) -> Calls:
        return calls(cls.name)


def _data() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n = 24
    task_ids = np.repeat([0, 1], n // 2)
    feats = rng.normal(size=(n, 2)) + task_ids[:, None] * 4.0
    table = np.empty(n, dtype=[("season", "U8"), ("f0", "f8"), ("f1", "f8")])
    table["season"] = np.where(task_ids == 0, "summer", "winter")
    table["f0"], table["f1"] = feats[:, 0], feats[:, 1]
    y = (np.arange(n) % 2).astype(np.int64)
    paths = np.where(task_ids == 0, "berlin/a.png", "synthia/b.png")
    rows = [np.flatnonzero(task_ids == k) for k in (0, 1)]
    tasks = [
        Task("summer", 0, {"season": "summer"}, rows[0], 12),
        Task("winter", 1, {"season": "winter"}, rows[1], 12),
    ]
    origins = [Task("real", 0, {"origin": "real"}, rows[0], 12), Task("sim", 1, {}, rows[1], 12)]
    return {
        "table": table,
        "feats": feats,
        "y": y,
        "ids": task_ids,
        "tasks": tasks,
        "origins": origins,
        "paths": paths,
    }


def calls(name: str) -> Calls:
    """The calls the kit runs, in order, on one instance of the algorithm called ``name``."""
    d = _data()
    feats, ids, tasks, table, y = d["feats"], d["ids"], d["tasks"], d["table"], d["y"]
    allocation = ids.copy()
    allocation[-2:] = -1

    def proba(task_id: int, rows: np.ndarray) -> np.ndarray:
        p = np.full((len(rows), 2), 0.5)
        p[:, 0] += 0.4 * (task_id == 0)
        return p / p.sum(axis=1, keepdims=True)

    detection = DetectionData(x=table, features=feats, task_ids=ids, y=y, proba=proba)
    table_calls: Calls = [("fit", (table, ids, tasks)), ("allocate", (table,))]
    feature_calls: Calls = [("fit", (feats, ids, tasks)), ("allocate", (feats,))]
    detector_calls: Calls = [
        ("fit", (detection, tasks)),
        ("calibrate", (detection,)),
        ("score", (detection,)),
        ("detect", (detection,)),
    ]
    table_with_paths = np.asarray(d["paths"]).reshape(-1, 1)
    results = [
        TaskResult("summer", 0, np.array([0, 2]), np.array([1, 0])),
        TaskResult("winter", 1, np.array([3, 1]), np.array([5, 5])),
    ]
    table_of: dict[str, Calls] = {
        "TaskDefinitionByDataAttr": [("fit", (table, y))],
        "TaskDefinitionByOrigin": [("fit", (table, d["paths"]))],
        "TaskDefinitionByCluster": [("fit", (feats, y))],
        "TaskDefinitionBySVC": [("fit", (feats, y))],
        "TaskAllocationDefault": table_calls,
        "TaskAllocationByDataAttr": table_calls,
        "TaskMiningByDataAttr": table_calls,
        "TaskAllocationByOrigin": [
            ("fit", (table_with_paths, ids, d["origins"])),
            ("allocate", (table_with_paths,)),
        ],
        "TaskAllocationByCluster": feature_calls,
        "TaskAllocationBySVC": feature_calls,
        "TaskMiningBySVC": feature_calls,
        "DefaultTaskRelationDiscover": [("discover", (tasks,))],
        "DefaultTaskRemodeling": [("remodel", (allocation,))],
        "DefaultInferenceIntegrate": [("integrate", (results, 4))],
        "TaskAttrFilter": detector_calls,
        "MahalanobisFilter": detector_calls,
        "SampleRegonitionDefault": detector_calls,
        "ModelProbeFilter": detector_calls,
        "UpdateStrategyDefault": [("decide", (table, y, tasks, allocation, allocation < 0))],
        "UpdateStrategyByFinetune": [
            ("decide", (table, d["paths"], d["origins"], allocation, ids < 0))
        ],
    }
    return table_of[name]
