"""``sedna serve inference`` started in a subprocess and queried over loopback."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import requests

from sedna_core import wire
from sedna_core.cli.main import main
from sedna_core.jobs.joint_inference import JointInference

MODEL_SOURCE = textwrap.dedent(
    """
    import numpy as np

    class Model:
        def __init__(self):
            self.w = None

        def fit(self, x, y):
            return self

        def load(self, model_url):
            with np.load(model_url, allow_pickle=False) as data:
                self.w = data["w"]

        def predict(self, x):
            return np.asarray(x, dtype=np.float64) @ self.w
    """
)


def _lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line)


def test_serve_inference_subprocess(tmp_path, models, samples, hem_pm):
    (tmp_path / "ji_cli_model.py").write_text(MODEL_SOURCE)
    w = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.savez(tmp_path / "big.npz", w=w)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    env.update(JOB_NAME="cli", SEDNA_LOG_FORMAT="json", LOG_LEVEL="WARNING")
    cmd = [
        sys.executable, "-m", "sedna_core.cli.main", "serve", "inference",
        "--estimator", "ji_cli_model:Model", "--model", str(tmp_path / "big.npz"),
        "--host", "127.0.0.1", "--port", "0", "--input-shape", "4", "--input-dtype", "float32",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    try:
        line = out.get(timeout=60)  # printed once the server listens
        assert line.startswith("serving http://127.0.0.1:"), line
        predict_url = line.split()[-1]
        base = predict_url.removesuffix("/cli/predict")
        pause = threading.Event()
        for _ in range(100):  # bounded poll of the health check
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pause.wait(0.05)
        x = np.ones((2, 4))
        resp = requests.post(predict_url, json={"data": x.tolist()}, timeout=10)
        np.testing.assert_allclose(resp.json()["result"], x @ w)
        resp = requests.post(
            predict_url,
            data=wire.encode({"data": x}),
            headers={"Content-Type": wire.CONTENT_TYPE},
            timeout=10,
        )
        result = wire.decode(resp.content)["result"]
        np.testing.assert_allclose(result, x.astype(np.float32) @ w)
        bad = requests.post(predict_url, json={"data": [[1, 2]]}, timeout=10)
        assert bad.status_code == 400 and "(n, 4)" in bad.json()["error"]["message"]
        # and an edge that sends everything there (the edge model never runs)
        ji = JointInference(
            models.edge,
            "CloudOnly",
            cloud_url=base,
            job_name="cli",
            mining_mode="mining-then-inference",
        )
        with ji:
            np.testing.assert_allclose(ji.inference(x)[3], x @ w)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, proc.stderr.read()


def test_serve_inference_reports_bad_estimators(capsys):
    assert main(["serve", "inference", "--estimator", "no_colon"]) == 2
    assert "MODULE:ATTR" in capsys.readouterr().err
    assert main(["serve", "inference", "--estimator", "no_such_module_xyz:Model"]) == 2
