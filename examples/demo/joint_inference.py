"""Demo section: joint inference on the benchmark scenario, with a real BigModelService.

Edge: logistic regression on 4x4-pooled digits. Cloud: an MLP on the full 8x8 digits, served by
``BigModelService`` on 127.0.0.1. Prints edge-only, cloud-only and joint accuracy with the share
of samples sent to the cloud (the threshold calibrated for 99% of cloud-only accuracy on
out-of-fold predictions of the training half, then scored once on the test half), then what
happens when the cloud goes away.
"""

from __future__ import annotations

import time

import numpy as np

from examples.demo.digits_cascade import build_scenario, cross_fit
from sedna_core.jobs.joint_inference import (
    BigModelService,
    JointInference,
    calibrate_threshold,
)

JOB = "digits-demo"
BATCH = 64


def _calibrated_threshold(sc: dict) -> float:
    """Confidence's threshold for 99% of cloud-only accuracy, chosen on out-of-fold predictions
    of the training half: the test half it is scored on is never looked at."""
    oof = cross_fit(sc)
    y = sc["y_train"]
    edge_ok, cloud_ok = oof["edge"].argmax(1) == y, oof["cloud"].argmax(1) == y
    cal = calibrate_threshold("Confidence", oof["edge"], edge_ok, cloud_ok, max_accuracy_loss=0.01)
    return float(cal.params["threshold"])


def _run_all(ji: JointInference, x: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    finals = [ji.inference_batch(x[i : i + BATCH])[1] for i in range(0, len(x), BATCH)]
    return np.concatenate(finals), time.perf_counter() - started


def run() -> None:
    sc = build_scenario()
    x, y = sc["x_test"], sc["y_test"]
    threshold = _calibrated_threshold(sc)  # chosen on the training half, scored on the test half
    with BigModelService(
        sc["cloud"], host="127.0.0.1", port=0, job_name=JOB, input_shape=(64,)
    ) as svc:
        print(f"cloud model served at {svc.predict_url} (JSON and binary tensors)")
        confidence = {"method": "Confidence", "param": {"threshold": threshold}}
        rows = []
        for label, spec in (
            ("edge only", "EdgeOnly"),
            ("cloud only", "CloudOnly"),
            (f"joint (Confidence < {threshold:.3f})", confidence),
        ):
            with JointInference(sc["edge"], spec, cloud_url=svc.url, job_name=JOB) as ji:
                final, seconds = _run_all(ji, x)
                stats = ji.stats
            accuracy = float((final.argmax(1) == y).mean())
            rows.append((label, accuracy, stats.upload_ratio, len(x) / seconds))
        print(f"{'routing':32s} {'accuracy':>9s} {'to cloud':>9s} {'samples/s':>10s}")
        for label, accuracy, ratio, rate in rows:
            print(f"{label:32s} {accuracy:9.2%} {ratio:9.1%} {rate:10.0f}")
        joint, cloud = rows[2][1], rows[1][1]
        print(
            f"joint keeps {joint / cloud:.1%} of cloud-only accuracy sending {rows[2][2]:.0%} up "
            "(threshold calibrated on the training half for 99%)"
        )

        ji = JointInference(sc["edge"], confidence, cloud_url=svc.url, job_name=JOB)
        is_hard, final, _, cloud_result = ji.inference(x[:1])  # Sedna's call
        print(
            f"one Sedna-style call: is_hard={is_hard}, answer={int(np.argmax(final))}, "
            f"cloud asked={cloud_result is not None}"
        )
    # the service is stopped now: the edge answers alone, within the timeout
    with ji:
        started = time.perf_counter()
        final, _ = _run_all(ji, x[: 4 * BATCH])
        seconds = time.perf_counter() - started
        stats = ji.stats
        print(
            f"cloud gone: {4 * BATCH} samples answered by the edge in {seconds:.2f} s, "
            f"accuracy {(final.argmax(1) == y[: 4 * BATCH]).mean():.2%}, "
            f"{stats.cloud_failure_number} hard samples fell back, breaker {ji.breaker.state}"
        )
