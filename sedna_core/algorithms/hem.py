"""The hard-example-mining kind: decide which inference results are hard."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms._base import Algorithm

__all__ = ["BaseHardExampleMiner"]


class BaseHardExampleMiner(Algorithm, abc.ABC):
    """A hard-example miner.

    ``__call__(result)`` judges one inference result (Sedna-compatible); ``mine(results)``
    judges a batch (samples along the first axis) and must give the same decisions as calling
    the miner on each sample.
    """

    kind: ClassVar[str] = "hard_example_mining"

    def __call__(self, infer_result: Any) -> bool:
        return bool(self.mine([infer_result])[0])

    @abc.abstractmethod
    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        """A boolean array: ``True`` where the sample is a hard example."""
