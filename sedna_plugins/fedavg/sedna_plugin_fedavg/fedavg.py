"""FedAvg, FedProx and FedAvgM: sample-weighted averaging, optionally with server momentum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.aggregation import StreamingAggregation
from sedna_plugin_fedavg._blocks import blocks
from sedna_plugin_fedavg._params import require

__all__ = ["FedAvg", "FedAvgM", "FedProx"]


class FedAvg(StreamingAggregation):
    """Federated averaging (McMahan et al., 2017): the average of client weights, each
    weighted by its number of training samples.

    Memory: one model of accumulators, whatever the number of clients.
    """

    name: ClassVar[str] = "FedAvg"

    def __init__(self) -> None:
        super().__init__()


class FedProx(FedAvg):
    """FedAvg on the server; clients add the proximal term ``mu/2 * ||w - w_global||^2``
    (Li et al., 2020) to their loss.

    Parameters
    ----------
    proximal_mu
        Sent to clients with every round; backends that support it (torch, keras) use it.
    """

    name: ClassVar[str] = "FedProx"

    def __init__(self, proximal_mu: float = 0.01) -> None:
        super().__init__()
        require(self, proximal_mu >= 0, "proximal_mu", ">= 0", proximal_mu)
        self.proximal_mu = float(proximal_mu)

    def client_config(self) -> dict[str, Any]:
        return {"proximal_mu": self.proximal_mu}

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"proximal_mu": 0.1}]


class FedAvgM(StreamingAggregation):
    """FedAvg with server momentum (Hsu et al., 2019), as Flower's ``FedAvgM``.

    With ``d = w_global - average``: ``m = server_momentum * m + d`` (``m = d`` the first
    time), then ``w_global - server_learning_rate * m``.

    Parameters
    ----------
    server_learning_rate
        Step size of the server update (1.0 with no momentum is plain FedAvg).
    server_momentum
        Momentum factor in [0, 1).
    """

    name: ClassVar[str] = "FedAvgM"

    def __init__(self, server_learning_rate: float = 1.0, server_momentum: float = 0.9) -> None:
        super().__init__()
        require(self, server_learning_rate > 0, "server_learning_rate", "> 0", server_learning_rate)
        require(self, 0 <= server_momentum < 1, "server_momentum", "in [0, 1)", server_momentum)
        self.server_learning_rate = float(server_learning_rate)
        self.server_momentum = float(server_momentum)
        self._momentum: list[np.ndarray] | None = None

    def server_update(
        self, global_weights: Sequence[np.ndarray], average: list[np.ndarray]
    ) -> list[np.ndarray]:
        lr, beta = self.server_learning_rate, self.server_momentum
        if beta == 0.0 and lr == 1.0:
            return average
        first = self._momentum is None
        if beta > 0 and self._momentum is None:
            self._momentum = [np.empty_like(a) for a in average]
        for i, (g, a) in enumerate(zip(global_weights, average, strict=True)):
            if beta > 0:
                assert self._momentum is not None
                for gb, ab, mb in blocks(g, a, self._momentum[i]):
                    step = gb - ab  # pseudo-gradient: updates are the opposite of gradients
                    if first:
                        mb[...] = step
                    else:
                        mb *= beta
                        mb += step
                    np.subtract(gb, lr * mb, out=ab)
            else:
                for gb, ab in blocks(g, a):
                    np.subtract(gb, lr * (gb - ab), out=ab)
        return average

    def state_dict(self) -> dict[str, np.ndarray]:
        if self._momentum is None:
            return {}
        return {f"momentum.{i}": m for i, m in enumerate(self._momentum)}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self._momentum = _indexed(state, "momentum", type(self).__name__) or None

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"server_learning_rate": 0.5, "server_momentum": 0.0}]


def _indexed(state: Mapping[str, np.ndarray], prefix: str, owner: str) -> list[np.ndarray]:
    """``state["prefix.0"], state["prefix.1"], ...`` as a list (empty when absent)."""
    found = {}
    for key, value in state.items():
        head, _, tail = key.partition(".")
        if head != prefix or not tail.isdigit():
            continue
        found[int(tail)] = np.array(value)
    if sorted(found) != list(range(len(found))):
        raise ValueError(f"{owner}: state entries {prefix}.N are not numbered 0..N-1")
    return [found[i] for i in range(len(found))]
