"""Faults: the cloud down, stalled, failing or refusing; the circuit breaker on a ManualClock."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from structlog.testing import capture_logs

from sedna_core.clock import ManualClock
from sedna_core.config.joint_inference import JointInferenceConfig
from sedna_core.jobs.joint_inference import CircuitBreaker, InferenceStats, JointInference


def job(url, edge, miner="CloudOnly", **config):
    cfg = JointInferenceConfig.from_env({}, job_name="ji", big_model_url=url, **config)
    return cfg, edge, miner


def events(logs, text):
    return [e for e in logs if text in e["event"]]


def test_default_timeout_is_at_most_one_second():
    assert JointInferenceConfig.from_env({}).cloud_timeout <= 1.0
    env = {"SEDNA_CLOUD_TIMEOUT": "0.25"}
    assert JointInferenceConfig.from_env(env).cloud_timeout == 0.25


@pytest.mark.parametrize("mode", ["inference-then-mining", "mining-then-inference"])
def test_cloud_down_gives_the_edge_answer(dead_port, models, samples, hem_pm, mode):
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=f"http://127.0.0.1:{dead_port}", mining_mode=mode
    )
    with capture_logs() as logs, JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        for i in range(2):
            is_hard, final, _edge, cloud = ji.inference(samples[i : i + 1])
            assert is_hard and cloud is None
            np.testing.assert_allclose(final, models.edge.predict(samples[i : i + 1]))
        is_hard, final, _, cloud = ji.inference_batch(samples[:4])
        assert is_hard.all() and cloud == [None] * 4
        np.testing.assert_allclose(final, models.edge.predict(samples[:4]))
        assert ji.stats == InferenceStats(6, 6, 0, 6)
    assert len(events(logs, "cloud call failed; answering from the edge")) == 1  # once per outage


def test_cloud_stalled_gives_the_edge_answer_within_the_timeout(serve, models, samples, hem_pm):
    models.cloud.gate = threading.Event()  # released at teardown by the serve fixture
    svc = serve(workers=4)
    cfg = JointInferenceConfig.from_env({}, job_name="ji", big_model_url=svc.url, cloud_timeout=0.2)
    with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        is_hard, final, _, cloud = ji.inference(samples[:1])
        assert is_hard and cloud is None
        np.testing.assert_allclose(final, models.edge.predict(samples[:1]))
        _, final, _, cloud = ji.inference_batch(samples[:3])
        assert cloud == [None] * 3
        assert ji.stats.cloud_failure_number == 4
    assert models.cloud.entered.is_set()  # the cloud did get the request; it just never answered


async def test_cloud_stalled_async(serve, models, samples, hem_pm):
    models.cloud.gate = threading.Event()
    svc = serve(workers=2)
    cfg = JointInferenceConfig.from_env({}, job_name="ji", big_model_url=svc.url, cloud_timeout=0.2)
    ji = JointInference(models.edge, "CloudOnly", config=cfg)
    try:
        is_hard, final, _, cloud = await ji.ainference_batch(samples[:2])
        assert is_hard.all() and cloud == [None, None]
        np.testing.assert_allclose(final, models.edge.predict(samples[:2]))
    finally:
        await ji.aclose()


def test_outage_logged_once_and_recovery_logged(serve, models, samples, hem_pm):
    svc = serve()
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=svc.url, breaker_failures=100
    )
    with capture_logs() as logs, JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        models.cloud.fail = RuntimeError("GPU on fire")  # the service answers 500
        for i in range(3):
            assert ji.inference(samples[i : i + 1])[3] is None
        models.cloud.fail = None
        assert ji.inference(samples[:1])[3] is not None
        models.cloud.fail = RuntimeError("again")
        assert ji.inference(samples[:1])[3] is None
    assert len(events(logs, "cloud call failed; answering from the edge")) == 2  # two outages
    back = events(logs, "cloud answers again")
    assert len(back) == 1 and back[0]["failed_calls"] == 3


def test_circuit_breaker_opens_skips_and_closes(serve, models, samples, hem_pm):
    clock = ManualClock()
    svc = serve()
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=svc.url, breaker_failures=2, breaker_cooldown=10.0
    )
    x = samples[:1]
    models.cloud.fail = RuntimeError("down")
    with (
        capture_logs() as logs,
        JointInference(models.edge, "CloudOnly", config=cfg, clock=clock) as ji,
    ):
        ji.inference(x)
        ji.inference(x)
        assert ji.breaker.state == "open" and models.cloud.calls == 2
        ji.inference(x)  # skipped: no request reaches the cloud
        assert models.cloud.calls == 2
        clock.advance(9.9)
        ji.inference(x)
        assert models.cloud.calls == 2
        clock.advance(0.1)
        assert ji.breaker.state == "half-open"
        ji.inference(x)  # the probe fails: open for another cool-down
        assert models.cloud.calls == 3 and ji.breaker.state == "open"
        models.cloud.fail = None
        clock.advance(10.0)
        _is_hard, _final, _, cloud = ji.inference(x)  # the probe succeeds
        assert cloud is not None and ji.breaker.state == "closed"
        ji.inference(x)
        assert models.cloud.calls == 5
        assert ji.stats == InferenceStats(7, 7, 2, 5)
    assert len(events(logs, "circuit breaker open")) == 2


def test_breaker_unit_half_open_admits_one_probe():
    clock = ManualClock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    assert breaker.allow() and breaker.record_failure()
    assert not breaker.allow()
    clock.advance(5.0)
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    assert breaker.record_success() and breaker.state == "closed"
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1.0)


def test_refused_requests_fall_back_without_tripping_the_breaker(serve, models, samples, hem_pm):
    svc = serve(input_shape=(5,))  # the edge sends 8 features: 400 every time
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=svc.url, breaker_failures=1
    )
    with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        for _ in range(3):
            assert ji.inference(samples[:1])[3] is None
        assert ji.breaker.state == "closed"


def test_authentication(serve, models, samples, hem_pm):
    svc = serve(token="t0ken")
    cfg = JointInferenceConfig.from_env({}, job_name="ji", big_model_url=svc.url)
    with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        assert ji.inference(samples[:1])[3] is None  # 401: answered from the edge
    with JointInference(models.edge, "CloudOnly", config=cfg, token="t0ken") as ji:
        assert ji.inference(samples[:1])[3] is not None


def test_tls_and_token_end_to_end(serve, models, samples, hem_pm, tmp_path):
    import trustme

    from sedna_core.config.joint_inference import BigModelServiceConfig

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    svc = serve(
        service_config=BigModelServiceConfig(
            host="127.0.0.1",
            port=0,
            token="t0ken",
            tls_cert=str(tmp_path / "server.pem"),
            tls_key=str(tmp_path / "server.pem"),
        )
    )
    assert svc.url.startswith("https://")
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=svc.url, token="t0ken", tls_ca=str(tmp_path / "ca.pem")
    )
    with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        _, final, _, cloud = ji.inference_batch(samples[:3])
    assert cloud[0] is not None
    np.testing.assert_allclose(final, models.cloud.predict(samples[:3]))


async def test_a_cancelled_probe_does_not_wedge_the_breaker(serve, models, samples, hem_pm):
    import asyncio

    clock = ManualClock()
    models.cloud.gate = threading.Event()  # the service stalls until teardown
    svc = serve(workers=2)
    cfg = JointInferenceConfig.from_env(
        {}, job_name="ji", big_model_url=svc.url, breaker_failures=1, breaker_cooldown=5.0
    )
    ji = JointInference(models.edge, "CloudOnly", config=cfg, clock=clock)
    try:
        ji.breaker.record_failure()  # open
        clock.advance(5.0)
        probe = asyncio.ensure_future(ji.ainference(samples[:1]))
        # wait (in a thread, without blocking the loop) until the probe reached the cloud
        assert await asyncio.to_thread(models.cloud.entered.wait, 10)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert ji.breaker.allow()  # another call may probe
    finally:
        await ji.aclose()
