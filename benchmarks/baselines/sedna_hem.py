"""Sedna's per-sample hard-example miners re-created for comparison (reference §6.2).

Pure Python, one sample per call, lists only; the same arithmetic as Sedna's filters
(``CrossEntropyFilter`` crashes on a zero probability or a single class, as Sedna's does).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SednaCrossEntropyFilter"]


def _data_check(x: Any) -> bool:
    return 0 <= float(x) <= 1


class SednaCrossEntropyFilter:
    """``CrossEntropyFilter(threshold_cross_entropy)``: hard iff 1 - normalised entropy < t."""

    def __init__(self, threshold_cross_entropy: float = 0.5) -> None:
        self.threshold_cross_entropy = float(threshold_cross_entropy)

    def __call__(self, infer_result: Any = None) -> bool:
        if not infer_result:
            return False
        if not all(map(_data_check, infer_result)):
            return False
        log_sum = sum(x * math.log(x) for x in infer_result)
        confidence_score = 1 + 1.0 * log_sum / math.log(len(infer_result))
        return confidence_score < self.threshold_cross_entropy
