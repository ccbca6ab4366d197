"""JointInference against a real BigModelService on 127.0.0.1: both wire formats, both mining
modes, sync and async, statistics, hooks and reports."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from aiohttp import web

from sedna_core.clock import ManualClock
from sedna_core.config import ServiceConfig
from sedna_core.config.joint_inference import JointInferenceConfig
from sedna_core.errors import ConfigError
from sedna_core.jobs.joint_inference import InferenceStats, JointInference
from sedna_core.plugins import hookimpl
from sedna_core.service import ServiceRunner
from sedna_core.testing.doubles import RecordingPlugin, ScriptedMiner

WAIT = 10.0


def make_job(svc, edge, miner, *, fmt="binary", **config):
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=svc.url, wire=fmt, **config
    )
    return JointInference(edge, miner, config=cfg)


@pytest.mark.parametrize("fmt", ["binary", "json"])
def test_inference_one_request(serve, models, samples, hem_pm, fmt):
    svc = serve()
    x = samples[:1]
    with make_job(svc, models.edge, "CloudOnly", fmt=fmt) as ji:
        is_hard, final, edge, cloud = ji.inference(x)
        assert is_hard is True
        np.testing.assert_allclose(edge, models.edge.predict(x))
        np.testing.assert_allclose(np.asarray(cloud), models.cloud.predict(x))
        assert final is cloud  # the cloud's result, unwrapped, is the answer
    with make_job(svc, models.edge, "EdgeOnly", fmt=fmt) as ji:
        is_hard, final, edge, cloud = ji.inference(x)
        assert (is_hard, cloud) == (False, None)
        np.testing.assert_allclose(final, edge)


@pytest.mark.parametrize("fmt", ["binary", "json"])
def test_inference_batch_sends_only_hard_samples_in_one_request(
    serve, models, samples, hem_pm, fmt
):
    svc = serve()
    edge_p = models.edge.predict(samples)
    threshold = float(np.median(edge_p.max(axis=1)))
    expected_hard = edge_p.max(axis=1) < threshold
    models.edge.calls = 0
    miner = {"method": "Confidence", "param": {"threshold": str(threshold)}}
    with make_job(svc, models.edge, miner, fmt=fmt) as ji:
        is_hard, final, edge, cloud = ji.inference_batch(samples)
    assert is_hard.dtype == bool and is_hard.tolist() == expected_hard.tolist()
    assert models.cloud.calls == 1 and models.cloud.samples == expected_hard.sum()
    assert isinstance(final, np.ndarray) and final.shape == edge_p.shape
    np.testing.assert_allclose(final[~is_hard], edge_p[~is_hard])
    np.testing.assert_allclose(final[is_hard], models.cloud.predict(samples[is_hard]))
    assert [c is None for c in cloud] == (~is_hard).tolist()
    np.testing.assert_allclose(edge, edge_p)


async def test_async_twins(serve, models, samples, hem_pm):
    svc = serve()
    ji = make_job(svc, models.edge, "CloudOnly")
    try:
        is_hard, final, _, cloud = await ji.ainference(samples[:2])
        assert np.allclose(cloud, final)
        assert is_hard and np.allclose(final, models.cloud.predict(samples[:2]))
        is_hard, final, _, _cloud = await ji.ainference_batch(samples[:5])
        assert is_hard.all() and np.allclose(final, models.cloud.predict(samples[:5]))
        assert ji.stats == InferenceStats(6, 6, 6, 0)
    finally:
        await ji.aclose()


def test_mining_then_inference(serve, models, samples, hem_pm):
    svc = serve()
    with make_job(svc, models.edge, "CloudOnly", mining_mode="mining-then-inference") as ji:
        is_hard, final, edge, cloud = ji.inference(samples[:3])
        assert is_hard and edge is None
        assert isinstance(cloud, np.ndarray)  # unwrapped, as in the other mode (Sedna: a dict)
        np.testing.assert_allclose(final, models.cloud.predict(samples[:3]))
    assert models.edge.calls == 0  # hard inputs never reach the edge model

    script = [True, False, False, True, False]
    ji = JointInference(
        models.edge,
        ScriptedMiner(decisions=script),
        job_name="ji",
        cloud_url=svc.url,
        mining_mode="mining-then-inference",
    )
    with ji:
        is_hard, final, edge, cloud = ji.inference_batch(samples[:5])
    assert is_hard.tolist() == script
    assert models.edge.samples == 3  # only the easy ones
    assert [e is None for e in edge] == script
    np.testing.assert_allclose(final[is_hard], models.cloud.predict(samples[:5][is_hard]))
    np.testing.assert_allclose(final[~is_hard], models.edge.predict(samples[:5][~is_hard]))


def test_post_process_is_what_the_miner_judges(serve, models, samples, hem_pm):
    svc = serve()
    seen = []

    def first_row(result):
        seen.append(result)
        return result[0]

    with make_job(svc, models.edge, {"method": "Confidence", "param": {"threshold": 1.0}}) as ji:
        is_hard, final, edge, _cloud = ji.inference(samples[:1], post_process=first_row)
    assert is_hard and edge.shape == (1, 3) and seen[0] is not edge  # a deep copy, as Sedna
    np.testing.assert_allclose(final, models.cloud.predict(samples[:1]))
    with pytest.raises(ConfigError, match="post_process"):
        ji.inference(samples[:1], post_process="not callable")


def test_statistics_are_counted_once_and_announced(serve, models, samples, hem_pm):
    recorder = RecordingPlugin()
    hem_pm.register(recorder, name="recorder")
    svc = serve()
    with make_job(svc, models.edge, ScriptedMiner(decisions=[True, False, True])) as ji:
        for i in range(3):
            ji.inference(samples[i : i + 1])
        ji.inference_batch(samples[:4])  # scripted: all False after the first three
        stats = ji.stats
    # Sedna would say inferenceNumber 5 and hardExampleNumber 2 for the three calls
    assert stats == InferenceStats(
        inference_number=7, hard_example_number=2, cloud_success_number=2, cloud_failure_number=0
    )
    assert stats.upload_ratio == pytest.approx(2 / 7)
    found = recorder.calls("sedna_hard_example_found")
    assert [c["count"] for c in found] == [1, 1]
    assert found[-1]["stats"]["hard_example_number"] == 2
    started = recorder.calls("sedna_job_started")
    assert started and started[0]["job_kind"] == "jointinferenceservice"


def test_miner_from_sedna_environment(monkeypatch, hem_pm, models):
    monkeypatch.setenv("HEM_NAME", "Confidence")
    monkeypatch.setenv("HEM_PARAMETERS", '[{"key": "threshold", "value": "0.99"}]')
    with JointInference(models.edge) as ji:
        assert ji.hard_example_mining.name == "Confidence"
        assert ji.hard_example_mining.threshold == 0.99
    # a mapping without a method is IBT, as in Sedna
    with JointInference(models.edge, {"param": {"threshold_img": "0.9"}}) as ji:
        assert ji.hard_example_mining.name == "IBT"
        assert ji.hard_example_mining.threshold_img == 0.9


def test_configuration_errors(monkeypatch, hem_pm, models):
    with pytest.raises(ConfigError, match="mining_mode"):
        JointInference(models.edge, "CloudOnly", mining_mode="sideways")
    with pytest.raises(ConfigError, match="HEM_NAME"):
        JointInference(models.edge, None, mining_mode="mining-then-inference")
    monkeypatch.setenv("MINING_MODE", "both")
    with pytest.raises(ConfigError, match="MINING_MODE"):
        JointInference(models.edge, "CloudOnly")


class BrokenPlugin:
    """Registers nothing usable and fails in every hook it implements."""

    @hookimpl
    def sedna_register_hard_example_miners(self):
        raise RuntimeError("broken registration")

    @hookimpl
    def sedna_hard_example_found(self, job_name, count, stats):
        raise RuntimeError("broken observer")


def test_job_works_beside_a_broken_plugin(serve, models, samples, hem_pm):
    recorder = RecordingPlugin()
    hem_pm.register(BrokenPlugin(), name="sedna-plugin-broken")
    hem_pm.register(recorder, name="recorder")
    svc = serve()
    with make_job(svc, models.edge, "CloudOnly") as ji:
        is_hard, final, _, _ = ji.inference_batch(samples[:4])
    assert is_hard.all()
    np.testing.assert_allclose(final, models.cloud.predict(samples[:4]))
    assert [c["count"] for c in recorder.calls("sedna_hard_example_found")] == [4]


def wait_until(predicate, timeout=WAIT):
    """A bounded poll (the thing waited for happens in another thread)."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return True
        pause.wait(0.005)
    return predicate()


