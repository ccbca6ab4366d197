"""HttpClient/SyncClient against real loopback servers: retries (ManualClock), errors, timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from sedna_core.clock import ManualClock
from sedna_core.config import ServiceConfig
from sedna_core.errors import (
    AuthenticationError,
    RemoteError,
    ServiceError,
    ServiceUnavailableError,
)
from sedna_core.service import (
    HttpClient,
    RemoteUnavailableError,
    ServiceRunner,
    SyncClient,
    create_app,
    json_error,
)


class DrivenClock(ManualClock):
    """A ManualClock that records each back-off and advances past it at once (no real waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        sleeping = asyncio.ensure_future(super().asleep(seconds))
        await asyncio.sleep(0)  # let the sleeper register with the clock
        assert self.sleepers == 1
        self.advance(seconds)
        await sleeping


class Scripted:
    """A server whose answers per route follow a script (then 200)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.script: dict[str, list[int]] = {}
        self.never = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        plan = self.script.get(name, [])
        status = plan.pop(0) if plan else 200
        if status == 0:  # hang: for read timeouts
            await self.never.wait()
        if status == -1:  # drop the connection without answering
            assert request.transport is not None
            request.transport.close()
            await self.never.wait()
        if status >= 400:
            raise json_error(status, f"scripted_{status}", f"scripted failure for {name}")
        return web.json_response({"name": name, "hit": self.hits[name]})


@asynccontextmanager
async def scripted_server() -> AsyncIterator[tuple[Scripted, str]]:
    config = ServiceConfig.from_env({})
    app = create_app(name="scripted", config=config)
    s = Scripted()
    app.router.add_route("*", "/s/{name}", s.handle)
    runner = ServiceRunner(app, config)
    await runner.start()
    try:
        yield s, runner.url
    finally:
        s.never.set()
        await runner.stop()


async def test_retries_then_succeeds_on_503_with_exponential_backoff() -> None:
    clock = DrivenClock()
    async with scripted_server() as (s, url), HttpClient(url, clock=clock, retries=3) as c:
        s.script["a"] = [503, 502, 504]
        r = await c.get("/s/a")
    assert r.status == 200 and r.json() == {"name": "a", "hit": 4}
    assert clock.sleeps == [0.1, 0.2, 0.4]


async def test_gives_up_after_bounded_retries() -> None:
    clock = DrivenClock()
    async with scripted_server() as (s, url), HttpClient(url, clock=clock, retries=2) as c:
        s.script["b"] = [503, 503, 503, 503]
        with pytest.raises(RemoteUnavailableError) as info:
            await c.post("/s/b", json={"x": 1})
    assert s.hits["b"] == 3
    assert isinstance(info.value, ServiceUnavailableError) and isinstance(info.value, RemoteError)
    assert info.value.status == 503 and info.value.error_type == "scripted_503"
    assert clock.sleeps == [0.1, 0.2]


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422, 500])
async def test_no_retry_on_4xx_or_plain_5xx(status: int) -> None:
    clock = DrivenClock()
    async with scripted_server() as (s, url), HttpClient(url, clock=clock, retries=3) as c:
        s.script["c"] = [status]
        with pytest.raises(RemoteError) as info:
            await c.get("/s/c")
    assert s.hits["c"] == 1 and clock.sleeps == []
    assert info.value.status == status
    assert info.value.error_type == f"scripted_{status}"
    assert info.value.remote_message == "scripted failure for c"
    assert not isinstance(info.value, ServiceUnavailableError)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_map_to_authentication_error(status: int) -> None:
    async with scripted_server() as (s, url), HttpClient(url, clock=DrivenClock()) as c:
        s.script["d"] = [status]
        with pytest.raises(AuthenticationError):
            await c.get("/s/d")
    assert s.hits["d"] == 1


async def test_wrong_token_against_a_protected_server() -> None:
    config = ServiceConfig.from_env({}, token="right")
    runner = ServiceRunner(create_app(name="p", config=config), config)
    await runner.start()
    try:
        async with HttpClient(runner.url, token="wrong") as c:
            with pytest.raises(AuthenticationError) as info:
                await c.get("/metrics")
        assert info.value.status == 401 and info.value.error_type == "unauthorized"
        async with HttpClient(runner.url, token="right") as c:
            assert "sedna_http_requests_total" in (await c.get("/metrics")).text()
    finally:
        await runner.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_retried_then_unavailable() -> None:
    clock = DrivenClock()
    url = f"http://127.0.0.1:{_free_port()}"
    async with HttpClient(url, clock=clock, retries=2, backoff=0.5) as c:
        with pytest.raises(ServiceUnavailableError, match="after 3 attempt") as info:
            await c.get("/healthz")
    assert clock.sleeps == [0.5, 1.0]
    assert not isinstance(info.value, RemoteError)


async def test_dropped_connection_is_retried() -> None:
    clock = DrivenClock()
    async with scripted_server() as (s, url), HttpClient(url, clock=clock, retries=2) as c:
        s.script["e"] = [-1]
        r = await c.post("/s/e", json={})  # POST: aiohttp itself never re-sends it
    assert r.json()["hit"] == 2 and clock.sleeps == [0.1]


async def test_read_timeout_is_retried_then_unavailable() -> None:
    clock = DrivenClock()
    client = HttpClient("", clock=clock, retries=1, read_timeout=0.2)
    async with scripted_server() as (s, url), client as c:
        s.script["f"] = [0, 0]
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            await c.get(url + "/s/f")
        assert s.hits["f"] == 2 and clock.sleeps == [0.1]
        s.script["g"] = [0]
        r = await c.get(url + "/s/g")  # a timeout, then success on the retry
        assert r.json()["hit"] == 2


async def test_per_call_overrides_and_absolute_urls() -> None:
    async with scripted_server() as (s, url), HttpClient(url, clock=DrivenClock()) as c:
        s.script["h"] = [503]
        with pytest.raises(RemoteUnavailableError):
            await c.get("/s/h", retries=0)
        assert (await c.get(url + "/s/h")).json()["hit"] == 2
        assert c.url("x/y") == url + "/x/y"


def test_sync_client_from_sync_code_and_not_from_its_own_loop() -> None:
    config = ServiceConfig.from_env({})
    app = create_app(name="sync", config=config)

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.query.get("who", "")})

    app.router.add_get("/hello", hello)
    runner = ServiceRunner(app, config)
    runner.start_in_background()
    try:
        sync = SyncClient(HttpClient(runner.url, retries=0))
        assert sync.get("/hello", params={"who": "edge"}).json() == {"hello": "edge"}
        with pytest.raises(RemoteError) as info:
            sync.get("/missing")
        assert info.value.status == 404 and info.value.error_type == "not_found"

        async def inside() -> None:
            sync.get("/hello")

        with pytest.raises(RuntimeError, match="own event loop"):
            sync.run(inside())
        sync.close()
        sync.close()  # idempotent
    finally:
        runner.stop_background()


def test_sync_client_refused_is_unavailable() -> None:
    clock = ManualClock()
    client = HttpClient(f"http://127.0.0.1:{_free_port()}", retries=0, clock=clock)
    with SyncClient(client) as c, pytest.raises(ServiceError):
        c.get("/healthz")


def test_client_validates_arguments() -> None:
    with pytest.raises(ValueError):
        HttpClient("http://127.0.0.1:1", retries=-1)
    with pytest.raises(ValueError):
        HttpClient("http://127.0.0.1:1", read_timeout=0)


def test_sync_client_thread_is_daemon_and_usable_from_a_loop_thread() -> None:
    config = ServiceConfig.from_env({})
    runner = ServiceRunner(create_app(name="d", config=config), config)
    runner.start_in_background()
    try:
        sync = SyncClient(HttpClient(runner.url))

        async def caller() -> int:  # blocks this loop for the call, but works
            return sync.get("/healthz").status

        assert asyncio.run(caller()) == 200
        assert sync._thread is not None and sync._thread.daemon
        sync.close()
        assert sync._thread is None
    finally:
        runner.stop_background()
