"""The connection guard's pending cap against a burst of legitimate clients, event by event on
fake transports (deterministic: no sockets, an injected clock): fresh connections are never
evicted, a new one beyond the cap is refused with a 503 and ``Retry-After``, and only those
that had their chance (trickling headers, silent past the grace, idle unauthenticated) are
evicted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sedna_core.service._guard import MAX_REFUSING, ConnectionGuard


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.eof = self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted


class Inner(asyncio.Protocol):
    """aiohttp's protocol stand-in: records what reaches it."""

    def __init__(self) -> None:
        self.made = False
        self.data = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True

    def data_received(self, data: bytes) -> None:
        self.data += data


class Bench:
    def __init__(self, max_pending: int) -> None:
        self.now = 0.0
        self.drops: list[str] = []
        self.guard = ConnectionGuard(
            header_timeout=3600.0,
            body_timeout=3600.0,
            max_pending=max_pending,
            on_drop=self.drops.append,
            clock=lambda: self.now,
        )
        self.factory = self.guard.wrap(lambda: Inner())  # type: ignore[arg-type]

    def connect(self) -> tuple[asyncio.Protocol, FakeTransport, Inner]:
        proto = self.factory()
        transport = FakeTransport()
        proto.connection_made(transport)
        return proto, transport, proto._inner  # type: ignore[attr-defined]


REQUEST = b"GET /ji/predict/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"


def _status(raw: bytes) -> int:
    return int(raw.split(b"\r\n", 1)[0].split()[1])


async def test_a_burst_of_fresh_connections_is_never_evicted_new_ones_are_refused() -> None:
    bench = Bench(max_pending=8)
    admitted = [bench.connect() for _ in range(8)]
    refused = [bench.connect() for _ in range(120)]  # 128 edges at once, none read yet
    for _, transport, inner in admitted:
        assert inner.made and not transport.is_closing()
    for proto, transport, inner in refused:
        assert not inner.made  # aiohttp never sees it
        assert _status(transport.written) == 503 and transport.eof
        assert b"Retry-After: 1\r\n" in transport.written
        assert b"SEDNA_MAX_PENDING_CONNECTIONS" in transport.written
        proto.data_received(REQUEST)  # its request is discarded, not served
        assert not inner.data
    assert bench.drops == ["refused"] * 120 and "evicted" not in bench.drops
    # at most MAX_REFUSING refused connections wait for their client to close; older ones reset
    assert sum(not t.aborted for _, t, _ in refused) == MAX_REFUSING
    assert all(t.aborted for _, t, _ in refused[: 120 - MAX_REFUSING])
    # the admitted ones complete their handshake (a request arrives in one read)
    for proto, transport, inner in admitted:
        proto.data_received(REQUEST)
        assert inner.data == REQUEST and not transport.is_closing()


async def test_a_refused_client_that_reads_the_503_and_closes_frees_its_slot() -> None:
    bench = Bench(max_pending=1)
    bench.connect()
    proto, transport, _ = bench.connect()
    assert _status(transport.written) == 503 and bench.guard._refusing
    assert proto.eof_received() is None  # falsy: asyncio closes the transport
    proto.connection_lost(None)
    assert not bench.guard._refusing and not transport.aborted


async def test_only_connections_that_had_their_chance_are_evicted() -> None:
    bench = Bench(max_pending=3)
    trickler = bench.connect()
    trickler[0].data_received(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never the blank line
    complete = bench.connect()
    complete[0].data_received(REQUEST[:-1])  # the blank line split across two reads
    complete[0].data_received(REQUEST[-1:])
    silent = bench.connect()

    newcomer = bench.connect()  # the trickler goes, not the others
    assert trickler[1].aborted and bench.drops == ["evicted"]
    assert newcomer[2].made and not complete[1].is_closing() and not silent[1].is_closing()

    late = bench.connect()  # nobody had a chance yet: refused
    assert not late[2].made and _status(late[1].written) == 503

    bench.now += bench.guard.grace  # the silent one's grace is over: it goes
    last = bench.connect()
    assert silent[1].aborted and last[2].made
    assert not complete[1].is_closing() and not newcomer[1].is_closing()
    assert bench.drops == ["evicted", "refused", "evicted"]


@pytest.mark.parametrize("grace", [0.25, 10.0])
def test_the_grace_never_exceeds_the_header_timeout(grace: float) -> None:
    guard = ConnectionGuard(header_timeout=1.0, body_timeout=1.0, max_pending=1, grace=grace)
    assert guard.grace == min(grace, 1.0)
