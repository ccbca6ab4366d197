"""Dynamic batching in BigModelService: the Batcher on its own (asyncio, injected clock) and
through the service over real loopback HTTP and predict streams.

Queues are built deterministically: the model blocks on an event until the test has queued what
it wants, and the service's queue length is read from /metrics. No sleeps, no timing asserts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from typing import Any

import numpy as np
import pytest
import requests

from sedna_core import wire
from sedna_core.clock import ManualClock
from sedna_core.config.joint_inference import BigModelServiceConfig
from sedna_core.errors import ConfigError
from sedna_core.jobs.joint_inference import BigModelService
from sedna_core.jobs.joint_inference._batching import Batcher, QueueFullError
from sedna_core.service._metrics import MetricsRegistry

TIMEOUT = 10


class GatedModel:
    """An async ``run`` for the Batcher: records each call's data; the first call waits for
    ``release`` (so the requests that follow queue up); a row holding NaN makes a call fail."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []
        self.release = asyncio.Event()
        self.first_entered = asyncio.Event()
        self.hold_every_call = False

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(x)
        if len(self.calls) == 1 or self.hold_every_call:
            self.first_entered.set()
            await self.release.wait()
        if np.isnan(x).any():
            raise ValueError("a NaN reached the model")
        return x.sum(axis=1) * 10


def batcher(model: GatedModel, clock: ManualClock | None = None, **kw: Any) -> Batcher:
    kw.setdefault("max_batch_size", 32)
    kw.setdefault("max_queue_delay", 5.0)
    kw.setdefault("max_queue", 64)
    kw.setdefault("workers", 1)
    return Batcher(model, clock=clock or ManualClock(), metrics=MetricsRegistry(), **kw)


def rows(*values: float) -> np.ndarray:
    return np.array([[v, v] for v in values], dtype=np.float64)


