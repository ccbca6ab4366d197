"""``{{ algorithm_name }}``: per-task results back in input order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sedna_core.algorithms import BaseInferenceIntegrate
from sedna_core.algorithms.mtl import TaskResult

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseInferenceIntegrate):
    """Each row gets its task's result; a row that no task answered is an error or ``fill``.

    Parameters
    ----------
    fill
        Result of rows no task covered; None makes such rows an error (never dropped silently).
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, fill: float | None = None) -> None:
        self.fill = fill

    def integrate(self, results: Sequence[TaskResult], n_samples: int) -> np.ndarray:
        """One result per input sample, in input order."""
        first = next((np.asarray(r.result) for r in results if len(r.rows)), np.zeros(0))
        out = np.empty((n_samples, *first.shape[1:]), dtype=first.dtype if first.size else float)
        covered = np.zeros(n_samples, dtype=bool)
        for r in results:
            out[r.rows] = np.asarray(r.result)
            covered[r.rows] = True
        if not covered.all():
            if self.fill is None:
                raise ValueError(f"rows {np.flatnonzero(~covered).tolist()} have no result")
            out = out.astype(np.result_type(out.dtype, type(self.fill)))
            out[~covered] = self.fill
        return out

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        results = [
            TaskResult("a", 0, np.array([2, 0]), np.array([1, 2])),
            TaskResult("b", 1, np.array([1]), np.array([5])),
        ]
        return [("integrate", (results, 3))]
