"""``{{ algorithm_name }}``: a numpy nearest-centroid backend.

A real backend wraps a framework (torch, keras...); this one's "framework" is the small
:class:`CentroidModel` below, so that the plugin works anywhere. Replace the model and keep the
methods: each says what sedna-core's jobs give it and expect back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from sedna_core.algorithms import BaseBackend
from sedna_core.errors import BackendError

__all__ = ["CentroidModel", "{{ class_name }}"]


class CentroidModel:
    """The model: one centroid per class (``n_classes`` x features), fixed class count."""

    def __init__(self, n_classes: int = 2) -> None:
        self.n_classes = n_classes
        self.centroids: np.ndarray | None = None


def _xy(data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
    else:  # a sedna_core.datasources.BaseDataSource, or bare samples
        x, y = getattr(data, "x", data), getattr(data, "y", None)
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1), None if y is None else np.asarray(y)


class {{ class_name }}(BaseBackend):
    """Nearest-centroid classification in numpy: train, predict, probabilities, weights.

    Parameters
    ----------
    estimator
        A :class:`CentroidModel`, or a class or function that builds one on first use.
    temperature
        Softness of ``predict_proba`` (a softmax of minus the distances over it).
    """

    name: ClassVar[str] = "{{ algorithm_name }}"
    framework: ClassVar[str] = "numpy"
    model_suffix: ClassVar[str] = ".npz"

    def __init__(self, estimator: Any = None, temperature: float = 1.0) -> None:
        super().__init__(estimator)
        self.temperature = temperature

    @classmethod
    def conformance_examples(cls) -> list[dict[str, Any]]:
        """The conformance kit needs a tiny model to train: the class itself builds one."""
        return [{"estimator": CentroidModel}]

    def _check_model(self, model: Any) -> None:
        if not isinstance(model, CentroidModel):
            raise BackendError(
                f"{type(self).__name__} wraps a CentroidModel, not {type(model).__name__}"
            )

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        """Fit the centroids on ``(x, y)`` (integer labels below ``n_classes``)."""
        x, y = _xy(train_data)
        if y is None:
            raise BackendError(f"{type(self).__name__}.train needs labels: give (x, y)")
        model = self.model
        centroids = np.zeros((model.n_classes, x.shape[1]))
        for label in range(model.n_classes):
            rows = x[y == label]
            if len(rows):
                centroids[label] = rows.mean(axis=0)
        model.centroids = centroids
        return {"accuracy": float((self.predict(x) == y).mean())}

    def _distances(self, data: Any) -> np.ndarray:
        x, _ = _xy(data)
        if self.model.centroids is None:
            raise BackendError(f"{type(self).__name__}: train or load a model first")
        gaps = x[:, None, :] - self.model.centroids[None, :, :]
        return np.sqrt((gaps**2).sum(axis=2))

    def predict(self, data: Any, **kwargs: Any) -> np.ndarray:
        """The nearest centroid's class for each sample."""
        return self._distances(data).argmin(axis=1)

    def predict_proba(self, data: Any, **kwargs: Any) -> np.ndarray:
        """A softmax of minus the distances: one row of class probabilities per sample."""
        logits = -self._distances(data) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, float]:
        """Accuracy on ``(x, y)``."""
        x, y = _xy(data)
        return {"accuracy": float((self.predict(x) == y).mean())}

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the centroids to ``path`` (``.npz``, never a pickle); returns the file."""
        target = self._model_file(path)
        with self._atomic_target(target) as tmp:  # a reader never sees half a file
            np.savez(tmp, centroids=self.model.centroids)
        return str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Read a file written by :meth:`save`."""
        with np.load(self._existing_model_file(path), allow_pickle=False) as saved:
            self.model.centroids = saved["centroids"]

    def get_weights(self) -> list[np.ndarray]:
        """The centroids, for federated learning."""
        return [np.array(self.model.centroids, copy=True)]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the centroids (the order of :meth:`get_weights`)."""
        self.model.centroids = np.array(weights[0], dtype=np.float64)
