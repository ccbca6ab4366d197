"""``{{ algorithm_name }}``: the geometric median of client updates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np
from sedna_core.algorithms import AllAtOnceAggregation, TensorSpec, UpdateSource
from sedna_core.algorithms.aggregation import iter_blocks, read_block

__all__ = ["{{ class_name }}"]


class {{ class_name }}(AllAtOnceAggregation):
    """Geometric median of the updates (Weiszfeld's iterations): robust to a few outliers.

    Every update of the round is needed at once, so this is an ``AllAtOnceAggregation``; the
    updates are read block by block (``iter_blocks``/``read_block``), which keeps memory at one
    block per client whether they are arrays in memory or the server's spool files. Client
    sample counts are not used: a large client is not allowed to outvote the others.

    Parameters
    ----------
    iterations
        Weiszfeld iterations, starting from the plain mean.
    eps
        Smallest distance used as a divisor (an update equal to the estimate).
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, iterations: int = 16, eps: float = 1e-8) -> None:
        super().__init__()
        self.iterations = iterations
        self.eps = eps

    def combine(
        self,
        global_weights: Sequence[np.ndarray],
        specs: Sequence[TensorSpec],
        updates: Sequence[UpdateSource],
    ) -> list[np.ndarray]:
        """The geometric median of ``updates``, one array per tensor of ``specs``."""
        k = len(updates)
        weights = np.full(k, 1.0 / k)
        for _ in range(self.iterations):
            median = self._weighted(specs, updates, weights)
            dist = np.zeros(k)
            for index, start, stop, rows in self._blocks(specs, updates):
                dist += ((rows - median[index].reshape(-1)[start:stop]) ** 2).sum(axis=1)
            inverse = 1.0 / np.maximum(np.sqrt(dist), self.eps)
            weights = inverse / inverse.sum()
        return self._weighted(specs, updates, weights)

    def _blocks(
        self, specs: Sequence[TensorSpec], updates: Sequence[UpdateSource]
    ) -> Iterator[tuple[int, int, int, np.ndarray]]:
        for index, start, stop in iter_blocks(specs):
            out = np.empty((len(updates), stop - start), dtype=specs[index].dtype)
            rows = read_block(updates, index, start, stop, out)
            yield index, start, stop, rows.astype(np.float64)

    def _weighted(
        self, specs: Sequence[TensorSpec], updates: Sequence[UpdateSource], weights: np.ndarray
    ) -> list[np.ndarray]:
        result = [np.zeros(spec.shape) for spec in specs]
        for index, start, stop, rows in self._blocks(specs, updates):
            result[index].reshape(-1)[start:stop] = weights @ rows
        return result