async def until(predicate: Any) -> None:
    """Let the event loop run until ``predicate()`` holds (a bounded number of turns)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)  # one loop turn, not a wait for time
    raise AssertionError("the condition never held")


def test_a_single_request_is_dispatched_without_waiting():
    async def main() -> None:
        model = GatedModel()
        model.release.set()
        clock = ManualClock()
        b = batcher(model, clock, max_queue_delay=3600.0)
        out = await b.submit(rows(1.0), 1)  # the clock never moves: no wait for a batch
        np.testing.assert_array_equal(out, [20.0])
        assert len(model.calls) == 1 and clock.sleepers == 0

    asyncio.run(main())


def test_requests_queued_while_busy_run_as_one_batch_with_results_in_order():
    async def main() -> None:
        model = GatedModel()
        b = batcher(model)
        first = asyncio.create_task(b.submit(rows(0.0), 1))
        await model.first_entered.wait()
        queued = [asyncio.create_task(b.submit(rows(i, i + 0.5), 2)) for i in range(1, 6)]
        await until(lambda: b.queue_length == 5)
        model.release.set()
        results = await asyncio.gather(first, *queued)
        assert [len(c) for c in model.calls] == [1, 10]  # the five requests: one call
        for i, result in enumerate(results[1:], start=1):
            np.testing.assert_array_equal(result, [20.0 * i, 20.0 * i + 10.0])

    asyncio.run(main())


def test_a_failed_batch_fails_only_the_request_that_caused_it():
    async def main() -> None:
        model = GatedModel()
        b = batcher(model)
        first = asyncio.create_task(b.submit(rows(0.0), 1))
        await model.first_entered.wait()
        good1 = asyncio.create_task(b.submit(rows(1.0), 1))
        bad = asyncio.create_task(b.submit(rows(np.nan), 1))
        good2 = asyncio.create_task(b.submit(rows(3.0), 1))
        await until(lambda: b.queue_length == 3)
        model.release.set()
        await first
        np.testing.assert_array_equal(await good1, [20.0])
        np.testing.assert_array_equal(await good2, [60.0])
        with pytest.raises(ValueError, match="NaN reached the model"):
            await bad
        # the batch, then each of its requests alone
        assert [len(c) for c in model.calls] == [1, 3, 1, 1, 1]

    asyncio.run(main())


def test_a_full_queue_refuses_at_once():
    async def main() -> None:
        model = GatedModel()
        b = batcher(model, max_queue=2)
        first = asyncio.create_task(b.submit(rows(0.0), 1))
        await model.first_entered.wait()
        queued = [asyncio.create_task(b.submit(rows(1.0), 1)) for _ in range(2)]
        await until(lambda: b.queue_length == 2)
        with pytest.raises(QueueFullError, match="max_queue"):
            await b.submit(rows(2.0), 1)
        model.release.set()
        await asyncio.gather(first, *queued)

    asyncio.run(main())


def test_a_free_worker_flushes_a_partial_batch_after_max_queue_delay():
    async def main() -> None:
        model = GatedModel()
        clock = ManualClock()
        b = batcher(model, clock, workers=2, max_batch_size=8, max_queue_delay=0.01)
        first = asyncio.create_task(b.submit(rows(0.0), 1))
        await model.first_entered.wait()
        # one batch runs, one worker is free: the next requests wait for the batch to fill
        waiting = [asyncio.create_task(b.submit(rows(i), 1)) for i in (1.0, 2.0)]
        await until(lambda: b.queue_length == 2 and clock.sleepers == 1)
        clock.advance(0.005)
        for _ in range(20):
            await asyncio.sleep(0)
        assert b.queue_length == 2 and len(model.calls) == 1  # not due yet
        clock.advance(0.005)  # max_queue_delay reached: the partial batch leaves
        results = await asyncio.gather(*waiting)
        assert [r.tolist() for r in results] == [[20.0], [40.0]]
        assert [len(c) for c in model.calls] == [1, 2] and not first.done()
        model.release.set()
        await first

    asyncio.run(main())


def test_a_full_batch_leaves_without_waiting_for_the_delay():
    async def main() -> None:
        model = GatedModel()
        clock = ManualClock()
        b = batcher(model, clock, workers=2, max_batch_size=4, max_queue_delay=3600.0)
        first = asyncio.create_task(b.submit(rows(0.0), 1))
        await model.first_entered.wait()
        batch = [asyncio.create_task(b.submit(rows(1.0), 1)) for _ in range(4)]
        results = await asyncio.gather(*batch)  # the clock never moves
        assert all(r.tolist() == [20.0] for r in results)
        assert [len(c) for c in model.calls] == [1, 4]
        model.release.set()
        await first

    asyncio.run(main())


def test_requests_of_other_sample_shapes_are_not_mixed_into_a_batch():
    async def main() -> None:
        model = GatedModel()
        b = batcher(model)
        first = asyncio.create_task(b.submit(rows(0.0), 1))
        await model.first_entered.wait()
        a = asyncio.create_task(b.submit(rows(1.0), 1))
        wide = asyncio.create_task(b.submit(np.ones((1, 3)), 1))
        c = asyncio.create_task(b.submit(rows(2.0), 1))
        await until(lambda: b.queue_length == 3)
        model.release.set()
        await asyncio.gather(first, a, wide, c)
        assert [c.shape for c in model.calls] == [(1, 2), (1, 2), (1, 3), (1, 2)]
        assert (await wide).tolist() == [30.0]

    asyncio.run(main())


# -- through the service --------------------------------------------------------------------


def metric(svc: BigModelService, name: str) -> float:
    text = requests.get(svc.url + "/metrics", timeout=TIMEOUT).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def wait_queued(svc: BigModelService, n: int) -> None:
    """Poll /metrics (requests, not sleeps) until ``n`` requests wait in the queue."""
    for _ in range(2000):
        if metric(svc, "sedna_ji_queue_length") == n:
            return
    raise AssertionError(f"the queue never held {n} requests")


def post_tensor(svc: BigModelService, x: np.ndarray) -> requests.Response:
    return requests.post(
        svc.predict_url,
        data=wire.encode({"data": x}),
        headers={"Content-Type": wire.CONTENT_TYPE},
        timeout=TIMEOUT,
    )


def test_batched_and_unbatched_services_answer_the_same(serve, models, samples):
    x = samples[:16].astype(np.float64)
    unbatched = serve(max_batch_size=1)
    expected = [
        wire.decode(post_tensor(unbatched, x[i : i + 1]).content)["result"] for i in range(16)
    ]

    models.cloud.gate = threading.Event()
    models.cloud.entered.clear()
    svc = serve(job_name="batched")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        first = pool.submit(post_tensor, svc, x[:1])
        assert models.cloud.entered.wait(TIMEOUT)
        rest = [pool.submit(post_tensor, svc, x[i : i + 1]) for i in range(1, 16)]
        wait_queued(svc, 15)
        calls_before = models.cloud.calls
        models.cloud.gate.set()
        answers = [f.result(TIMEOUT) for f in [first, *rest]]
    assert all(r.status_code == 200 for r in answers)
    got = [wire.decode(r.content)["result"] for r in answers]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=0)
        assert np.argmax(g) == np.argmax(e)
    assert models.cloud.calls == calls_before + 1  # the 15 queued requests: one model call
    assert metric(svc, "sedna_ji_batch_samples_sum") == 16
    assert metric(svc, "sedna_ji_batch_size_count") == 2
    assert metric(svc, "sedna_ji_queue_delay_seconds_count") == 16  # the first one's is 0


def test_a_full_queue_answers_503_with_retry_after_and_the_service_recovers(serve, models, samples):
    models.cloud.gate = threading.Event()
    svc = serve(max_queue=1, input_shape=(8,))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(post_tensor, svc, samples[:1])
        assert models.cloud.entered.wait(TIMEOUT)
        queued = pool.submit(post_tensor, svc, samples[1:2])
        wait_queued(svc, 1)
        refused = post_tensor(svc, samples[2:3])
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["type"] == "overloaded"
        assert "max_queue" in refused.json()["error"]["message"]
        models.cloud.gate.set()
        assert running.result(TIMEOUT).status_code == 200
        assert queued.result(TIMEOUT).status_code == 200
    assert metric(svc, "sedna_ji_queue_rejected_total") == 1
    assert post_tensor(svc, samples[3:4]).status_code == 200


def test_per_request_limits_apply_before_batching(serve, models, samples):
    svc = serve(
        input_shape=(8,),
        service_config=BigModelServiceConfig.from_env(max_request_size=4096),
    )
    too_big = post_tensor(svc, samples.repeat(20, axis=0))  # > 4096 bytes on its own
    assert too_big.status_code == 413
    wrong = post_tensor(svc, np.ones((1, 5)))
    assert wrong.status_code == 400 and "expected (n, 8)" in wrong.json()["error"]["message"]
    assert models.cloud.calls == 0


def test_predict_streams_are_batched_too(serve, models, samples):
    import aiohttp

    models.cloud.gate = threading.Event()
    svc = serve(input_shape=(8,))
    stream_url = svc.predict_url + "/ws"

    async def main() -> list[np.ndarray]:
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(stream_url) for _ in range(4)]

            async def ask(ws: aiohttp.ClientWebSocketResponse, i: int) -> np.ndarray:
                await ws.send_bytes(wire.encode({"data": samples[i : i + 1]}))
                msg = await ws.receive()
                return wire.decode(msg.data)["result"]

            first = asyncio.create_task(ask(sockets[0], 0))
            await asyncio.get_running_loop().run_in_executor(
                None, models.cloud.entered.wait, TIMEOUT
            )
            rest = [asyncio.create_task(ask(sockets[i], i)) for i in (1, 2, 3)]
            await asyncio.get_running_loop().run_in_executor(None, wait_queued, svc, 3)
            models.cloud.gate.set()
            out = await asyncio.gather(first, *rest)
            for ws in sockets:
                await ws.close()
            return out

    results = asyncio.run(main())
    models.cloud.gate = None
    np.testing.assert_allclose(np.concatenate(results), models.cloud.predict(samples[:4]))
    assert metric(svc, "sedna_ji_batch_size_count") == 2  # the three queued: one call


def test_batching_settings_come_from_arguments_or_environment(monkeypatch, models):
    monkeypatch.setenv("SEDNA_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("SEDNA_MAX_QUEUE_DELAY", "0.25")
    svc = BigModelService(models.cloud, max_queue=9)
    cfg = svc.service_config
    assert (cfg.max_batch_size, cfg.max_queue_delay, cfg.max_queue) == (7, 0.25, 9)
    monkeypatch.setenv("SEDNA_MAX_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="SEDNA_MAX_BATCH_SIZE"):
        BigModelService(models.cloud)
    monkeypatch.delenv("SEDNA_MAX_BATCH_SIZE")
    with pytest.raises(ConfigError, match="max_queue_delay=-1"):
        BigModelService(models.cloud, max_queue_delay=-1)


@pytest.mark.parametrize("wire_format", ["binary", "json"])
def test_an_edge_treats_a_full_queue_as_an_outage(serve, models, samples, hem_pm, wire_format):
    from sedna_core.config.joint_inference import JointInferenceConfig
    from sedna_core.jobs.joint_inference import JointInference

    models.cloud.gate = threading.Event()
    svc = serve(max_queue=1, input_shape=(8,))
    cfg = JointInferenceConfig.from_env(
        {},
        job_name="ji",
        big_model_url=svc.url,
        breaker_failures=1,
        cloud_timeout=TIMEOUT,
        wire=wire_format,
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(post_tensor, svc, samples[:1])
        assert models.cloud.entered.wait(TIMEOUT)
        queued = pool.submit(post_tensor, svc, samples[1:2])
        wait_queued(svc, 1)
        with JointInference(models.edge, "CloudOnly", config=cfg) as ji:
            _is_hard, final, edge, cloud = ji.inference(samples[2:3])
            assert cloud is None  # the edge's own answer
            np.testing.assert_allclose(final, edge)
            assert ji.breaker.state == "open" and ji.stats.cloud_failure_number == 1
        models.cloud.gate.set()
        assert running.result(TIMEOUT).status_code == 200
        assert queued.result(TIMEOUT).status_code == 200


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-batch-size", "0"), ("--max-queue", "0"), ("--max-queue-delay", "-1")],
)
def test_cli_refuses_bad_batching_options(capsys, option, value):
    from sedna_core.cli.main import main

    code = main(["serve", "inference", "--estimator", "nowhere:Model", option, value])
    assert code == 2
    shown = float(value) if "delay" in option else int(value)
    assert f"{option} {shown}: give a number >=" in capsys.readouterr().err
