"""sedna-plugin-xgboost: native JSON/UBJ round trips, model bytes as weights, detection."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost
from sedna_plugin_xgboost import hooks
from sedna_plugin_xgboost.backend import XGBoostBackend
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.model_selection import train_test_split

from sedna_core.errors import BackendError
from sedna_core.plugins import resolve_algorithm
from sedna_core.testing import parametrize_with_checks


@parametrize_with_checks([XGBoostBackend])
def test_conformance(algorithm, check):
    check(algorithm)


@pytest.fixture(scope="module")
def trained():
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0)
    be = XGBoostBackend(lambda: xgboost.XGBClassifier(n_estimators=20, max_depth=3))
    history = be.train((xtr, ytr), valid_data=(xte, yte))
    return be, xte, yte, history


@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_save_load_identical(trained, tmp_path, fmt):
    be, xte, yte, history = trained
    assert len(history["val_mlogloss"]) == 20
    assert be.evaluate((xte, yte))["accuracy"] > 0.85
    written = be.save(tmp_path / f"m.{fmt}")
    assert written.endswith(f".{fmt}")
    fresh = XGBoostBackend()  # no estimator: the file says it is a classifier
    fresh.load(written)
    np.testing.assert_array_equal(fresh.predict(xte), be.predict(xte))
    np.testing.assert_array_equal(fresh.predict_proba(xte), be.predict_proba(xte))


def test_folder_uses_model_format(trained, tmp_path):
    be = XGBoostBackend(trained[0].model, model_format="json")
    assert be.save(tmp_path).endswith("model.json")
    assert be.save(tmp_path / "plain").endswith("plain/model.json")  # no suffix: a folder
    with pytest.raises(BackendError, match=r"\.json or \.ubj"):
        be.save(tmp_path / "model.pkl")


def test_weights_are_model_bytes(trained):
    be, xte, _, _ = trained
    weights = be.get_weights()
    assert len(weights) == 1 and weights[0].dtype == np.uint8
    fresh = XGBoostBackend(xgboost.XGBClassifier)
    fresh.set_weights(weights)
    np.testing.assert_array_equal(fresh.predict_proba(xte), be.predict_proba(xte))
    with pytest.raises(BackendError, match="uint8"):
        fresh.set_weights([np.zeros(3)])
    with pytest.raises(BackendError, match="not an XGBoost model"):
        fresh.set_weights([np.frombuffer(b"garbage", dtype=np.uint8)])


def test_regression_binary_and_errors(tmp_path):
    x, _ = load_iris(return_X_y=True)
    reg = XGBoostBackend(xgboost.XGBRegressor(n_estimators=5))
    with pytest.raises(BackendError, match="not trained"):
        reg.predict(x)
    reg.train((x[:, :3], x[:, 3]))
    assert set(reg.evaluate((x[:, :3], x[:, 3]))) == {"mean_squared_error", "r2"}
    with pytest.raises(BackendError, match="predict_proba"):
        reg.predict_proba(x[:, :3])
    loaded = XGBoostBackend()
    loaded.load(reg.save(tmp_path / "r.ubj"))
    assert isinstance(loaded.model, xgboost.XGBRegressor)
    xb, yb = load_breast_cancer(return_X_y=True)
    clf = XGBoostBackend(xgboost.XGBClassifier(n_estimators=5))
    clf.train((xb, yb))
    assert clf.evaluate((xb, yb), ["roc_auc", "f1"])["roc_auc"] > 0.95
    with pytest.raises(BackendError, match="proximal"):
        clf.train((xb, yb), proximal_mu=0.01)
    with pytest.raises(BackendError, match="XGBClassifier"):
        XGBoostBackend(estimator=object())
    with pytest.raises(BackendError, match="model_format"):
        XGBoostBackend(model_format="pickle")


def test_detection(sedna_pm):
    sedna_pm.register(hooks)
    assert resolve_algorithm("backend", "xgboost", plugin_manager=sedna_pm) is XGBoostBackend
    assert hooks.sedna_detect_backend(xgboost.XGBClassifier()) == "xgboost"
    assert hooks.sedna_detect_backend(xgboost.XGBRegressor) == "xgboost"
    assert hooks.sedna_detect_backend(xgboost.Booster()) is None


def test_federated_jobs_refuse_xgboost_at_start():
    from sedna_plugin_xgboost.backend import FEDERATED_REFUSAL

    from sedna_core.jobs.federated import FederatedLearning

    x, y = load_iris(return_X_y=True)
    with pytest.raises(BackendError) as err:
        XGBoostBackend(xgboost.XGBClassifier(n_estimators=2)).prepare_federated((x, y))
    assert str(err.value) == FEDERATED_REFUSAL and "no weights to average" in FEDERATED_REFUSAL
    # nothing listens on port 9: the refusal comes before any connection
    fl = FederatedLearning(xgboost.XGBClassifier(n_estimators=2), address="ws://127.0.0.1:9")
    with pytest.raises(BackendError, match="XGBoost cannot take part in a federated job"):
        fl.train((x, y))
