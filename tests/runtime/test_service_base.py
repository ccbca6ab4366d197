"""The service base against real loopback servers: health, metrics, errors, limits, auth, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web

from sedna_core.clock import ManualClock
from sedna_core.config import ServiceConfig
from sedna_core.errors import AuthenticationError, ConfigError, ServiceError
from sedna_core.service import (
    CLOCK_KEY,
    METRICS_KEY,
    HttpClient,
    ServiceRunner,
    SyncClient,
    create_app,
    json_error,
    prepare_websocket,
    public,
)

TOKEN = "s3cret-token"


def make_config(**kw: object) -> ServiceConfig:
    return ServiceConfig.from_env({}, **kw)


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await request.json())


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("handler bug")


async def bad(request: web.Request) -> web.Response:
    raise json_error(422, "bad_input", "field x must be positive")


async def ws_echo(request: web.Request) -> web.WebSocketResponse:
    ws = await prepare_websocket(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str("echo:" + msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data[::-1])
    return ws


def build_app(config: ServiceConfig, clock: ManualClock | None = None) -> web.Application:
    app = create_app(name="test-svc", config=config, clock=clock)
    app.router.add_post("/echo", echo)
    app.router.add_get("/boom", boom)
    app.router.add_get("/bad", bad)
    app.router.add_get("/ws", ws_echo)
    return app


@asynccontextmanager
async def serving(app: web.Application, config: ServiceConfig) -> AsyncIterator[ServiceRunner]:
    runner = ServiceRunner(app, config)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def test_healthz_metrics_and_request_id() -> None:
    clock = ManualClock()
    config = make_config()
    app = build_app(config, clock)
    assert app[CLOCK_KEY] is clock
    async with serving(app, config) as runner, aiohttp.ClientSession() as s:
        assert runner.url == f"http://127.0.0.1:{runner.port}"
        clock.advance(12.5)
        async with s.get(runner.url + "/healthz", headers={"X-Request-ID": "abc-1"}) as r:
            assert r.status == 200
            assert r.headers["X-Request-ID"] == "abc-1"
            assert await r.json() == {"status": "ok", "name": "test-svc", "uptime": 12.5}
        async with s.post(runner.url + "/echo", json={"a": 1}) as r:
            assert await r.json() == {"a": 1}
            assert len(r.headers["X-Request-ID"]) == 32  # generated when none was sent
        async with s.get(runner.url + "/healthz", headers={"X-Request-ID": "bad id!"}) as r:
            assert r.headers["X-Request-ID"] != "bad id!"
        async with s.get(runner.url + "/nowhere") as r:
            assert r.status == 404
        async with s.get(runner.url + "/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await r.text()
    assert 'sedna_http_requests_total{route="/echo",method="POST",status="200"} 1' in text
    assert 'sedna_http_requests_total{route="/healthz",method="GET",status="200"} 2' in text
    assert 'sedna_http_errors_total{route="unmatched",type="not_found"} 1' in text
    assert 'sedna_http_request_duration_seconds_count{route="/echo",method="POST"} 1' in text
    assert "sedna_service_uptime_seconds 12.5" in text
    assert 'sedna_service_info{name="test-svc",version=' in text


async def test_custom_metrics_are_exposed() -> None:
    config = make_config()
    app = build_app(config)
    app[METRICS_KEY].counter("sedna_test_rounds_total", "Rounds", ["outcome"]).inc(outcome="ok")
    async with serving(app, config) as runner, HttpClient(runner.url) as c:
        assert 'sedna_test_rounds_total{outcome="ok"} 1' in (await c.get("/metrics")).text()


async def test_errors_are_json_and_server_keeps_serving() -> None:
    config = make_config()
    async with serving(build_app(config), config) as runner, aiohttp.ClientSession() as s:
        with structlog.testing.capture_logs() as logs:
            async with s.get(runner.url + "/boom", headers={"X-Request-ID": "req-42"}) as r:
                assert r.status == 500
                body = await r.json()
        assert body["error"]["type"] == "internal_error"
        assert "req-42" in body["error"]["message"]
        assert "handler bug" not in body["error"]["message"]  # no internals leak
        logged = [e for e in logs if e["event"] == "unhandled error in request handler"]
        assert logged and logged[0]["request_id"] == "req-42" and logged[0]["exc_info"]

        async with s.get(runner.url + "/bad") as r:
            assert r.status == 422
            assert await r.json() == {
                "error": {"type": "bad_input", "message": "field x must be positive"}
            }
        async with s.get(runner.url + "/nowhere") as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "not_found"
        async with s.get(runner.url + "/echo") as r:
            assert r.status == 405
            assert (await r.json())["error"]["type"] == "method_not_allowed"
            assert "POST" in r.headers["Allow"]
        async with s.post(runner.url + "/echo", data=b"{not json") as r:
            assert r.status == 500  # a handler that does not validate is still contained
        async with s.get(runner.url + "/healthz") as r:
            assert r.status == 200


async def test_oversized_body_is_refused_with_413_and_server_keeps_serving() -> None:
    config = make_config(max_request_size=1024)
    async with serving(build_app(config), config) as runner, aiohttp.ClientSession() as s:
        payload = json.dumps({"x": "y" * 4000}).encode()
        async with s.post(runner.url + "/echo", data=payload) as r:  # Content-Length known
            assert r.status == 413
            assert (await r.json())["error"]["type"] == "request_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # chunked: caught when the handler reads
            for _ in range(4):
                yield b"x" * 1000

        async with s.post(runner.url + "/echo", data=chunks()) as r:
            assert r.status == 413
            assert (await r.json())["error"]["type"] == "request_too_large"
        async with s.post(runner.url + "/echo", json={"small": True}) as r:
            assert r.status == 200


async def test_bearer_token_required_and_accepted() -> None:
    config = make_config(token=TOKEN)
    app = build_app(config)

    @public
    async def open_door(request: web.Request) -> web.Response:
        return web.json_response({"open": True})

    app.router.add_get("/open", open_door)
    async with serving(app, config) as runner, aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            async with s.post(runner.url + "/echo", json={}, headers=headers) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await r.json())["error"]["type"] == "unauthorized"
        async with s.get(runner.url + "/metrics") as r:
            assert r.status == 401
        async with s.get(runner.url + "/healthz") as r:
            assert r.status == 200
        async with s.get(runner.url + "/open") as r:
            assert r.status == 200
        ok = {"Authorization": f"Bearer {TOKEN}"}
        async with s.post(runner.url + "/echo", json={"k": 2}, headers=ok) as r:
            assert r.status == 200 and await r.json() == {"k": 2}
        async with s.get(runner.url + "/metrics", headers=ok) as r:
            assert r.status == 200

    async with serving(build_app(config), config) as runner:
        async with HttpClient(runner.url, token=TOKEN) as c:
            ws = await c.ws_connect("/ws")
            await ws.send_str("hi")
            assert await ws.receive_str() == "echo:hi"
            await ws.close()
        async with HttpClient(runner.url, retries=0) as c:
            with pytest.raises(AuthenticationError) as info:
                await c.ws_connect("/ws")
            assert info.value.status == 401


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    ca_file, cert_file, key_file = d / "ca.pem", d / "cert.pem", d / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return {"ca": str(ca_file), "cert": str(cert_file), "key": str(key_file)}


async def test_tls_https_and_wss(tls_files: dict[str, str]) -> None:
    config = make_config(tls_cert=tls_files["cert"], tls_key=tls_files["key"], token=TOKEN)
    async with serving(build_app(config), config) as runner:
        assert runner.url.startswith("https://127.0.0.1:")
        assert runner.ws_url.startswith("wss://127.0.0.1:")
        async with HttpClient(runner.url, token=TOKEN, ca_file=tls_files["ca"]) as c:
            assert (await c.post("/echo", json=[1, 2])).json() == [1, 2]
            ws = await c.ws_connect("/ws")
            await ws.send_bytes(b"\x01\x02\x03")
            assert await ws.receive_bytes() == b"\x03\x02\x01"
            await ws.close()
        # a client that does not trust the CA is refused, and not retried
        async with HttpClient(runner.url, token=TOKEN, retries=3) as c:
            with pytest.raises(ServiceError, match="certificate"):
                await c.get("/healthz")
        # plain http against the TLS port does not get through
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientError):
                async with s.get(f"http://127.0.0.1:{runner.port}/healthz") as r:
                    await r.read()


def test_tls_needs_both_cert_and_key(tls_files: dict[str, str]) -> None:
    config = make_config(tls_cert=tls_files["cert"])
    with pytest.raises(ConfigError, match="tls_key"):
        ServiceRunner(build_app(config), config).start_in_background()
    config = make_config(tls_key=tls_files["key"])
    with pytest.raises(ConfigError, match="SEDNA_TLS_CERT"):
        ServiceRunner(build_app(config), config).start_in_background()


async def test_graceful_shutdown_finishes_in_flight_request() -> None:
    config = make_config(shutdown_timeout=30.0)
    app = build_app(config)
    entered, release, shutting_down = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"done": True})

    async def on_shutdown(app: web.Application) -> None:
        shutting_down.set()

    app.router.add_get("/slow", slow)
    app.on_shutdown.append(on_shutdown)
    runner = ServiceRunner(app, config)
    await runner.start()
    async with HttpClient(runner.url, retries=0) as c:
        pending = asyncio.ensure_future(c.get("/slow"))
        await entered.wait()
        stopping = asyncio.ensure_future(runner.stop())
        await shutting_down.wait()  # the server stopped accepting and is draining
        assert not pending.done()
        release.set()
        response = await pending
        await stopping
        assert response.json() == {"done": True}
        with pytest.raises(ServiceError):
            await c.get("/healthz")  # the port is released


async def test_shutdown_timeout_bounds_a_stuck_request() -> None:
    config = make_config(shutdown_timeout=0.2)
    app = build_app(config)
    entered = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app.router.add_get("/stuck", stuck)
    runner = ServiceRunner(app, config)
    await runner.start()
    async with HttpClient(runner.url, retries=0) as c:
        pending = asyncio.ensure_future(c.get("/stuck"))
        await entered.wait()
        await runner.stop()  # returns although the handler never finishes
        with pytest.raises(ServiceError):
            await pending


async def test_websockets_are_closed_on_shutdown() -> None:
    config = make_config()
    runner = ServiceRunner(build_app(config), config)
    await runner.start()
    async with HttpClient(runner.url) as c:
        ws = await c.ws_connect("/ws")
        receiving = asyncio.ensure_future(ws.receive())  # a client waiting for the server
        await runner.stop()
        msg = await receiving
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "", "example.org"])
async def test_non_loopback_bind_refused_without_token(host: str) -> None:
    config = make_config(host=host)
    with pytest.raises(ConfigError, match="SEDNA_BIND_IP") as info:
        await ServiceRunner(build_app(config), config).start()
    assert "SEDNA_INSECURE" in str(info.value) and "SEDNA_TOKEN" in str(info.value)


def test_bind_rules_without_binding() -> None:
    from sedna_core.service import check_service_config, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.9.9.9") and not is_loopback("0.0.0.0") and not is_loopback("")
    check_service_config(make_config(host="10.1.2.3", token=TOKEN))  # token: allowed
    with structlog.testing.capture_logs() as logs:
        check_service_config(make_config(host="10.1.2.3", insecure=True))
    assert any("INSECURE" in e["event"] and e["log_level"] == "warning" for e in logs)
    with pytest.raises(ConfigError, match="non-empty"):
        check_service_config(make_config(token="   "))


def test_background_runner_and_sync_client() -> None:
    config = make_config(token=TOKEN)
    runner = ServiceRunner(build_app(config), config)
    runner.start_in_background()
    try:
        with SyncClient(HttpClient(runner.url, token=TOKEN)) as c:
            assert c.get("/healthz").json()["status"] == "ok"
            assert c.post("/echo", json={"v": [1, 2]}).json() == {"v": [1, 2]}
            with c.ws_connect("/ws") as ws:
                ws.send_str("sync")
                assert ws.receive_str(timeout=10) == "echo:sync"
    finally:
        runner.stop_background()
    assert not runner.started


def test_background_runner_reports_bind_failure() -> None:
    first = ServiceRunner(build_app(make_config()), make_config())
    first.start_in_background()
    try:
        taken = make_config(port=first.port)
        with pytest.raises(ConfigError, match="free address"):
            ServiceRunner(build_app(taken), taken).start_in_background()
    finally:
        first.stop_background()


def test_run_forever_stops_on_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess

    script = (
        "import asyncio\n"
        "from sedna_core.config import ServiceConfig\n"
        "from sedna_core.service import ServiceRunner, create_app\n"
        "cfg = ServiceConfig.from_env({})\n"
        "app = create_app(name='rf', config=cfg)\n"
        "async def ready(app):\n"
        "    print('READY', flush=True)\n"
        "app.on_startup.append(ready)\n"
        "ServiceRunner(app, cfg).run_forever()\n"
        "print('STOPPED', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "STOPPED" in out


def test_tls_context_is_verifying(tls_files: dict[str, str]) -> None:
    from sedna_core.service._security import client_ssl_context

    ctx = client_ssl_context(tls_files["ca"])
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with pytest.raises(ConfigError):
        client_ssl_context(str(Path(tls_files["ca"]).with_name("missing.pem")))