def test_periodic_lc_report_in_sednas_shape(serve, models, samples, hem_pm):
    received: list[dict] = []
    arrived = threading.Event()

    async def info(request: web.Request) -> web.Response:
        received.append({"worker": request.match_info["worker"], **(await request.json())})
        arrived.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/sedna/workers/{worker}/info", info)
    lc = ServiceRunner(app, ServiceConfig(host="127.0.0.1", port=0))
    lc.start_in_background()
    clock = ManualClock()
    svc = serve()
    cfg = JointInferenceConfig.from_env(
        {},
        job_name="ji",
        big_model_url=svc.url,
        lc_server=lc.url,
        worker_name="edge-1",
        lc_period=30.0,
    )
    ji = JointInference(models.edge, ScriptedMiner(decisions=[True]), config=cfg, clock=clock)
    try:
        ji.inference(samples[:1])
        ji.inference(samples[1:2])
        assert wait_until(lambda: clock.sleepers >= 1)  # the reporter waits for its period
        clock.advance(30.0)
        assert arrived.wait(WAIT)
        msg = received[0]
        assert msg["worker"] == "edge-1"
        assert msg["kind"] == "inference" and "status" not in msg and msg["results"] == []
        assert msg["ownerKind"] == "jointinferenceservice" and msg["ownerName"] == "ji"
        info_ = msg["ownerInfo"]
        assert set(info_) == {
            "startTime",
            "updateTime",
            "inferenceNumber",
            "hardExampleNumber",
            "uploadCloudRatio",
        }
        assert (info_["inferenceNumber"], info_["hardExampleNumber"]) == (2, 1)
        assert info_["uploadCloudRatio"] == 0.5
    finally:
        ji.close()
        clock.advance(30.0)  # let the reporter's thread see the close
        lc.stop_background()


def test_cloud_address_from_sedna_environment(monkeypatch, serve, models, samples, hem_pm):
    svc = serve()
    monkeypatch.setenv("BIG_MODEL_IP", "127.0.0.1")
    monkeypatch.setenv("BIG_MODEL_PORT", str(svc.port))
    monkeypatch.setenv("JOB_NAME", "ji")
    monkeypatch.setenv("SEDNA_JI_WIRE", "json")
    with JointInference(models.edge, "CloudOnly") as ji:
        assert ji.config.cloud_base_url == f"http://127.0.0.1:{svc.port}"
        cloud = ji.inference(samples[:1])[3]
    assert cloud == models.cloud.predict(samples[:1]).tolist()  # JSON: Sedna's list
