"""Sedna's lifelong-learning example (ATCII thermal comfort: ``train.py``, ``eval.py``,
``inference.py`` and its own ``feature_process``, unchanged) runs on sedna-core through
sedna-compat, pod by pod, with the variables Sedna's controller gives each pod: without a
knowledge base (the inference pod reads ``MODEL_URLS=<OUTPUT_URL>/deploy/index.pkl``), and with
one (``KB_SERVER``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sedna_core.knowledge_base import KnowledgeBaseServer

HEADER = [
    "Season",
    "Cooling startegy_building level",
    "Air temperature",
    "Relative humidity",
    "City",
    "Thermal preference",
]


def _table(path: Path, n: int, seed: int, seasons: tuple[str, ...] = ("Summer", "Winter")) -> None:
    """Rows like the preprocessed ATCII data: every (season, cooling) task sees all 3 labels."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(n):
            season = seasons[i % len(seasons)]
            cooling = 1 + (i // len(seasons)) % 2
            temp = rng.uniform(16.0, 30.0) + (1.0 if season == "Summer" else -1.0)
            # 1..3: Sedna's feature_process turns a label 0 into 1 (``if x`` on 0)
            label = 1 if temp > 25 else (3 if temp < 20 else 2)
            writer.writerow([season, cooling, f"{temp:.2f}", f"{rng.uniform(30, 70):.1f}",
                             "Berlin", label])  # fmt: skip


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBaseServer]:
    server = KnowledgeBaseServer(data_dir=str(tmp_path / "kb"), port=0, host="127.0.0.1")
    server.start_in_background()
    try:
        yield server
    finally:
        server.stop_background()


@pytest.mark.parametrize("with_kb", [False, True], ids=["output-url", "kb-server"])
def test_atcii_lifelong_example_pod_by_pod(
    tmp_path: Path, pods, lc, with_kb: bool, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _table(data / "trainData.csv", 200, seed=0)
    _table(data / "testData.csv", 60, seed=1)
    # 12 rows to predict (Spring: a task never trained), then one more: when the model has
    # predicted it, the 12 answers before it have been written
    _table(data / "inferData.csv", 13, seed=2, seasons=("Summer", "Winter", "Spring"))
    output = tmp_path / "output"
    common: dict[str, object] = dict(
        NAMESPACE="default", JOB_NAME="atcii-classifier-demo", LC_SERVER=lc.url, OUTPUT_URL=output
    )
    if with_kb:
        kb = request.getfixturevalue("kb")
        common["KB_SERVER"] = kb.url

    # train pod: the dataset, the output folder, and the CRD's hyperparameters
    pods.run(
        "lifelong_learning/atcii/train.py",
        pods.env(**common, WORKER_NAME="train-worker-0", TRAIN_DATASET_URL=data / "trainData.csv",
                 early_stopping_rounds=10, metric_name="mlogloss"),
        tmp_path,
    )  # fmt: skip
    train = next(m for m in lc.bodies("train-worker-0") if m["kind"] == "train")
    assert train["status"] == "completed" and train["ownerKind"] == "lifelonglearningjob"
    index_url = train["results"][0]["url"]
    metrics = train["results"][0]["metrics"]
    assert len(metrics) == 4  # a model per (season, cooling strategy) task
    assert all("mlogloss" in m for m in metrics.values())

    # eval pod: MODEL_URLS is the index the train pod reported; the CRD's drop threshold
    pods.run(
        "lifelong_learning/atcii/eval.py",
        pods.env(**common, WORKER_NAME="eval-worker-0", MODEL_URLS=index_url,
                 TEST_DATASET_URL=data / "testData.csv", model_threshold=0.5),
        tmp_path,
    )  # fmt: skip
    evaluation = next(m for m in lc.bodies("eval-worker-0") if m["kind"] == "eval")
    assert evaluation["status"] == "completed"
    assert evaluation["results"][0]["metrics"]["precision_score"] > 0.5

    # inference pod: Sedna's controller points MODEL_URLS at <output>/deploy/index.pkl
    unseen_dir = tmp_path / "unseen"
    unseen_dir.mkdir()
    pods.run_until_predicted(
        "lifelong_learning/atcii/inference.py",
        pods.env(**common, WORKER_NAME="infer-worker-0",
                 MODEL_URLS=f"{output}/deploy/index.pkl", infer_dataset_url=data / "inferData.csv",
                 UTD_SAVED_URL=unseen_dir),
        tmp_path,
        count=13,
    )  # fmt: skip
    rows = (data / "inferData.csv_out.csv").read_text().splitlines()[1:13]
    assert len(rows) == 12
    assert all(line.split("\t")[-1] in {"1", "2", "3"} for line in rows)
    unseen = (unseen_dir / "unseen_sample.csv").read_text().splitlines()[1:]
    assert unseen and {line.split("\t")[0] for line in unseen} == {"Spring"}
    # our JSON index and artifacts only: nothing pickled was written or read
    assert not list(tmp_path.rglob("*.pkl"))
    if not with_kb:
        assert (output / "deploy" / "index.json").is_file()
