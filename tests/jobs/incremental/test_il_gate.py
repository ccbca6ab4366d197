"""The deploy gate: candidate vs serving model on the same held-out data; versions; rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sedna_core.config.incremental import IncrementalConfig
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs.incremental import DeployGate, IncrementalLearning, ModelVersions


def _job(tmp_path: Path, il_pm: Any, reporter: Any, **kw: Any) -> IncrementalLearning:
    pm, _ = il_pm
    job = IncrementalLearning(
        LogisticRegression(),
        config=IncrementalConfig.from_env({}),
        workspace=tmp_path / "ws",
        plugin_manager=pm,
        **kw,
    )
    job.reporter = reporter
    return job


def test_il_first_model_deploys_and_reports(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(300)
    job = _job(tmp_path, il_pm, fake_reporter)
    job.train((x, y))
    d = job.last_decision
    # the unfitted instance given to the constructor "served" as version "initial"
    assert d is not None and d.deployed and d.candidate == "1" and d.serving == "initial"
    assert job.versions.serving == "1" and job.serving is not None
    assert job.serving.version == "1"
    # one message per phase, as Sedna's train worker: the gate's eval/deploy stay in the log
    assert fake_reporter.kinds() == [("train", "completed")]
    train_msg = next(m for m in fake_reporter.messages if m["kind"] == "train")
    assert train_msg["results"][0]["format"] == "skops"
    _, recorder = il_pm
    assert recorder.deployed[-1][1] == "1"
    info = job.versions.get("1")
    assert info.metadata["source"] == "train" and info.metadata["n_train"] == 300


def test_il_gate_deploys_a_better_candidate(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(400)
    xv, yv = sea_data(300, seed=1)
    job = _job(tmp_path, il_pm, fake_reporter, deploy_rule="accuracy_delta > 0.1")
    job.train((x, 1 - y))  # a bad first model: learnt the flipped concept
    job.train((x, y), eval_data=(xv, yv))
    d = job.last_decision
    assert d is not None and d.deployed and d.candidate == "2" and d.serving == "1"
    assert d.candidate_scores["accuracy"] > 0.9 > d.serving_scores["accuracy"]
    assert d.values["accuracy_delta"] == pytest.approx(
        d.candidate_scores["accuracy"] - d.serving_scores["accuracy"]
    )
    assert d.n_eval == 300 and d.values["wins"] > d.values["losses"]
    assert job.serving.version == "2"
    assert np.mean(job.inference_batch(xv).final == yv) > 0.9
    assert [k for k, _ in fake_reporter.kinds()] == ["train", "train"]  # one per train call
    job.propose("2", (xv, yv))  # asked directly, the gate reports Sedna's eval shape
    eval_msg = [m for m in fake_reporter.messages if m["kind"] == "eval"][-1]
    assert len(eval_msg["results"]) == 2  # candidate and serving model, Sedna's eval shape


def test_il_gate_rejects_a_worse_candidate(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(400)
    xv, yv = sea_data(300, seed=1)
    job = _job(tmp_path, il_pm, fake_reporter, deploy_rule="precision_delta > 0.1")
    job.train((x, y))
    job.train((x, 1 - y), eval_data=(xv, yv))
    d = job.last_decision
    assert d is not None and not d.deployed and d.candidate == "2"
    assert d.values["precision_delta"] < 0
    assert job.serving.version == "1" and job.versions.serving == "1"
    assert job.versions.rejected == ["2"]
    assert [v.version for v in job.versions.versions()] == ["1", "2"]  # kept for inspection
    # decisions persist beside the store, with both scores
    reopened = ModelVersions(tmp_path / "ws", job.versions.name, clock=job.clock)
    gate = next(x for x in reopened.decisions() if x.candidate == "2")
    assert gate.serving_scores["precision"] > gate.candidate_scores["precision"]
    assert reopened.rejected == ["2"]


def test_il_gate_small_margin_is_not_enough(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(400)
    xv, yv = sea_data(300, seed=1)
    job = _job(tmp_path, il_pm, fake_reporter, deploy_rule="accuracy_delta > 0.5")
    job.train((x, 1 - y))  # first model: the flipped concept (accuracy ~0)
    job.train((x[:50], y[:50]), eval_data=(xv, yv))  # far better: deployed
    job.train((x, y), eval_data=(xv, yv))  # a little better than that: not enough
    assert [d.deployed for d in job.decisions()] == [True, True, False]
    assert 0 < job.last_decision.values["accuracy_delta"] < 0.5
    assert job.serving.version == "2"


def test_il_gate_callable_rule_and_min_eval_size(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(400)
    seen: list[tuple[dict[str, float], dict[str, float]]] = []

    def f1_better(cand: dict[str, float], serv: dict[str, float]) -> bool:
        seen.append((cand, serv))
        return cand["f1"] > serv["f1"]

    job = _job(
        tmp_path, il_pm, fake_reporter, deploy_rule=f1_better, metrics=["f1"], min_eval_size=20
    )
    job.train((x, 1 - y))
    job.train((x, y), eval_data=sea_data(10, seed=2))
    assert not job.last_decision.deployed
    assert "needs at least 20" in job.last_decision.reason
    job.train((x, y), eval_data=sea_data(100, seed=2))
    assert job.last_decision.deployed and seen and "f1" in seen[-1][0]


def test_il_gate_needs_held_out_data_once_serving(tmp_path, il_pm, fake_reporter, sea_data):
    x, y = sea_data(200)
    job = _job(tmp_path, il_pm, fake_reporter)
    job.train((x, y))
    job.train((x, y))
    assert not job.last_decision.deployed
    assert "no held-out data" in job.last_decision.reason
    assert job.serving.version == "1"


def test_il_rollback_in_one_call(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(400)
    xv, yv = sea_data(200, seed=1)
    job = _job(tmp_path, il_pm, fake_reporter)
    job.train((x, 1 - y))
    first = job.inference_batch(xv).final
    job.train((x, y), eval_data=(xv, yv))
    assert job.serving.version == "2"
    d = job.rollback()
    assert d.kind == "rollback" and d.candidate == "1" and d.serving == "2"
    assert job.serving.version == "1" and job.versions.history == ["1"]
    np.testing.assert_array_equal(job.inference_batch(xv).final, first)
    with pytest.raises(JobError, match="nothing to roll back"):
        job.rollback()
    _, recorder = il_pm
    assert [v for _, v, _ in recorder.deployed] == ["1", "2", "1"]


def test_il_restart_serves_the_deployed_version(tmp_path, il_pm, fake_reporter, sea_data):
    x, y = sea_data(400)
    xv, yv = sea_data(200, seed=1)
    job = _job(tmp_path, il_pm, fake_reporter)
    job.train((x, 1 - y))
    job.train((x, y), eval_data=(xv, yv))
    expected = job.inference_batch(xv).final
    job.close()
    again = _job(tmp_path, il_pm, fake_reporter)
    out = again.inference_batch(xv)
    assert out.version == "2"
    np.testing.assert_array_equal(out.final, expected)


def test_il_manual_deploy_of_a_stored_version(tmp_path, il_pm, fake_reporter, sea_data):
    x, y = sea_data(200)
    job = _job(tmp_path, il_pm, fake_reporter)
    job.train((x, y))
    job.train((x, 1 - y), deploy=False)
    assert job.last_trained == "2" and job.serving.version == "1"
    d = job.deploy("2")
    assert d.deployed and d.kind == "deploy" and job.serving.version == "2"


class _Const:
    def __init__(self, pred: np.ndarray) -> None:
        self.pred = pred

    def predict(self, x: Any) -> np.ndarray:
        return self.pred


def test_il_gate_paired_statistics() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    cand = _Const(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0]))  # 9 right
    serv = _Const(np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 1]))  # 7 right
    gate = DeployGate("accuracy_delta > 0.1 and paired_z >= 1")
    r = gate.evaluate(cand, serv, (np.zeros((10, 1)), y))
    assert r.passed
    assert r.values["wins"] == 3 and r.values["losses"] == 1
    assert r.values["paired_z"] == pytest.approx(2 / np.sqrt(4))
    assert r.values["accuracy_delta"] == pytest.approx(0.2)
    assert not gate.evaluate(serv, cand, (np.zeros((10, 1)), y)).passed
    # no serving model: only the absolute terms of the rule apply
    first = DeployGate("accuracy > 0.95 and accuracy_delta > 0").evaluate(cand, None, (y, y))
    assert not first.passed and "absolute" in first.reason


def test_il_gate_rejects_unknown_metric_at_construction() -> None:
    with pytest.raises(ConfigError, match="precisoin"):
        DeployGate("precisoin_delta > 0.1")


def test_il_fitted_estimator_serves_until_a_version_does(tmp_path, il_pm, fake_reporter, sea_data):
    x, y = sea_data(300)
    xv, yv = sea_data(200, seed=1)
    fitted = LogisticRegression().fit(x, 1 - y)  # fitted on the wrong concept
    pm, _ = il_pm
    job = IncrementalLearning(
        fitted, config=IncrementalConfig.from_env({}), workspace=tmp_path / "ws", plugin_manager=pm
    )
    job.reporter = fake_reporter
    out = job.inference_batch(xv)
    assert out.version == "initial" and np.mean(out.final == yv) < 0.1
    job.train((x, y), eval_data=(xv, yv))
    d = job.last_decision
    assert d.deployed and d.serving == "initial" and d.serving_scores["accuracy"] < 0.1
    assert job.inference_batch(xv).version == "1"


def test_il_candidate_that_fails_scoring_is_rejected(tmp_path, il_pm, fake_reporter, sea_data):
    job = _job(tmp_path, il_pm, fake_reporter)
    x, y = sea_data(100)
    job.train((x, y))
    job.train((x[:, :2], y), deploy=False)  # a model for two features
    d = job.propose(job.last_trained, (x, y))
    assert not d.deployed and "cannot score" in d.reason
    assert job.serving.version == "1"
