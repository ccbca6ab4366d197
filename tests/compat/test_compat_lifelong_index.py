"""Where a lifelong-learning job finds its knowledge without a knowledge base, as Sedna's
controller points its pods: ``MODEL_URLS`` naming the trained index (eval), or Sedna's
``<OUTPUT_URL>/deploy/index.pkl`` (inference), whose JSON twin is read; never a pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sedna_core.config.lifelong import LifelongConfig
from sedna_core.errors import JobError, KnowledgeBaseError
from sedna_core.jobs.lifelong import LifelongLearning
from sedna_core.jobs.lifelong._storage import index_file_for


def _data(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    season = np.array(["summer", "winter"])[rng.integers(0, 2, n)]
    city = np.array(["rome", "oslo"])[rng.integers(0, 2, n)]
    t = rng.normal(20, 5, n)
    return {"season": season, "city": city, "t": t}, (t > 20).astype(int)


def _job(env: dict[str, str]) -> LifelongLearning:
    # the string form: Sedna's default attributes (season, city), not a "task" column
    return LifelongLearning(
        LogisticRegression(), task_definition="TaskDefinitionByDataAttr",
        config=LifelongConfig.from_env({"JOB_NAME": "ll", **env}),
    )  # fmt: skip


def test_pods_find_the_index_where_sednas_controller_points(tmp_path: Path) -> None:
    out = tmp_path / "out"
    x, y = _data(400, seed=0)
    with _job({"OUTPUT_URL": str(out)}) as train:
        train.train((x, y))
        assert {t.entry for t in train.knowledge.tasks} == {
            "summer_rome", "summer_oslo", "winter_rome", "winter_oslo"
        }  # fmt: skip
        reported = train.storage.index_url
    assert reported == str(out / "index.json") and (out / "deploy" / "index.json").is_file()

    xt, yt = _data(100, seed=1)
    with _job({"MODEL_URLS": reported, "OUTPUT_URL": str(tmp_path / "eval")}) as evaluate:
        report = evaluate.evaluate((xt, yt), model_threshold=0.99, operator="<")
    assert report["dropped_tasks"]  # withdrawn in the knowledge the trainer left

    infer_env = {"MODEL_URLS": f"{out}/deploy/index.pkl", "OUTPUT_URL": str(out)}
    with _job(infer_env) as infer:
        result, _, _ = infer.inference(xt)
        assert len(result) == 100
        withdrawn = set(report["dropped_tasks"])
        assert {g.entry for g in infer.knowledge.groups if not g.deployed} == withdrawn
    assert not list(tmp_path.rglob("*.pkl"))


def test_a_pickled_index_is_never_read(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "index.pkl").write_bytes(pickle.dumps({"seen_task": None}))
    with _job({"MODEL_URLS": str(deploy / "index.pkl")}) as job, pytest.raises(JobError):
        job.inference(_data(5, seed=2)[0])  # nothing beside it: nothing learned yet
    (deploy / "index.json").write_bytes(pickle.dumps({"seen_task": None}))
    with (
        _job({"MODEL_URLS": str(deploy / "index.pkl")}) as job,
        pytest.raises(KnowledgeBaseError, match="sedna kb import-sedna"),
    ):
        job.inference(_data(5, seed=2)[0])


@pytest.mark.parametrize(
    ("url", "index"),
    [
        ("/o/deploy/index.pkl", "/o/deploy/index.json"),
        ("/o/index.json", "/o/index.json"),
        ("file:///o/index.json", "/o/index.json"),
        ("/o/kb", "/o/kb/index.json"),
        ("/o/index.pkl;/p/index.pkl", "/o/index.json"),
    ],
)
def test_index_file_for(url: str, index: str) -> None:
    assert index_file_for(url) == Path(index)
