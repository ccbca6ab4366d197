"""Sedna's aggregation module: ``BaseAggregation`` and ``AggClient`` for user aggregations.

A class registered with ``@ClassFactory.register(ClassType.FL_AGG, alias=...)`` whose
``aggregate(clients)`` returns the new weights becomes a sedna-core aggregation (all updates of
a round at once; see :mod:`sedna._adapters`). Sedna's ``FedAvg`` is sedna-core's (the
``sedna-plugin-fedavg`` plugin): ``ClassFactory.get_cls(ClassType.FL_AGG, "FedAvg")`` finds it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

__all__ = ["AggClient", "BaseAggregation"]


class AggClient:
    """One client's contribution to a round: ``num_samples`` and ``weights`` (list of arrays)."""

    def __init__(self, num_samples: int = 0, weights: Sequence[Any] | None = None) -> None:
        self.num_samples = num_samples
        self.weights = list(weights) if weights is not None else []


class BaseAggregation(metaclass=abc.ABCMeta):
    """Sedna's aggregation base: ``aggregate(clients) -> weights``; keeps ``total_size``."""

    def __init__(self) -> None:
        self.total_size = 0
        self.weights: Any = None

    @abc.abstractmethod
    def aggregate(self, clients: list[AggClient]) -> Any:
        """The new global weights from this round's clients."""
