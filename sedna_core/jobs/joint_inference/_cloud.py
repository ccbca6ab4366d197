"""The edge's client for the big-model service: one deadline per call, a circuit breaker, and one
log line per outage (not one per call)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import threading
import weakref
from typing import Any

import aiohttp

from sedna_core import wire
from sedna_core.errors import (
    AuthenticationError,
    RemoteError,
    RemoteUnavailableError,
    ServiceUnavailableError,
    WireFormatError,
)
from sedna_core.jobs.joint_inference._breaker import CircuitBreaker
from sedna_core.jobs.joint_inference._channel import NO_STREAM, Channel, StreamSupport
from sedna_core.jobs.joint_inference._protocol import (
    JSON_CONTENT_TYPE,
    decode_result,
    encode_data,
    predict_path,
    stream_path,
)
from sedna_core.service import HttpClient, SyncClient

__all__ = ["CloudClient", "CloudReply"]


class CloudReply:
    """What a cloud call gave: ``ok`` with ``result``, or not ``ok`` (failed or ``skipped``)."""

    __slots__ = ("ok", "result", "skipped")

    def __init__(self, ok: bool, result: Any = None, skipped: bool = False) -> None:
        self.ok = ok
        self.result = result
        self.skipped = skipped


_SKIPPED = CloudReply(False, skipped=True)
_CLOSE_TIMEOUT = 0.25  # seconds a stream's close waits for the cloud's closing handshake
# request headers per content type, built once (aiohttp copies them into each request)
_HEADERS = {ctype: {"Content-Type": ctype} for ctype in (wire.CONTENT_TYPE, JSON_CONTENT_TYPE)}
#: the first retry after a transient refusal (a busy cloud's 503, a dropped connection) waits
#: up to this many seconds (full jitter), doubling each retry up to MAX_BACKOFF; the call's
#: deadline bounds the retries
BACKOFF = 0.05
MAX_BACKOFF = 1.0  # the guard's Retry-After


class CloudClient:
    """Calls ``POST {base_url}/{job_name}/predict`` from synchronous or asynchronous code.

    Binary requests go over a predict stream (``/{job_name}/predict/ws``, a websocket kept
    open: no HTTP request per call) when the cloud offers one, else as HTTP requests; JSON
    requests always as HTTP requests. Every call has one deadline (``timeout`` seconds for
    connecting, sending, retries and the answer): a late answer is worth less than the edge's
    answer now. Within it, a transient refusal (502/503/504: a busy cloud, whose connection
    guard refuses new connections while a burst of edges connects; or a connection dropped
    before the answer) is retried until the deadline (not a full batching queue's 503, which is
    backpressure: the edge answers at once), after a jittered back-off, so a
    burst of edges spreads out instead of retrying in step. A refused connection (nothing
    listening) or a timeout is not retried: that is an outage. Failures feed the breaker,
    except 4xx answers (our request was refused; the cloud is up).

    ``rng`` draws the jitter (tests pass a seeded one).
    """

    def __init__(
        self,
        base_url: str,
        job_name: str,
        *,
        timeout: float,
        wire_format: str,
        breaker: CircuitBreaker,
        log: Any,
        token: str | None = None,
        ca_file: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url
        self._rng = rng or random.Random()  # jitter must differ between edges: not seeded
        self.path = predict_path(job_name)
        self.timeout = timeout
        self.wire_format = wire_format
        self.breaker = breaker
        self.log = log.bind(cloud=f"{base_url}{self.path}")
        self._token = token
        self._ca_file = ca_file
        self.stream_path = stream_path(job_name)
        self._streams = StreamSupport()
        self._lock = threading.Lock()
        self._sync: tuple[SyncClient, Channel] | None = None
        self._local = threading.local()
        self._thread_loops: list[tuple[asyncio.AbstractEventLoop, Channel]] = []
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Channel] = (
            weakref.WeakKeyDictionary()
        )
        self._outage_failures = 0

    def _http(self) -> HttpClient:
        return HttpClient(
            self.base_url,
            token=self._token,
            ca_file=self._ca_file,
            connect_timeout=self.timeout,
            read_timeout=None,  # the call's deadline (asyncio.timeout in _post) bounds reads
            retries=0,
            clock=self.breaker.clock,
        )

    def _channel(self, http: HttpClient) -> Channel:
        # a closing handshake takes a millisecond from a live cloud; a stalled one gets little
        close_timeout = min(self.timeout, _CLOSE_TIMEOUT)
        return Channel(
            http, self.stream_path, self._streams, close_timeout=close_timeout, log=self.log
        )

    def _thread_loop(self) -> tuple[asyncio.AbstractEventLoop, Channel]:
        """This thread's private event loop and channel (run here: no hop to another thread)."""
        pair = getattr(self._local, "pair", None)
        if pair is None:
            pair = (asyncio.new_event_loop(), self._channel(self._http()))
            self._local.pair = pair
            with self._lock:
                self._thread_loops.append(pair)
        return pair

    def _sync_client(self) -> tuple[SyncClient, Channel]:
        with self._lock:
            if self._sync is None:
                sync = SyncClient(self._http())
                self._sync = (sync, self._channel(sync.client))
            return self._sync

    def _loop_channel(self) -> Channel:
        loop = asyncio.get_running_loop()
        with self._lock:
            channel = self._per_loop.get(loop)
            if channel is None:
                channel = self._per_loop[loop] = self._channel(self._http())
            return channel

    async def _post(self, channel: Channel, data: Any) -> Any:
        # a cloud without predict streams is Sedna's own service (or behind a proxy that
        # refuses websockets): Sedna's JSON is what every big-model service understands
        fmt = self.wire_format if self._streams.available else "json"
        body, content_type = encode_data(data, fmt)
        # one deadline for connect, send, retries and answer
        async with asyncio.timeout(self.timeout):
            attempt = 0
            while True:
                try:
                    return await self._attempt(channel, data, body, content_type)
                except ServiceUnavailableError as exc:
                    if not _transient(exc):
                        raise
                    # full jitter: a burst of edges refused together comes back spread out
                    delay = self._rng.uniform(0.0, min(MAX_BACKOFF, BACKOFF * 2 ** min(attempt, 8)))
                    attempt += 1
                    self.log.debug(
                        "cloud busy; retrying", attempt=attempt, delay=delay, error=_describe(exc)
                    )
                    await asyncio.sleep(delay)  # real time: bounded by the deadline above

    async def _attempt(self, channel: Channel, data: Any, body: bytes, content_type: str) -> Any:
        if content_type == wire.CONTENT_TYPE:
            result = await channel.predict(body)
            if result is not NO_STREAM:
                return result
            body, content_type = encode_data(data, "json")
        response = await channel.http.request(
            "POST", self.path, data=body, headers=_HEADERS[content_type]
        )
        return decode_result(response.headers.get("Content-Type", ""), response.body)

    # -- calls -------------------------------------------------------------------------------
    def call(self, data: Any, expected: int | None = None) -> CloudReply:
        """Blocking call (from any thread that is not the client's own loop)."""
        if not self.breaker.allow():
            return _SKIPPED
        try:
            if _loop_running():  # called from async code: use the background loop
                sync, channel = self._sync_client()
                # the coroutine has its own deadline; this bound guards against a wedged loop
                result = sync.run(self._post(channel, data), timeout=self.timeout + 5.0)
            else:
                loop, channel = self._thread_loop()
                result = loop.run_until_complete(self._post(channel, data))
        except Exception as exc:
            return self._failed(exc)
        except BaseException:  # interrupted: no verdict on the cloud, free a claimed probe
            self.breaker.release_probe()
            raise
        return self._answered(result, expected)

    async def acall(self, data: Any, expected: int | None = None) -> CloudReply:
        """The same call from a coroutine (a client per event loop)."""
        if not self.breaker.allow():
            return _SKIPPED
        try:
            result = await self._post(self._loop_channel(), data)
        except Exception as exc:
            return self._failed(exc)
        except BaseException:  # cancelled: no verdict on the cloud, free a claimed probe
            self.breaker.release_probe()
            raise
        return self._answered(result, expected)

    # -- outcome bookkeeping -----------------------------------------------------------------
    def _answered(self, result: Any, expected: int | None) -> CloudReply:
        if expected is not None:
            try:
                got = len(result)
            except TypeError:
                got = -1
            if got != expected:
                return self._failed(
                    WireFormatError(f"the cloud answered {got} results for {expected} samples")
                )
        closed = self.breaker.record_success()
        with self._lock:
            failed, self._outage_failures = self._outage_failures, 0
        if closed or failed:
            self.log.info("cloud answers again", failed_calls=failed)
        return CloudReply(True, result)

    def _failed(self, exc: BaseException) -> CloudReply:
        error = _describe(exc)
        refused = isinstance(exc, RemoteError) and 400 <= exc.status < 500
        opened = False if refused else self.breaker.record_failure()
        with self._lock:
            self._outage_failures += 1
            first = self._outage_failures == 1
        if first and isinstance(exc, AuthenticationError):
            self.log.warning(
                f"{exc.status} from the cloud: check SEDNA_TOKEN (the edge's token is missing "
                "or is not the big-model service's); answering from the edge meanwhile",
                error=error,
            )
        elif first:
            self.log.warning(
                "cloud call failed; answering from the edge until it answers again",
                error=error,
                timeout=self.timeout,
            )
        else:
            self.log.debug("cloud call failed", error=error)
        if opened:
            self.log.warning(
                "circuit breaker open: skipping the cloud",
                cooldown=self.breaker.cooldown,
                consecutive_failures=self.breaker.consecutive_failures,
            )
        return CloudReply(False)

    # -- teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the blocking clients (async clients close with :meth:`aclose` in their loop)."""
        with self._lock:
            sync, self._sync = self._sync, None
            pairs, self._thread_loops = self._thread_loops, []
        if sync is not None:
            client, channel = sync
            with contextlib.suppress(Exception):  # its loop may be gone already
                client.run(channel.aclose(), timeout=self.timeout + 5.0)
            client.close()
        for loop, channel in pairs:
            if loop.is_running():  # another thread is mid-call: it keeps its loop
                continue
            loop.run_until_complete(channel.aclose())
            loop.close()
        self._local = threading.local()

    async def aclose(self) -> None:
        """Close the client of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            channel = self._per_loop.pop(loop, None)
        if channel is not None:
            await channel.aclose()


#: 503 error types that mean "do not retry here now" (see _transient)
_OUTAGE_TYPES = frozenset({"overloaded", "unavailable"})


def _transient(exc: ServiceUnavailableError) -> bool:
    """Whether trying again soon may succeed: a busy cloud, or a connection it dropped.

    Not a connection nobody accepted (the cloud is down: the edge answers now, the breaker
    counts it) and not a timeout (the deadline is spent).
    """
    if isinstance(exc, RemoteUnavailableError):
        # A full batching queue ("overloaded") is backpressure and a stopping service
        # ("unavailable") says "retry elsewhere": both are outages for the edge, which answers
        # now instead of adding load. The connection guard's refusal of a burst is transient.
        return exc.error_type not in _OUTAGE_TYPES
    cause = exc.__cause__
    return not isinstance(cause, aiohttp.ClientConnectorError | TimeoutError)


def _loop_running() -> bool:
    return asyncio._get_running_loop() is not None  # no exception raised per call when none


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | concurrent.futures.TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
