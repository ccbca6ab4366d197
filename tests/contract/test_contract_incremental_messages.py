"""Contract: an incremental-learning worker tells the local controller what Sedna's worker
tells it. The same program (train, then evaluate the trained model) runs under Sedna's real SDK
(``real_sedna``) and under sedna-compat, each against a stub of the local controller, with the
variables Sedna's controller sets; the message sequences must match: one message per phase,
the same kinds, statuses and shapes, and the model reported under ``MODEL_URL`` (with
``DATA_PATH_PREFIX`` removed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

PROGRAM = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from sedna.core.incremental_learning import IncrementalLearning
    from sedna.datasources import BaseDataSource

    class Estimator:
        def __init__(self, **kwargs):
            self.w = 0.0
        def train(self, train_data, valid_data=None, **kwargs):
            self.w = float(np.mean(train_data.y))
            return {"loss": 0.25}
        def predict(self, data, **kwargs):
            return np.full(len(data), self.w)
        def evaluate(self, data, **kwargs):
            return {"precision": [1.0], "recall": [0.5]}
        def save(self, model_path=None):
            with open(model_path, "w") as fh:
                json.dump({"w": self.w}, fh)
            return model_path
        def load(self, model_url=None):
            with open(model_url) as fh:
                self.w = json.load(fh)["w"]

    data = BaseDataSource(data_type="train")
    data.x = np.arange(16.0).reshape(8, 2)
    data.y = np.array([0, 1] * 4)
    # an instance: Sedna's generic backend evaluates without building a class first
    if sys.argv[1] == "train":
        IncrementalLearning(estimator=Estimator()).train(data)
    else:
        IncrementalLearning(estimator=Estimator()).evaluate(data)
    """
)


class LocalController:
    """Records ``POST /sedna/workers/{worker}/info`` bodies."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        messages = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                messages.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def controller() -> Iterator[LocalController]:
    lc = LocalController()
    yield lc
    lc.close()


def _pod_env(lc: LocalController, root: Path, worker: str, **extra: str) -> dict[str, str]:
    return {
        "LC_SERVER": lc.url, "NAMESPACE": "default", "JOB_NAME": "helmet-detection-demo",
        "WORKER_NAME": worker, "DATA_PATH_PREFIX": str(root), "BACKEND_TYPE": "SKLEARN",
        **extra,
    }  # fmt: skip


def _ours(code: str, phase: str, env: dict[str, str], cwd: Path) -> None:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    proc = subprocess.run(
        [sys.executable, "-c", code, phase], env={**keep, **env}, cwd=cwd,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


def _sedna(real_sedna: Any, code: str, phase: str, env: dict[str, str], cwd: Path) -> None:
    proc = subprocess.run(
        [str(real_sedna.python), "-c", code, phase], env=real_sedna.env(**env), cwd=cwd,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


def _shape(message: dict[str, Any]) -> tuple[Any, ...]:
    results = message.get("results") or []
    return (
        message["path"].split("/")[-1], message["kind"], message.get("status"),
        message["ownerKind"], message["ownerName"], message["namespace"], sorted(message),
        [sorted(r) for r in results],
    )  # fmt: skip


def test_incremental_worker_messages_match_sednas(
    tmp_path: Path, real_sedna: Any, controller: LocalController
) -> None:
    reports: dict[str, list[dict[str, Any]]] = {}
    for who in ("sedna", "ours"):
        root = tmp_path / who
        models = root / "models" / "train" / "1"
        cwd = root / "pod"
        cwd.mkdir(parents=True)
        run = (lambda *a: _sedna(real_sedna, *a)) if who == "sedna" else _ours
        start = len(controller.messages)
        run(PROGRAM, "train", _pod_env(controller, root, "train-worker-0",
                                       MODEL_URL=f"{models}/", SEDNA_IL_WORKSPACE=str(cwd / "ws")),
            cwd)  # fmt: skip
        (train,) = controller.messages[start:]  # one message for the train phase
        model_url = train["results"][0]["url"]
        assert Path(model_url).parent == Path("/models/train/1"), (who, model_url)
        assert (root / model_url.lstrip("/")).is_file()  # the url is the file, prefix removed
        trained = str(root / model_url.lstrip("/"))
        run(PROGRAM, "eval", _pod_env(controller, root, "eval-worker-0", MODEL_URLS=trained), cwd)
        reports[who] = controller.messages[start:]

    sedna, ours = reports["sedna"], reports["ours"]
    assert [_shape(m) for m in ours] == [_shape(m) for m in sedna]
    assert [(m["kind"], m["status"]) for m in ours] == [
        ("train", "completed"),
        ("eval", "completed"),
    ]
    assert ours[0]["results"][0]["metrics"] == sedna[0]["results"][0]["metrics"] == {"loss": 0.25}
    assert ours[1]["results"][0]["metrics"] == sedna[1]["results"][0]["metrics"]
