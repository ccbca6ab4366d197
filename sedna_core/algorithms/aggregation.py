"""The aggregation kind: combine client updates into new global weights."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from sedna_core.algorithms._base import Algorithm

__all__ = ["BaseAggregation"]


class BaseAggregation(Algorithm, abc.ABC):
    """An aggregation strategy.

    Streaming aggregators (FedAvg and its family) accumulate each update as it arrives, so the
    server holds about one model's worth of state. Aggregators that need every update at once
    (median, Krum) set ``needs_all_updates = True`` and get them together in :meth:`finish`.
    """

    kind: ClassVar[str] = "aggregation"
    needs_all_updates: ClassVar[bool] = False

    @abc.abstractmethod
    def begin_round(self, global_weights: Sequence[np.ndarray]) -> None:
        """Start a round from the current global weights."""

    @abc.abstractmethod
    def accumulate(self, update: Sequence[np.ndarray], num_samples: int) -> None:
        """Add one client's weights, trained on ``num_samples`` samples."""

    @abc.abstractmethod
    def finish(self) -> list[np.ndarray]:
        """Close the round and return the new global weights."""
