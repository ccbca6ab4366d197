"""Joint inference against KubeEdge Sedna's real SDK, both directions: our edge against Sedna's
``BigModelService`` (no predict stream: HTTP POST with Sedna's JSON, found out once), and Sedna's
``JointInference`` edge against our ``BigModelService``. Sedna runs unmodified in its own venv."""

from __future__ import annotations

import json
import queue
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from sedna_core.jobs.joint_inference import InferenceStats, JointInference

# A model in Sedna's estimator style (load + predict), loaded from MODEL_URL by Sedna's backend.
MODEL = """
import json, sys
import numpy as np

class Softmax:
    def load(self, model_url=None, **kwargs):
        with np.load(model_url) as data:
            self.w = data["w"]

    def predict(self, data, **kwargs):
        logits = np.asarray(data, dtype=float) @ self.w
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).tolist()
"""

SEDNA_CLOUD = (
    MODEL
    + """
from sedna.core.joint_inference import BigModelService
BigModelService(estimator=Softmax).start()
"""
)

SEDNA_EDGE = (
    MODEL
    + """
class OneSample(Softmax):  # Sedna's miners judge one probability vector per request
    def predict(self, data, **kwargs):
        return Softmax.predict(self, data)[0]

from sedna.core.joint_inference import JointInference
ji = JointInference(
    estimator=OneSample,
    hard_example_mining={"method": "CrossEntropy", "param": {"threshold_cross_entropy": 1.0}},
)
out = []
for row in ROWS:
    is_hard, final, edge, cloud = ji.inference(np.array([row]))
    out.append({"hard": bool(is_hard), "final": final, "cloud": cloud})
print("RESULT " + json.dumps(out), flush=True)
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_line(proc, marker: str, timeout: float = 120) -> str:
    """Read the process's output until a line holds ``marker`` (or it exits: fail with it)."""
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = lines.get(timeout=timeout)
        if line is None:
            pytest.fail(f"the Sedna program ended before {marker!r}:\n{''.join(seen)}")
        seen.append(line)
        if marker in line:
            return line


@pytest.fixture
def weights(models, tmp_path) -> tuple[Path, Path]:
    cloud, edge = tmp_path / "big.npz", tmp_path / "small.npz"
    np.savez(cloud, w=models.cloud.w)
    np.savez(edge, w=models.edge.w)
    return cloud, edge


def test_our_edge_against_sednas_big_model_service(real_sedna, models, samples, weights, hem_pm):
    port = free_port()
    env = real_sedna.env(MODEL_URL=weights[0], BIG_MODEL_BIND_PORT=port, JOB_NAME="ji")
    proc = real_sedna.popen(SEDNA_CLOUD, env)
    try:
        wait_for_line(proc, "Uvicorn running on")
        with (
            capture_logs() as logs,
            JointInference(
                models.edge,
                "CloudOnly",
                big_model_ip="127.0.0.1",
                big_model_port=port,
                job_name="ji",
                cloud_timeout=10,
            ) as ji,
        ):
            for i in range(4):  # one request per call, as Sedna's own edge does
                _, final, _, cloud = ji.inference(samples[i : i + 1])
                np.testing.assert_allclose(cloud, models.cloud.predict(samples[i : i + 1]))
            _, final, _, _rows = ji.inference_batch(samples[4:12])  # and a batch in one call
            np.testing.assert_allclose(final, models.cloud.predict(samples[4:12]))
            assert ji.stats == InferenceStats(12, 12, 12, 0)
    finally:
        proc.terminate()
        proc.wait(30)
    switched = [e for e in logs if "no predict stream" in e["event"]]
    assert len(switched) == 1 and switched[0]["status"] == 403  # Sedna's FastAPI on the upgrade
    assert not [e for e in logs if e["log_level"] == "warning"]


def test_sednas_edge_against_our_big_model_service(real_sedna, serve, models, samples, weights):
    svc = serve()
    env = real_sedna.env(
        MODEL_URL=weights[1], BIG_MODEL_PORT=svc.port, JOB_NAME="ji", LC_SERVER="http://127.0.0.1:9"
    )
    rows = samples[:5].tolist()
    done = real_sedna.run(f"ROWS = {rows!r}\n" + SEDNA_EDGE, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert [o["hard"] for o in out] == [True] * 5
    for o, row in zip(out, rows, strict=True):
        expected = models.cloud.predict(np.array([row]))
        np.testing.assert_allclose(o["cloud"], expected)  # our service, in Sedna's JSON
        np.testing.assert_allclose(o["final"], expected)
