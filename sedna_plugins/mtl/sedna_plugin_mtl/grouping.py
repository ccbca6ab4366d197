"""Relation discovery, remodeling and inference integration: the plumbing around per-task
models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from sedna_core.algorithms.mtl import (
    BaseInferenceIntegrate,
    BaseTaskRelationDiscover,
    BaseTaskRemodeling,
    Task,
    TaskGroup,
    TaskResult,
)
from sedna_core.errors import JobError
from sedna_plugin_mtl._conformance import ConformanceCalls

__all__ = ["DefaultInferenceIntegrate", "DefaultTaskRelationDiscover", "DefaultTaskRemodeling"]


class DefaultTaskRelationDiscover(ConformanceCalls, BaseTaskRelationDiscover):
    """One group per task (Sedna's default): every task gets its own model."""

    name: ClassVar[str] = "DefaultTaskRelationDiscover"

    def __init__(self) -> None:
        pass

    def discover(self, tasks: Sequence[Task]) -> list[TaskGroup]:
        return [TaskGroup(entry=t.entry, tasks=[t]) for t in tasks]


class DefaultTaskRemodeling(ConformanceCalls, BaseTaskRemodeling):
    """Rows grouped by allocated task with one stable sort (no per-row Python loop)."""

    name: ClassVar[str] = "DefaultTaskRemodeling"

    def __init__(self) -> None:
        pass

    def remodel(self, task_ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
        task_ids = np.asarray(task_ids).reshape(-1)
        if task_ids.size == 0:
            return []
        order = np.argsort(task_ids, kind="stable")
        sorted_ids = task_ids[order]
        cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
        starts = [0, *cuts.tolist()]
        ends = [*starts[1:], len(order)]
        ids = sorted_ids[starts].tolist()
        # views into one sorted order: no per-group copies (many tasks mean many small groups)
        return [(int(t), order[a:b]) for t, a, b in zip(ids, starts, ends, strict=True)]


class DefaultInferenceIntegrate(ConformanceCalls, BaseInferenceIntegrate):
    """Per-task results back in input order.

    Every sample must receive exactly one result: a missing or duplicated row is an error
    (Sedna silently dropped samples whose task produced nothing). Results of differing types
    are kept in an object array rather than coerced.
    """

    name: ClassVar[str] = "DefaultInferenceIntegrate"

    def __init__(self) -> None:
        pass

    def integrate(self, results: Sequence[TaskResult], n_samples: int) -> np.ndarray:
        parts, rows = [], []
        for r in results:
            rows_r = np.asarray(r.rows, dtype=np.intp).reshape(-1)
            if rows_r.size == 0:
                continue
            value = r.result if isinstance(r.result, np.ndarray) else np.asarray(r.result)
            if value.ndim == 0 or len(value) != rows_r.size:
                raise JobError(
                    f"task {r.entry!r} returned {0 if value.ndim == 0 else len(value)} results "
                    f"for {rows_r.size} samples; a model must return one result per sample"
                )
            parts.append(value)
            rows.append(rows_r)
        all_rows = np.concatenate(rows) if rows else np.empty(0, dtype=np.intp)
        counts = (
            np.bincount(all_rows, minlength=n_samples) if all_rows.size else np.zeros(n_samples)
        )
        if len(counts) != n_samples or np.any(counts != 1):
            missing = int(np.sum(counts[:n_samples] == 0))
            raise JobError(
                f"inference integration: {missing} of {n_samples} samples have no result and "
                f"{int(np.sum(counts > 1))} have several; every sample must be allocated once"
            )
        if not parts:
            return np.empty(0)
        kinds = {p.dtype.kind for p in parts}
        try:
            if len(kinds) > 1 and not kinds <= set("biuf"):
                raise TypeError("text and numbers: keep each as it is")
            merged = np.concatenate(parts)
        except (ValueError, TypeError):  # mismatched shapes or unpromotable dtypes
            merged = np.empty(len(all_rows), dtype=object)
            offset = 0
            for p in parts:
                for i in range(len(p)):
                    merged[offset + i] = p[i]
                offset += len(p)
        out = np.empty_like(merged)
        out[all_rows] = merged
        return out
