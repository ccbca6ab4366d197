"""Krum and Multi-Krum (Blanchard et al., 2017): keep the updates closest to their neighbours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.aggregation import AllAtOnceAggregation, TensorSpec, UpdateSource
from sedna_core.errors import InvalidParameterError
from sedna_plugin_robust._blocks import reduce_blocks, stacked_blocks

__all__ = ["Krum", "MultiKrum", "krum_scores"]


class Krum(AllAtOnceAggregation):
    """Krum: the one update whose ``n - f - 2`` nearest neighbours are closest (squared L2).

    Parameters
    ----------
    num_malicious_clients
        ``f``, how many clients may be Byzantine.
    """

    name: ClassVar[str] = "Krum"

    def __init__(self, num_malicious_clients: int = 0) -> None:
        super().__init__()
        if num_malicious_clients < 0:
            raise InvalidParameterError(
                f"{self.name}: num_malicious_clients must be >= 0, got {num_malicious_clients}",
                kind=self.kind,
            )
        self.num_malicious_clients = int(num_malicious_clients)

    def _keep(self, n: int) -> int:
        return 1

    def combine(
        self,
        global_weights: Sequence[np.ndarray],
        specs: Sequence[TensorSpec],
        updates: Sequence[UpdateSource],
    ) -> list[np.ndarray]:
        scores = krum_scores(pairwise_sq_distances(specs, updates), self.num_malicious_clients)
        keep = self._keep(len(updates))
        if keep <= 1:
            chosen = [int(np.argmin(scores))]
        else:
            chosen = [int(i) for i in np.argsort(scores, kind="stable")[:keep]]
        return weighted_mean(specs, [updates[i] for i in chosen])

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"num_malicious_clients": 1}]


class MultiKrum(Krum):
    """Multi-Krum: the sample-weighted average of the ``m`` updates with the best Krum scores.

    Parameters
    ----------
    num_malicious_clients
        ``f``, how many clients may be Byzantine.
    num_clients_to_keep
        ``m``; 0 keeps ``n - f`` (every client not assumed Byzantine).
    """

    name: ClassVar[str] = "MultiKrum"

    def __init__(self, num_malicious_clients: int = 0, num_clients_to_keep: int = 0) -> None:
        super().__init__(num_malicious_clients)
        if num_clients_to_keep < 0:
            raise InvalidParameterError(
                f"MultiKrum: num_clients_to_keep must be >= 0, got {num_clients_to_keep}",
                kind=self.kind,
            )
        self.num_clients_to_keep = int(num_clients_to_keep)

    def _keep(self, n: int) -> int:
        keep = self.num_clients_to_keep or n - self.num_malicious_clients
        return max(1, min(n, keep))

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"num_malicious_clients": 1, "num_clients_to_keep": 2}]


def pairwise_sq_distances(
    specs: Sequence[TensorSpec], updates: Sequence[UpdateSource]
) -> np.ndarray:
    """``D[i, j] = ||u_i - u_j||^2`` over all tensors, accumulated block by block in float64."""
    n = len(updates)
    dist = np.zeros((n, n), dtype=np.float64)
    for _, _, _, rows in stacked_blocks(specs, updates):
        block = rows.astype(np.float64)
        for i in range(n):
            diff = block[i + 1 :] - block[i]
            d = np.einsum("ij,ij->i", diff, diff)
            dist[i, i + 1 :] += d
            dist[i + 1 :, i] += d
    return dist


def krum_scores(dist: np.ndarray, num_malicious: int) -> np.ndarray:
    """Each update's sum of squared distances to its ``n - f - 2`` nearest others (min 1)."""
    n = dist.shape[0]
    closest = max(1, n - num_malicious - 2)
    scores = np.empty(n, dtype=np.float64)
    for i in range(n):
        others = np.delete(dist[i], i)
        scores[i] = np.sort(others)[:closest].sum()
    return scores


def weighted_mean(specs: Sequence[TensorSpec], updates: Sequence[UpdateSource]) -> list[np.ndarray]:
    """The sample-weighted average of ``updates`` (a single update is copied exactly)."""
    total = float(sum(u.num_samples for u in updates))

    def mean(rows: np.ndarray) -> np.ndarray:
        if len(updates) == 1:
            return rows[0]
        # float64 (complex128) sums: finite float32 inputs can never overflow them
        wide = np.complex128 if rows.dtype.kind == "c" else np.float64
        acc = np.zeros(rows.shape[1], dtype=wide)
        for k, update in enumerate(updates):
            acc += rows[k].astype(wide) * update.num_samples
        return acc / total

    return reduce_blocks(specs, updates, mean)
