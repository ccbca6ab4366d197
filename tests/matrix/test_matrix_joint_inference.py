"""Backend x job matrix, joint-inference column: every backend's edge model routes its uncertain
samples to the cloud usefully, at a threshold chosen on the validation split.

The edge model (the backend under test) learns from 150 training images only; the cloud is a
scikit-learn LogisticRegression on the whole training split, served by a real BigModelService.
The miner is Confidence, which needs class probabilities: scikit-learn, XGBoost and the custom
estimator predict labels (their ``predict_proba`` is used), torch gives logits (softmax),
Keras probabilities (used as they are). ``calibrate`` picks the threshold for 30% offload on the
validation split; the test split is scored once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from sedna_core.jobs.joint_inference import BigModelService, JointInference
from sedna_core.jobs.joint_inference._calibration import correct_answers

from .conftest import Digits, make_backend

EDGE_SAMPLES = 150


@pytest.fixture(scope="module")
def cloud_url(digits: Digits) -> Iterator[str]:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = LogisticRegression(max_iter=500).fit(*digits.train)
    with BigModelService(big, job_name="matrix", host="127.0.0.1", port=0) as svc:
        yield svc.url


def test_joint_inference(backend_name: str, digits: Digits, cloud_url: str) -> None:
    edge: Any = make_backend(backend_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of tiny fits
        edge.train((digits.x_train[:EDGE_SAMPLES], digits.y_train[:EDGE_SAMPLES]))
    with JointInference(
        edge, "Confidence", cloud_url=cloud_url, job_name="matrix", cloud_timeout=30
    ) as ji:
        cal = ji.calibrate(digits.x_val, digits.y_val, target_offload=0.3)
        is_hard, final, edge_rows, _ = ji.inference_batch(digits.x_test)
        assert ji.stats.cloud_failure_number == 0
    offload = float(is_hard.mean())
    edge_acc = float(correct_answers(edge_rows, digits.y_test).mean())
    joint_acc = float(correct_answers(final, digits.y_test).mean())
    print(
        f"{backend_name}: threshold {cal.params['threshold']:.3f}, offload {offload:.1%}, "
        f"edge-only {edge_acc:.1%}, joint {joint_acc:.1%}"
    )
    assert 0.10 <= offload <= 0.60
    assert joint_acc >= edge_acc + 0.02
