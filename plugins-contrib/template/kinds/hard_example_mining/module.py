"""The ``{{ algorithm_name }}`` hard-example miner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sedna_core.algorithms import BaseHardExampleMiner

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseHardExampleMiner):
    """Hard when the two most likely classes are closer than ``margin``.

    Each result is a vector of class probabilities. A result that cannot be judged (fewer than
    two classes, values outside [0, 1], NaN, not numeric) is not hard, as everywhere in
    sedna-core: miners never raise on bad results.

    Parameters
    ----------
    margin
        Smallest gap between the top two probabilities for a confident (not hard) result.
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, margin: float = 0.1) -> None:
        self.margin = margin

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        """One bool per result: ``True`` where the top-two gap is below ``margin``."""
        hard = np.zeros(len(results), dtype=bool)
        for i, result in enumerate(results):
            probs = _probabilities(result)
            if probs is not None:
                top2 = np.sort(probs)[-2:]
                hard[i] = bool(top2[1] - top2[0] < self.margin)
        return hard


def _probabilities(result: Any) -> np.ndarray | None:
    try:
        probs = np.asarray(result, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if probs.size < 2 or not np.all(np.isfinite(probs)):
        return None
    if np.any(probs < 0) or np.any(probs > 1):
        return None
    return probs
