"""Sedna's federated-learning example (surface-defect detection: ``aggregate.py`` and two
trainers running ``train.py``, unchanged) runs on sedna-core through sedna-compat, each worker a
process with the variables Sedna's controller sets. Trainers get no ``TEST_DATASET_URL``
(Sedna's controller sets none), and their Keras model is saved each round to
``MODEL_URL/MODEL_NAME``, a name without extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _dataset(root: Path, name: str, seed: int) -> Path:
    """The example's ``1.txt``/``2.txt``: ``<image path>,<label>`` lines beside small images."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    lines = []
    for i in range(16):
        label = i % 2  # 1: a defect (bright tile), 0: defect-free (dark tile)
        level = (200 if label else 60) + rng.integers(-20, 20)
        pixels = np.clip(level + rng.normal(0, 10, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"tile{i}.png")
        lines.append(f"{name}/tile{i}.png,{label}")
    index = root / f"{name}.txt"
    index.write_text("\n".join(lines) + "\n")
    return index


def test_surface_defect_detection_example(tmp_path: Path, pods, lc) -> None:
    data = tmp_path / "data"
    common = dict(
        NAMESPACE="default",
        JOB_NAME="surface-defect-detection",
        LC_SERVER=lc.url,
        aggregation_algorithm="FedAvg",
    )
    server = pods.server(
        "federated_learning/surface_defect_detection/aggregation_worker/aggregate.py",
        pods.env(**common, WORKER_NAME="aggworker-0", AGG_BIND_PORT=0, exit_round=2,
                 participants_count=2),
        tmp_path,
    )  # fmt: skip
    trainers = []
    for i in (1, 2):
        index = _dataset(data, f"edge{i}", seed=i)
        env = pods.env(
            **common,
            WORKER_NAME=f"edge{i}-trainworker",
            AGG_IP="127.0.0.1",
            AGG_PORT=server.port,
            TRAIN_DATASET_URL=index,
            MODEL_URL=tmp_path / f"model{i}",
            MODEL_NAME="surface-defect-detection-model",
            epochs=1,
            batch_size=8,
            learning_rate=0.01,
        )
        trainers.append(
            pods.spawn(
                "federated_learning/surface_defect_detection/training_worker/train.py",
                env,
                tmp_path,
            )
        )
    outputs = []
    for proc in trainers:
        out, _ = proc.communicate(timeout=180)
        outputs.append(out)
        assert proc.returncode == 0, out[-6000:]
    assert server.wait(timeout=120) == 0, server.output()[-6000:]

    for i, out in zip((1, 2), outputs, strict=True):
        # the missing TEST_DATASET_URL gave an empty validation set, said once
        assert out.count("no data file here") == 1, out[-6000:]
        reports = lc.bodies(f"edge{i}-trainworker")
        assert all(r["ownerKind"] == "federatedlearningjob" for r in reports)
        assert [r["status"] for r in reports if r["kind"] == "train"][-1] == "completed"
        assert "failed" not in [r["status"] for r in reports]
        assert max(r["ownerInfo"]["currentRound"] for r in reports if "ownerInfo" in r) == 2
        # Keras 3 needs .keras: the extension was added, and the log says where the model went
        model = tmp_path / f"model{i}" / "surface-defect-detection-model.keras"
        assert model.is_file(), list((tmp_path / f"model{i}").rglob("*"))
        assert "model saved" in out and str(model) in out


class _UnsavableEstimator:
    """Trains, but its save fails (a full disk, a framework refusing the path)."""

    def __init__(self) -> None:
        self.w = [np.zeros(3, np.float32)]

    def train(self, train_data, valid_data=None, **kwargs):
        self.w = [w + 1 for w in self.w]
        return {"loss": 0.0}

    def predict(self, x):
        return x

    def get_weights(self):
        return [w.copy() for w in self.w]

    def set_weights(self, weights):
        self.w = [np.asarray(w, np.float32) for w in weights]

    def save(self, model_path):
        raise OSError(f"No space left on device: {model_path!r}")


def test_a_failed_save_is_a_failed_step(tmp_path: Path, lc) -> None:
    from sedna_core.config.federated import FederatedConfig
    from sedna_core.errors import JobError
    from sedna_core.jobs.federated import AggregationServer, FederatedLearning

    server = AggregationServer("FedAvg", exit_round=1, participants_count=1, port=0)
    server.start_in_background()
    try:
        config = FederatedConfig.from_env(
            {"LC_SERVER": lc.url, "WORKER_NAME": "edge-0", "MODEL_URL": str(tmp_path / "m")}
        )
        client = FederatedLearning(
            _UnsavableEstimator(), address=server.ws_url, config=config, backend="custom"
        )
        with pytest.raises(JobError, match=r"could not save the model to .*No space left"):
            client.train([0, 1])
        client.close()
    finally:
        server.stop_background()
    lc.wait_for(lambda ms: any(m.get("status") == "failed" for m in ms))
    statuses = [m.get("status") for m in lc.bodies("edge-0") if m["kind"] == "train"]
    assert "failed" in statuses and "completed" not in statuses
