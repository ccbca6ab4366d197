"""Miners over detection boxes (Sedna's ``Threshold`` and ``IBT``).

A result is a list of boxes ``[x1, y1, x2, y2, score, label, ...]`` (or an ``(m, >=5)`` array).
A result that is empty, has a box of 4 fields or fewer (no score), or a score that is not a
number cannot be judged: not hard, as in Sedna, unless ``invalid_is_hard=True``.

The batch form extracts the scores sample by sample (boxes are ragged) and decides with one
vectorised reduction; the per-sample call is the batch form on a batch of one, so both decide
identically. Input that is not boxes at all (a class-probability vector, a label) is logged once
per miner: these miners are for object detection, Confidence and CrossEntropy for classifiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import BaseHardExampleMiner
from sedna_plugin_hem._common import as_float_array, check_threshold, warn_unjudged

__all__ = ["IBTFilter", "ThresholdFilter"]

_SCORE = 4


def _scores(result: Any) -> np.ndarray | None:
    """The box scores of one result, or None when it cannot be judged."""
    arr = as_float_array(result)
    if arr is not None and arr.ndim == 2:
        if arr.shape[0] == 0 or arr.shape[1] <= _SCORE:
            return None
        return arr[:, _SCORE]
    if isinstance(result, np.ndarray | str | bytes):
        return None
    # ragged boxes (Sedna only asks each box for more than 4 fields)
    try:
        boxes = list(result)
        if not boxes or any(len(box) <= _SCORE for box in boxes):
            return None
        return np.array([float(box[_SCORE]) for box in boxes], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None


def _not_boxes(result: Any) -> str | None:
    """Why ``result`` is not a list of boxes at all (None: it is, or it is just empty)."""
    arr = as_float_array(result) if not isinstance(result, str | bytes) else None
    if arr is None:
        return None if _scores(result) is not None or _is_empty(result) else "ragged or text"
    if arr.size == 0:  # no detections: normal for an empty scene
        return None
    if arr.ndim <= 1:
        return f"{'a number' if arr.ndim == 0 else 'a flat vector'} per sample"
    if arr.ndim == 2 and arr.shape[0] and arr.shape[1] <= _SCORE:
        return f"boxes of {arr.shape[1]} fields (no score)"
    return None


def _is_empty(result: Any) -> bool:
    try:
        return len(result) == 0
    except TypeError:
        return False


_BOX_ADVICE = (
    "Threshold and IBT judge object-detection boxes [x1, y1, x2, y2, score, label, ...]; for "
    "a classifier's class probabilities use Confidence or CrossEntropy."
)


class _BoxMiner(BaseHardExampleMiner):
    invalid_is_hard: bool

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"invalid_is_hard": True}]

    @classmethod
    def _conformance_inputs(cls) -> list[Any]:
        low, high = [0, 0, 10, 10, 0.2, 1], [5, 5, 20, 20, 0.9, 0]
        dense = np.array([[low, high], [high, high], [low, low]], dtype=np.float64)
        ragged = [[low, high], [high], [], [[0, 0, 1, 1]], [low, [0, 0, 1, 1, 0.3]]]
        return [dense, list(dense), ragged]

    def _decide(self, scores: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
        """Decisions for ``n`` valid samples; ``sample[i]`` is the sample of ``scores[i]``."""
        raise NotImplementedError

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        arr = as_float_array(results) if isinstance(results, np.ndarray) else None
        if arr is not None and arr.ndim == 3 and arr.shape[1] > 0 and arr.shape[2] > _SCORE:
            # a dense (n, m, fields) batch: no per-sample extraction needed
            n, m = arr.shape[:2]
            scores = arr[:, :, _SCORE].reshape(-1)
            sample = np.repeat(np.arange(n), m)
            return self._finish(scores, sample, np.ones(n, dtype=bool))
        per_sample = [_scores(r) for r in results]
        n = len(per_sample)
        valid = np.array([s is not None for s in per_sample], dtype=bool)
        if not valid.all() and not self.__dict__.get("_warned_unjudged"):
            for r, s in zip(results, per_sample, strict=True):
                problem = _not_boxes(r) if s is None else None
                if problem is not None:
                    warn_unjudged(self, f"it got {problem}, not detection boxes", _BOX_ADVICE)
                    break
        good = [s for s in per_sample if s is not None]
        if not good:
            return np.full(n, self.invalid_is_hard, dtype=bool)
        lengths = np.array([len(s) for s in good])
        scores = np.concatenate(good)
        sample = np.repeat(np.arange(len(good)), lengths)
        return self._finish(scores, sample, valid)

    def _finish(self, scores: np.ndarray, sample: np.ndarray, valid: np.ndarray) -> np.ndarray:
        n_good = int(valid.sum())
        bad = self._bad_scores(scores)
        if bad.any():  # a sample with an unusable score cannot be judged
            ok = np.bincount(sample[bad], minlength=n_good) == 0
        else:
            ok = np.ones(n_good, dtype=bool)
        decided = self._decide(np.where(bad, 0.0, scores), sample, n_good)
        hard = np.full(valid.shape[0], self.invalid_is_hard, dtype=bool)
        hard[np.flatnonzero(valid)[ok]] = decided[ok]
        return hard

    def _bad_scores(self, scores: np.ndarray) -> np.ndarray:
        return np.isnan(scores)


class ThresholdFilter(_BoxMiner):
    """Sedna's ``Threshold``: hard iff the mean box score ``< threshold``.

    Scores are not range-checked (as in Sedna); a NaN score makes the result invalid.

    Parameters
    ----------
    threshold
        Mean score below which a result is hard.
    invalid_is_hard
        Decision for a result that cannot be judged (Sedna: not hard).
    """

    name: ClassVar[str] = "Threshold"

    def __init__(self, threshold: float = 0.5, invalid_is_hard: bool = False) -> None:
        self.threshold = check_threshold("threshold", threshold, miner=self.name)
        self.invalid_is_hard = bool(invalid_is_hard)

    def _decide(self, scores: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
        # bincount adds in input order: a sample's sum does not depend on the rest of the batch
        sums = np.bincount(sample, weights=scores, minlength=n)
        counts = np.bincount(sample, minlength=n)
        return sums / np.maximum(counts, 1) < self.threshold


class IBTFilter(_BoxMiner):
    """Sedna's ``IBT`` (image-box threshold).

    Hard iff the share of boxes with ``score <= threshold_box`` is at least ``1 - threshold_img``.
    A score outside [0, 1] makes the result invalid (as in Sedna).

    Parameters
    ----------
    threshold_img
        One minus the share of low-score boxes that makes an image hard.
    threshold_box
        Score at or below which a box is low-score.
    invalid_is_hard
        Decision for a result that cannot be judged (Sedna: not hard).
    """

    name: ClassVar[str] = "IBT"

    def __init__(
        self, threshold_img: float = 0.5, threshold_box: float = 0.5, invalid_is_hard: bool = False
    ) -> None:
        self.threshold_img = check_threshold("threshold_img", threshold_img, miner=self.name)
        self.threshold_box = check_threshold("threshold_box", threshold_box, miner=self.name)
        self.invalid_is_hard = bool(invalid_is_hard)

    def _bad_scores(self, scores: np.ndarray) -> np.ndarray:
        return ~((scores >= 0.0) & (scores <= 1.0))

    def _decide(self, scores: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
        low = np.bincount(sample, weights=scores <= self.threshold_box, minlength=n)
        counts = np.bincount(sample, minlength=n)
        return low / np.maximum(counts, 1) >= 1.0 - self.threshold_img
