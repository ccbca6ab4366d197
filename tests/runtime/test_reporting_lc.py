"""LCReporter against a real aiohttp local-controller stub on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from aiohttp import web

from sedna_core.clock import ManualClock
from sedna_core.config import JobConfig
from sedna_core.reporting import LCReporter, model_result

REQUIRED = {"name", "namespace", "ownerName", "ownerKind", "kind"}
ALLOWED = REQUIRED | {"status", "results", "ownerInfo"}


class LCStub:
    """Sedna's local controller as far as workers see it: validates and records each message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.problems: list[str] = []
        self.answers: list[int] = []  # statuses to answer before 200s
        self.got = threading.Condition()

    async def info(self, request: web.Request) -> web.Response:
        worker = request.match_info["worker"]
        if request.content_type != "application/json":
            self.problems.append(f"content type {request.content_type}")
        body = await request.json()
        if not set(body) >= REQUIRED or not set(body) <= ALLOWED:
            self.problems.append(f"bad keys {sorted(body)}")
        if body.get("name") != worker:
            self.problems.append(f"name {body.get('name')} != worker {worker}")
        for item in body.get("results", []):
            if set(item) != {"format", "url", "metrics"}:
                self.problems.append(f"bad result item {item}")
        status = self.answers.pop(0) if self.answers else 200
        with self.got:
            if status == 200:
                self.messages.append((worker, body))
            self.got.notify_all()
        if status != 200:
            return web.json_response({"error": "scripted"}, status=status)
        return web.json_response({})

    def wait_for(self, n: int) -> list[dict[str, Any]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.messages) >= n, timeout=20)
        return [m for _, m in self.messages]


