"""Joint inference: a small model on the edge, a big model in the cloud for the hard examples.

Cloud::

    BigModelService(estimator=big_model).start()          # serves POST /{JOB_NAME}/predict

Edge::

    ji = JointInference(estimator=small_model, hard_example_mining={"method": "Confidence",
                        "param": {"threshold": 0.9}})
    is_hard, final, edge, cloud = ji.inference(x)           # Sedna's call, one request
    is_hard, final, edge, cloud = ji.inference_batch(xs)    # per-sample mining, one cloud call
    ji.calibrate(x_val, y_val, max_accuracy_loss=0.01)      # threshold from validation data

See ``docs/joint-inference.md``.
"""

from sedna_core.jobs.joint_inference._breaker import CircuitBreaker
from sedna_core.jobs.joint_inference._calibration import (
    Calibration,
    calibrate_threshold,
    min_validation_samples,
)
from sedna_core.jobs.joint_inference._edge import JointInference
from sedna_core.jobs.joint_inference._service import BigModelService
from sedna_core.jobs.joint_inference._stats import InferenceStats

#: Sedna's name for :class:`BigModelService` before its 2021 rename
TSBigModelService = BigModelService

__all__ = [
    "BigModelService",
    "Calibration",
    "CircuitBreaker",
    "InferenceStats",
    "JointInference",
    "TSBigModelService",
    "calibrate_threshold",
    "min_validation_samples",
]
