"""Sedna's lifelong-learning example (ATCII: train, eval and inference workers) runs on
sedna-core via sedna-compat, each worker a process with the variables Sedna's controller sets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HEADER = [
    "Season",
    "Cooling startegy_building level",
    "Air temperature",
    "Relative humidity",
    "City",
    "Thermal preference",
]


def _table(path: Path, n: int, seed: int, seasons: tuple[str, ...] = ("Summer", "Winter")) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(n):
            season = seasons[i % len(seasons)]
            cooling = ("Air Conditioned", "Naturally Ventilated")[(i // len(seasons)) % 2]
            temp = rng.normal(26.0 if season == "Summer" else 18.0, 2.0)
            label = 0 if temp > 25 else (2 if temp < 19 else 1)
            writer.writerow([season, cooling, f"{temp:.2f}", f"{rng.uniform(30, 70):.1f}",
                             "Berlin", label])  # fmt: skip


def test_atcii_lifelong_example(tmp_path: Path, pods, lc) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _table(data / "trainData.csv", 160, seed=0)
    _table(data / "testData.csv", 40, seed=1)
    _table(data / "inferData.csv", 12, seed=2, seasons=("Summer", "Winter", "Spring"))
    output = tmp_path / "output"
    common = dict(
        NAMESPACE="default",
        JOB_NAME="atcii-classifier-demo",
        LC_SERVER=lc.url,
        OUTPUT_URL=output,
    )
    pods.run(
        "lifelong_learning/train.py",
        pods.env(**common, WORKER_NAME="train-worker-0", TRAIN_DATASET_URL=data / "trainData.csv"),
        tmp_path,
    )
    lc.wait_for(lambda ms: any(m["kind"] == "train" for m in ms))
    train = next(m for m in lc.bodies("train-worker-0") if m["kind"] == "train")
    assert train["status"] == "completed" and train["ownerKind"] == "lifelonglearningjob"

    pods.run(
        "lifelong_learning/eval.py",
        pods.env(**common, WORKER_NAME="eval-worker-0", TEST_DATASET_URL=data / "testData.csv"),
        tmp_path,
    )
    lc.wait_for(lambda ms: any(m["kind"] == "eval" for m in ms))
    evaluation = next(m for m in lc.bodies("eval-worker-0") if m["kind"] == "eval")
    assert evaluation["status"] == "completed"

    unseen_dir = tmp_path / "unseen"
    unseen_dir.mkdir()
    pods.run(
        "lifelong_learning/inference.py",
        pods.env(
            **common,
            WORKER_NAME="infer-worker-0",
            infer_dataset_url=data / "inferData.csv",
            UTD_NAME="TaskAttrFilter",
            UTD_SAVED_URL=unseen_dir,
        ),
        tmp_path,
    )
    out = (data / "inferData.csv_out.csv").read_text().splitlines()
    assert len(out) == 1 + 12
    assert all(line.split("\t")[-1] in {"0", "1", "2"} for line in out[1:])
    unseen = (unseen_dir / "unseen_sample.csv").read_text().splitlines()[1:]
    assert unseen and all(line.startswith("Spring") for line in unseen)  # a task never trained
