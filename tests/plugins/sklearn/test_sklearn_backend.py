"""sedna-plugin-sklearn: skops round trips, the trust policy, linear weights, detection."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from sedna_plugin_sklearn import hooks
from sedna_plugin_sklearn.backend import SklearnBackend
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sedna_core.backends import set_backend
from sedna_core.datasources import BaseDataSource
from sedna_core.errors import BackendError
from sedna_core.testing import parametrize_with_checks


@parametrize_with_checks([SklearnBackend])
def test_conformance(algorithm, check):
    check(algorithm)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.3, random_state=0)


@pytest.fixture(scope="module")
def trained(digits):
    xtr, xte, ytr, yte = digits
    be = SklearnBackend(estimator=lambda: LogisticRegression(solver="newton-cg"))
    history = be.train(BaseDataSource(xtr, ytr), valid_data=(xte, yte))
    return be, history


def test_digits_train_evaluate_save_load(trained, digits, tmp_path):
    be, history = trained
    _, xte, _, yte = digits
    assert history["val_accuracy"][0] > 0.9
    scores = be.evaluate((xte, yte), metrics=["accuracy", "f1_macro", "neg_log_loss", "roc_auc"])
    assert scores["accuracy"] > 0.9 and scores["neg_log_loss"] < 0 and scores["roc_auc"] > 0.95
    written = be.save(tmp_path)  # a folder: model.skops inside
    assert written.endswith("model.skops")
    fresh = SklearnBackend()
    fresh.load(tmp_path)
    np.testing.assert_array_equal(fresh.predict(xte), be.predict(xte))
    np.testing.assert_array_equal(fresh.predict_proba(xte), be.predict_proba(xte))


def test_linear_weights_into_a_fresh_instance(trained, digits):
    be, _ = trained
    xte = digits[1]
    fresh = SklearnBackend(LogisticRegression())
    fresh.set_weights(be.get_weights())
    np.testing.assert_array_equal(fresh.predict(xte), be.predict(xte))
    np.testing.assert_allclose(fresh.predict_proba(xte), be.predict_proba(xte))
    with pytest.raises(BackendError, match="shape"):
        fresh.set_weights([np.zeros((3, 64)), np.zeros(3)])


def test_binary_and_regression(tmp_path):
    x, y = load_breast_cancer(return_X_y=True)
    be = SklearnBackend(make_pipeline(StandardScaler(), LogisticRegression()))
    be.train((x, y))
    assert set(be.evaluate((x, y), ["f1", "roc_auc"])) == {"f1", "roc_auc"}
    with pytest.raises(BackendError, match="linear model"):
        be.get_weights()  # a pipeline has no coef_
    xi, _ = load_iris(return_X_y=True)
    reg = SklearnBackend(LinearRegression())
    reg.train((xi[:, :3], xi[:, 3]))
    assert set(reg.evaluate((xi[:, :3], xi[:, 3]))) == {"mean_squared_error", "r2"}
    w = reg.get_weights()
    fresh = SklearnBackend(LinearRegression())
    fresh.set_weights(w)
    np.testing.assert_allclose(fresh.predict(xi[:, :3]), reg.predict(xi[:, :3]))
    with pytest.raises(BackendError, match="predict_proba"):
        reg.predict_proba(xi[:, :3])


def test_trust_policy(tmp_path):
    x, y = load_iris(return_X_y=True)
    forest = SklearnBackend(RandomForestClassifier(n_estimators=3, random_state=0))
    forest.train((x, y))
    path = forest.save(tmp_path / "forest.skops")
    loaded = SklearnBackend()
    loaded.load(path)  # sklearn.tree._tree.Tree: trusted as scikit-learn's own type
    np.testing.assert_array_equal(loaded.predict(x), forest.predict(x))

    # a type outside scikit-learn is refused unless listed in trusted=
    odd = make_pipeline(FunctionTransformer(_shift), LogisticRegression(max_iter=200)).fit(x, y)
    sio.dump(odd, tmp_path / "odd.skops")
    with pytest.raises(BackendError, match=r"not trusted: .*_shift"):
        SklearnBackend().load(tmp_path / "odd.skops")
    name = f"{_shift.__module__}._shift"
    trusting = SklearnBackend(trusted=[name])
    trusting.load(tmp_path / "odd.skops")
    np.testing.assert_array_equal(trusting.predict(x), odd.predict(x))
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(BackendError, match="not a skops file"):
        SklearnBackend().load(tmp_path / "junk.skops")
    with pytest.raises(BackendError, match="no model file"):
        SklearnBackend().load(tmp_path / "missing.skops")


def _shift(x):
    return x + 1.0


def test_detection_and_set_backend(sedna_pm, monkeypatch):
    monkeypatch.delenv("BACKEND_TYPE", raising=False)
    from sedna_plugin_xgboost import hooks as xgb_hooks
    from xgboost import XGBClassifier

    assert hooks.sedna_detect_backend(LogisticRegression()) == "sklearn"
    assert hooks.sedna_detect_backend(LogisticRegression) == "sklearn"  # a class: lazily built
    assert hooks.sedna_detect_backend(XGBClassifier()) is None  # xgboost's, not ours
    assert hooks.sedna_detect_backend(object()) is None
    sedna_pm.register(hooks)
    sedna_pm.register(xgb_hooks)
    assert type(set_backend(LogisticRegression())) is SklearnBackend
    assert set_backend(XGBClassifier()).name == "xgboost"
    assert type(set_backend(LogisticRegression, "SKLEARN")) is SklearnBackend
    with pytest.raises(BackendError, match="scikit-learn estimators"):
        SklearnBackend(estimator=object())


def test_fedprox_is_refused():
    with pytest.raises(BackendError, match="proximal"):
        SklearnBackend(LogisticRegression()).train(
            (np.zeros((4, 2)), [0, 1, 0, 1]), proximal_mu=0.1
        )
