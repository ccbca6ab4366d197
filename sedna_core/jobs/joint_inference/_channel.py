"""One event loop's way to the big-model service: its HTTP client and its predict streams.

A predict stream is a websocket on ``/{job_name}/predict/ws`` carrying the binary exchange of
``POST /{job_name}/predict`` without an HTTP request per call (see ``_protocol``). A stream is
used by one call at a time and goes back to the idle list only when it answered in step; one
that timed out, broke or closed is closed in the background and never reused, so an answer can
never be taken for the answer to a later request. A cloud without the stream route (the handshake
is answered with a 4xx other than 401: Sedna's FastAPI answers 403, proxies 404 or 405) is asked
with HTTP requests in Sedna's JSON from then on (see ``CloudClient``); 401 is a refused token.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from sedna_core import wire
from sedna_core.errors import RemoteError, ServiceUnavailableError
from sedna_core.jobs.joint_inference._protocol import decode_result, decode_stream_text
from sedna_core.service import HttpClient

__all__ = ["NO_STREAM", "Channel", "StreamSupport"]

#: returned by :meth:`Channel.predict` when the cloud has no stream: ask over HTTP
NO_STREAM: Any = object()
_TOO_BIG = aiohttp.WSCloseCode.MESSAGE_TOO_BIG


class StreamSupport:
    """Whether the cloud offers predict streams, shared by the channels of one client."""

    __slots__ = ("available",)

    def __init__(self, available: bool = True) -> None:
        self.available = available


class _NoAnswer(Exception):
    """The stream closed or broke before answering (a reused one may just have gone stale)."""


class Channel:
    """The HTTP client of one event loop, with a few idle predict streams to reuse.

    Parameters
    ----------
    http
        The loop's client (its session carries the token and the TLS settings).
    stream_path
        The stream route (``/{job_name}/predict/ws``).
    support
        Shared verdict on whether the cloud has the route.
    close_timeout
        Seconds a background close waits for the cloud's closing handshake.
    log
        Logger of the job.
    """

    MAX_IDLE = 4

    def __init__(
        self,
        http: HttpClient,
        stream_path: str,
        support: StreamSupport,
        *,
        close_timeout: float,
        log: Any,
    ) -> None:
        self.http = http
        self.stream_path = stream_path
        self.support = support
        self.close_timeout = close_timeout
        self.log = log
        self._idle: list[aiohttp.ClientWebSocketResponse] = []
        self._closing: set[asyncio.Future[None]] = set()

    async def predict(self, body: bytes) -> Any:
        """The result for a binary request over a stream, or :data:`NO_STREAM`.

        Raises what a call over HTTP raises: :class:`RemoteError` for an error answer,
        :class:`ServiceUnavailableError` when the stream closes without answering.
        """
        if not self.support.available:
            return NO_STREAM
        reused = bool(self._idle)
        ws = self._idle.pop() if reused else await self._open()
        if ws is None:
            return NO_STREAM
        try:
            return await self._exchange(ws, body)
        except _NoAnswer as exc:
            if not reused:
                raise ServiceUnavailableError(str(exc)) from None
        # an idle stream the cloud had closed meanwhile: once more on a new one
        ws = await self._open()
        if ws is None:
            return NO_STREAM
        try:
            return await self._exchange(ws, body)
        except _NoAnswer as exc:
            raise ServiceUnavailableError(str(exc)) from None

    async def _open(self) -> aiohttp.ClientWebSocketResponse | None:
        try:
            return await self.http.ws_connect(
                self.stream_path, retries=0, close_timeout=self.close_timeout
            )
        except RemoteError as exc:
            if exc.status >= 500 or exc.status == 401:  # down, or our token refused
                raise
            if self.support.available:
                self.support.available = False
                self.log.info(
                    "the cloud has no predict stream (Sedna's BigModelService?); sending HTTP "
                    "POST requests with Sedna's JSON from now on",
                    status=exc.status,
                    route=self.stream_path,
                )
            return None

    async def _exchange(self, ws: aiohttp.ClientWebSocketResponse, body: bytes) -> Any:
        in_step = False
        try:
            try:
                await ws.send_bytes(body)
            except (ConnectionError, aiohttp.ClientConnectionError) as exc:
                raise _NoAnswer(f"the predict stream broke: {exc}") from None
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                in_step = True
                return decode_result(wire.CONTENT_TYPE, msg.data)
            if msg.type is aiohttp.WSMsgType.TEXT:
                in_step = True  # an answer, an error one included: the stream is in step
                return decode_stream_text(msg.data)
            if ws.close_code == _TOO_BIG:
                raise RemoteError(
                    413,
                    "request_too_large",
                    "the request exceeds the cloud's size limit; send fewer samples per call",
                )
            raise _NoAnswer(f"the cloud closed the predict stream (code {ws.close_code})")
        finally:
            if in_step and not ws.closed and len(self._idle) < self.MAX_IDLE:
                self._idle.append(ws)
            else:
                self._discard(ws)

    def _discard(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Close ``ws`` in the background (the caller's deadline does not wait for it)."""
        if ws.closed:
            return
        task = asyncio.ensure_future(_close_quietly(ws))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the streams and the HTTP client (in the channel's loop)."""
        idle, self._idle = self._idle, []
        for ws in idle:
            await _close_quietly(ws)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self.http.close()


async def _close_quietly(ws: aiohttp.ClientWebSocketResponse) -> None:
    with contextlib.suppress(Exception):  # closing a broken stream: nothing left to do
        await ws.close()