@pytest.fixture
def lc() -> Iterator[tuple[LCStub, str]]:
    # A plain aiohttp app: the stub must not depend on the service base under test elsewhere.
    import asyncio

    stub = LCStub()
    app = web.Application()
    app.router.add_post("/sedna/workers/{worker}/info", stub.info)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield stub, f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class SignallingClock(ManualClock):
    """ManualClock that tells the test when the sender starts a back-off sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = threading.Event()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        # Signal while holding the clock's (reentrant) lock: advance() cannot run before the
        # sleeper waits, so it always wakes it.
        with self._cond:
            self.sleeps.append(seconds)
            self.sleeping.set()
            super().sleep(seconds)


def config(**env: str) -> JobConfig:
    return JobConfig.from_env(env)


def test_messages_have_sedna_shape(lc: tuple[LCStub, str]) -> None:
    stub, url = lc
    cfg = config(
        LC_SERVER=url,
        WORKER_NAME="il-train-0",
        NAMESPACE="default",
        JOB_NAME="helmet",
        DATA_PATH_PREFIX="/home/data",
    )
    reporter = LCReporter.from_config(cfg, "incrementallearningjob")
    assert reporter.url == f"{url}/sedna/workers/il-train-0/info"
    result = model_result("/home/data/il/models/model_finetune_.pkl", {"loss": 0.1})
    reporter.report("train", "completed", [result])
    reporter.report("deploy", "completed")
    reporter.report(
        "inference",
        None,
        results=[],
        owner_info={"inferenceNumber": 10, "hardExampleNumber": 2, "uploadCloudRatio": 0.2},
    )
    reporter.close()
    msgs = stub.wait_for(3)
    assert stub.problems == []
    base = {
        "name": "il-train-0",
        "namespace": "default",
        "ownerName": "helmet",
        "ownerKind": "incrementallearningjob",
    }
    assert msgs[0] == {
        **base,
        "kind": "train",
        "status": "completed",
        "results": [
            {"format": "pkl", "url": "/il/models/model_finetune_.pkl", "metrics": {"loss": 0.1}}
        ],
    }
    assert msgs[1] == {**base, "kind": "deploy", "status": "completed"}
    assert msgs[2] == {
        **base,
        "kind": "inference",
        "results": [],
        "ownerInfo": {"inferenceNumber": 10, "hardExampleNumber": 2, "uploadCloudRatio": 0.2},
    }
    assert reporter.sent == 3 and reporter.dropped == 0 and reporter.failed == 0


def test_defaults_follow_sedna_and_numpy_metrics_serialise(lc: tuple[LCStub, str]) -> None:
    np = pytest.importorskip("numpy")
    stub, url = lc
    with LCReporter.from_config(config(LC_SERVER=url + "/"), "federatedlearningjob") as reporter:
        metrics = {"accuracy": np.float32(0.5), "confusion": np.eye(2, dtype=np.int64)}
        reporter.report("eval", "completed", [model_result("/tmp/m.keras", metrics)])
    (msg,) = stub.wait_for(1)
    assert msg["name"] == msg["namespace"] == msg["ownerName"] == "sedna"  # JOB_NAME default
    assert msg["results"][0]["metrics"] == {"accuracy": 0.5, "confusion": [[1, 0], [0, 1]]}
    assert msg["results"][0]["format"] == "keras"


def test_model_result_rules() -> None:
    assert model_result("/home/data/a/b.PB", None) == {
        "format": "pb",
        "url": "/a/b.PB",
        "metrics": None,
    }
    assert model_result("/home/database/m.pkl")["url"] == "/home/database/m.pkl"  # boundary
    assert model_result("/mnt/x/model.pth", data_path_prefix="/mnt/x/")["url"] == "/model.pth"
    assert model_result("s3://bucket/m.json")["url"] == "s3://bucket/m.json"
    assert model_result("/home/data/saved_model/", fmt="savedmodel")["format"] == "savedmodel"
    assert model_result("/home/data/m.h5", data_path_prefix=None)["url"] == "/home/data/m.h5"


def test_no_lc_server_is_a_no_op() -> None:
    reporter = LCReporter.from_config(config(), "lifelonglearningjob")
    assert not reporter.enabled and reporter.url is None
    reporter.report("train", "completed", [model_result("/x.pkl")])
    reporter.close()
    assert reporter._thread is None and reporter.pending == 0


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_lc_down_never_blocks_and_logs_once() -> None:
    clock = SignallingClock()
    reporter = LCReporter(
        _refused_url(),
        worker="w",
        namespace="ns",
        job_name="j",
        job_kind="jointinferenceservice",
        queue_size=5,
        timeout=1.0,
        clock=clock,
    )
    with structlog.testing.capture_logs() as logs:
        reporter.report("inference", "running")
        assert clock.sleeping.wait(20)  # the sender failed once and backs off (on the clock)
        for i in range(20):  # the job keeps going; report() only queues
            reporter.report("inference", "running", owner_info={"i": i})
        assert reporter.pending == 5 and reporter.dropped == 16
        reporter.close(timeout=5)
    unreachable = [e for e in logs if "unreachable" in e["event"]]
    full = [e for e in logs if "queue full" in e["event"]]
    assert len(unreachable) == 1 and len(full) == 1
    assert any("not delivered" in e["event"] for e in logs)
    assert reporter.sent == 0
    reporter.report("train", "completed")  # after close: ignored, no raise
    clock.advance(60)  # wake the backed-off sender: it sees close() and ends
    assert reporter._thread is not None
    reporter._thread.join(20)
    assert not reporter._thread.is_alive()


def test_retries_through_an_outage_with_backoff_on_the_clock(lc: tuple[LCStub, str]) -> None:
    stub, url = lc
    stub.answers = [503, 503]
    clock = SignallingClock()
    reporter = LCReporter(
        url, worker="w", namespace="ns", job_name="j", job_kind="default", clock=clock
    )
    with structlog.testing.capture_logs() as logs:
        reporter.report("train", "running")
        reporter.report("train", "completed")
        for _ in range(2):
            assert clock.sleeping.wait(20)
            clock.sleeping.clear()
            clock.advance(60)
        msgs = stub.wait_for(2)
        reporter.close()
    assert [m["status"] for m in msgs] == ["running", "completed"]  # order kept
    assert clock.sleeps == [1.0, 2.0]
    assert sum("unreachable" in e["event"] for e in logs) == 1
    assert sum("reachable again" in e["event"] for e in logs) == 1


def test_rejected_message_is_dropped_not_retried(lc: tuple[LCStub, str]) -> None:
    stub, url = lc
    stub.answers = [400]
    clock = SignallingClock()
    reporter = LCReporter(
        url, worker="w", namespace="ns", job_name="j", job_kind="default", clock=clock
    )
    reporter.report("train", "failed")
    reporter.report("train", "completed")
    reporter.close()
    msgs = stub.wait_for(1)
    assert [m["status"] for m in msgs] == ["completed"]
    assert reporter.failed == 1 and reporter.sent == 1 and clock.sleeps == []


def test_report_never_raises_on_odd_payloads(lc: tuple[LCStub, str]) -> None:
    stub, url = lc
    reporter = LCReporter(url, worker="w/1", namespace="n", job_name="j", job_kind="default")
    reporter.report("train", "completed", owner_info={"obj": object(), "s": {1}})
    reporter.report("weird-kind", "weird-status")
    reporter.close()
    msgs = stub.wait_for(2)
    assert msgs[0]["ownerInfo"]["s"] == [1] and isinstance(msgs[0]["ownerInfo"]["obj"], str)
    assert stub.messages[0][0] == "w/1"  # worker name percent-encoded in the path
    json.dumps(msgs)
