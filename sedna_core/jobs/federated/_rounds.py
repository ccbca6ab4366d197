"""Round bookkeeping: who was asked, who answered, the seeded selection, weighted metrics."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sedna_core.jobs.federated._spool import SpoolUpdate

__all__ = ["FederatedResult", "Round", "select_clients", "weighted_metrics"]

Task = Literal["init", "train", "evaluate"]


@dataclass
class Round:
    """One attempt of one round while it is open."""

    number: int
    attempt: int
    task: Task
    asked: set[str]
    deadline: float
    started: float
    pending: set[str] = field(default_factory=set)
    updates: dict[str, SpoolUpdate] = field(default_factory=dict)
    metrics: dict[str, tuple[int, dict[str, float]]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    late: int = 0
    closed: bool = False

    @property
    def answered(self) -> int:
        return len(self.updates) + len(self.metrics)

    def discard_updates(self) -> None:
        for update in self.updates.values():
            update.discard()
        self.updates.clear()


@dataclass(frozen=True)
class FederatedResult:
    """How a federated job ended.

    ``status`` is ``"completed"`` or ``"failed"``; ``rounds`` the training rounds completed;
    ``weights`` the final global model; ``history`` one record per completed round (clients,
    samples, weighted client metrics, evaluation metrics, duration, rejected and late counts).
    """

    status: str
    rounds: int
    weights: list[np.ndarray] | None
    history: list[dict[str, Any]]
    message: str = ""


def select_clients(
    candidates: Iterable[str], fraction: float, minimum: int, seed: int, *salt: int
) -> set[str]:
    """A seeded choice of ``max(ceil(fraction * n), minimum)`` clients (all if fewer).

    The same candidates, seed and salt (round, attempt) always give the same choice.
    """
    ordered = sorted(candidates)
    n = len(ordered)
    k = min(n, max(math.ceil(fraction * n), minimum, 1))
    if k >= n:
        return set(ordered)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, *salt])
    return {ordered[i] for i in rng.choice(n, size=k, replace=False)}


def weighted_metrics(results: Mapping[str, tuple[int, Mapping[str, float]]]) -> dict[str, float]:
    """Per metric, the sample-weighted mean over the clients that reported it."""
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for n, metrics in results.values():
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + n * value
            weights[key] = weights.get(key, 0) + n
    return {k: sums[k] / weights[k] for k in sorted(sums) if weights[k] > 0}


def describe(metrics: Mapping[str, float], keys: Sequence[str] = ()) -> str:
    """``loss 0.312  accuracy 0.914`` for progress lines."""
    shown = [k for k in keys if k in metrics] or sorted(metrics)[:4]
    return "  ".join(f"{k} {metrics[k]:.4g}" for k in shown)
