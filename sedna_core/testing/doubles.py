"""Test doubles for users' and plugins' tests: no framework, no network, deterministic.

``InMemoryEstimator``
    a duck-typed estimator (Sedna's "Customize" estimator: ``train/predict/evaluate/save/load``
    plus ``get_weights/set_weights``) doing nearest-centroid classification in numpy; usable
    with any job through the generic backend adapter.
``ScriptedMiner``
    a hard-example miner that answers from a script, to drive a job's hard/easy branches.
``RecordingPlugin``
    a plugin object implementing every lifecycle hook and recording the calls.
``DoublesPlugin``
    a plugin object registering :class:`ScriptedMiner` (``sedna_pm.register(DoublesPlugin())``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import BaseHardExampleMiner
from sedna_core.plugins import hookimpl

__all__ = ["DoublesPlugin", "InMemoryEstimator", "RecordingPlugin", "ScriptedMiner"]


def _xy(data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
    else:
        x, y = getattr(data, "x", data), getattr(data, "y", None)
    return np.asarray(x, dtype=np.float64), None if y is None else np.asarray(y)


class InMemoryEstimator:
    """Nearest-centroid classifier on flattened inputs; its weights are the class centroids.

    Parameters
    ----------
    n_classes
        Number of classes, so that weights have a fixed shape before training (as in a
        federated job whose clients may not see every class).
    n_features
        Number of (flattened) input features; None takes it from the first training data.
    """

    def __init__(self, n_classes: int = 2, n_features: int | None = None) -> None:
        self.n_classes = n_classes
        self.n_features = n_features
        self.centroids: np.ndarray | None = None
        self.train_calls = 0
        self.predict_calls = 0

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        """Move each class's centroid to the mean of its samples in ``train_data``.

        ``train_data`` is ``(x, y)`` or an object with ``x`` and ``y``; ``valid_data`` and
        ``kwargs`` are accepted and ignored. Returns the training accuracy
        (``{"accuracy": ...}``).
        """
        x, y = _xy(train_data)
        if y is None:
            raise ValueError("InMemoryEstimator.train needs labels (x, y)")
        x = x.reshape(len(x), -1)
        self.n_features = x.shape[1]
        centroids = (
            np.zeros((self.n_classes, x.shape[1])) if self.centroids is None else self.centroids
        )
        for c in range(self.n_classes):
            rows = x[y.astype(int) == c]
            if len(rows):
                centroids[c] = rows.mean(axis=0)
        self.centroids = centroids
        self.train_calls += 1
        return self.evaluate((x, y))

    def _distances(self, data: Any) -> np.ndarray:
        if self.centroids is None:
            raise ValueError("InMemoryEstimator is not trained")
        x, _ = _xy(data)
        x = x.reshape(len(x), -1)
        return ((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=-1)

    def predict_proba(self, data: Any, **kwargs: Any) -> np.ndarray:
        """The class probabilities of ``data``: a softmax of minus the squared distances."""
        logits = -self._distances(data)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, data: Any, **kwargs: Any) -> np.ndarray:
        """The nearest centroid's class for each sample of ``data``."""
        self.predict_calls += 1
        return self._distances(data).argmin(axis=1)

    def evaluate(self, data: Any, metrics: Any = None, **kwargs: Any) -> dict[str, float]:
        """The accuracy on labelled ``data`` (``metrics`` is accepted and ignored)."""
        x, y = _xy(data)
        if y is None:
            raise ValueError("InMemoryEstimator.evaluate needs labels (x, y)")
        return {"accuracy": float((self.predict(x) == y.astype(int)).mean())}

    def get_weights(self) -> list[np.ndarray]:
        """The centroids, as a one-element list (zeros before training when shaped)."""
        if self.centroids is None:
            if self.n_features is None:
                raise ValueError("InMemoryEstimator has no weights before training")
            self.centroids = np.zeros((self.n_classes, self.n_features))
        return [self.centroids.copy()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the centroids with ``weights[0]`` (their shape sets the class count)."""
        (centroids,) = weights
        self.centroids = np.array(centroids, dtype=np.float64)
        self.n_classes, self.n_features = self.centroids.shape

    def save(self, model_path: str) -> str:
        """The file written: the centroids as ``.npz`` (no pickle) at ``model_path`` (a folder
        gets ``model.npz``)."""
        path = str(model_path)
        if os.path.isdir(path):
            path = os.path.join(path, "model.npz")
        if not path.endswith(".npz"):
            path += ".npz"
        np.savez(path, centroids=np.asarray(self.get_weights()[0]))
        return path

    def load(self, model_url: str) -> None:
        """Read what :meth:`save` wrote at ``model_url`` (a file, or its folder)."""
        path = str(model_url)
        if os.path.isdir(path):
            path = os.path.join(path, "model.npz")
        with np.load(path, allow_pickle=False) as data:
            self.set_weights([data["centroids"]])


class ScriptedMiner(BaseHardExampleMiner):
    """Answers ``decisions`` in order, one per sample, then ``default``.

    Parameters
    ----------
    decisions
        The decisions to give, in sample order (across calls).
    default
        The decision once the script is used up.
    """

    name: ClassVar[str] = "Scripted"

    def __init__(self, decisions: list[bool] | None = None, default: bool = False) -> None:
        self.decisions = decisions
        self.default = default
        self._given = 0

    def mine(self, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        script = self.decisions or []
        positions = range(self._given, self._given + len(results))
        self._given += len(results)
        return np.array(
            [script[i] if i < len(script) else self.default for i in positions], dtype=bool
        )

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{}, {"decisions": [True, False, True], "default": True}]


class RecordingPlugin:
    """Records every lifecycle hook call as ``(hook name, arguments)`` in :attr:`events`."""

    def __init__(self) -> None:
        #: ``(hook name, arguments)`` of every call, in order
        self.events: list[tuple[str, dict[str, Any]]] = []

    def calls(self, hook: str) -> list[dict[str, Any]]:
        """The arguments of each call of ``hook``, in order."""
        return [args for name, args in self.events if name == hook]

    @hookimpl
    def sedna_job_started(self, job_kind: str, job_name: str, info: Mapping[str, Any]) -> None:
        """Record ``job_kind``, ``job_name`` and ``info``."""
        self.events.append(
            ("sedna_job_started", {"job_kind": job_kind, "job_name": job_name, "info": info})
        )

    @hookimpl
    def sedna_job_finished(
        self, job_kind: str, job_name: str, status: str, info: Mapping[str, Any]
    ) -> None:
        """Record ``job_kind``, ``job_name``, ``status`` and ``info``."""
        self.events.append(
            (
                "sedna_job_finished",
                {"job_kind": job_kind, "job_name": job_name, "status": status, "info": info},
            )
        )

    @hookimpl
    def sedna_round_aggregated(
        self, job_name: str, round_number: int, num_clients: int, metrics: Mapping[str, float]
    ) -> None:
        """Record ``job_name``, ``round_number``, ``num_clients`` and ``metrics``."""
        self.events.append(
            (
                "sedna_round_aggregated",
                {
                    "job_name": job_name,
                    "round_number": round_number,
                    "num_clients": num_clients,
                    "metrics": metrics,
                },
            )
        )

    @hookimpl
    def sedna_hard_example_found(
        self, job_name: str, count: int, stats: Mapping[str, float]
    ) -> None:
        """Record ``job_name``, ``count`` and ``stats``."""
        self.events.append(
            ("sedna_hard_example_found", {"job_name": job_name, "count": count, "stats": stats})
        )

    @hookimpl
    def sedna_model_deployed(
        self, job_name: str, version: str, metrics: Mapping[str, float]
    ) -> None:
        """Record ``job_name``, ``version`` and ``metrics``."""
        self.events.append(
            (
                "sedna_model_deployed",
                {"job_name": job_name, "version": version, "metrics": metrics},
            )
        )


class DoublesPlugin:
    """Registers :class:`ScriptedMiner`: ``sedna_pm.register(DoublesPlugin())``."""

    @hookimpl
    def sedna_register_hard_example_miners(self) -> list[type[BaseHardExampleMiner]]:
        """The miner classes it registers: :class:`ScriptedMiner`."""
        return [ScriptedMiner]
