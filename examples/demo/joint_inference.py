"""Demo section: joint inference on the benchmark scenario, with a real BigModelService.

Edge: logistic regression on 4x4-pooled digits. Cloud: an MLP on the full 8x8 digits, served by
``BigModelService`` on 127.0.0.1. Prints edge-only, cloud-only and joint accuracy with the share
of samples sent to the cloud, then what happens when the cloud goes away.
"""

from __future__ import annotations

import time

import numpy as np

from examples.demo.digits_cascade import build_scenario
from sedna_core.jobs.joint_inference import BigModelService, JointInference

JOB = "digits-demo"
BATCH = 64


def _pick_threshold(edge_p: np.ndarray, cloud_p: np.ndarray, y: np.ndarray) -> float:
    """The Confidence threshold sending the fewest samples up for 99% of cloud-only accuracy."""
    target = 0.99 * (cloud_p.argmax(1) == y).mean()
    for t in np.unique(edge_p.max(1)):
        hard = edge_p.max(1) < t
        if (np.where(hard, cloud_p.argmax(1), edge_p.argmax(1)) == y).mean() >= target:
            return float(t)
    return 1.01


def _run_all(ji: JointInference, x: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    finals = [ji.inference_batch(x[i : i + BATCH])[1] for i in range(0, len(x), BATCH)]
    return np.concatenate(finals), time.perf_counter() - started


def run() -> None:
    sc = build_scenario()
    x, y = sc["x_test"], sc["y_test"]
    edge_p = sc["edge"].predict(x)
    threshold = _pick_threshold(edge_p, sc["cloud"].predict(x), y)
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
        print(f"joint keeps {joint / cloud:.1%} of cloud-only accuracy sending {rows[2][2]:.0%} up")

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
