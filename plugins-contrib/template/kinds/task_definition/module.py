"""``{{ algorithm_name }}``: one task per attribute value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from sedna_core.algorithms import BaseTaskAllocation, BaseTaskDefinition
from sedna_core.algorithms.mtl import UNSEEN, Task, TaskDefinitionResult, column_values

__all__ = ["{{ class_name }}", "{{ class_name }}Allocator"]


class {{ class_name }}Allocator(BaseTaskAllocation):
    """The allocator the definition fits: a sample's value of the column names its task.

    Registered too: the knowledge base stores it by name and state, and restores it by name.

    Parameters
    ----------
    column
        The attribute column that names the task.
    """

    name: ClassVar[str] = "{{ algorithm_name }}Allocator"
    input: ClassVar[str] = "table"

    def __init__(self, column: str = "season") -> None:
        self.column = column
        self.table_: dict[str, int] = {}

    def fit(self, x: Any, task_ids: np.ndarray, tasks: Sequence[Task]) -> Self:
        """Learn value -> task id from the tasks' ``meta_attr``."""
        self.table_ = {str(t.meta_attr[self.column]): t.task_id for t in tasks}
        return self

    def allocate(self, x: Any) -> np.ndarray:
        """The task id of each sample (:data:`UNSEEN` for unknown values)."""
        values = column_values(x, self.column)
        return np.array([self.table_.get(str(v), UNSEEN) for v in values], dtype=np.int64)

    def get_state(self) -> dict[str, Any]:
        """What :meth:`fit` learned, as JSON."""
        return {"table": dict(self.table_)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self.table_ = {str(k): int(v) for k, v in state["table"].items()}

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        table = {"season": np.array(["winter", "summer", "autumn"])}
        tasks = [Task("summer", 0, {"season": "summer"}), Task("winter", 1, {"season": "winter"})]
        return [("fit", (table, np.array([1, 0, -1]), tasks)), ("allocate", (table,))]


class {{ class_name }}(BaseTaskDefinition):
    """One task per distinct value of an attribute column (sorted); the column is not a feature.

    Parameters
    ----------
    column
        The attribute column whose values are the tasks.
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, column: str = "season") -> None:
        self.column = column

    def fit(self, x: Any, y: np.ndarray | None = None) -> TaskDefinitionResult:
        """The tasks of the table ``x``, each row's task, and an allocator fitted to them."""
        values, task_ids = np.unique(column_values(x, self.column), return_inverse=True)
        tasks = []
        for i, value in enumerate(values):
            rows = np.flatnonzero(task_ids == i)
            tasks.append(Task(str(value), i, {self.column: str(value)}, rows, len(rows)))
        allocator = {{ class_name }}Allocator(column=self.column).fit(x, task_ids, tasks)
        return TaskDefinitionResult(tasks, task_ids, allocator, attribute_columns=(self.column,))

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        table = {"season": np.array(["winter", "summer", "winter"]), "f": np.zeros((3, 2))}
        return [("fit", (table, None))]
