"""Blocking facade over :class:`HttpClient` for synchronous job APIs."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp

from sedna_core.service._client import DEFAULT_MAX_MSG_SIZE, HttpClient, Response

__all__ = ["SyncClient", "SyncWebSocket"]

T = TypeVar("T")


def _stop_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Stop a client's private loop that nobody closed (collected, or interpreter exit): its
    tasks are cancelled first, as ``asyncio.run`` does, so that open sessions close inside the
    loop instead of warning ``Unclosed client session`` later."""
    if loop.is_closed():
        return
    if loop.is_running():
        with contextlib.suppress(Exception):  # best effort, bounded: never hang an exit
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(timeout=5.0)
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(loop.stop)


async def _cancel_tasks() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class SyncClient:
    """The blocking twin of an :class:`HttpClient`: same methods, results returned directly.

    The wrapped client runs on a private event loop in a daemon thread (started on first use),
    so this works from any synchronous code and never keeps the process alive.

    It is meant for synchronous code. Calling it from a thread that runs an event loop works but
    blocks that loop for the call's duration; async code should ``await`` the
    :class:`HttpClient` instead. Calling it from its own loop's thread raises ``RuntimeError``.
    """

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=f"sedna-client-{id(self):x}", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                self._finalizer = weakref.finalize(self, _stop_loop, loop)
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the private loop and return its result (or raise its exception)."""
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "SyncClient called from its own event loop; await HttpClient instead"
            )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """See :meth:`HttpClient.request`."""
        return self.run(self.client.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)

    def ws_connect(
        self,
        path: str,
        *,
        heartbeat: float | None = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        headers: Mapping[str, str] | None = None,
        retries: int | None = None,
    ) -> SyncWebSocket:
        """See :meth:`HttpClient.ws_connect`; returns a blocking websocket."""
        ws = self.run(
            self.client.ws_connect(
                path,
                heartbeat=heartbeat,
                max_msg_size=max_msg_size,
                headers=headers,
                retries=retries,
            )
        )
        return SyncWebSocket(self, ws)

    def close(self) -> None:
        """Close the client's connections and stop the private loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.client.close(), loop).result(timeout=10.0)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10.0)
            if not thread.is_alive():
                loop.close()
            if self._finalizer is not None:
                self._finalizer.detach()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncWebSocket:
    """A blocking websocket (from :meth:`SyncClient.ws_connect`); ``.ws`` is the aiohttp one."""

    def __init__(self, owner: SyncClient, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._owner = owner
        self.ws = ws

    @property
    def closed(self) -> bool:
        return self.ws.closed

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    def send_str(self, data: str) -> None:
        self._owner.run(self.ws.send_str(data))

    def send_bytes(self, data: bytes) -> None:
        self._owner.run(self.ws.send_bytes(data))

    def send_json(self, data: Any) -> None:
        self._owner.run(self.ws.send_json(data))

    def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        """The next message (``TimeoutError`` after ``timeout`` seconds)."""
        return self._owner.run(self.ws.receive(timeout=timeout))

    def receive_str(self, timeout: float | None = None) -> str:
        return self._owner.run(self.ws.receive_str(timeout=timeout))

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        return self._owner.run(self.ws.receive_bytes(timeout=timeout))

    def receive_json(self, timeout: float | None = None) -> Any:
        return self._owner.run(self.ws.receive_json(timeout=timeout))

    def close(self) -> None:
        if not self.ws.closed:
            self._owner.run(self.ws.close())

    def __enter__(self) -> SyncWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
