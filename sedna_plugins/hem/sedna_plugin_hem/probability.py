"""Miners over class-probability vectors: CrossEntropy (Sedna's), Confidence, Margin, Entropy.

A result is one probability vector of K entries (a ``(1, K)`` array counts as one vector). A
vector that is empty, not numeric, or has an entry outside [0, 1] (NaN included) cannot be judged:
it is not hard unless ``invalid_is_hard=True``. ``0 * ln 0`` counts as 0, and a single-class
vector (K = 1) is certain.

Every miner computes its score with one row-wise kernel over a ``(n, K)`` matrix; the per-sample
call runs the same kernel on a one-row matrix, so both forms decide identically. Sums run column
by column (a fixed order), so a row's score never depends on the rest of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import BaseHardExampleMiner
from sedna_plugin_hem._common import as_float_array, check_threshold, count_samples

__all__ = ["ConfidenceFilter", "CrossEntropyFilter", "EntropyFilter", "MarginFilter"]


def _as_vector(result: Any) -> np.ndarray | None:
    arr = as_float_array(result)
    if arr is None:
        return None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    return arr if arr.ndim == 1 else None


def _as_matrix(results: Any) -> np.ndarray | None:
    """The batch as a ``(n, K)`` float64 matrix, or None when it must be judged row by row."""
    arr = as_float_array(results)
    if arr is None:
        return None
    if arr.ndim == 3 and arr.shape[1] == 1:
        arr = arr[:, 0, :]
    if arr.ndim != 2:
        return None
    return np.ascontiguousarray(arr)


# Below this many entries one running-sum call beats a loop of column additions (both add
# left to right, so their sums are identical to the last bit).
_ACCUMULATE_BELOW = 4096


def _row_sum(values: np.ndarray) -> np.ndarray:
    """Row sums added left to right, column by column: the same order (and so the same bits)
    whatever the number of rows, and Sedna's order (Python's ``sum`` over a vector)."""
    if values.size < _ACCUMULATE_BELOW:
        return np.add.accumulate(values, axis=1)[:, -1]
    total = values[:, 0].copy()
    for j in range(1, values.shape[1]):
        total += values[:, j]
    return total


def _plogp_sum(p: np.ndarray) -> np.ndarray:
    """Row-wise sum of p ln p, with 0 ln 0 = 0."""
    return _row_sum(p * np.log(np.where(p > 0.0, p, 1.0)))


class _ProbabilityMiner(BaseHardExampleMiner):
    """Shared validation and batching; subclasses give :meth:`_hard_rows`."""

    invalid_is_hard: bool

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"invalid_is_hard": True}]

    @classmethod
    def _conformance_inputs(cls) -> list[Any]:
        rng = np.random.default_rng(0)
        probs = rng.dirichlet(np.ones(4), size=16)
        probs[:3] = [[1.0, 0.0, 0.0, 0.0], [0.25] * 4, [np.nan, 0.5, 0.5, 0.0]]
        return [probs, list(probs), probs[:1], [[0.5, 0.5], [1.0], [], [1.2, -0.2]]]

    def _hard_rows(self, p: np.ndarray) -> np.ndarray:
        """Decisions for valid rows of a ``(n, K)`` matrix with K >= 1."""
        raise NotImplementedError

    def _judge(self, p: np.ndarray) -> np.ndarray:
        n, k = p.shape
        if k == 0:
            return np.full(n, self.invalid_is_hard, dtype=bool)
        if n and p.min() >= 0.0 and p.max() <= 1.0:  # all valid (NaN fails both): the usual case
            return np.asarray(self._hard_rows(p), dtype=bool)
        valid = ((p >= 0.0) & (p <= 1.0)).all(axis=1)
        if valid.all():
            return np.asarray(self._hard_rows(p), dtype=bool)
        hard = np.full(n, self.invalid_is_hard, dtype=bool)
        if valid.any():
            hard[valid] = self._hard_rows(p[valid])
        return hard

    def __call__(self, infer_result: Any) -> bool:
        vec = _as_vector(infer_result)
        if vec is None:
            return self.invalid_is_hard
        return bool(self._judge(vec[np.newaxis, :])[0])

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        matrix = _as_matrix(results)
        if matrix is not None:
            return self._judge(matrix)
        # ragged or mixed batch: judge each sample with the same kernel
        return np.fromiter((self(r) for r in results), dtype=bool, count=count_samples(results))


class CrossEntropyFilter(_ProbabilityMiner):
    """Sedna's ``CrossEntropy``: hard iff ``1 + sum(p ln p) / ln K < threshold_cross_entropy``.

    The left side is 1 minus the normalised entropy (1 = certain, 0 = uniform). Sedna crashes on
    a zero probability and on K = 1; here ``0 ln 0 = 0`` and a single class scores 1.

    Parameters
    ----------
    threshold_cross_entropy
        Confidence below which a result is hard, in [0, 1] for meaningful use.
    invalid_is_hard
        Decision for a result that cannot be judged (Sedna: not hard).
    """

    name: ClassVar[str] = "CrossEntropy"

    def __init__(self, threshold_cross_entropy: float = 0.5, invalid_is_hard: bool = False) -> None:
        self.threshold_cross_entropy = check_threshold(
            "threshold_cross_entropy", threshold_cross_entropy, miner=self.name
        )
        self.invalid_is_hard = bool(invalid_is_hard)

    def confidence(self, p: np.ndarray) -> np.ndarray:
        """1 - normalised entropy of each row of a valid ``(n, K)`` matrix."""
        k = p.shape[1]
        if k == 1:
            return np.ones(p.shape[0])
        return 1.0 + _plogp_sum(p) / math.log(k)

    def _hard_rows(self, p: np.ndarray) -> np.ndarray:
        return self.confidence(p) < self.threshold_cross_entropy


class ConfidenceFilter(_ProbabilityMiner):
    """Max-probability miner: hard iff ``max(p) < threshold``.

    Parameters
    ----------
    threshold
        Top-class probability below which a result is hard.
    invalid_is_hard
        Decision for a result that cannot be judged.
    """

    name: ClassVar[str] = "Confidence"

    def __init__(self, threshold: float = 0.8, invalid_is_hard: bool = False) -> None:
        self.threshold = check_threshold("threshold", threshold, miner=self.name)
        self.invalid_is_hard = bool(invalid_is_hard)

    def _hard_rows(self, p: np.ndarray) -> np.ndarray:
        return p.max(axis=1) < self.threshold


class MarginFilter(_ProbabilityMiner):
    """Margin miner: hard iff ``p(top-1) - p(top-2) < threshold`` (top-2 is 0 when K = 1).

    Parameters
    ----------
    threshold
        Margin below which a result is hard.
    invalid_is_hard
        Decision for a result that cannot be judged.
    """

    name: ClassVar[str] = "Margin"

    def __init__(self, threshold: float = 0.3, invalid_is_hard: bool = False) -> None:
        self.threshold = check_threshold("threshold", threshold, miner=self.name)
        self.invalid_is_hard = bool(invalid_is_hard)

    def margin(self, p: np.ndarray) -> np.ndarray:
        """Top-1 minus top-2 probability of each row of a valid ``(n, K)`` matrix."""
        if p.shape[1] == 1:
            return p[:, 0].copy()
        top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]

    def _hard_rows(self, p: np.ndarray) -> np.ndarray:
        return self.margin(p) < self.threshold


class EntropyFilter(_ProbabilityMiner):
    """Entropy miner: hard iff the Shannon entropy ``-sum(p ln p)`` (nats) ``> threshold``.

    Parameters
    ----------
    threshold
        Entropy above which a result is hard (``ln K`` is the maximum for K classes).
    invalid_is_hard
        Decision for a result that cannot be judged.
    """

    name: ClassVar[str] = "Entropy"

    def __init__(self, threshold: float = 0.5, invalid_is_hard: bool = False) -> None:
        self.threshold = check_threshold("threshold", threshold, miner=self.name)
        self.invalid_is_hard = bool(invalid_is_hard)

    def entropy(self, p: np.ndarray) -> np.ndarray:
        """Shannon entropy (nats) of each row of a valid ``(n, K)`` matrix."""
        return -_plogp_sum(p)

    def _hard_rows(self, p: np.ndarray) -> np.ndarray:
        return self.entropy(p) > self.threshold
