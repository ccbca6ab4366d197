"""Dynamic batching for :class:`BigModelService`: concurrent requests served as one model call.

Many edges calling one cloud send many small requests; a model answers a batch of ``n`` samples
in much less than ``n`` times one sample's time (one call's fixed cost, vectorised kernels). The
:class:`Batcher` queues requests that arrive while the model is busy and runs them together, as
Triton's dynamic batcher and Ray Serve's ``@serve.batch`` do, with three rules:

- **an idle model runs a request at once**: when no batch is running, a request is dispatched
  without waiting for others, so a single edge pays nothing and batching can be on by default;
- **a free worker waits at most** ``max_queue_delay`` **for a batch to fill** while another batch
  runs (only with ``workers > 1``); a batch leaves as soon as it holds ``max_batch_size`` samples,
  and with one worker the queue leaves as one batch the moment the running batch ends;
- **a batch failure fails only the requests that caused it**: the batch's requests are run again
  one by one, so each gets its own answer or its own error.

Requests are concatenated along their first axis when their arrays agree on dtype and the
shape of one sample; a request that does not (Sedna's JSON passed to the model as a list, a
different sample shape) runs on its own. Each request gets its rows of the batch's answer, in
order. The queue is bounded (``max_queue`` requests): a request beyond it is refused with
:class:`QueueFullError` (the service answers 503 with ``Retry-After``). Everything runs on the
service's event loop, so the queue needs no lock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from sedna_core.clock import Clock
from sedna_core.service._metrics import MetricsRegistry

__all__ = ["BATCH_SIZE_BUCKETS", "Batcher", "QueueFullError"]

BATCH_SIZE_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUEUE_DELAY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class QueueFullError(Exception):
    """The batching queue holds ``max_queue`` requests already: try again later."""


class _Pending:
    __slots__ = ("data", "enqueued", "future", "rows")

    def __init__(self, data: Any, rows: int, future: asyncio.Future[Any], enqueued: float) -> None:
        self.data = data
        self.rows = rows
        self.future = future
        self.enqueued = enqueued


class Batcher:
    """Queues concurrent requests and runs them in batches through ``run``.

    Parameters
    ----------
    run
        Runs the model on one request's or one batch's data (an awaitable: the service hands
        the call to a worker thread) and returns its answer, one row per sample. What it
        raises becomes the error of the requests it ran for.
    max_batch_size
        Most samples in one batch (a larger request still runs, alone); 1 turns batching off.
    max_queue_delay
        Seconds a free worker waits for a batch to fill while another batch runs.
    max_queue
        Most requests waiting; one more gets :class:`QueueFullError`.
    workers
        Batches that may run at once (the service's worker threads).
    clock
        Schedules the ``max_queue_delay`` wake-ups and measures queue delays.
    metrics
        Registry that receives ``sedna_ji_batch_size``, ``sedna_ji_batch_samples``,
        ``sedna_ji_queue_delay_seconds``, ``sedna_ji_queue_length`` and
        ``sedna_ji_queue_rejected_total`` (none recorded without one).
    log
        A structlog logger for the one-off warning about a model that cannot batch.
    """

    def __init__(
        self,
        run: Callable[[Any], Awaitable[Any]],
        *,
        max_batch_size: int,
        max_queue_delay: float,
        max_queue: int,
        workers: int,
        clock: Clock,
        metrics: MetricsRegistry | None = None,
        log: Any = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or workers < 1 or not max_queue_delay >= 0:
            raise ValueError(
                "max_batch_size, max_queue and workers must be >= 1, max_queue_delay >= 0"
            )
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue = max_queue
        self.workers = workers
        self.clock = clock
        self.log = log
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._running = 0
        #: False once the model answered a batch with other than one row per sample
        self.batchable = True
        self._timer: asyncio.Task[None] | None = None
        self._timer_deadline = float("inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch_size = self._batch_samples = self._queue_delay = None
        self._queue_length = self._rejected = None
        if metrics is not None:
            self._batch_size = metrics.histogram(
                "sedna_ji_batch_size", "Requests per model call", buckets=BATCH_SIZE_BUCKETS
            ).series()
            self._batch_samples = metrics.histogram(
                "sedna_ji_batch_samples", "Samples per model call", buckets=BATCH_SIZE_BUCKETS
            ).series()
            self._queue_delay = metrics.histogram(
                "sedna_ji_queue_delay_seconds",
                "Seconds a request waited in the batching queue",
                buckets=QUEUE_DELAY_BUCKETS,
            ).series()
            self._queue_length = metrics.gauge(
                "sedna_ji_queue_length", "Requests waiting in the batching queue"
            ).series()
            self._rejected = metrics.counter(
                "sedna_ji_queue_rejected_total", "Requests refused because the queue was full"
            ).series()

    @property
    def queue_length(self) -> int:
        """Requests waiting (not yet dispatched)."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Batches being computed now."""
        return self._running

    async def submit(self, data: Any, rows: int) -> Any:
        """The model's answer for one request's ``data`` (``rows`` samples)."""
        if self._running == 0 and not self._queue:  # idle: no wait, no batch to form
            self._running += 1
            self._observe(1, rows, [0.0])  # an idle model took it at once
            try:
                return await self._run(data)
            finally:
                self._running -= 1
                self._pump()
        if len(self._queue) >= self.max_queue:
            if self._rejected is not None:
                self._rejected.inc()
            raise QueueFullError(
                f"the big model's queue holds {len(self._queue)} requests (max_queue); "
                "retry later or elsewhere"
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(data, rows, future, self.clock.monotonic()))
        self._queued_rows += rows
        self._set_length()
        self._pump()
        return await future

    async def aclose(self) -> None:
        """Stop the ``max_queue_delay`` timer (queued requests are still dispatched)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- scheduling ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Dispatch every batch that is due to a free worker; arm the timer for the next one."""
        while self._queue and self._running < self.workers:
            while self._queue and self._queue[0].future.done():  # its client left
                self._queued_rows -= self._queue.popleft().rows
            if not self._queue:
                break
            now = self.clock.monotonic()
            deadline = self._queue[0].enqueued + self.max_queue_delay
            if self._running and self._queued_rows < self.max_batch_size and now < deadline:
                self._arm(deadline)
                break
            batch = self._take(now)
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._dispatch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._set_length()

    def _arm(self, deadline: float) -> None:
        if self._timer is not None and self._timer_deadline <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_deadline = deadline
        self._timer = asyncio.get_running_loop().create_task(self._wake(deadline))

    async def _wake(self, deadline: float) -> None:
        await self.clock.asleep_until(deadline)
        self._timer = None
        self._timer_deadline = float("inf")
        self._pump()

    def _take(self, now: float) -> list[_Pending]:
        """The next batch: the head of the queue and the requests after it that fit with it."""
        first = self._queue.popleft()
        batch = [first]
        rows = first.rows
        if self.batchable and _concatenable(first.data):
            shape, dtype = first.data.shape[1:], first.data.dtype
            while self._queue and rows < self.max_batch_size:
                nxt = self._queue[0]
                if nxt.future.done():
                    self._queued_rows -= self._queue.popleft().rows
                    continue
                if (
                    rows + nxt.rows > self.max_batch_size
                    or not _concatenable(nxt.data)
                    or nxt.data.shape[1:] != shape
                    or nxt.data.dtype != dtype
                ):
                    break
                batch.append(self._queue.popleft())
                rows += nxt.rows
        self._queued_rows -= rows
        self._observe(len(batch), rows, [max(0.0, now - p.enqueued) for p in batch])
        return batch

    # -- running a batch -------------------------------------------------------------------------
    async def _dispatch(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                await self._settle(batch[0], batch[0].data)
                return
            try:
                result = await self._run(np.concatenate([p.data for p in batch]))
            except Exception:
                result = None  # which request caused it? each one alone says
            parts = None if result is None else self._split(result, batch)
            if parts is None:
                for p in batch:
                    await self._settle(p, p.data)
                return
            for p, part in zip(batch, parts, strict=True):
                if not p.future.done():
                    p.future.set_result(part)
        finally:
            self._running -= 1
            self._pump()

    async def _settle(self, p: _Pending, data: Any) -> None:
        if p.future.done():  # its client left: nothing to compute for
            return
        try:
            result = await self._run(data)
        except Exception as exc:
            if not p.future.done():
                p.future.set_exception(exc)
        else:
            if not p.future.done():
                p.future.set_result(result)

    def _split(self, result: Any, batch: list[_Pending]) -> list[Any] | None:
        """Each request's rows of the batch's answer, or None when it is not one row a sample."""
        total = sum(p.rows for p in batch)
        if isinstance(result, np.ndarray | list) and len(result) == total:
            parts, start = [], 0
            for p in batch:
                parts.append(result[start : start + p.rows])
                start += p.rows
            return parts
        self.batchable = False
        if self.log is not None:
            self.log.warning(
                "the model's answer to a batch is not one row per sample; batching is off "
                "for this service (requests run one by one)",
                answer_type=type(result).__name__,
                samples=total,
            )
        return None

    def _observe(self, requests: int, rows: int, delays: list[float]) -> None:
        """Record one model call: its requests, its samples, each request's queue delay."""
        if self._batch_size is None or self._batch_samples is None or self._queue_delay is None:
            return
        self._batch_size.observe(requests)
        self._batch_samples.observe(rows)
        for delay in delays:
            self._queue_delay.observe(delay)

    def _set_length(self) -> None:
        if self._queue_length is not None:
            self._queue_length.set(len(self._queue))


def _concatenable(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.ndim >= 1
