"""The fixed joint-inference scenario (issue 4, scenario S3): digits, a small edge model on
2x2-pooled images and a big cloud model on all pixels. Used by the demo and by
``benchmarks/joint_inference.py``, so both run exactly the same models."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def pool2x2(x: np.ndarray) -> np.ndarray:
    """8x8 digits -> 4x4 by averaging 2x2 blocks (16 features)."""
    return np.asarray(x, dtype=np.float64).reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)


class ProbaModel:
    """A scikit-learn classifier whose ``predict`` gives class probabilities (what miners judge)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, x: Any, y: Any) -> ProbaModel:
        self.model.fit(x, y)
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.model.predict_proba(np.asarray(x, dtype=np.float64))


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.5, stratify=y, random_state=0)  # type: ignore[return-value]


def edge_model(x_train: np.ndarray, y_train: np.ndarray) -> ProbaModel:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipe = make_pipeline(FunctionTransformer(pool2x2), LogisticRegression(max_iter=1000))
    with warnings.catch_warnings():
        # the scenario fixes max_iter=1000 on raw pixel averages; lbfgs stops short of its
        # tolerance there, which the benchmark's accuracy already reflects
        warnings.simplefilter("ignore")
        return ProbaModel(pipe).fit(x_train, y_train)


def cloud_model(x_train: np.ndarray, y_train: np.ndarray) -> ProbaModel:
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=(256,), max_iter=500, random_state=0)
    return ProbaModel(mlp).fit(x_train, y_train)


def build_scenario() -> dict[str, Any]:
    """The split and both trained models (deterministic)."""
    x_train, x_test, y_train, y_test = load_split()
    return {
        "x_train": x_train,
        "x_test": x_test,
        "y_train": y_train,
        "y_test": y_test,
        "edge": edge_model(x_train, y_train),
        "cloud": cloud_model(x_train, y_train),
    }


FOLDS = 5


def cross_fit(sc: dict[str, Any]) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities of both models on the training half (5 stratified folds).

    Every training sample is predicted by models that never saw it, so a threshold calibrated on
    these predictions is chosen without touching the test half.
    """
    from sklearn.model_selection import StratifiedKFold

    x, y = sc["x_train"], sc["y_train"]
    edge = np.zeros((len(x), 10))
    cloud = np.zeros((len(x), 10))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    for fit_idx, held_out in folds.split(x, y):
        edge[held_out] = edge_model(x[fit_idx], y[fit_idx]).predict(x[held_out])
        cloud[held_out] = cloud_model(x[fit_idx], y[fit_idx]).predict(x[held_out])
    return {"edge": edge, "cloud": cloud}
