"""HTTP/websocket client for sedna services: timeouts, bounded retries, error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import (
    AuthenticationError,
    RemoteError,
    RemoteUnavailableError,
    ServiceError,
    ServiceUnavailableError,
)
from sedna_core.log import get_logger
from sedna_core.service._security import client_ssl_context

__all__ = ["HttpClient", "RemoteUnavailableError", "Response"]

log = get_logger(__name__)

RETRYABLE_STATUS = frozenset({502, 503, 504})
MAX_BACKOFF = 30.0  # seconds; caps the exponential back-off however many retries are asked for
DEFAULT_MAX_MSG_SIZE = 64 * 1024 * 1024


@attrs.frozen
class Response:
    """A complete HTTP response (the body is read before the connection is released)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding, errors="replace")


def _error_from(status: int, body: bytes) -> RemoteError:
    """Map a non-2xx answer to our error, reading our ``{"error": {...}}`` body when present."""
    error_type: str | None = None
    message: str | None = None
    try:
        doc = jsonlib.loads(body)
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            error_type = str(err.get("type")) if err.get("type") is not None else None
            message = str(err.get("message")) if err.get("message") is not None else None
        elif isinstance(err, str):
            message = err
    except (ValueError, UnicodeDecodeError):
        pass
    if message is None and body:
        message = body[:500].decode("utf-8", errors="replace").strip() or None
    if status in (401, 403):
        return AuthenticationError(status, error_type, message)
    if status in RETRYABLE_STATUS:
        return RemoteUnavailableError(status, error_type, message)
    return RemoteError(status, error_type, message)


def _is_retryable(exc: BaseException) -> bool:
    # Refused/reset/dropped connections and timeouts; never an answer the server chose (4xx).
    if isinstance(exc, RemoteUnavailableError):
        return True
    if isinstance(exc, ServiceError | aiohttp.ClientSSLError):
        return False  # an answer, or a certificate problem that retrying cannot fix
    return isinstance(
        exc,
        aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | asyncio.TimeoutError | OSError,
    )


