"""A burst of edges connecting at once: every edge is served (after retries), none raises, none
loses a request; a cloud that stays busy or drops connections is answered from the edge.

Against a real BigModelService on 127.0.0.1 whose pending-connection cap (16) is far below the
burst (160 edges opening predict streams at once): the connection guard refuses the surplus
with 503 + Retry-After instead of evicting handshakes about to complete, and each edge retries
with jittered back-off within its deadline (docs/runtime.md, "Connection limits")."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from aiohttp import web

from sedna_core import wire
from sedna_core.config import ServiceConfig
from sedna_core.config.joint_inference import BigModelServiceConfig, JointInferenceConfig
from sedna_core.jobs.joint_inference import InferenceStats, JointInference
from sedna_core.service import ServiceRunner, create_app

EDGES = 160
SAFETY = 60.0  # a deadline that only a hung call reaches: the burst is served long before


def config(url: str, **kwargs: object) -> JointInferenceConfig:
    kwargs.setdefault("cloud_timeout", SAFETY)
    return JointInferenceConfig.from_env({}, job_name="ji", big_model_url=url, **kwargs)


def _dropped(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in requests.get(url + "/metrics", timeout=SAFETY).text.splitlines():
        if line.startswith("sedna_http_connections_dropped_total{"):
            out[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    return out


async def test_a_burst_of_edges_beyond_the_pending_cap_is_served_in_full(
    serve, models, hem_pm
) -> None:
    svc = serve(service_config=BigModelServiceConfig.from_env({}, max_pending_connections=16))
    x = np.random.default_rng(7).normal(size=(EDGES, 8))
    edges = [JointInference(models.edge, "CloudOnly", config=config(svc.url)) for _ in range(EDGES)]
    try:
        answers = await asyncio.gather(
            *(edge.ainference_batch(x[i : i + 1]) for i, edge in enumerate(edges))
        )
        for i, (_, final, _, cloud) in enumerate(answers):
            assert cloud is not None  # the cloud's answer, not the edge's fall-back
            np.testing.assert_allclose(final, models.cloud.predict(x[i : i + 1]))
        for edge in edges:
            assert edge.stats == InferenceStats(1, 1, 1, 0)
            assert edge.breaker.state == "closed"
    finally:
        for edge in edges:
            await edge.aclose()
    dropped = _dropped(svc.url)
    assert dropped.get("header_timeout", 0) == 0  # nobody waited out a timeout
    # whatever was refused or evicted was retried: every edge got its answer above


def _runner(app: web.Application) -> Iterator[str]:
    runner = ServiceRunner(app, ServiceConfig.from_env({}, port=0))
    runner.start_in_background()
    try:
        yield runner.url
    finally:
        runner.stop_background()


@pytest.fixture
def flaky_cloud(request, models) -> Iterator[tuple[str, list[str]]]:
    """A cloud whose first ``request.param[1]`` stream upgrades fail as ``request.param[0]``
    says (``503``: busy, with Retry-After; ``drop``: the connection is cut), then serve."""
    how, failures = request.param
    seen: list[str] = []

    async def stream(req: web.Request) -> web.StreamResponse:
        if len(seen) < failures:
            seen.append(how)
            if how == "drop":
                assert req.transport is not None
                req.transport.abort()
            return web.Response(status=503, headers={"Retry-After": "1"}, text="busy")
        seen.append("served")
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        async for msg in ws:
            x = wire.decode(msg.data)["data"]
            await ws.send_bytes(wire.encode({"result": models.cloud.predict(x)}))
        return ws

    app = create_app(name="flaky", config=ServiceConfig.from_env({}, port=0))
    app.router.add_get("/ji/predict/ws", stream)
    for url in _runner(app):
        yield url, seen


@pytest.mark.parametrize("flaky_cloud", [("503", 3), ("drop", 2)], indirect=True)
def test_a_busy_or_dropping_cloud_is_retried_within_the_deadline(
    flaky_cloud, models, samples, hem_pm
) -> None:
    url, seen = flaky_cloud
    with JointInference(models.edge, "CloudOnly", config=config(url, breaker_failures=1)) as edge:
        edge.cloud._rng = random.Random(0)  # seeded jitter
        _, final, _, cloud = edge.inference(samples[:2])
        assert cloud is not None
        np.testing.assert_allclose(final, models.cloud.predict(samples[:2]))
        assert edge.breaker.state == "closed" and edge.stats.cloud_failure_number == 0
    assert seen[-1] == "served" and len(seen) >= 2


@pytest.mark.parametrize("flaky_cloud", [("503", 10**9)], indirect=True)
def test_a_cloud_that_stays_busy_is_answered_from_the_edge(
    flaky_cloud, models, samples, hem_pm
) -> None:
    url, seen = flaky_cloud
    with JointInference(
        models.edge, "CloudOnly", config=config(url, cloud_timeout=0.5, breaker_failures=2)
    ) as edge:
        for _ in range(2):  # never raises: the edge's answer, as in any cloud outage
            _, final, _, cloud = edge.inference(samples[:2])
            assert cloud is None
            np.testing.assert_allclose(final, models.edge.predict(samples[:2]))
        assert edge.breaker.state == "open"  # two calls' deadlines spent: the cloud is skipped
    assert len(seen) >= 2 and "served" not in seen
