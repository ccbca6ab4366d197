"""Coordinate-wise robust statistics: median and trimmed mean of the clients' weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.aggregation import AllAtOnceAggregation, TensorSpec, UpdateSource
from sedna_core.errors import InvalidParameterError
from sedna_plugin_robust._blocks import reduce_blocks

__all__ = ["FedMedian", "FedTrimmedAvg", "median", "trimmed_mean"]


class FedMedian(AllAtOnceAggregation):
    """Coordinate-wise median of the clients' weights (Yin et al., 2018), unweighted.

    Tolerates fewer than half of the clients sending arbitrary values.
    """

    name: ClassVar[str] = "FedMedian"

    def __init__(self) -> None:
        super().__init__()

    def combine(
        self,
        global_weights: Sequence[np.ndarray],
        specs: Sequence[TensorSpec],
        updates: Sequence[UpdateSource],
    ) -> list[np.ndarray]:
        return reduce_blocks(specs, updates, median)


class FedTrimmedAvg(AllAtOnceAggregation):
    """Coordinate-wise trimmed mean (Yin et al., 2018): drop the ``beta`` fraction of largest
    and of smallest values at each coordinate, average the rest (unweighted).

    Parameters
    ----------
    beta
        Fraction cut from each end, in [0, 0.5).
    """

    name: ClassVar[str] = "FedTrimmedAvg"

    def __init__(self, beta: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= beta < 0.5:
            raise InvalidParameterError(
                f"FedTrimmedAvg: beta must be in [0, 0.5), got {beta}", kind=self.kind
            )
        self.beta = float(beta)

    def combine(
        self,
        global_weights: Sequence[np.ndarray],
        specs: Sequence[TensorSpec],
        updates: Sequence[UpdateSource],
    ) -> list[np.ndarray]:
        return reduce_blocks(specs, updates, lambda rows: trimmed_mean(rows, self.beta))

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"beta": 0.0}, {"beta": 0.4}]


def median(rows: np.ndarray) -> np.ndarray:
    """Median over axis 0; the two middle values of an even count are averaged in float64
    (in float32, two finite values near its maximum would sum to infinity)."""
    n = rows.shape[0]
    if n % 2 or rows.dtype.kind not in "f":
        return np.median(rows, axis=0)
    k = n // 2
    part = np.partition(rows, (k - 1, k), axis=0)
    return (part[k - 1].astype(np.float64) + part[k]) / 2


def trimmed_mean(rows: np.ndarray, beta: float) -> np.ndarray:
    """Mean over axis 0 after cutting ``int(beta * n)`` values from each end (scipy's rule),
    summed in float64 so that finite inputs never overflow."""
    n = rows.shape[0]
    low = int(beta * n)
    high = n - low
    part = np.partition(rows, (low, high - 1), axis=0)
    return np.mean(part[low:high], axis=0, dtype=np.float64)
