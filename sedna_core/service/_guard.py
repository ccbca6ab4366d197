"""Connection guard: header and body read timeouts, and a cap on pending connections.

aiohttp has no read timeout for a request's headers or body, so a client that trickles bytes
holds a connection (and a file descriptor) for as long as it likes. The guard sits between the
event loop and aiohttp's protocol for each connection:

- **header timeout**: a request's header block must arrive within ``header_timeout`` seconds,
  counted from the connection's start or the first byte of the next request on it; otherwise
  the server answers 408 and closes the connection;
- **body timeout**: a request's body must arrive within ``body_timeout`` seconds after its
  headers; otherwise reading it raises :class:`BodyTimeoutError` (the service base answers 408)
  and the connection is closed;
- **pending cap**: at most ``max_pending_connections`` connections may be *pending* at once, that
  is not yet authenticated (with a token: no request on it passed the bearer check; without one:
  no complete request arrived yet). A new connection beyond the cap evicts the oldest pending
  one, so a slow crowd cannot starve a client that sends its request promptly.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sedna_core.log import get_logger
from sedna_core.service._http_errors import error_body

__all__ = ["BodyTimeoutError", "ConnectionGuard"]

log = get_logger(__name__)


class BodyTimeoutError(TimeoutError):
    """A request's body did not arrive within the body timeout.

    A :class:`TimeoutError` on purpose: aiohttp's lingering read of an unread body treats it as
    a timeout and closes the connection instead of waiting any longer.
    """


def _timeout_response(message: str) -> bytes:
    body = error_body("request_timeout", message).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Conn:
    __slots__ = ("header_timer", "phase", "transport")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.phase = "headers"  # "headers" (awaiting a request), "request", "idle"
        self.header_timer: asyncio.TimerHandle | None = None


class _GuardedProtocol(asyncio.Protocol):
    """Forwards every event to aiohttp's handler, telling the guard what it sees."""

    __slots__ = ("_conn", "_guard", "_inner")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._conn: _Conn | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn = self._guard._opened(transport)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._guard._closed(self._conn)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None and conn.phase == "idle":
            self._guard._awaiting_headers(conn)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _GuardedServer:
    """aiohttp's ``web.Server`` (the protocol factory) with each protocol wrapped."""

    def __init__(self, server: web.Server, guard: ConnectionGuard) -> None:
        self._server = server
        self._guard = guard

    def __call__(self) -> asyncio.Protocol:
        return _GuardedProtocol(self._server(), self._guard)

    def __getattr__(self, name: str) -> Any:  # pre_shutdown, shutdown, connections, ...
        return getattr(self._server, name)


class ConnectionGuard:
    """Per-server connection bookkeeping (one per application; see the module docstring).

    Parameters
    ----------
    header_timeout, body_timeout
        Seconds for a request's header block, and for its body after the headers.
    max_pending
        How many unauthenticated connections may be open at once.
    on_drop
        Called with a reason (``"header_timeout"``, ``"body_timeout"``, ``"evicted"``) for
        every connection the guard cuts (metrics).
    """

    def __init__(
        self,
        *,
        header_timeout: float,
        body_timeout: float,
        max_pending: int,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_pending = max_pending
        self._on_drop = on_drop or (lambda reason: None)
        self._conns: dict[asyncio.BaseTransport, _Conn] = {}
        self._pending: OrderedDict[_Conn, None] = OrderedDict()  # oldest first

    # -- wiring (ServiceRunner) ----------------------------------------------------------------

    def wrap(self, server: web.Server) -> web.Server:
        """The protocol factory to serve with (``server``'s protocols, guarded)."""
        return _GuardedServer(server, self)  # type: ignore[return-value]

    @property
    def pending(self) -> int:
        """Connections open now that are not authenticated yet."""
        return len(self._pending)

    # -- protocol events -------------------------------------------------------------------------

    def _opened(self, transport: asyncio.BaseTransport) -> _Conn:
        conn = _Conn(transport)
        self._conns[transport] = conn
        self._pending[conn] = None
        while len(self._pending) > self.max_pending:
            oldest = next(iter(self._pending))
            self._drop(oldest, "evicted")
        self._arm_header_timer(conn)
        return conn

    def _closed(self, conn: _Conn) -> None:
        if conn.header_timer is not None:
            conn.header_timer.cancel()
            conn.header_timer = None
        self._conns.pop(conn.transport, None)
        self._pending.pop(conn, None)

    def _awaiting_headers(self, conn: _Conn) -> None:
        conn.phase = "headers"
        self._arm_header_timer(conn)

    def _arm_header_timer(self, conn: _Conn) -> None:
        if conn.header_timer is not None:
            conn.header_timer.cancel()
        loop = asyncio.get_running_loop()
        conn.header_timer = loop.call_later(self.header_timeout, self._header_expired, conn)

    def _header_expired(self, conn: _Conn) -> None:
        conn.header_timer = None
        if conn.phase != "headers" or conn.transport.is_closing():
            return
        # nothing is being answered on this connection: the 408 cannot interleave with a response
        transport = conn.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(
                _timeout_response(
                    f"the request headers did not arrive within {self.header_timeout:g} s "
                    "(header_timeout, SEDNA_HEADER_TIMEOUT)"
                )
            )
        self._drop(conn, "header_timeout", abort=False)

    def _drop(self, conn: _Conn, reason: str, *, abort: bool = True) -> None:
        self._pending.pop(conn, None)
        if conn.header_timer is not None:
            conn.header_timer.cancel()
            conn.header_timer = None
        if abort and hasattr(conn.transport, "abort"):
            conn.transport.abort()  # free the descriptor now: the client was too slow anyway
        else:
            conn.transport.close()
        self._on_drop(reason)
        log.debug("connection dropped", reason=reason, pending=len(self._pending))

    # -- request events (the service base's middleware) -----------------------------------------

    def request_started(self, request: web.BaseRequest) -> Callable[[], None]:
        """The headers of ``request`` arrived: stop the header timer, start the body timer.

        Returns the function to call when the request is done.
        """
        conn = self._conns.get(request.transport)  # type: ignore[arg-type]
        if conn is not None:
            conn.phase = "request"
            if conn.header_timer is not None:
                conn.header_timer.cancel()
                conn.header_timer = None
        body_timer: asyncio.TimerHandle | None = None
        content = request.content
        if request.body_exists and not content.is_eof():
            loop = asyncio.get_running_loop()

            def body_expired() -> None:
                if not content.is_eof():
                    content.set_exception(
                        BodyTimeoutError(
                            f"the request body did not arrive within {self.body_timeout:g} s "
                            "after its headers (body_timeout, SEDNA_BODY_TIMEOUT)"
                        )
                    )
                    self._on_drop("body_timeout")

            body_timer = loop.call_later(self.body_timeout, body_expired)

        def done() -> None:
            if body_timer is not None:
                body_timer.cancel()
            if conn is not None and conn.phase == "request":
                conn.phase = "idle"

        return done

    def authenticated(self, request: web.BaseRequest) -> None:
        """A request on this connection proved who it is: it no longer counts as pending."""
        conn = self._conns.get(request.transport)  # type: ignore[arg-type]
        if conn is not None:
            self._pending.pop(conn, None)
