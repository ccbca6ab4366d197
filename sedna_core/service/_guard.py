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
  one that has had its chance: it trickles its header block (bytes arrived, the blank line that
  ends them did not), it sent nothing for ``grace`` seconds, or it finished a request without
  authenticating. So a slow crowd cannot starve a client that sends its request promptly.
  When no pending connection has had its chance (a burst of clients connecting at once, whose
  requests the server has not even read yet), the *new* connection is refused instead: it is
  answered ``503`` with ``Retry-After`` and closed before aiohttp sees it. Evicting the oldest
  would cut handshakes that are about to complete (a burst of 128 edges opening predict streams
  lost half of them that way); a refused client retries, and the descriptors stay bounded.
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


#: seconds a pending connection that sent nothing is protected from eviction (at most the
#: header timeout): long enough for a loaded server to read a request that already arrived
DEFAULT_GRACE = 1.0
#: what a refused connection is told to wait before it tries again (seconds)
RETRY_AFTER = 1
#: refused connections kept open at once until their client reads the 503 and closes (beyond
#: it, the oldest is reset): closing at once would reset them before the 503 is read (the
#: kernel resets a connection closed with unread request bytes), and a crowd that never
#: closes must not hold descriptors
MAX_REFUSING = 16
_HEADER_END = b"\r\n\r\n"


def _closing_response(status: str, error_type: str, message: str, extra: str = "") -> bytes:
    body = error_body(error_type, message).encode()
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _timeout_response(message: str) -> bytes:
    return _closing_response("408 Request Timeout", "request_timeout", message)


def _refused_response(max_pending: int) -> bytes:
    return _closing_response(
        "503 Service Unavailable",
        "service_unavailable",
        f"too many connections are waiting to be served (max_pending_connections={max_pending}, "
        f"SEDNA_MAX_PENDING_CONNECTIONS); retry in {RETRY_AFTER} s",
        extra=f"Retry-After: {RETRY_AFTER}\r\n",
    )


class _Conn:
    __slots__ = ("head_done", "header_timer", "phase", "received", "since", "tail", "transport")

    def __init__(self, transport: asyncio.BaseTransport, now: float) -> None:
        self.transport = transport
        self.phase = "headers"  # "headers" (awaiting a request), "request", "idle"
        self.header_timer: asyncio.TimerHandle | None = None
        self.since = now  # when the current header block was awaited from
        self.received = False  # bytes of the current header block arrived
        self.head_done = False  # ... and its blank line too (a request is on its way in)
        self.tail = b""  # the last bytes seen, for a blank line split across reads


class _GuardedProtocol(asyncio.Protocol):
    """Forwards every event to aiohttp's handler, telling the guard what it sees."""

    __slots__ = ("_conn", "_guard", "_inner", "_transport")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._conn: _Conn | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._conn = self._guard._opened(transport)
        if self._conn is not None:  # None: refused; aiohttp never sees it
            self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._guard._closed(self._conn)
            self._inner.connection_lost(exc)
        elif self._transport is not None:
            self._guard._refused_closed(self._transport)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            return  # a refused connection: its request is not read
        if conn.phase == "idle":
            self._guard._awaiting_headers(conn)
        if not conn.head_done and conn.phase == "headers":
            self._guard._header_bytes(conn, data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._conn is None:
            return None  # close the refused connection
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
        Called with a reason (``"header_timeout"``, ``"body_timeout"``, ``"evicted"``,
        ``"refused"``) for every connection the guard cuts (metrics).
    grace
        Seconds a pending connection that sent nothing yet is protected from eviction
        (default: :data:`DEFAULT_GRACE`, at most ``header_timeout``).
    clock
        Seconds, monotonic, for the grace (default: the running loop's ``time``).
    """

    def __init__(
        self,
        *,
        header_timeout: float,
        body_timeout: float,
        max_pending: int,
        on_drop: Callable[[str], None] | None = None,
        grace: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_pending = max_pending
        self.grace = min(header_timeout, DEFAULT_GRACE if grace is None else grace)
        self._clock = clock
        self._on_drop = on_drop or (lambda reason: None)
        self._conns: dict[asyncio.BaseTransport, _Conn] = {}
        # refused connections waiting for their client to close, oldest first
        self._refusing: OrderedDict[asyncio.BaseTransport, asyncio.TimerHandle] = OrderedDict()
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

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _opened(self, transport: asyncio.BaseTransport) -> _Conn | None:
        """Book a new connection; None when it is refused (the cap is full of fresh ones)."""
        now = self._now()
        if len(self._pending) >= self.max_pending:
            victim = self._evictable(now)
            if victim is None:
                self._refuse(transport)
                return None
            self._drop(victim, "evicted")
        conn = _Conn(transport, now)
        self._conns[transport] = conn
        self._pending[conn] = None
        self._arm_header_timer(conn)
        return conn

    def _evictable(self, now: float) -> _Conn | None:
        """The oldest pending connection that had its chance (see the module docstring)."""
        for conn in self._pending:  # oldest first; scanned only when the cap is full
            if conn.phase == "idle" or (conn.received and not conn.head_done):
                return conn
            if not conn.received and now - conn.since >= self.grace:
                return conn
        return None

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        self._on_drop("refused")
        log.debug("connection refused", pending=len(self._pending))
        if not isinstance(transport, asyncio.WriteTransport) or not transport.can_write_eof():
            transport.close()
            return
        transport.write(_refused_response(self.max_pending))
        transport.write_eof()  # the 503, then our end; the client closes its end on reading it
        while len(self._refusing) >= MAX_REFUSING:
            oldest, timer = self._refusing.popitem(last=False)
            timer.cancel()
            _abort(oldest)
        loop = asyncio.get_running_loop()
        self._refusing[transport] = loop.call_later(self.grace, self._refused_expired, transport)

    def _refused_expired(self, transport: asyncio.BaseTransport) -> None:
        if self._refusing.pop(transport, None) is not None:
            _abort(transport)  # its client did not close: free the descriptor

    def _refused_closed(self, transport: asyncio.BaseTransport) -> None:
        timer = self._refusing.pop(transport, None)
        if timer is not None:
            timer.cancel()

    def _header_bytes(self, conn: _Conn, data: bytes) -> None:
        """Bytes of a header block arrived: note whether its blank line did too."""
        if conn not in self._pending:
            return  # authenticated: nobody will evict it, no need to look
        conn.received = True
        if _HEADER_END in conn.tail + data[:3] or _HEADER_END in data:
            conn.head_done = True
            conn.tail = b""
        else:
            conn.tail = (conn.tail + data)[-3:]

    def _closed(self, conn: _Conn) -> None:
        if conn.header_timer is not None:
            conn.header_timer.cancel()
            conn.header_timer = None
        self._conns.pop(conn.transport, None)
        self._pending.pop(conn, None)

    def _awaiting_headers(self, conn: _Conn) -> None:
        conn.phase = "headers"
        conn.since = self._now()
        conn.received = conn.head_done = False
        conn.tail = b""
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
        if abort:
            _abort(conn.transport)  # free the descriptor now: the client was too slow anyway
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


def _abort(transport: asyncio.BaseTransport) -> None:
    if hasattr(transport, "abort"):
        transport.abort()
    else:
        transport.close()
