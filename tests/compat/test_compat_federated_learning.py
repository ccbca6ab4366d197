"""Sedna's federated-learning example (aggregation worker + two training workers) runs on
sedna-core via sedna-compat, each worker a process with the variables Sedna's controller sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _dataset(root: Path, name: str, seed: int) -> Path:
    """An index file of ``features.npy,label`` lines (the example's ``1.txt``/``2.txt``)."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    lines = []
    for i in range(40):
        label = int(rng.integers(0, 2))
        x = rng.normal(size=4).astype(np.float32) + (1.5 if label else -1.5)
        np.save(folder / f"s{i}.npy", x)
        lines.append(f"{name}/s{i}.npy,{label}")
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
        "federated_learning/aggregate.py",
        pods.env(
            **common,
            WORKER_NAME="aggworker-0",
            AGG_BIND_PORT=0,
            exit_round=3,
            participants_count=2,
        ),
        tmp_path,
    )
    trainers = []
    for i in (1, 2):
        index = _dataset(data, f"edge{i}", seed=i)
        env = pods.env(
            **common,
            WORKER_NAME=f"edge{i}-trainworker",
            AGG_IP="127.0.0.1",
            AGG_PORT=server.port,
            TRAIN_DATASET_URL=index,
            ORIGINAL_DATASET_URL=index,
            MODEL_URL=tmp_path / f"model{i}",
            epochs=1,
            batch_size=8,
            learning_rate=0.1,
        )
        trainers.append(pods.spawn("federated_learning/train.py", env, tmp_path))
    for proc in trainers:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-6000:]
    assert server.wait(timeout=120) == 0, server.output()[-6000:]

    # both workers reported every round to the local controller, Sedna's way
    for i in (1, 2):
        reports = lc.bodies(f"edge{i}-trainworker")
        assert reports, lc.messages
        assert all(r["ownerKind"] == "federatedlearningjob" for r in reports)
        assert all(r["ownerName"] == "surface-defect-detection" for r in reports)
        assert reports[-1]["kind"] == "train" and reports[-1]["status"] == "completed"
        rounds = [r["ownerInfo"]["currentRound"] for r in reports if "ownerInfo" in r]
        assert max(rounds) == 3
        assert any((tmp_path / f"model{i}").rglob("*")), "the final model was saved to MODEL_URL"
