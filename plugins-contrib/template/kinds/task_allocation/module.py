"""``{{ algorithm_name }}``: an attribute value names the task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from sedna_core.algorithms import BaseTaskAllocation
from sedna_core.algorithms.mtl import UNSEEN, Task, column_values

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseTaskAllocation):
    """Allocates each sample to the task whose ``meta_attr[column]`` equals its value.

    Samples whose value no known task has are :data:`UNSEEN`.

    Parameters
    ----------
    column
        The attribute column (a name in the table) that names the task.
    """

    name: ClassVar[str] = "{{ algorithm_name }}"
    input: ClassVar[str] = "table"  # it reads the attribute column, not the features

    def __init__(self, column: str = "season") -> None:
        self.column = column
        self.table_: dict[str, int] = {}

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        """Learn value -> task id from the tasks' ``meta_attr``."""
        self.table_ = {str(t.meta_attr[self.column]): t.task_id for t in tasks}
        return self

    def allocate(self, x: Any) -> np.ndarray:
        """The task id of each sample of the table ``x`` (:data:`UNSEEN` for unknown values)."""
        values = column_values(x, self.column)
        return np.array([self.table_.get(str(v), UNSEEN) for v in values], dtype=np.int64)

    def get_state(self) -> dict[str, Any]:
        """What :meth:`fit` learned, as JSON (the knowledge base's task index keeps it)."""
        return {"table": dict(self.table_)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self.table_ = {str(k): int(v) for k, v in state["table"].items()}

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        season = np.array(["summer", "winter", "summer", "spring"])
        table = {"season": season, "f": np.arange(8.0).reshape(4, 2)}
        tasks = [Task("summer", 0, {"season": "summer"}), Task("winter", 1, {"season": "winter"})]
        ids = np.array([0, 1, 0, -1])
        return [("fit", (table, ids, tasks)), ("allocate", (table,))]
