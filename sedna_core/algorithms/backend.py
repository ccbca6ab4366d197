"""The backend kind: one framework's model behind one interface."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms._base import Algorithm
from sedna_core.errors import BackendError

__all__ = ["BaseBackend"]


class BaseBackend(Algorithm, abc.ABC):
    """Adapts one framework's estimator to sedna-core's estimator interface.

    ``estimator`` may be an instance, or a class/factory called lazily on first use (as in
    Sedna). Data given to ``train``/``evaluate`` is a :class:`~sedna_core.datasources.BaseDataSource`
    (with ``x`` and ``y``) or an ``(x, y)`` tuple; ``predict`` takes ``x``.
    """

    kind: ClassVar[str] = "backend"
    #: the framework's name as shown in listings (``"torch"``, ``"keras"``...)
    framework: ClassVar[str] = ""
    #: file suffix of the safe format this backend saves to
    model_suffix: ClassVar[str] = ""

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        """Whether this backend can wrap ``estimator`` (used by backend detection)."""
        return False

    @property
    @abc.abstractmethod
    def model(self) -> Any:
        """The wrapped framework model (instantiated on first access if a factory was given)."""

    @abc.abstractmethod
    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> Any:
        """Fit the model; returns what the framework reports (metrics, history...)."""

    @abc.abstractmethod
    def predict(self, data: Any, **kwargs: Any) -> Any:
        """Predictions for ``data``."""

    def predict_proba(self, data: Any, **kwargs: Any) -> np.ndarray:
        """Class probabilities, where the framework has them."""
        raise BackendError(f"{type(self).__name__} ({self.framework}) has no predict_proba")

    @abc.abstractmethod
    def evaluate(
        self, data: Any, metrics: Sequence[str] | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, float]:
        """Scores of the model on ``data`` (scikit-learn metric names or callables)."""

    @abc.abstractmethod
    def save(self, path: str) -> str:
        """Write the model to ``path`` in a safe format; returns the file written."""

    @abc.abstractmethod
    def load(self, path: str) -> None:
        """Read a model written by :meth:`save`."""

    @abc.abstractmethod
    def get_weights(self) -> list[np.ndarray]:
        """The model's parameters as a list of numpy arrays (federated learning)."""

    @abc.abstractmethod
    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the model's parameters with ``weights`` (same order as :meth:`get_weights`)."""
