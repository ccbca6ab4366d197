"""Adaptive server optimisers (Reddi et al., 2020): FedAdam, FedYogi, FedAdagrad.

The round's sample-weighted average gives the pseudo-gradient ``delta = average - w_global``;
the server keeps first and second moments ``m`` and ``v`` (one model each) and steps
``w_global + eta * m / (sqrt(v) + tau)``, exactly as Flower's strategies of the same names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.aggregation import StreamingAggregation
from sedna_plugin_fedavg._blocks import blocks
from sedna_plugin_fedavg._params import require
from sedna_plugin_fedavg.fedavg import _indexed

__all__ = ["FedAdagrad", "FedAdam", "FedYogi"]


class _FedOpt(StreamingAggregation):
    """Shared machinery: parameters, moment buffers, checkpointed step count.

    FedAdagrad is the case ``beta_1 = 0`` (no first-moment decay) with its own second moment.
    """

    def __init__(self, eta: float, beta_1: float, beta_2: float, tau: float) -> None:
        super().__init__()
        require(self, eta > 0, "eta", "> 0", eta)
        require(self, tau > 0, "tau", "> 0", tau)
        require(self, 0 <= beta_1 < 1, "beta_1", "in [0, 1)", beta_1)
        require(self, 0 <= beta_2 < 1, "beta_2", "in [0, 1)", beta_2)
        self.eta = float(eta)
        self.tau = float(tau)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self._m: list[np.ndarray] | None = None
        self._v: list[np.ndarray] | None = None
        self._step = 0

    def _step_size(self, step: int) -> float:
        return self.eta

    def _second_moment(self, v: np.ndarray, delta: np.ndarray) -> None:
        raise NotImplementedError

    def server_update(
        self, global_weights: Sequence[np.ndarray], average: list[np.ndarray]
    ) -> list[np.ndarray]:
        if self._m is None or self._v is None:
            self._m = [np.zeros_like(a) for a in average]
            self._v = [np.zeros_like(a) for a in average]
        self._step += 1
        eta = self._step_size(self._step)
        b1 = self.beta_1
        for g, a, m, v in zip(global_weights, average, self._m, self._v, strict=True):
            for gb, ab, mb, vb in blocks(g, a, m, v):
                delta = ab - gb
                mb *= b1
                mb += (1.0 - b1) * delta
                self._second_moment(vb, delta)
                # ab becomes the new global block: g + eta * m / (sqrt(v) + tau)
                np.sqrt(vb, out=ab)
                ab += self.tau
                np.divide(mb, ab, out=ab)
                ab *= eta
                ab += gb
        return average

    def state_dict(self) -> dict[str, np.ndarray]:
        if self._m is None or self._v is None:
            return {}
        state = {"step": np.array(self._step, dtype=np.int64)}
        state.update({f"m.{i}": m for i, m in enumerate(self._m)})
        state.update({f"v.{i}": v for i, v in enumerate(self._v)})
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        name = type(self).__name__
        if not state:
            self._m = self._v = None
            self._step = 0
            return
        m, v = _indexed(state, "m", name), _indexed(state, "v", name)
        if "step" not in state or len(m) != len(v) or not m:
            raise ValueError(f"{name}: state needs 'step' and matching m.N / v.N entries")
        self._m, self._v, self._step = m, v, int(np.asarray(state["step"]))


class FedAdam(_FedOpt):
    """FedAdam: Adam on the server with bias-corrected step size.

    Parameters
    ----------
    eta
        Server learning rate.
    beta_1, beta_2
        Decay of the first and second moments, in [0, 1).
    tau
        Adaptivity (added to ``sqrt(v)``), > 0.
    """

    name: ClassVar[str] = "FedAdam"

    def __init__(
        self, eta: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.99, tau: float = 1e-9
    ) -> None:
        super().__init__(eta, beta_1, beta_2, tau)

    def _step_size(self, step: int) -> float:
        # Flower's bias correction, with its exponent (server round + 1)
        return (
            self.eta
            * math.sqrt(1 - self.beta_2 ** (step + 1.0))
            / (1 - self.beta_1 ** (step + 1.0))
        )

    def _second_moment(self, v: np.ndarray, delta: np.ndarray) -> None:
        v *= self.beta_2
        v += (1.0 - self.beta_2) * np.square(delta)

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"eta": 0.01, "beta_1": 0.5, "beta_2": 0.9, "tau": 1e-3}]


class FedYogi(_FedOpt):
    """FedYogi: like FedAdam with Yogi's additive second-moment update (no bias correction).

    Parameters
    ----------
    eta
        Server learning rate.
    beta_1, beta_2
        Decay of the first and second moments, in [0, 1).
    tau
        Adaptivity (added to ``sqrt(v)``), > 0.
    """

    name: ClassVar[str] = "FedYogi"

    def __init__(
        self, eta: float = 0.01, beta_1: float = 0.9, beta_2: float = 0.99, tau: float = 1e-3
    ) -> None:
        super().__init__(eta, beta_1, beta_2, tau)

    def _second_moment(self, v: np.ndarray, delta: np.ndarray) -> None:
        sq = np.square(delta)
        v -= (1.0 - self.beta_2) * sq * np.sign(v - sq)

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"eta": 0.1, "beta_1": 0.0, "beta_2": 0.5, "tau": 1e-2}]


class FedAdagrad(_FedOpt):
    """FedAdagrad: the second moment sums squared pseudo-gradients; no first-moment decay.

    Parameters
    ----------
    eta
        Server learning rate.
    tau
        Adaptivity (added to ``sqrt(v)``), > 0.
    """

    name: ClassVar[str] = "FedAdagrad"

    def __init__(self, eta: float = 0.1, tau: float = 1e-9) -> None:
        super().__init__(eta, 0.0, 0.0, tau)

    def _second_moment(self, v: np.ndarray, delta: np.ndarray) -> None:
        v += np.square(delta)

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"eta": 0.5, "tau": 1e-3}]
