"""Miners that ignore the result: Random (Sedna's ``random_ratio``), CloudOnly, EdgeOnly."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import BaseHardExampleMiner
from sedna_core.errors import InvalidParameterError
from sedna_plugin_hem._common import KIND, check_threshold, count_samples

__all__ = ["CloudOnlyFilter", "EdgeOnlyFilter", "RandomFilter"]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a uint64 array (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RandomFilter(BaseHardExampleMiner):
    """Sedna's ``Random``: each sample is hard with probability ``random_ratio``.

    Decisions come from a counter-based generator: the i-th sample this miner judges gets
    ``u_i = hash(seed, i)`` and is hard iff ``u_i < random_ratio``. So a seeded miner gives the
    same decision sequence whether samples arrive one by one or in batches of any size, and it is
    safe to share between threads (the counter is taken under a lock).

    Parameters
    ----------
    random_ratio
        Probability that a sample is hard, in [0, 1] (a string from ``HEM_PARAMETERS`` works too;
        Sedna raised ``TypeError`` on it).
    seed
        Seed of the decision sequence; None draws one from the operating system.
    """

    name: ClassVar[str] = "Random"

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{"seed": 0}, {"random_ratio": 0.5, "seed": 2**40}]

    def __init__(self, random_ratio: float = 0.3, seed: int | None = None) -> None:
        self.random_ratio = check_threshold(
            "random_ratio", random_ratio, low=0.0, high=1.0, miner=self.name
        )
        if seed is not None:
            try:
                seed = int(seed)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(
                    f"{self.name}: seed={seed!r} is not valid; expected an integer or None",
                    kind=KIND,
                ) from exc
        self.seed = seed
        key = secrets.randbits(64) if seed is None else seed & _MASK64
        self._key = np.uint64(int(_splitmix64(np.array([key], dtype=np.uint64))[0]))
        self._next = 0
        self._lock = threading.Lock()

    def uniforms(self, count: int) -> np.ndarray:
        """The next ``count`` uniform numbers in [0, 1) of this miner's sequence."""
        with self._lock:
            start = self._next
            self._next += count
        index = np.arange(start, start + count, dtype=np.uint64)
        bits = _splitmix64(index * np.uint64(0x9E3779B97F4A7C15) + self._key)
        return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def __call__(self, infer_result: Any = None) -> bool:
        return bool(self.uniforms(1)[0] < self.random_ratio)

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        return self.uniforms(count_samples(results)) < self.random_ratio


class CloudOnlyFilter(BaseHardExampleMiner):
    """Sedna's ``CloudOnly``: every sample is hard (everything goes to the cloud)."""

    name: ClassVar[str] = "CloudOnly"

    def __init__(self) -> None:
        pass

    def __call__(self, infer_result: Any = None) -> bool:
        return True

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        return np.ones(count_samples(results), dtype=bool)


class EdgeOnlyFilter(BaseHardExampleMiner):
    """Sedna's ``EdgeOnly``: no sample is hard (everything stays on the edge)."""

    name: ClassVar[str] = "EdgeOnly"

    def __init__(self) -> None:
        pass

    def __call__(self, infer_result: Any = None) -> bool:
        return False

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        return np.zeros(count_samples(results), dtype=bool)
