"""Shared data and model factories for the backend x job matrix (tests/matrix/).

Everything is tiny and deterministic so that the whole matrix stays within a few minutes on two
cores: digits (8x8 pixels scaled to [0, 1]), a train/validation/test split, a Dirichlet label
splitter (Flower's ``DirichletPartitioner`` rule), and one factory per backend that builds a
fresh, *unfitted* model each call. Fits that several tests need are shared through
session-scoped fixtures (``central_scores``).

Use in a test module of this folder::

    def test_x(digits, backend_factories):
        model = backend_factories["sklearn"]()          # a fresh LogisticRegression
        ...

Backends whose framework is missing are skipped (``BACKENDS`` lists them all).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from examples.demo.federated import dirichlet_partition

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # two cores for eight engineers: no thread oversubscription

#: the five columns of the matrix, in the order reports list them
BACKENDS = ("sklearn", "xgboost", "torch", "keras", "custom")
N_CLASSES = 10
N_FEATURES = 64
SEED = 0


@dataclass(frozen=True)
class Digits:
    """Digits split three ways (stratified): train 60 %, validation 20 %, test 20 %."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_train, self.y_train

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_val, self.y_val

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_test, self.y_test


def load_digits_splits(seed: int = SEED) -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    x_tr, x_rest, y_tr, y_rest = train_test_split(
        x, y, test_size=0.4, stratify=y, random_state=seed
    )
    x_val, x_te, y_val, y_te = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed
    )
    return Digits(x_tr, y_tr, x_val, y_val, x_te, y_te)


def dirichlet_split(
    labels: np.ndarray, n_parts: int, alpha: float, seed: int = SEED, min_size: int = 10
) -> list[np.ndarray]:
    """Row indices per part, sorted: the demo's Dirichlet partition (Flower's
    ``DirichletPartitioner`` rule), with each part's rows in their original order."""
    parts = dirichlet_partition(np.asarray(labels), n_parts, alpha, seed=seed, min_size=min_size)
    return [np.sort(p) for p in parts]


def class_disjoint_split(labels: np.ndarray, n_parts: int) -> list[np.ndarray]:
    """Row indices per part where each part holds only its own digits (0-2, 3-5, 6-7, 8-9)."""
    groups = np.array_split(np.unique(labels), n_parts)
    return [np.flatnonzero(np.isin(labels, g)) for g in groups]


# -- one factory per backend: a fresh unfitted model each call ------------------------------


def make_sklearn(n_features: int = N_FEATURES, n_classes: int = N_CLASSES) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=200)


def make_xgboost(n_features: int = N_FEATURES, n_classes: int = N_CLASSES) -> Any:
    import xgboost

    return xgboost.XGBClassifier(
        n_estimators=20, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=SEED
    )


def make_torch(n_features: int = N_FEATURES, n_classes: int = N_CLASSES) -> Any:
    import torch

    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        torch.nn.Linear(n_features, 32), torch.nn.ReLU(), torch.nn.Linear(32, n_classes)
    )


def make_keras(n_features: int = N_FEATURES, n_classes: int = N_CLASSES) -> Any:
    import keras

    keras.utils.set_random_seed(SEED)
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )


