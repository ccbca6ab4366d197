"""sedna-plugin-sklearn in federated jobs: refusals at start, the job's classes, and local
training that continues from the global weights."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_plugin_sklearn.backend import SklearnBackend
from sklearn.datasets import make_blobs
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from structlog.testing import capture_logs

from sedna_core.errors import BackendError


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=400, centers=4, n_features=5, random_state=0)
    return x, y


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(),
        LinearSVC(),
        make_pipeline(StandardScaler(), LogisticRegression()),
        SGDClassifier(average=True),
        LinearRegression(),
    ],
    ids=["forest", "linearsvc", "pipeline", "averaged-sgd", "ols"],
)
def test_estimators_that_cannot_continue_are_refused(estimator, blobs) -> None:
    with pytest.raises(BackendError) as err:
        SklearnBackend(estimator).prepare_federated(blobs)
    text = str(err.value)
    assert "average=False" in text or ("SGDClassifier" in text and "LogisticRegression" in text)


def test_unfitted_classifier_starts_from_zeros_laid_out_for_the_job(blobs) -> None:
    x, y = blobs
    mine = y < 2  # this client sees classes 0 and 1 of the job's 0..3
    be = SklearnBackend(LogisticRegression(solver="saga", max_iter=1))
    assert be.federated_labels((x[mine], y[mine])) == [0, 1]
    be.prepare_federated((x[mine], y[mine]), classes=[0, 1, 2, 3])
    coef, intercept = be.get_weights()
    assert coef.shape == (4, 5) and not coef.any() and intercept.shape == (4,)
    be.train((x[mine], y[mine]))
    assert be.model.classes_.tolist() == [0, 1, 2, 3]  # absent classes kept, not dropped
    coef, _ = be.get_weights()
    assert coef.shape == (4, 5) and coef.any()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the fresh fit
def test_training_continues_from_the_global_weights(blobs) -> None:
    x, y = blobs
    reference = LogisticRegression(max_iter=500).fit(x, y)
    glob = [reference.coef_.copy(), reference.intercept_.copy()]
    be = SklearnBackend(LogisticRegression(solver="saga", max_iter=1))
    be.prepare_federated((x, y))
    be.set_weights(glob)
    be.train((x[:50], y[:50]))  # one local epoch from the global weights
    after = be.get_weights()[0]
    fresh = SklearnBackend(LogisticRegression(solver="saga", max_iter=1))
    fresh.train((x[:50], y[:50]))  # one epoch from scratch, outside a federated job
    start = np.linalg.norm(glob[0])
    assert np.linalg.norm(after - glob[0]) < 0.5 * start  # near where it started ...
    assert np.linalg.norm(fresh.model.coef_ - glob[0]) > np.linalg.norm(after - glob[0])
    assert be.model.get_params()["warm_start"] is False  # the user's setting is restored


def test_partial_fit_models_take_one_pass_and_keep_every_class(blobs) -> None:
    x, y = blobs
    be = SklearnBackend(SGDClassifier(random_state=0))
    mine = y >= 2
    be.prepare_federated((x[mine], y[mine]), classes=[0, 1, 2, 3])
    w = [np.ones((4, 5)), np.zeros(4)]
    be.set_weights(w)
    be.train((x[mine], y[mine]))
    assert be.model.classes_.tolist() == [0, 1, 2, 3]
    assert be.get_weights()[0].shape == (4, 5) and not np.array_equal(be.get_weights()[0], w[0])
    reg = SklearnBackend(SGDRegressor(random_state=0))
    reg.prepare_federated((x, x[:, 0]))
    assert reg.federated_labels((x, x[:, 0])) is None
    assert reg.get_weights()[0].shape == (5,)
    reg.train((x, 2 * x[:, 0]))
    assert reg.get_weights()[0].any()


def test_a_fitted_model_on_some_classes_gets_rows_for_the_others(blobs) -> None:
    x, y = blobs
    pair = (y == 1) | (y == 3)
    model = LogisticRegression().fit(x[pair], y[pair])  # binary: one row scores class 3
    odds = model.predict_proba(x)[:, 1] / model.predict_proba(x)[:, 0]
    be = SklearnBackend(model)
    be.prepare_federated((x[pair], y[pair]), classes=[0, 1, 2, 3])
    assert be.model.coef_.shape == (4, 5) and be.model.classes_.tolist() == [0, 1, 2, 3]
    proba = be.predict_proba(x)
    np.testing.assert_allclose(proba[:, 3] / proba[:, 1], odds, rtol=1e-6)


def test_labels_outside_the_jobs_classes_are_an_error(blobs) -> None:
    x, y = blobs
    be = SklearnBackend(LogisticRegression(max_iter=1, solver="saga"))
    with pytest.raises(BackendError, match=r"labels \[3\] outside the job's classes"):
        be.prepare_federated((x, y), classes=[0, 1, 2])
    strings = SklearnBackend(LogisticRegression())
    assert strings.federated_labels((x[:4], np.array(["b", "a", "b", "c"]))) == ["a", "b", "c"]


def test_training_to_convergence_every_round_is_warned_about(blobs) -> None:
    with capture_logs() as logs:
        SklearnBackend(LogisticRegression()).prepare_federated(blobs)
        SklearnBackend(LogisticRegression(solver="saga", max_iter=1)).prepare_federated(blobs)
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert len(warned) == 1 and "max_iter=1 with solver='saga'" in warned[0]["event"]
