"""``{{ algorithm_name }}``: split an inference batch by task."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sedna_core.algorithms import BaseTaskRemodeling

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseTaskRemodeling):
    """One group of rows per distinct task id, in ascending task order (unseen, -1, first).

    Parameters
    ----------
    min_rows
        Tasks with fewer rows than this are merged into the unseen group (-1); 1 keeps all.
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, min_rows: int = 1) -> None:
        self.min_rows = min_rows

    def remodel(self, task_ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(task id, row positions)`` per distinct task, covering every row exactly once."""
        ids = np.asarray(task_ids, dtype=np.int64).copy()
        values, counts = np.unique(ids, return_counts=True)
        ids[np.isin(ids, values[counts < self.min_rows])] = -1
        return [(int(t), np.flatnonzero(ids == t)) for t in np.unique(ids)]

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        return [("remodel", (np.array([1, 0, -1, 1, 2]),))]
