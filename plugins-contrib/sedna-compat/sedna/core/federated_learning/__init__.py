"""Sedna's ``sedna.core.federated_learning``: ``FederatedLearning`` on sedna-core's client.

``FederatedLearningV2`` (the Plato-based variant) is not provided: see
``docs/migrating-from-sedna.md``.
"""

from __future__ import annotations

from typing import Any

from sedna_core.errors import JobError
from sedna_core.jobs.federated import FederatedLearning

__all__ = ["FederatedLearning", "FederatedLearningV2"]


class FederatedLearningV2:
    """Sedna's Plato-based federated learning: not part of sedna-compat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise JobError(
            "FederatedLearningV2 (Sedna's Plato-based federated learning) is not provided by "
            "sedna-compat; use FederatedLearning with AggregationServer (FedAvg, FedProx, "
            "FedAdam... and robust aggregation are plugins), see docs/migrating-from-sedna.md"
        )
