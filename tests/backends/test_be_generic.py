"""The generic adapter: Sedna's duck-typed "Customize" estimator behind the backend interface."""

from __future__ import annotations

import numpy as np
import pytest

from sedna_core.backends import GenericBackend
from sedna_core.datasources import BaseDataSource
from sedna_core.errors import BackendError
from sedna_core.testing import parametrize_with_checks
from sedna_core.testing.doubles import InMemoryEstimator


@parametrize_with_checks([GenericBackend])
def test_conformance(algorithm, check):
    check(algorithm)


class SednaEstimator:
    """Shaped like the Estimator of Sedna's README: train/predict/evaluate/save/load."""

    instances = 0

    def __init__(self) -> None:
        SednaEstimator.instances += 1
        self.calls: list[tuple] = []
        self.saved: str | None = None

    def train(self, train_data, valid_data=None, **kwargs):
        self.calls.append(("train", train_data, valid_data, kwargs))
        return {"loss": 0.5}

    def predict(self, data, **kwargs):
        self.calls.append(("predict", kwargs))
        return np.asarray(data).sum(axis=1) > 0

    def evaluate(self, data, **kwargs):
        return 0.75

    def save(self, model_path):
        self.saved = model_path
        with open(model_path, "w") as fh:
            fh.write("weights")

    def load(self, model_url=""):
        self.calls.append(("load", model_url))


class FitOnly:
    """scikit-learn-like: fit(x, y) and predict, no train, no evaluate."""

    def fit(self, x, y, epochs=1):
        self.seen = (x, y, epochs)
        return self

    def predict(self, x):
        return (np.asarray(x)[:, 0] > 0).astype(int)

    def predict_proba(self, x):
        p = (np.asarray(x)[:, 0] > 0).astype(float)
        return np.stack([1 - p, p], axis=1)


def test_factory_is_called_lazily_once():
    SednaEstimator.instances = 0
    be = GenericBackend(SednaEstimator)
    assert SednaEstimator.instances == 0 and not be.has_model
    be.train("train-ds")
    be.predict(np.ones((2, 2)))
    assert SednaEstimator.instances == 1 and be.has_model


def test_sedna_call_shapes_pass_through(tmp_path):
    be = GenericBackend(SednaEstimator())
    ds = BaseDataSource(np.ones((3, 2)), np.zeros(3))
    assert be.train(ds, valid_data="valid", epochs=3, proximal_mu=0.1) == {"loss": 0.5}
    _, train_data, valid_data, kwargs = be.model.calls[0]
    assert train_data is ds and valid_data == "valid"  # datasources are not unpacked
    assert kwargs == {"epochs": 3, "proximal_mu": 0.1}  # **kwargs takes everything
    be.predict(np.ones((2, 2)), threshold=0.3)
    assert be.model.calls[-1] == ("predict", {"threshold": 0.3})
    assert be.evaluate(ds) == {"score": 0.75}  # a bare number becomes {"score": x}
    written = be.save(tmp_path / "sub" / "model.bin")
    assert written == str(tmp_path / "sub" / "model.bin") and be.model.saved == written
    be.load(written)
    assert be.model.calls[-1] == ("load", written)  # Sedna calls load(model_url=...)
    with pytest.raises(BackendError, match="no model file"):
        be.load(tmp_path / "missing.bin")
    with pytest.raises(BackendError, match="get_weights"):
        be.get_weights()
    with pytest.raises(BackendError, match="predict_proba"):
        be.predict_proba(np.ones((1, 2)))


def test_fit_style_estimator_and_computed_metrics():
    be = GenericBackend(FitOnly())
    x = np.array([[1.0, 0], [-1.0, 0], [2.0, 1], [-2.0, 1]])
    y = np.array([1, 0, 1, 1])
    be.train((x, y), epochs=2)  # no train(): fit(x, y), as scikit-learn spells it
    assert be.model.seen[0] is x and be.model.seen[1] is y and be.model.seen[2] == 2
    with pytest.raises(BackendError, match="proximal"):
        be.train((x, y), proximal_mu=0.5)  # fit() does not take it
    with pytest.raises(BackendError, match="no validation data"):
        GenericBackend(_OneArg()).train("data", valid_data="v")
    scores = be.evaluate((x, y), metrics=["accuracy", "roc_auc"])
    assert scores == {"accuracy": 0.75, "roc_auc": pytest.approx(5 / 6)}
    assert be.predict_proba(x).shape == (4, 2)


class _OneArg:
    def train(self, data):
        return data

    def predict(self, x):
        return x


def test_in_memory_estimator_weights_roundtrip(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = (x[:, 0] > 0).astype(int)
    be = GenericBackend(InMemoryEstimator)
    be.train((x, y))
    fresh = GenericBackend(InMemoryEstimator())
    fresh.set_weights(be.get_weights())
    np.testing.assert_array_equal(fresh.predict(x), be.predict(x))
    assert be.save(tmp_path / "m").endswith(".npz")  # the estimator's own returned path


def test_rejects_objects_without_methods():
    with pytest.raises(BackendError, match="has no predict"):
        GenericBackend(object())
    assert GenericBackend.accepts(lambda: None)  # a function: checked when it is called
    with pytest.raises(BackendError, match="has no predict"):
        _ = GenericBackend(lambda: object()).model
    with pytest.raises(BackendError, match="no estimator"):
        _ = GenericBackend().model
