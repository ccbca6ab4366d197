"""Task update decisions: how new training data changes the knowledge base (Sedna's update
strategies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.mtl import UNSEEN, BaseTaskUpdateDecision, Task, UpdatePlan, n_rows
from sedna_core.errors import DataSourceError, InvalidParameterError
from sedna_plugin_mtl._conformance import ConformanceCalls
from sedna_plugin_mtl._util import as_columns

__all__ = ["UpdateStrategyByFinetune", "UpdateStrategyDefault"]

_STRATEGIES = ("finetune", "retrain")


def _check_strategy(strategy: str, kind: str) -> None:
    if strategy not in _STRATEGIES:
        raise InvalidParameterError(
            f"strategy={strategy!r}: expected one of {list(_STRATEGIES)}", kind=kind
        )


class UpdateStrategyDefault(ConformanceCalls, BaseTaskUpdateDecision):
    """Samples of known tasks update those tasks; unseen samples form new tasks.

    Sedna named this default but never defined it. A row goes to its allocated task unless it
    was allocated to no task or an unseen-task detector flagged it; those rows are handed to
    the task definition to form new tasks.

    Parameters
    ----------
    strategy
        ``"retrain"`` (a fresh model on the task's stored plus new samples) or ``"finetune"``
        (continue training the current model on the new samples).
    """

    name: ClassVar[str] = "UpdateStrategyDefault"

    def __init__(self, strategy: str = "retrain") -> None:
        self.strategy = strategy

    def decide(
        self,
        x: Any,
        y: np.ndarray | None,
        tasks: Sequence[Task],
        allocation: np.ndarray,
        unseen: np.ndarray,
    ) -> UpdatePlan:
        _check_strategy(self.strategy, self.kind)
        allocation = np.asarray(allocation).reshape(-1)
        known_ids = {t.task_id for t in tasks}
        seen = (allocation != UNSEEN) & ~np.asarray(unseen, dtype=bool).reshape(-1)
        seen &= np.isin(allocation, list(known_ids))
        updates = {
            int(k): np.flatnonzero(seen & (allocation == k)) for k in np.unique(allocation[seen])
        }
        return UpdatePlan(
            updates=updates,
            strategies={k: self.strategy for k in updates},
            new_rows=np.flatnonzero(~seen),
        )


class UpdateStrategyByFinetune(ConformanceCalls, BaseTaskUpdateDecision):
    """Sedna's ``UpdateStrategyByFinetune``, working: fine-tune the task of each sample's origin.

    A sample whose label (a path, as in Sedna) contains ``city`` updates the task whose origin is
    ``attribute[0]``, any other the task of ``attribute[-1]``; an origin without a task yet
    becomes a new task.

    Parameters
    ----------
    attribute
        Origin names (``"real, sim"``).
    city
        Substring of the label marking the first origin.
    """

    name: ClassVar[str] = "UpdateStrategyByFinetune"

    def __init__(self, attribute: Sequence[str] = ("real", "sim"), city: str = "berlin") -> None:
        self.attribute = attribute
        self.city = city

    def decide(
        self,
        x: Any,
        y: np.ndarray | None,
        tasks: Sequence[Task],
        allocation: np.ndarray,
        unseen: np.ndarray,
    ) -> UpdatePlan:
        if y is None:
            raise DataSourceError(f"{self.name} reads each sample's origin from its label")
        names = [str(a) for a in as_columns(self.attribute)]
        marked = np.char.find(np.asarray(y).astype(str), str(self.city)) >= 0
        origin = np.where(marked, names[0], names[-1])
        by_origin = {str(t.meta_attr.get("origin", t.entry)): t.task_id for t in tasks}
        updates: dict[int, np.ndarray] = {}
        new = np.zeros(n_rows(x) if x is not None else len(origin), dtype=bool)
        for name in np.unique(origin):
            rows = np.flatnonzero(origin == name)
            task_id = by_origin.get(str(name))
            if task_id is None:
                new[rows] = True
            else:
                updates[task_id] = rows
        return UpdatePlan(
            updates=updates,
            strategies=dict.fromkeys(updates, "finetune"),
            new_rows=np.flatnonzero(new),
        )
