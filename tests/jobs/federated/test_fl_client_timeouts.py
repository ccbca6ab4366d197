"""A client never waits forever: silent or absent servers end in a clear error."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp import web

from sedna_core.config.federated import FederatedConfig
from sedna_core.errors import ServiceUnavailableError
from sedna_core.jobs.federated import FederatedLearning


def _client(url: str, target_estimator: type, **settings: Any) -> FederatedLearning:
    config = FederatedConfig.from_env({}, worker_name="c1", reconnect_backoff=0.01, **settings)
    return FederatedLearning(
        target_estimator(1.0), address=url, client_id="c1", config=config, backend="custom"
    )


async def test_silent_server_times_out_then_gives_up(target_estimator: type, bounded: Any) -> None:
    joins = []

    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        joins.append(await ws.receive())
        async for _ in ws:  # never answers
            pass
        return ws

    app = web.Application()
    app.router.add_get("/fl", silent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        client = _client(
            f"ws://127.0.0.1:{port}", target_estimator, receive_timeout=0.2, reconnect_attempts=2
        )
        with pytest.raises(ServiceUnavailableError, match="no message from the server"):
            await bounded(client.atrain([0]))
        assert len(joins) == 3  # the first connection and two reconnections
    finally:
        await runner.cleanup()


async def test_absent_server_gives_up(target_estimator: type, bounded: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = _client(f"ws://127.0.0.1:{port}", target_estimator, reconnect_attempts=2)
    with pytest.raises(ServiceUnavailableError, match="could not reconnect in 2 attempt"):
        await bounded(client.atrain([0]))


def test_address_from_sedna_environment() -> None:
    env = {"AGG_PROTOCOL": "wss", "AGG_IP": "10.0.0.7", "AGG_PORT": "9000", "WORKER_NAME": "w3"}
    config = FederatedConfig.from_env(env)
    assert config.address == "wss://10.0.0.7:9000" and config.worker == "w3"
