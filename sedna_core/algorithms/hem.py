"""The hard-example-mining kind: decide which inference results are hard."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms._base import Algorithm

__all__ = ["BaseHardExampleMiner"]


class BaseHardExampleMiner(Algorithm, abc.ABC):
    """A hard-example miner: ``True`` means "hard" (send to the cloud, keep for labelling).

    ``__call__(result)`` judges one inference result (Sedna-compatible: lists, and also numpy
    arrays); ``mine(results)`` judges a batch (samples along the first axis) and must give
    exactly the decisions that calling the miner on each sample in order would give.

    A result the miner cannot judge (empty, malformed, NaN, out of range) is *not* hard, as in
    Sedna, unless the miner documents otherwise; miners never raise on bad results.

    A miner that judges class probabilities sets ``needs_probabilities = True``: a job then
    feeds it the edge model's probabilities (``predict_proba``) when ``predict`` gives labels.
    A miner whose threshold can be calibrated (``JointInference.calibrate``) also has
    ``hardness(results)`` (per sample, higher is harder, NaN where it cannot judge) and
    ``at_hardness(cut)`` (a copy that is hard exactly where ``hardness > cut``).
    """

    kind: ClassVar[str] = "hard_example_mining"
    #: whether the miner judges class-probability vectors (see above)
    needs_probabilities: ClassVar[bool] = False

    def __call__(self, infer_result: Any) -> bool:
        return bool(self.mine([infer_result])[0])

    @abc.abstractmethod
    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        """A boolean array of ``len(results)``: ``True`` where the sample is a hard example."""
