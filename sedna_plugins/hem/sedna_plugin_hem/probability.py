"""Miners over class-probability vectors: CrossEntropy (Sedna's), Confidence, Margin, Entropy.

A result is one probability vector of K entries (a ``(1, K)`` array counts as one vector). A
vector that is empty, not numeric, or has an entry outside [0, 1] (NaN included) cannot be judged:
it is not hard unless ``invalid_is_hard=True``. ``0 * ln 0`` counts as 0, and a single-class
vector (K = 1) is certain.

Every miner computes its score with one row-wise kernel over a ``(n, K)`` matrix; the per-sample
call runs the same kernel on a one-row matrix, so both forms decide identically. Sums run column
by column (a fixed order), so a row's score never depends on the rest of the batch.

Input that cannot be judged (class labels, logits, a wrong shape) is logged once per miner, with
what to feed it instead. For threshold calibration every miner also gives ``hardness(results)``
(higher is harder; hard exactly when it exceeds the miner's cut) and ``at_hardness(cut)``, a copy
with the threshold that puts the cut there (see ``JointInference.calibrate``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from sedna_core.algorithms import BaseHardExampleMiner
from sedna_plugin_hem._common import as_float_array, check_threshold, count_samples, warn_unjudged

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


_ADVICE = (
    "Give it class-probability vectors, one per sample: the edge model's predict_proba "
    "(JointInference uses it where the backend has one) or a softmax of its logits."
)


def _problem(result: Any, batch: bool) -> str:
    """What is wrong with an input that cannot be judged, in words."""
    arr = as_float_array(result)
    if arr is None:
        return "the results are not numeric (text, ragged rows or None)"
    if arr.ndim == 0 or (batch and arr.ndim == 1):
        return "it got one number per sample (class labels?), not probability vectors"
    if arr.size == 0:
        return "it got an empty probability vector"
    if arr.ndim > (2 if batch else 1):
        return f"it got an array of shape {arr.shape}, not {'(n, K)' if batch else '(K,)'}"
    return "entries outside [0, 1] or NaN (logits? apply a softmax)"


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
    #: miners of this kind judge class probabilities (``JointInference`` asks for them)
    needs_probabilities: ClassVar[bool] = True
    #: the parameter calibration sets, and whether the threshold is the negated hardness
    threshold_param: ClassVar[str] = "threshold"
    _negated_threshold: ClassVar[bool] = True

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

    def _hardness_rows(self, p: np.ndarray) -> np.ndarray:
        """Hardness of valid rows: hard iff it exceeds the cut (the threshold, or its negation)."""
        raise NotImplementedError

    def _valid_rows(self, p: np.ndarray) -> np.ndarray | None:
        """Which rows can be judged (None: all of them), warning once when some cannot."""
        n, k = p.shape
        if k == 0:
            if n:
                warn_unjudged(self, "it got empty probability vectors", _ADVICE)
            return np.zeros(n, dtype=bool)
        if n and p.min() >= 0.0 and p.max() <= 1.0:  # all valid (NaN fails both): the usual case
            return None
        valid = ((p >= 0.0) & (p <= 1.0)).all(axis=1)
        if valid.all():
            return None
        warn_unjudged(
            self,
            f"{n - int(valid.sum())} of {n} vectors have entries outside [0, 1] or NaN "
            "(logits? apply a softmax)",
            _ADVICE,
        )
        return valid

    def _judge(self, p: np.ndarray) -> np.ndarray:
        valid = self._valid_rows(p)
        if valid is None:
            return np.asarray(self._hard_rows(p), dtype=bool)
        hard = np.full(p.shape[0], self.invalid_is_hard, dtype=bool)
        if valid.any():
            hard[valid] = self._hard_rows(p[valid])
        return hard

    def __call__(self, infer_result: Any) -> bool:
        vec = _as_vector(infer_result)
        if vec is None:
            warn_unjudged(self, _problem(infer_result, batch=False), _ADVICE)
            return self.invalid_is_hard
        return bool(self._judge(vec[np.newaxis, :])[0])

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        matrix = _as_matrix(results)
        if matrix is not None:
            return self._judge(matrix)
        n = count_samples(results)
        arr = as_float_array(results)
        if n and arr is not None and arr.ndim == 1:  # labels: no row is a vector
            warn_unjudged(self, _problem(arr, batch=True), _ADVICE)
            return np.full(n, self.invalid_is_hard, dtype=bool)
        # ragged or mixed batch: judge each sample with the same kernel
        return np.fromiter((self(r) for r in results), dtype=bool, count=n)

    # -- calibration -------------------------------------------------------------------------
    def hardness(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Per sample, how hard it is (higher is harder), NaN where it cannot be judged.

        This miner's decision is ``hardness > cut`` with ``cut`` set by its threshold (see
        :meth:`at_hardness`); samples with NaN are decided by ``invalid_is_hard``.
        """
        matrix = _as_matrix(results)
        if matrix is None:
            n = count_samples(results)
            arr = as_float_array(results)
            if n and arr is not None and arr.ndim == 1:
                warn_unjudged(self, _problem(arr, batch=True), _ADVICE)
                return np.full(n, np.nan)
            out = np.full(n, np.nan)
            for i, r in enumerate(results):
                vec = _as_vector(r)
                if vec is None:
                    warn_unjudged(self, _problem(r, batch=False), _ADVICE)
                else:
                    out[i] = self.hardness(vec[np.newaxis, :])[0]
            return out
        valid = self._valid_rows(matrix)
        if valid is None:
            return np.asarray(self._hardness_rows(matrix), dtype=np.float64)
        out = np.full(matrix.shape[0], np.nan)
        if valid.any():
            out[valid] = self._hardness_rows(matrix[valid])
        return out

    def at_hardness(self, cut: float) -> Self:
        """A copy of this miner that is hard exactly where ``hardness > cut``."""
        value = -float(cut) if self._negated_threshold else float(cut)
        return type(self)(**{**self.get_params(), self.threshold_param: value})


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

    threshold_param: ClassVar[str] = "threshold_cross_entropy"

    def _hardness_rows(self, p: np.ndarray) -> np.ndarray:
        return -self.confidence(p)

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

    def _hardness_rows(self, p: np.ndarray) -> np.ndarray:
        return -p.max(axis=1)

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

    def _hardness_rows(self, p: np.ndarray) -> np.ndarray:
        return -self.margin(p)

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

    _negated_threshold: ClassVar[bool] = False

    def _hardness_rows(self, p: np.ndarray) -> np.ndarray:
        return self.entropy(p)

    def _hard_rows(self, p: np.ndarray) -> np.ndarray:
        return self.entropy(p) > self.threshold
