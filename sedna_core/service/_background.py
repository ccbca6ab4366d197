"""An event loop in a daemon thread, for synchronous programs that run an asyncio server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["BackgroundLoop"]

T = TypeVar("T")


class BackgroundLoop:
    """Runs ``boot()`` on a private event loop in a daemon thread and keeps the loop serving.

    The thread never keeps the process alive. :meth:`run` executes a coroutine on the loop from
    another thread; :meth:`stop` runs a shutdown coroutine there, then stops and joins the thread.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, boot: Callable[[], Awaitable[Any]], *, timeout: float) -> None:
        """Start the thread and return once ``boot()`` finished; re-raises what it raised."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already runs in the background")
        loop = asyncio.new_event_loop()
        booted: Future[None] = Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)

            async def main() -> None:
                try:
                    await boot()
                except BaseException as exc:
                    booted.set_exception(exc)
                    loop.stop()
                else:
                    booted.set_result(None)

            task = loop.create_task(main())
            try:
                loop.run_forever()
            finally:
                del task
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=serve, name=self.name, daemon=True)
        thread.start()
        try:
            booted.result(timeout=timeout)
        except BaseException:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            raise
        self._loop, self._thread = loop, thread

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the background loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self.name} is not running in the background")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(
        self, shutdown: Callable[[], Awaitable[Any]] | None = None, *, timeout: float = 30.0
    ) -> None:
        """Run ``shutdown()`` on the loop (within ``timeout``), then stop and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            if shutdown is not None:
                asyncio.run_coroutine_threadsafe(_call(shutdown), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10.0)


async def _call(fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()
