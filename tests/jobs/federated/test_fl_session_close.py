"""Closing a connection while a large send to a slow client is cancelled (found at 100M
parameters by ``benchmarks/federated_scale.py``: the server's ``astop`` cancels the stop message
still streaming the final model, then closes the connection; aiohttp's close waited on the same
drain future the cancelled send had, got its cancellation, and the server died with a traceback
and left its spool behind)."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
from aiohttp import web

from sedna_core.jobs.federated._session import Session

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_close_after_a_cancelled_large_send_does_not_raise() -> None:
    joined: asyncio.Future[tuple[Session, web.Request]] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        joined.set_result((Session("slow", ws, "native"), request))
        await done.wait()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # a client that completes the handshake and then never reads: the server's sends stall
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HANDSHAKE)
        await reader.readuntil(b"\r\n\r\n")
        session, request = await joined
        big = [np.zeros(16 << 20, np.float32)]  # 64 MB: far more than the socket buffers hold
        send = asyncio.create_task(session.send_weights("stop", big, 4 << 20))
        protocol = request.protocol
        for _ in range(10_000):  # until the send waits for the transport to drain
            if protocol._drain_waiter is not None:
                break
            await asyncio.sleep(0)
        assert protocol._drain_waiter is not None
        send.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await send
        await session.close(1001, "server shutting down")  # raised CancelledError before
        assert not session.alive
        assert request.transport is None or request.transport.is_closing()
    finally:
        done.set()
        writer.close()
        await runner.cleanup()


async def test_close_still_honours_a_cancellation_of_its_own_task() -> None:
    started = asyncio.Event()

    class StuckWebSocket:
        async def close(self, *, code: int, message: bytes) -> bool:
            started.set()
            await asyncio.Event().wait()  # a close that never finishes
            return True

    session = Session("c", StuckWebSocket(), "native")  # type: ignore[arg-type]
    task = asyncio.create_task(session.close(1001, "bye"))
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
