"""Miners that judge probabilities get them whatever the edge's ``predict`` returns, while the
job's results keep Sedna's shape; input a miner cannot judge is said once; a refused token is
named as such."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from structlog.testing import capture_logs

from sedna_core.jobs.joint_inference import JointInference


@pytest.fixture
def sk_pm(hem_pm):
    """The test's plugin manager with the scikit-learn backend beside the miners."""
    import sedna_plugin_sklearn.hooks

    hem_pm.register(sedna_plugin_sklearn.hooks, name="sedna-plugin-sklearn")
    return hem_pm


@pytest.fixture
def labelled(models):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 8))
    return x, models.cloud.predict(x).argmax(1)


@pytest.fixture
def sk_edge(labelled):
    x, y = labelled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(max_iter=50, C=0.05).fit(x[:200], y[:200])


def test_sklearn_edge_labels_are_mined_on_predict_proba(serve, sk_edge, labelled, sk_pm):
    x, y = labelled
    cloud = LogisticRegression(max_iter=500).fit(x, y)  # labels from the cloud too
    svc = serve(cloud)
    with JointInference(sk_edge, "Confidence", cloud_url=svc.url, job_name="ji") as ji:
        is_hard, final, edge, _cloud_rows = ji.inference_batch(x[200:])
        assert 0.05 < is_hard.mean() < 0.95  # mined on probabilities, not on labels
        expected = sk_edge.predict_proba(x[200:]).max(1) < 0.8
        np.testing.assert_array_equal(is_hard, expected)
        # Sedna's shape: the edge's labels, the cloud's labels where it answered
        np.testing.assert_array_equal(edge, sk_edge.predict(x[200:]))
        assert final.shape == (100,) and final.dtype.kind == "i"
        np.testing.assert_array_equal(final[is_hard], cloud.predict(x[200:][is_hard]))
        # one request (Sedna's call): the edge's label is the result, its probabilities judged
        hard, _final_one, edge_one, _ = ji.inference(x[200:201])
        assert hard == bool(expected[0]) and edge_one.shape == (1,)


def test_a_predict_that_returns_probabilities_is_used_as_is(serve, models, samples, hem_pm):
    svc = serve()
    calls = []
    edge = models.edge
    edge.predict_proba = lambda x: calls.append(1)  # must not be needed
    with JointInference(edge, "Confidence", cloud_url=svc.url, job_name="ji") as ji:
        is_hard = ji.inference_batch(samples)[0]
    np.testing.assert_array_equal(is_hard, models.edge.predict(samples).max(1) < 0.8)
    assert not calls


class LabelsOnly:
    """A custom estimator whose predict gives labels and that has no predict_proba."""

    def predict(self, x):
        return np.zeros(len(x), dtype=int)


def test_a_miner_without_probabilities_warns_once(serve, samples, hem_pm):
    svc = serve()
    with (
        capture_logs() as logs,
        JointInference(LabelsOnly(), "Confidence", cloud_url=svc.url, job_name="ji") as ji,
    ):
        for _ in range(3):
            assert not ji.inference_batch(samples)[0].any()
    warned = [e for e in logs if "cannot judge its input" in e["event"]]
    assert len(warned) == 1
    assert "class labels" in warned[0]["event"] and "predict_proba" in warned[0]["event"]


def test_ibt_on_class_probabilities_warns_once_and_names_the_right_miners(hem_pm):
    from sedna_plugin_hem import IBTFilter

    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=200)
    miner = IBTFilter()
    with capture_logs() as logs:
        assert not miner.mine(probs).any()
        assert not miner(probs[0])
    warned = [e for e in logs if "cannot judge its input" in e["event"]]
    assert len(warned) == 1 and "Confidence" in warned[0]["event"]


def test_wrong_token_is_named(serve, models, samples, hem_pm):
    svc = serve(token="right")
    with (
        capture_logs() as logs,
        JointInference(
            models.edge, "CloudOnly", cloud_url=svc.url, job_name="ji", token="wrong"
        ) as ji,
    ):
        for _ in range(2):
            assert ji.inference_batch(samples[:2])[3] == [None, None]
    warned = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warned == [
        "401 from the cloud: check SEDNA_TOKEN (the edge's token is missing or "
        "is not the big-model service's); answering from the edge meanwhile"
    ]
