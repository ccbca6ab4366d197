"""Demo section: one estimator per framework, trained and scored on scikit-learn's digits.

Each model goes through ``set_backend`` (backend detected from its type), trains, predicts,
saves in its framework's safe format and loads back into a fresh backend; then the plugin
listing shows where the backends came from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _keras_model() -> Any:
    import keras

    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _torch_model() -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _estimators() -> list[tuple[str, Callable[[], Any], dict[str, Any]]]:
    """(label, model factory, backend parameters); frameworks are imported only here."""
    import xgboost
    from sklearn.linear_model import LogisticRegression

    from sedna_core.testing.doubles import InMemoryEstimator

    return [
        ("sklearn", lambda: LogisticRegression(solver="newton-cg"), {}),
        ("xgboost", lambda: xgboost.XGBClassifier(n_estimators=30, max_depth=3), {}),
        ("torch", _torch_model, {"epochs": 10, "learning_rate": 0.01, "seed": 0}),
        ("keras", _keras_model, {"epochs": 10, "learning_rate": 0.01, "seed": 0}),
        ("custom", lambda: InMemoryEstimator(n_classes=10), {}),
    ]


def run() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from sedna_core.backends import set_backend
    from sedna_core.cli.main import main as sedna_cli
    from sedna_core.datasources import BaseDataSource
    from sedna_core.log import configure_logging
    from sedna_core.plugins import create_algorithm

    configure_logging()  # LOG_LEVEL (the demo sets WARNING)

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(
        (x / 16.0).astype(np.float32), y, test_size=0.3, random_state=0
    )
    train = BaseDataSource(xtr, ytr)
    print(f"digits: {len(xtr)} training and {len(xte)} test images of 8x8 pixels, 10 classes")
    print(f"{'backend':<9} {'class':<15} {'accuracy':>8}  {'saved as':<18} reloaded")
    with tempfile.TemporaryDirectory() as tmp:
        for label, factory, params in _estimators():
            if params:  # framework options: the backend by name, as a job's config gives it
                spec = {"method": label, "param": {"estimator": factory, **params}}
                be = create_algorithm("backend", spec)
            else:  # just a model: the backend is detected from its type
                be = set_backend(factory())
            be.train(train)
            accuracy = be.evaluate((xte, yte), ["accuracy"])["accuracy"]
            written = Path(be.save(Path(tmp) / label))  # a folder: the backend names the file
            fresh = type(be)(**{**be.get_params(), "estimator": factory})
            fresh.load(written)
            same = np.array_equal(np.asarray(fresh.predict(xte)), np.asarray(be.predict(xte)))
            print(
                f"{be.name:<9} {type(be).__name__:<15} {accuracy:>8.3f}  {written.name:<18} "
                f"{'identical predictions' if same else 'PREDICTIONS DIFFER'}"
            )
    print("\n$ sedna plugins list")
    sedna_cli(["plugins", "list"])
