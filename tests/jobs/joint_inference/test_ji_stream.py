"""Predict streams: the binary exchange over one websocket per edge loop, its error answers,
the fall-back to HTTP requests, streams the cloud closed, and a graceful stop mid-answer."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import aiohttp
import numpy as np
import pytest
import requests
from aiohttp import web
from structlog.testing import capture_logs

from sedna_core import wire
from sedna_core.config import ServiceConfig
from sedna_core.config.joint_inference import BigModelServiceConfig, JointInferenceConfig
from sedna_core.jobs.joint_inference import InferenceStats, JointInference
from sedna_core.service import ServiceRunner, create_app

TIMEOUT = 10


def config(url: str, **kwargs: object) -> JointInferenceConfig:
    kwargs.setdefault("cloud_timeout", 5.0)
    return JointInferenceConfig.from_env({}, job_name="ji", big_model_url=url, **kwargs)


def metrics(url: str) -> str:
    return requests.get(url + "/metrics", timeout=TIMEOUT).text


def runner_for(app: web.Application) -> Iterator[str]:
    runner = ServiceRunner(app, ServiceConfig.from_env({}, port=0))
    runner.start_in_background()
    try:
        yield runner.url
    finally:
        runner.stop_background()


@pytest.fixture(params=[404, 403, 405])
def no_stream_cloud(request, models) -> Iterator[str]:
    """A cloud with only Sedna's HTTP route and JSON body (Sedna's own service), whose answer
    to the stream's upgrade is 404 (no route), 403 (Sedna's FastAPI) or 405 (a proxy)."""
    json_requests = []

    async def predict(request: web.Request) -> web.Response:
        assert request.content_type == "application/json"  # Sedna's service speaks only JSON
        x = np.asarray(json.loads(await request.read())["data"])
        json_requests.append(len(x))
        return web.json_response({"result": models.cloud.predict(x).tolist()})

    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, text="Forbidden")

    async def not_allowed(request: web.Request) -> web.Response:
        return web.Response(status=405)

    app = create_app(name="old", config=ServiceConfig.from_env({}, port=0))
    app.router.add_post("/ji/predict", predict)
    if request.param == 403:
        app.router.add_get("/ji/predict/ws", forbidden)
    elif request.param == 405:
        app.router.add_post("/ji/predict/ws", not_allowed)
    yield from runner_for(app)
    assert json_requests  # the edge did ask in JSON


@pytest.fixture
def closing_cloud(models) -> Iterator[str]:
    """A cloud whose streams answer one request, then close (like a restart between calls)."""

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        x = wire.decode(msg.data)["data"]
        await ws.send_bytes(wire.encode({"result": models.cloud.predict(x)}))
        await ws.close()
        return ws

    app = create_app(name="closing", config=ServiceConfig.from_env({}, port=0))
    app.router.add_get("/ji/predict/ws", stream)
    yield from runner_for(app)


def test_binary_calls_share_one_stream_json_calls_post(serve, models, samples, hem_pm):
    svc = serve()
    with JointInference(models.edge, "CloudOnly", config=config(svc.url)) as ji:
        for i in range(5):
            _, final, _, _ = ji.inference_batch(samples[i : i + 2])
            np.testing.assert_allclose(final, models.cloud.predict(samples[i : i + 2]))
        assert ji.stats == InferenceStats(10, 10, 10, 0)
        text = metrics(svc.url)
        assert 'sedna_ji_stream_requests_total{status="200"} 5' in text
        assert 'route="/ji/predict",method="POST"' not in text
        # the stream is one long request: in flight with this /metrics request, nothing else
        assert "sedna_http_requests_in_flight 2" in text
    with JointInference(models.edge, "CloudOnly", config=config(svc.url, wire="json")) as ji:
        ji.inference_batch(samples[:2])
    assert 'route="/ji/predict",method="POST",status="200"} 1' in metrics(svc.url)


def test_error_answers_are_refusals_and_keep_the_stream(serve, models, samples, hem_pm):
    svc = serve()
    cfg = config(svc.url, breaker_failures=1)
    with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        models.cloud.fail = ValueError("no such feature")  # the service answers 400
        assert ji.inference(samples[:1])[3] is None  # answered from the edge
        assert ji.breaker.state == "closed"  # a refusal: the cloud is up
        models.cloud.fail = None
        assert ji.inference(samples[:1])[3] is not None
        assert ji.stats == InferenceStats(2, 2, 1, 1)
        text = metrics(svc.url)
    assert 'sedna_ji_stream_requests_total{status="400"} 1' in text
    assert 'sedna_ji_stream_requests_total{status="200"} 1' in text
    assert "sedna_http_requests_in_flight 2" in text  # still the one stream


def test_oversized_requests_are_refused_not_cloud_failures(serve, models, samples, hem_pm):
    svc = serve(
        service_config=BigModelServiceConfig(host="127.0.0.1", port=0, max_request_size=1024)
    )
    cfg = config(svc.url, breaker_failures=1)
    big = np.random.default_rng(0).normal(size=(100, samples.shape[1]))
    with capture_logs() as logs, JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        assert ji.inference_batch(big)[3] == [None] * 100
        assert ji.breaker.state == "closed"
        assert ji.inference_batch(samples[:2])[3][0] is not None  # small ones still go up
    assert any("413" in str(e.get("error")) for e in logs)


def test_cloud_without_streams_is_asked_over_http(no_stream_cloud, models, samples, hem_pm):
    with (
        capture_logs() as logs,
        JointInference(models.edge, "CloudOnly", config=config(no_stream_cloud)) as ji,
    ):
        for i in range(3):
            _, final, _, _ = ji.inference_batch(samples[i : i + 2])
            np.testing.assert_allclose(final, models.cloud.predict(samples[i : i + 2]))
        assert ji.stats == InferenceStats(6, 6, 6, 0)
    assert len([e for e in logs if "no predict stream" in e["event"]]) == 1
    assert not [e for e in logs if e["log_level"] == "warning"]  # not an authentication failure
    assert 'route="/ji/predict",method="POST",status="200"} 3' in metrics(no_stream_cloud)


def test_a_stream_the_cloud_closed_is_replaced(closing_cloud, models, samples, hem_pm):
    with JointInference(models.edge, "CloudOnly", config=config(closing_cloud)) as ji:
        for i in range(3):  # each stream answers once: every later call finds it closed
            _, final, _, _ = ji.inference(samples[i : i + 1])
            np.testing.assert_allclose(final, models.cloud.predict(samples[i : i + 1]))
        assert ji.stats == InferenceStats(3, 3, 3, 0)


def test_streams_need_the_token(serve, models, samples, hem_pm):
    svc = serve(token="t0ken")
    cfg = config(svc.url, breaker_failures=1)
    with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
        assert ji.inference(samples[:1])[3] is None  # the upgrade is refused (401)
        assert ji.breaker.state == "closed"
    with JointInference(models.edge, "CloudOnly", config=cfg, token="t0ken") as ji:
        assert ji.inference(samples[:1])[3] is not None
    headers = {"Authorization": "Bearer t0ken"}
    text = requests.get(svc.url + "/metrics", headers=headers, timeout=TIMEOUT).text
    assert 'sedna_ji_stream_requests_total{status="200"} 1' in text


async def test_concurrent_async_calls_each_get_a_stream(serve, models, samples, hem_pm):
    svc = serve(workers=4)
    ji = JointInference(models.edge, "CloudOnly", config=config(svc.url))
    try:
        calls = [ji.ainference_batch(samples[i : i + 2]) for i in range(0, 16, 2)]
        for i, (_, final, _, _) in zip(range(0, 16, 2), await asyncio.gather(*calls), strict=True):
            np.testing.assert_allclose(final, models.cloud.predict(samples[i : i + 2]))
        assert ji.stats == InferenceStats(16, 16, 16, 0)
    finally:
        await ji.aclose()


async def test_stream_answers_text_frames_and_bad_bytes_with_errors(serve):
    class Labels:
        def predict(self, x: np.ndarray) -> list[str]:
            return ["cat"] * len(x)

    svc = serve(Labels())
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(svc.url + "/ji/predict/ws") as ws,
    ):
        await ws.send_str('{"data": [[1.0]]}')
        answer = json.loads((await ws.receive()).data)
        assert answer["status"] == 415 and "binary" in answer["error"]["message"]
        await ws.send_bytes(b"not a tensor message")
        answer = json.loads((await ws.receive()).data)
        assert answer["status"] == 400
        assert answer["error"]["type"] == "wire_format_error"
        await ws.send_bytes(wire.encode({"data": np.zeros((2, 3))}))
        reply = await ws.receive()  # not a numeric array: a JSON text answer
        assert reply.type is aiohttp.WSMsgType.TEXT
        assert json.loads(reply.data) == {"result": ["cat", "cat"]}


def test_stopping_the_service_lets_a_stream_answer_in_flight(serve, models, samples, hem_pm):
    models.cloud.gate = gate = threading.Event()
    svc = serve(workers=2)
    port = svc.port
    with JointInference(models.edge, "CloudOnly", config=config(svc.url)) as ji:
        answers: list[list[object]] = []
        call = threading.Thread(target=lambda: answers.append(ji.inference(samples[:1])))
        call.start()
        assert models.cloud.entered.wait(TIMEOUT)  # the prediction runs, held by the gate
        stopper = threading.Thread(target=svc.stop)
        stopper.start()
        _wait_refused(port)  # the service stopped listening: it is shutting down
        gate.set()
        call.join(TIMEOUT)
        stopper.join(TIMEOUT)
    assert not call.is_alive() and not stopper.is_alive()
    _, final, _, cloud = answers[0]
    assert cloud is not None  # the answer in flight was sent before the stream closed
    np.testing.assert_allclose(final, models.cloud.predict(samples[:1]))


def _wait_refused(port: int) -> None:
    """Until a connection to ``port`` is refused (bounded: the stop is under way)."""
    for _ in range(10_000):
        with socket.socket() as s:
            s.settimeout(TIMEOUT)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
    raise AssertionError(f"port {port} still accepts connections")
