"""The flows of Sedna's SDK README, through sedna-compat: a Keras estimator built by a function
(``BACKEND_TYPE=KERAS``), an XGBoost estimator under ``BACKEND_TYPE=SKLEARN`` (as the README sets
it) with ``train(..., metric_name=..., early_stopping_rounds=...)``, and the "Customize"
estimator class, served by ``sedna serve inference`` under ``BACKEND_TYPE=TENSORFLOW``."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
from structlog.testing import capture_logs


def _table(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    x = {
        "season": np.array(["summer", "winter"])[rng.integers(0, 2, n)],
        "city": np.array(["rome", "oslo"])[rng.integers(0, 2, n)],
        "t": rng.uniform(10, 30, n),
        "h": rng.uniform(30, 70, n),
    }
    return x, np.digitize(x["t"], [17, 23])  # 3 classes in every task


def test_keras_estimator_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("sedna_plugin_keras")
    from sedna.core.incremental_learning import IncrementalLearning

    monkeypatch.setenv("BACKEND_TYPE", "KERAS")

    def KerasEstimator():
        model = keras.Sequential()
        model.add(keras.Input((4,)))
        model.add(keras.layers.Dense(8, activation="relu"))
        model.add(keras.layers.Dense(2, activation="softmax"))
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.eye(2)[(x[:, 0] > 0).astype(int)].astype("float32")
    monkeypatch.setenv("MODEL_URL", str(tmp_path / "model"))
    monkeypatch.setenv("SEDNA_IL_WORKSPACE", str(tmp_path / "ws"))
    with IncrementalLearning(estimator=KerasEstimator) as job:
        job.train((x, y), epochs=2)
        infer, _, is_hard = job.inference(x[:3])
    assert np.asarray(infer).shape == (3, 2) and is_hard is False
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["model.keras"]


def test_xgboost_under_backend_type_sklearn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xgboost = pytest.importorskip("xgboost")
    pytest.importorskip("sedna_plugin_xgboost")
    from sedna.core.incremental_learning import IncrementalLearning
    from sedna.core.lifelong_learning import LifelongLearning
    from sedna_plugin_xgboost.backend import XGBoostBackend

    monkeypatch.setenv("BACKEND_TYPE", "SKLEARN")
    XGBEstimator = xgboost.XGBClassifier(
        learning_rate=0.1, n_estimators=600, max_depth=2, min_child_weight=1, gamma=0,
        subsample=0.8, colsample_bytree=0.8, objective="multi:softmax", num_class=3, nthread=1,
        seed=27,
    )  # fmt: skip
    x, y = _table(400, seed=0)
    monkeypatch.setenv("OUTPUT_URL", str(tmp_path / "ll"))
    with LifelongLearning(estimator=XGBEstimator, task_definition="TaskDefinitionByDataAttr") as ll:
        feedback = ll.train((x, y), metric_name="mlogloss", early_stopping_rounds=20)
        assert set(feedback) == {"summer_rome", "summer_oslo", "winter_rome", "winter_oslo"}
        group = ll.knowledge.groups[0]
        assert isinstance(ll._backend_of(ll.knowledge, group), XGBoostBackend)
        assert group.model["format"] == "ubj"  # XGBoost's own format, not a pickle
        xt, yt = _table(100, seed=1)
        result, _, _ = ll.inference(xt)
        assert np.mean(np.asarray(result) == yt) > 0.8

    # no validation set given: early stopping holds one out, seeded, and says so
    monkeypatch.setenv("SEDNA_IL_WORKSPACE", str(tmp_path / "ws"))
    features = np.column_stack([x["t"], x["h"]])
    with IncrementalLearning(estimator=XGBEstimator) as il, capture_logs() as logs:
        il.train((features, y), metric_name="mlogloss", early_stopping_rounds=20)
    carved = [e for e in logs if e["event"].startswith("early stopping without validation")]
    assert carved and carved[0]["seed"] == 0 and carved[0]["validation_rows"] == 39


CUSTOMIZE = textwrap.dedent(
    """
    import json

    import numpy as np


    class Estimator:  # the README's "Customize" estimator, driving its framework itself
        def __init__(self, **kwargs):
            self.scale = 1.0

        def load(self, model_url=""):
            with open(model_url) as fh:
                self.scale = json.load(fh)["scale"]

        def save(self, model_path=None):
            with open(model_path, "w") as fh:
                json.dump({"scale": self.scale}, fh)

        def predict(self, data, **kwargs):
            return (np.asarray(data) * self.scale).tolist()

        def evaluate(self, valid_data, **kwargs):
            return {"loss": 0.0}

        def train(self, train_data, valid_data=None, **kwargs):
            return {"loss": 0.0}
    """
)


def test_customize_estimator_served_under_backend_type_tensorflow(tmp_path: Path) -> None:
    pytest.importorskip("sedna_plugin_keras")
    (tmp_path / "readme_estimator.py").write_text(CUSTOMIZE)
    (tmp_path / "model.json").write_text('{"scale": 3.0}')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    env.update(
        BACKEND_TYPE="TENSORFLOW", JOB_NAME="readme", MODEL_URL=str(tmp_path / "model.json"),
        BIG_MODEL_BIND_IP="127.0.0.1", BIG_MODEL_BIND_PORT="0", SEDNA_LOG_FORMAT="json",
    )  # fmt: skip
    cmd = [sys.executable, "-m", "sedna_core.cli.main", "serve", "inference",
           "--estimator", "readme_estimator:Estimator"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        try:
            line = lines.get(timeout=120)  # printed once the server listens
        except queue.Empty:
            line = ""
        assert line.startswith("serving http://127.0.0.1:"), (
            proc.stderr.read() if line == "" else line
        )
        resp = requests.post(line.split()[-1], json={"data": [1.0, 2.0]}, timeout=30)
        assert resp.status_code == 200 and resp.json()["result"] == [3.0, 6.0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "calling its methods" in err  # the user's class, with the framework's set-up
