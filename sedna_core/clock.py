"""Injectable time.

Everything in sedna-core whose behaviour depends on time (deadlines, timeouts, retry back-off,
circuit-breaker cool-downs, polling) takes a :class:`Clock`. Production code uses
:class:`SystemClock`; tests pass a :class:`ManualClock` and advance it instead of sleeping.

Code that waits for a deadline it computed earlier sleeps with :meth:`Clock.sleep_until` /
:meth:`Clock.asleep_until`, never ``asleep(deadline - clock.monotonic())``: a relative sleep
re-bases itself on the clock when it starts, so time that passes in between (an ``advance()``
from another task or thread) would push the deadline back.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What sedna-core asks of a clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for deadlines and durations)."""

    def time(self) -> float:
        """Seconds since the epoch (for timestamps in records and reports)."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling coroutine for ``seconds``."""

    def sleep_until(self, deadline: float) -> None:
        """Block the calling thread until ``monotonic()`` reaches ``deadline``."""

    async def asleep_until(self, deadline: float) -> None:
        """Suspend the calling coroutine until ``monotonic()`` reaches ``deadline``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_until(self, deadline: float) -> None:
        # loop: the guarantee is monotonic() >= deadline on return, whatever the timer's rounding
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(remaining)

    async def asleep_until(self, deadline: float) -> None:
        # asyncio may fire a timer up to its clock resolution early: check, and sleep the rest
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(remaining)


class ManualClock:
    """A clock that only moves when told to: the test double for :class:`Clock`.

    Sleepers (threads and coroutines) wake when :meth:`advance` moves time past their
    deadline, so code under test runs its time-dependent paths without real waiting.
    """

    def __init__(self, start: float = 0.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch - start
        self._cond = threading.Condition()
        self._waiters: list[tuple[float, int, asyncio.Future[None], asyncio.AbstractEventLoop]] = []
        self._seq = itertools.count()
        self._thread_sleepers = 0

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def time(self) -> float:
        with self._cond:
            return self._epoch + self._now

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (threads and coroutines)."""
        with self._cond:
            self._prune()
            return self._thread_sleepers + len(self._waiters)

    def sleep(self, seconds: float) -> None:
        with self._cond:
            self._sleep_locked(self._now + max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        with self._cond:
            deadline = self._now + max(0.0, seconds)
        await self.asleep_until(deadline)

    def sleep_until(self, deadline: float) -> None:
        with self._cond:
            self._sleep_locked(deadline)

    def _sleep_locked(self, deadline: float) -> None:
        self._thread_sleepers += 1
        try:
            while self._now < deadline:
                self._cond.wait()
        finally:
            self._thread_sleepers -= 1

    async def asleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        # Registered (or found due) under the lock advance() takes: no advance can slip
        # between reading the time and registering, so none is lost.
        with self._cond:
            if deadline <= self._now:
                fut.set_result(None)
            else:
                heapq.heappush(self._waiters, (deadline, next(self._seq), fut, loop))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose deadline passed."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._cond:
            self._now += seconds
            due = []
            while self._waiters and self._waiters[0][0] <= self._now:
                due.append(heapq.heappop(self._waiters))
            self._cond.notify_all()
        for _, _, fut, loop in due:
            loop.call_soon_threadsafe(_resolve, fut)

    def _prune(self) -> None:
        self._waiters = [w for w in self._waiters if not w[2].done()]
        heapq.heapify(self._waiters)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
