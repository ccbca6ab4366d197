"""LifelongLearning end to end: both Sedna signatures, training, inference with allocation and
unseen-task detection, evaluation's deploy gate, updates, and the knowledge base."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from examples.demo.lifelong import TRAIN_SITES, make_weather_tasks
from sedna_core.clock import ManualClock
from sedna_core.config.lifelong import LifelongConfig
from sedna_core.errors import ConfigError, JobError, UnknownAlgorithmError
from sedna_core.jobs.lifelong import LifelongLearning
from sedna_core.knowledge_base import KnowledgeBaseClient, KnowledgeBaseServer

DEFINITION = {"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["season", "city"]}}


@pytest.fixture(scope="module")
def weather():
    train = make_weather_tasks(seed=0, n_per_site=120, sites=TRAIN_SITES)
    test = make_weather_tasks(seed=1, n_per_site=60)
    unseen = np.array(
        [(s, c) not in TRAIN_SITES for s, c in zip(test[0]["season"], test[0]["city"], strict=True)]
    )
    return train, test, unseen


def job(tmp_path, **kwargs):
    kwargs.setdefault("task_definition", DEFINITION)
    if "config" not in kwargs:
        kwargs.setdefault("output_url", str(tmp_path / "out"))
    return LifelongLearning(LogisticRegression(max_iter=500), **kwargs)


def test_ll_train_and_inference_allocate_tasks_and_flag_unseen(tmp_path, weather):
    (x, y), (xt, yt), truly_unseen = weather
    ll = job(tmp_path)
    feedback = ll.train((x, y))
    assert sorted(feedback) == sorted(f"{s}_{c}" for s, c in TRAIN_SITES)
    result, is_unseen, tasks = ll.inference(xt)
    assert isinstance(is_unseen, np.ndarray) and is_unseen.dtype == bool
    assert is_unseen.shape == (len(yt),)
    np.testing.assert_array_equal(is_unseen, truly_unseen)  # never silently task 0
    assert len(result) == len(yt)  # no sample dropped
    assert (result[~truly_unseen] == yt[~truly_unseen]).mean() > 0.85
    covered = np.sort(np.concatenate([t.rows for t in tasks]))
    np.testing.assert_array_equal(covered, np.arange(len(yt)))
    one = {k: v[:1] for k, v in xt.items()}
    single_result, single_flag, _ = ll.inference(one)
    assert isinstance(single_flag, bool) and len(single_result) == 1
    # the caller's table is not modified (Sedna dropped the attribute columns in place)
    assert "season" in x and "season" in xt


def test_ll_per_task_models_are_independent_copies(tmp_path, weather):
    (x, y), _, _ = weather
    ll = job(tmp_path)
    ll.train((x, y))
    models = [ll._backend_of(ll.knowledge, g).model for g in ll.knowledge.groups]
    assert len({id(m) for m in models}) == len(models)
    coefs = [m.coef_.tobytes() for m in models]
    assert len(set(coefs)) == len(coefs)


def test_ll_current_sedna_signature_and_aliases(tmp_path, weather):
    (x, y), (xt, _), truly_unseen = weather
    calls = []

    def unseen_model(samples):
        calls.append(len(samples))
        return np.full(len(samples), -1)

    ll = LifelongLearning(
        seen_estimator=LogisticRegression(max_iter=500),
        unseen_estimator=unseen_model,
        task_definition={
            "method": "TaskDefinitionByDataAttr",
            "param": '{"attribute": "season, city"}',
        },
        task_relationship_discovery={"method": "DefaultTaskRelationDiscover"},
        task_allocation={
            "method": "TaskAllocationByDataAttr",
            "param": {"attribute": ["season", "city"]},
        },
        task_remodeling="DefaultTaskRemodeling",
        inference_integrate="DefaultInferenceIntegrate",
        task_update_decision={"method": "UpdateStrategyDefault", "param": {"strategy": "retrain"}},
        unseen_task_allocation="TaskAllocationDefault",
        unseen_sample_recognition=["TaskAttrFilter"],
        unseen_sample_re_recognition=None,
        output_url=str(tmp_path / "out"),
    )
    ll.train((x, y))
    result, _is_unseen, tasks = ll.inference(xt)
    assert calls == [int(truly_unseen.sum())]
    assert (result[truly_unseen] == -1).all() and (result[~truly_unseen] >= 0).all()
    assert any(t.entry == "unseen" and t.is_unseen for t in tasks)
    with pytest.raises(ConfigError):
        LifelongLearning(LogisticRegression(), seen_estimator=LogisticRegression())
    with pytest.raises(UnknownAlgorithmError, match="Did you mean"):
        LifelongLearning(LogisticRegression(), task_definition="TaskDefinitionByDataAtr")
    with pytest.raises(JobError, match="needs an estimator"):
        LifelongLearning()
    legacy = LifelongLearning(
        estimator=LogisticRegression,
        task_definition=DEFINITION,
        task_mining="TaskAllocationByDataAttr",
        unseen_task_detect="TaskAttrFilter",
        output_url=str(tmp_path / "legacy"),
    )
    legacy.train((x, y))
    assert legacy.inference(xt)[1].sum() == truly_unseen.sum()


def test_ll_train_keywords_reach_every_task_model(tmp_path, weather):
    xgboost = pytest.importorskip("xgboost")
    (x, y), (xt, yt), truly_unseen = weather
    ll = LifelongLearning(
        estimator=xgboost.XGBClassifier(n_estimators=30, max_depth=2),
        task_definition=DEFINITION,
        output_url=str(tmp_path / "out"),
    )
    ll.train((x, y), metric_name="logloss", early_stopping_rounds=3, not_an_option=1)
    for group in ll.knowledge.groups:
        params = group.backend.model.get_params()
        assert params["early_stopping_rounds"] == 3 and params["eval_metric"] == "logloss"
    fresh = LifelongLearning(xgboost.XGBClassifier(), output_url=str(tmp_path / "out"))
    result, _, _ = fresh.inference(xt)  # loaded from the stored JSON models
    assert (result[~truly_unseen] == yt[~truly_unseen]).mean() > 0.7


def test_ll_evaluate_reports_per_task_scores_and_applies_the_drop_rule(tmp_path, weather):
    (x, y), (xt, yt), _truly_unseen = weather
    ll = job(tmp_path)
    ll.train((x, y))
    report = ll.evaluate((xt, yt))
    assert report["dropped_tasks"] == []  # the defaults keep good models
    assert set(report["task_scores"]) == {f"{s}_{c}" for s, c in TRAIN_SITES}
    assert all(s["accuracy"] > 0.7 for s in report["task_scores"].values())
    assert 0 < report["scores"]["accuracy"] <= 1
    # Sedna's defaults (">" 0.1) withdraw every useful model; the gate is applied and persisted
    sedna = ll.evaluate((xt, yt), operator=">", model_threshold=0.1)
    assert sorted(sedna["dropped_tasks"]) == sorted(report["task_scores"])
    index = ll.task_index()
    assert not any(g["deployed"] for g in index["seen_task"]["task_groups"])
    _, flags, _ = ll.inference(xt)
    assert flags.all()  # a withdrawn task's model is not trusted: its samples are flagged


def test_ll_unseen_samples_are_kept_for_labelling(tmp_path, weather):
    (x, y), (xt, _), truly_unseen = weather
    cfg = LifelongConfig.from_env(
        {"OUTPUT_URL": str(tmp_path / "out"), "unseen_save_url": str(tmp_path / "unseen")}
    )
    ll = job(tmp_path, config=cfg)
    ll.train((x, y))
    ll.inference(xt)
    saved = list((tmp_path / "unseen").glob("unseen-*.npz"))
    assert len(saved) == 1
    with np.load(saved[0], allow_pickle=False) as data:
        assert data["x"].shape == (int(truly_unseen.sum()), 6)
    seen_by_callback = []
    ll.inference(xt, unseen_sample_postprocess=lambda s, rows: seen_by_callback.append(rows))
    np.testing.assert_array_equal(seen_by_callback[0], np.flatnonzero(truly_unseen))


def test_ll_drop_rule_from_environment(tmp_path):
    cfg = LifelongConfig.from_env({"operator": ">=", "model_threshold": "0.5"})
    assert (cfg.operator, cfg.model_threshold) == (">=", 0.5)
    with pytest.raises(ConfigError, match="operator"):
        LifelongConfig.from_env({"operator": "!="})


def test_ll_update_adds_new_tasks_and_retrains_known_ones(tmp_path, weather):
    (x, y), (xt, yt), _truly_unseen = weather
    ll = job(tmp_path)
    ll.train((x, y))
    before = {g.entry: g.model["sha256"] for g in ll.knowledge.groups}
    new_x, new_y = make_weather_tasks(
        seed=5, n_per_site=120, sites=[("winter", "paris"), ("summer", "berlin")]
    )
    feedback = ll.update((new_x, new_y))
    assert set(feedback) == {"winter_paris", "summer_berlin"}
    after = {g.entry: g.model["sha256"] for g in ll.knowledge.groups}
    assert set(after) == set(before) | {"winter_paris"}
    assert after["summer_berlin"] != before["summer_berlin"]  # retrained on old + new
    assert after["winter_rome"] == before["winter_rome"]  # untouched
    summer = next(g for g in ll.knowledge.groups if g.entry == "summer_berlin")
    assert summer.sample_num == 240
    assert ll.task_index()["version"] == 2
    result, flags, _ = ll.inference(xt)
    rows = (xt["season"] == "winter") & (xt["city"] == "paris")
    assert not flags[rows].any()
    assert (result[rows] == yt[rows]).mean() > 0.8
    # HAS_COMPLETED_INITIAL_TRAINING=true: train() is update()
    cfg = LifelongConfig.from_env(
        {"HAS_COMPLETED_INITIAL_TRAINING": "true", "OUTPUT_URL": str(tmp_path / "out")}
    )
    again = LifelongLearning(
        LogisticRegression(max_iter=500), task_definition=DEFINITION, config=cfg
    )
    again.train(make_weather_tasks(seed=6, n_per_site=60, sites=[("spring", "berlin")]))
    assert again.task_index()["version"] == 3
    assert "spring_berlin" in {g["entry"] for g in again.task_index()["seen_task"]["task_groups"]}


def test_ll_knowledge_base_mode_edge_cache_and_hot_refresh(tmp_path, weather):
    (x, y), (xt, yt), truly_unseen = weather
    server = KnowledgeBaseServer(data_dir=str(tmp_path / "kb"), port=0)
    server.start_in_background()
    clock = ManualClock()
    try:
        cloud = job(tmp_path, kb_server=server.url, output_url=str(tmp_path / "cloud"))
        cloud.train((x, y))
        # retries back off on the job's clock; this one only moves when the test says so
        edge_cfg = LifelongConfig.from_env(
            {"KB_SERVER": server.url, "OUTPUT_URL": str(tmp_path / "edge"), "KB_RETRIES": "0"}
        )
        edge = job(tmp_path, config=edge_cfg, clock=clock)
        _result, flags, _ = edge.inference(xt)
        np.testing.assert_array_equal(flags, truly_unseen)
        with KnowledgeBaseClient(server.url) as client:
            rows = client.query({"season": "winter", "city": "rome"})
            assert rows[0]["model"]["format"] == "skops" and rows[0]["deployed"] is True
            index = client.get_index()
        assert json.dumps(index)  # JSON all the way
        # a newer index reaches the edge after the poll period
        cloud.update(make_weather_tasks(seed=7, n_per_site=120, sites=[("winter", "paris")]))
        _, flags_same, _ = edge.inference(xt)
        np.testing.assert_array_equal(flags_same, truly_unseen)  # not polled yet
        clock.advance(LifelongConfig.from_env({}).kb_poll_period)
        _, flags_new, _ = edge.inference(xt)
        assert flags_new.sum() == truly_unseen.sum() - 60
    finally:
        server.stop_background()
    # the knowledge base is down: the edge keeps answering from its cache
    clock.advance(3600)
    offline, flags_offline, _ = edge.inference(xt)
    np.testing.assert_array_equal(flags_offline, flags_new)
    assert (offline[~flags_offline] == yt[~flags_offline]).mean() > 0.85
    # and so does a restarted edge process with nothing but its cache directory
    restarted = job(tmp_path, config=edge_cfg, clock=clock)
    again, _, _ = restarted.inference(xt)
    np.testing.assert_array_equal(again, offline)
    for j in (cloud, edge, restarted):
        j.close()


def test_ll_numeric_tasks_by_cluster_with_mahalanobis_detection(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0]])
    x = np.vstack([rng.normal(c, 1.0, (150, 3)) for c in centres])
    y = (x[:, 2] > 0).astype(int)
    ll = LifelongLearning(
        LogisticRegression(),
        task_definition={"method": "TaskDefinitionByCluster", "param": {"n_clusters": 2}},
        output_url=str(tmp_path / "out"),
    )
    ll.train((x, y))
    assert [d.name for d in ll.knowledge.detectors] == ["MahalanobisFilter"]
    far = rng.normal([-8.0, 12.0, 0.0], 1.0, (50, 3))
    near = np.vstack([rng.normal(c, 1.0, (50, 3)) for c in centres])
    _, flags, _ = ll.inference(np.vstack([near, far]))
    assert flags[100:].mean() > 0.95 and flags[:100].mean() < 0.15
    scores = ll.unseen_scores(np.vstack([near, far]))["MahalanobisFilter"]
    assert scores[100:].min() > scores[:100].max()
    # new data from the far region forms a new task (named apart from the old clusters)
    new = rng.normal([-8.0, 12.0, 0.0], 1.0, (150, 3))
    ll.update((new, rng.integers(0, 2, len(new))))  # k-means may split it: both labels in each
    entries = [g.entry for g in ll.knowledge.groups]
    assert len(entries) == len(set(entries)) >= 3
    _, flags, _ = ll.inference(far)
    assert flags.mean() < 0.15
