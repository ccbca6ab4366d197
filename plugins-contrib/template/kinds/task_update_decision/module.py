"""``{{ algorithm_name }}``: known rows update their tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from sedna_core.algorithms import BaseTaskUpdateDecision
from sedna_core.algorithms.mtl import UNSEEN, Task, UpdatePlan

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseTaskUpdateDecision):
    """Rows allocated to a known task (and not flagged unseen) update it; the others form new
    tasks through the job's task definition.

    Parameters
    ----------
    strategy
        How every updated task trains: ``"finetune"`` (from its current model, on the new rows)
        or ``"retrain"`` (a fresh model on its stored and new rows).
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, strategy: Literal["finetune", "retrain"] = "finetune") -> None:
        self.strategy = strategy

    def decide(
        self,
        x: Any,
        y: np.ndarray | None,
        tasks: Sequence[Task],
        allocation: np.ndarray,
        unseen: np.ndarray,
    ) -> UpdatePlan:
        """The plan: ``updates``/``strategies`` per known task, ``new_rows`` for the rest."""
        allocation = np.asarray(allocation)
        known = (allocation != UNSEEN) & ~np.asarray(unseen, dtype=bool)
        updates = {}
        for task in tasks:
            rows = np.flatnonzero(known & (allocation == task.task_id))
            if rows.size:
                updates[task.task_id] = rows
        strategies = {task_id: self.strategy for task_id in updates}
        return UpdatePlan(updates, strategies, np.flatnonzero(~known))

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        tasks = [Task("a", 0), Task("b", 1)]
        allocation = np.array([0, 1, -1, 0])
        unseen = np.array([False, False, True, True])
        return [("decide", (np.zeros((4, 2)), None, tasks, allocation, unseen))]