class HttpClient:
    """An asyncio client for one sedna service.

    Parameters
    ----------
    base_url
        ``http(s)://host:port`` (a path prefix is allowed); request paths are appended to it.
    token
        Bearer token sent as ``Authorization: Bearer <token>``.
    ca_file
        PEM bundle trusted for ``https``/``wss`` (else the system trust store).
    connect_timeout, read_timeout
        Seconds to establish the TCP (and TLS) connection, and the longest silence while
        waiting for response bytes (None: no silence limit, for callers that bound each call
        with their own deadline; it saves re-arming a timer on every chunk received).
    retries
        Extra attempts after a retryable failure: connection refused/reset, timeouts, and
        502/503/504 answers. 4xx and other 5xx answers are never retried.
    backoff
        First retry delay in seconds; doubles each retry (capped at 30 s). Sleeps go through
        ``clock``, so tests with a ``ManualClock`` never wait.

    Notes
    -----
    The underlying session is created on first use in the running event loop; use one client
    from one loop. Close it with :meth:`close` or ``async with``. A client left open when its
    loop ends under ``asyncio.run`` (``asyncio.run(job.ainference(x))``) is closed by that
    loop's shutdown, inside the loop: nothing prints ``Unclosed client session`` or
    ``Event loop is closed`` later.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float | None = 30.0,
        retries: int = 2,
        backoff: float = 0.1,
        clock: Clock | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if connect_timeout <= 0 or (read_timeout is not None and read_timeout <= 0):
            raise ValueError("timeouts must be > 0 seconds")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self.backoff = backoff
        self.clock = clock or SystemClock()
        self._ssl = client_ssl_context(ca_file) if ca_file else None
        self._session: aiohttp.ClientSession | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._default_timeout = self._timeout(None)  # made once, not per request

    # -- plumbing ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (returned unchanged when already absolute)."""
        if "://" in path:
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _timeout(self, read_timeout: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None,
            connect=None,
            sock_connect=self.connect_timeout,
            sock_read=read_timeout or self.read_timeout,
        )

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(
                headers=headers, connector=connector, timeout=self._timeout(None)
            )
            self._keeper = asyncio.get_running_loop().create_task(
                _close_at_loop_end(self._session), name=f"sedna-http-keeper-{id(self):x}"
            )
        return self._session

    def _delay(self, attempt: int) -> float:
        return min(MAX_BACKOFF, self.backoff * (2**attempt))

    async def _with_retries(
        self, method: str, url: str, attempt_once: Any, retries: int | None
    ) -> Any:
        retries = self.retries if retries is None else retries
        what = ""
        for attempt in range(retries + 1):
            try:
                return await attempt_once()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                what = what or f"{method} {url}"  # formatted only when something failed
                if not _is_retryable(exc):
                    if isinstance(exc, aiohttp.ClientError):
                        raise ServiceError(f"{what} failed: {_describe(exc)}") from exc
                    raise
                if attempt >= retries:
                    if isinstance(exc, ServiceError):
                        raise
                    raise ServiceUnavailableError(
                        f"{what} failed after {attempt + 1} attempt(s): {_describe(exc)}; "
                        "check that the service runs and is reachable"
                    ) from exc
                delay = self._delay(attempt)
                log.info(
                    "retrying", what=what, attempt=attempt + 1, delay=delay, error=_describe(exc)
                )
                await self.clock.asleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- API ---------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
        retries: int | None = None,
    ) -> Response:
        """Send a request and return the whole 2xx response.

        ``read_timeout`` and ``retries`` override the client's for this call.

        Raises
        ------
        AuthenticationError
            401/403.
        RemoteError
            Any other non-2xx answer (``RemoteUnavailableError`` for 502/503/504 after retries).
        ServiceUnavailableError
            Refused, reset, or timed out on every attempt.
        """
        method = method.upper()
        url = self.url(path)
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)  # re-sendable on retry
        timeout = self._default_timeout if read_timeout is None else self._timeout(read_timeout)

        async def once() -> Response:
            session = self._session_now()
            async with session.request(
                method,
                url,
                json=json,
                data=data,
                params=params,
                headers=headers,
                timeout=timeout,
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise _error_from(resp.status, body)
                return Response(resp.status, resp.headers, body)

        return await self._with_retries(method, url, once, retries)

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)

    async def ws_connect(
        self,
        path: str,
        *,
        heartbeat: float | None = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        headers: Mapping[str, str] | None = None,
        retries: int | None = None,
        close_timeout: float | None = None,
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a websocket (``ws``/``wss`` derived from the base URL); the token goes in the
        upgrade request's ``Authorization`` header. Handshake failures are retried like requests.
        ``close_timeout`` bounds how long ``close()`` waits for the server's closing handshake
        (aiohttp's default: 10 s).
        """
        url = self.url(path)
        if url.startswith("http"):
            url = "ws" + url.removeprefix("http")
        extra: dict[str, Any] = {}
        if close_timeout is not None:
            extra["timeout"] = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=close_timeout)

        async def once() -> aiohttp.ClientWebSocketResponse:
            try:
                return await self._session_now().ws_connect(
                    url,
                    heartbeat=heartbeat,
                    max_msg_size=max_msg_size,
                    headers=headers,
                    **extra,
                )
            except aiohttp.WSServerHandshakeError as exc:
                raise _error_from(exc.status, (exc.message or "").encode()) from exc

        return await self._with_retries("websocket", url, once, retries)

    async def close(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        keeper, self._keeper = self._keeper, None
        if session is not None and not session.closed:
            await session.close()
        if keeper is not None and not keeper.done():
            keeper.cancel()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _close_at_loop_end(session: aiohttp.ClientSession) -> None:
    """Wait until cancelled, then close ``session``: ``asyncio.run`` cancels the tasks left when
    its coroutine returns, so a client nobody closed is closed while its loop still runs."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:  # not GeneratorExit: a coroutine being destroyed cannot await
        if not session.closed:
            with contextlib.suppress(Exception):
                await session.close()
        raise


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