class CustomSoftmax:
    """A Sedna "Customize" estimator: multinomial logistic regression by minibatch SGD (numpy).

    It has Sedna's estimator methods (``train``, ``predict``, ``predict_proba``, ``evaluate``,
    ``load``, ``save``, ``get_weights``, ``set_weights``); ``save`` writes ``.npz`` (plain
    arrays, loaded with ``allow_pickle=False``).
    """

    def __init__(
        self,
        lr: float = 0.5,
        epochs: int = 5,
        batch_size: int = 16,
        seed: int = SEED,
        n_features: int = N_FEATURES,
        n_classes: int = N_CLASSES,
    ) -> None:
        self.w = np.zeros((n_features, n_classes), np.float32)
        self.b = np.zeros(n_classes, np.float32)
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.rng = np.random.default_rng(seed)

    def predict_proba(self, x: Any) -> np.ndarray:
        z = np.asarray(x, dtype=np.float32) @ self.w + self.b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        from sedna_core.datasources import as_xy

        x, y = as_xy(train_data)
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        onehot = np.eye(self.w.shape[1], dtype=np.float32)[y]
        for _ in range(self.epochs):
            order = self.rng.permutation(len(x))
            for start in range(0, len(x), self.batch_size):
                i = order[start : start + self.batch_size]
                grad = self.predict_proba(x[i]) - onehot[i]
                self.w -= self.lr * (x[i].T @ grad) / len(i)
                self.b -= self.lr * grad.mean(axis=0)
        return {"accuracy": float((self.predict(x) == y).mean())}

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def evaluate(self, data: Any, **kwargs: Any) -> dict[str, float]:
        from sedna_core.datasources import as_xy

        x, y = as_xy(data)
        return {"accuracy": float((self.predict(x) == np.asarray(y)).mean())}

    def save(self, model_path: str) -> str:
        path = model_path if model_path.endswith(".npz") else model_path + ".npz"
        np.savez(path, w=self.w, b=self.b)
        return path

    def load(self, model_url: str) -> None:
        with np.load(model_url, allow_pickle=False) as f:
            self.w, self.b = f["w"].astype(np.float32), f["b"].astype(np.float32)

    def get_weights(self) -> list[np.ndarray]:
        return [self.w.copy(), self.b.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = np.array(weights[0], dtype=np.float32)
        self.b = np.array(weights[1], dtype=np.float32)


def make_custom(n_features: int = N_FEATURES, n_classes: int = N_CLASSES) -> Any:
    return CustomSoftmax(n_features=n_features, n_classes=n_classes)


#: ``FACTORIES[name](n_features=64, n_classes=10)``: a fresh unfitted model of that backend
FACTORIES: dict[str, Callable[..., Any]] = {
    "sklearn": make_sklearn,
    "xgboost": make_xgboost,
    "torch": make_torch,
    "keras": make_keras,
    "custom": make_custom,
}

#: keyword arguments of ``set_backend`` (and so of every job) per backend: small, fast training
BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    "sklearn": {},
    "xgboost": {},
    "torch": {"epochs": 5, "batch_size": 32, "learning_rate": 0.01, "seed": SEED, "device": "cpu"},
    "keras": {"epochs": 5, "batch_size": 32, "learning_rate": 0.01, "seed": SEED, "device": "cpu"},
    "custom": {},
}

_MODULES = {"sklearn": "sklearn", "xgboost": "xgboost", "torch": "torch", "keras": "keras"}


def require_backend(name: str) -> None:
    """Skip the calling test when ``name``'s framework is not installed."""
    module = _MODULES.get(name)
    if module is not None:
        pytest.importorskip(module)


def make_backend(name: str, model: Any = None, **options: Any) -> Any:
    """The ``name`` backend around a fresh model (or ``model``: an instance or a factory), with
    the matrix options (``options`` override them).

    Every job takes a backend instance as its estimator, so tests pass what this returns.
    """
    from sedna_core.plugins import resolve_algorithm

    require_backend(name)
    cls = resolve_algorithm("backend", name)
    return cls(
        FACTORIES[name]() if model is None else model, **{**BACKEND_OPTIONS[name], **options}
    )


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def digits() -> Digits:
    return load_digits_splits()


@pytest.fixture(scope="session")
def dirichlet_parts(digits: Digits) -> list[tuple[np.ndarray, np.ndarray]]:
    """4 client shards of the training split, Dirichlet(alpha=0.5), seed 0."""
    return [(digits.x_train[i], digits.y_train[i]) for i in dirichlet_split(digits.y_train, 4, 0.5)]


@pytest.fixture(scope="session")
def backend_factories() -> dict[str, Callable[..., Any]]:
    return dict(FACTORIES)


@pytest.fixture(scope="session", params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


@pytest.fixture(scope="session")
def central_scores(digits: Digits) -> Callable[[str], float]:
    """Test accuracy of a backend trained centrally on the whole training split (cached)."""
    cache: dict[str, float] = {}

    def score(name: str) -> float:
        if name not in cache:
            be = make_backend(name)
            be.train(digits.train)
            pred = _labels(be.predict(digits.x_test))
            cache[name] = float(np.mean(pred == digits.y_test))
        return cache[name]

    return score


def _labels(pred: Any) -> np.ndarray:
    """Class labels from a prediction: probabilities/logits (2-D) become their argmax."""
    arr = np.asarray(pred)
    return arr.argmax(axis=1) if arr.ndim == 2 else arr


labels_of = _labels
