"""Inference: Sedna's 3-tuple, the batch form mining per sample, the miner from the environment,
hard examples kept in service, the retrain trigger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sedna_core.config.incremental import IncrementalConfig
from sedna_core.errors import JobError
from sedna_core.jobs.incremental import IncrementalLearning

ENV = {
    "HEM_NAME": "Confidence",
    "HEM_PARAMETERS": '[{"key": "threshold", "value": "0.9"}]',
    "SEDNA_IL_TRAIN_TRIGGER": "num_of_samples > 5",
}


def _job(tmp_path: Path, il_pm: Any, env: dict[str, str], **kw: Any) -> IncrementalLearning:
    pm, _ = il_pm
    return IncrementalLearning(
        LogisticRegression(),
        config=IncrementalConfig.from_env(env),
        workspace=tmp_path / "ws",
        plugin_manager=pm,
        **kw,
    )


def test_il_inference_tuple_and_miner_from_env(tmp_path, il_pm, sea_data) -> None:
    x, y = sea_data(500)
    job = _job(tmp_path, il_pm, ENV, mine_proba=True)
    assert type(job.hem).__name__ == "ConfidenceFilter" and job.hem.threshold == 0.9
    job.train((x, y))
    proba = job.serving.model.predict_proba(x[:40])
    expected = proba.max(axis=1) < 0.9
    got = []
    for row in x[:40]:
        raw, final, is_hard = job.inference(row[None, :], post_process=lambda r: r + 10)
        assert final[0] == raw[0] + 10
        got.append(is_hard)
    assert got == expected.tolist()
    assert len(job.hard_examples) == int(expected.sum())
    assert job.stats["inference_number"] == 40
    assert job.stats["hard_example_number"] == int(expected.sum())


def test_il_batch_mines_per_sample_like_single_calls(tmp_path, il_pm, sea_data) -> None:
    x, y = sea_data(500)
    job = _job(tmp_path, il_pm, ENV, mine_proba=True)
    job.train((x, y))
    xs, _ = sea_data(200, seed=3)
    out = job.inference_batch(xs)
    singles = [job.inference(r[None, :])[2] for r in xs]
    assert out.is_hard.tolist() == singles
    assert out.version == "1" and len(out.hard_ids) == int(out.is_hard.sum())
    held = job.hard_examples.load()
    np.testing.assert_array_equal(held.x[: len(out.hard_ids)], xs[out.is_hard])
    _, recorder = il_pm
    assert sum(recorder.hard) == 2 * int(out.is_hard.sum())


def test_il_retrain_trigger_label_and_retrain(tmp_path, il_pm, sea_data) -> None:
    x, y = sea_data(300)
    job = _job(tmp_path, il_pm, ENV, mine_proba=True, deploy_rule="accuracy_delta > -1")
    job.train((x[:20], y[:20]))
    assert not job.retrain_due()
    xs, _ys = sea_data(400, seed=5)
    job.inference_batch(xs)
    assert job.retrain_values()["num_of_samples"] > 5 and job.retrain_due()
    n = job.label_hard_examples(lambda hx: (hx[:, 0] + hx[:, 1] > 8).astype(np.int64))
    assert n == len(job.hard_examples)
    assert job.retrain_values()["num_of_labelled_samples"] == n
    decision = job.retrain(extra_data=(x, y), eval_data=sea_data(200, seed=9))
    assert decision is not None and decision.deployed and job.serving.version == "2"
    assert not job.retrain_due()  # the store was marked


def test_il_no_miner_means_nothing_is_hard(tmp_path, il_pm, sea_data) -> None:
    x, y = sea_data(100)
    job = _job(tmp_path, il_pm, {})
    job.train((x, y))
    assert job.hem is None and job.hard_examples is None
    assert job.inference(x[:1])[2] is False
    assert not job.inference_batch(x).is_hard.any()
    with pytest.raises(JobError, match="keeps no hard examples"):
        job.retrain()


def test_il_unfitted_estimator_cannot_serve(tmp_path, il_pm, sea_data) -> None:
    pm, _ = il_pm
    job = IncrementalLearning(
        LogisticRegression,  # a class: built on first use, nothing to serve yet
        config=IncrementalConfig.from_env({}),
        workspace=tmp_path / "ws",
        plugin_manager=pm,
    )
    with pytest.raises(JobError, match="no model is being served"):
        job.inference_batch(np.zeros((1, 3)))
    x, y = sea_data(100)
    job.train((x, y))
    assert job.inference_batch(x).version == "1"


def test_il_evaluate_returns_sedna_results(tmp_path, il_pm, fake_reporter, sea_data) -> None:
    x, y = sea_data(300)
    job = _job(tmp_path, il_pm, {})
    job.reporter = fake_reporter
    job.train((x, y))
    res = job.evaluate((x, y), metrics=["accuracy", "f1"])
    assert res[0]["format"] == "skops" and res[0]["metrics"]["accuracy"] > 0.9
    assert fake_reporter.kinds()[-1] == ("eval", "completed")
    # MODEL_URLS: Sedna's list of models to evaluate
    path = str(job.versions.get("1").path)
    job2 = _job(tmp_path / "b", il_pm, {"MODEL_URLS": f"{path};"})
    res2 = job2.evaluate((x, y))
    assert [r["url"] for r in res2] == [path] and res2[0]["metrics"] == {
        "accuracy": res[0]["metrics"]["accuracy"]
    }


def test_il_initial_model_from_model_url_and_export(tmp_path, il_pm, sea_data) -> None:
    x, y = sea_data(300)
    first = _job(tmp_path / "a", il_pm, {})
    first.train((x, y))
    model_dir = tmp_path / "model_url"
    model_dir.mkdir()
    src = first.versions.get("1").path
    (model_dir / "model.skops").write_bytes(src.read_bytes())
    job = _job(tmp_path / "b", il_pm, {"MODEL_URL": str(model_dir)})
    out = job.inference_batch(x)
    assert out.version == "1" and job.versions.get("1").metadata["source"].endswith("model.skops")
    job.train((x, 1 - y), deploy=False)
    job.deploy("2")
    exported = (model_dir / "model.skops").read_bytes()
    assert exported == job.versions.get("2").path.read_bytes()
