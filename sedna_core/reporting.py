"""Reporting to Sedna's local controller (LC), in Sedna's message shape.

Only when ``LC_SERVER`` is set: jobs post ``{LC_SERVER}/sedna/workers/{WORKER_NAME}/info`` with::

    {"name": worker, "namespace": ns, "ownerName": job, "ownerKind": job_kind, "kind": kind,
     "status": status, "results": [...], "ownerInfo": {...}}

(``status``, ``results`` and ``ownerInfo`` are left out when not given, as Sedna does.) Messages
go through a bounded queue to a daemon sender thread: :meth:`LCReporter.report` never blocks and
never raises, a controller that is down never stalls or kills the job (the queue drops its oldest
message when full, and the outage is logged once), and :meth:`LCReporter.close` flushes with a
bound.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sedna_core.clock import Clock, SystemClock
from sedna_core.config import JobConfig
from sedna_core.errors import RemoteError, ServiceUnavailableError
from sedna_core.log import get_logger

__all__ = ["JOB_KINDS", "KINDS", "STATUSES", "LCReporter", "model_result"]

log = get_logger(__name__)

KINDS = frozenset({"train", "eval", "deploy", "inference"})
STATUSES = frozenset({"completed", "failed", "running"})
JOB_KINDS = frozenset(
    {
        "jointinferenceservice",
        "federatedlearningjob",
        "incrementallearningjob",
        "lifelonglearningjob",
        "default",
    }
)
DEFAULT_DATA_PATH_PREFIX = "/home/data"


def _strip_prefix(url: str, prefix: str | None) -> str:
    """``url`` without ``prefix`` (container mount -> host path), only at a path boundary.

    Sedna strips any string prefix, so ``/home/database/m`` became ``base/m``; we do not.
    """
    if not prefix:
        return url
    p = prefix.rstrip("/")
    if p and (url == p or url.startswith(p + "/")):
        return url[len(p) :] or "/"
    return url


def model_result(
    url: str,
    metrics: Any = None,
    fmt: str | None = None,
    data_path_prefix: str | None = DEFAULT_DATA_PATH_PREFIX,
) -> dict[str, Any]:
    """One ``results`` item: ``{"format": <extension>, "url": <path>, "metrics": ...}``.

    ``fmt`` defaults to the file extension without the dot, lower-cased (``"pkl"``, ``"keras"``).
    ``data_path_prefix`` (``DATA_PATH_PREFIX``) is removed from the start of local paths, so the
    controller sees host paths, as in Sedna.
    """
    url = os.fspath(url)
    if fmt is None:
        fmt = os.path.splitext(url.rstrip("/"))[1].lstrip(".").lower()
    return {"format": fmt, "url": _strip_prefix(url, data_path_prefix), "metrics": metrics}


def _jsonable(obj: Any) -> Any:
    # numpy scalars/arrays (metrics from evaluate) and other odd values, without importing numpy.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


_SENT, _RETRY, _DROP = "sent", "retry", "drop"


class LCReporter:
    """Posts job status to Sedna's local controller from a background daemon thread.

    Parameters
    ----------
    lc_server
        The controller's base URL (``LC_SERVER``); None makes every method a no-op.
    worker, namespace, job_name, job_kind
        ``name``, ``namespace``, ``ownerName`` and ``ownerKind`` of every message.
    timeout
        Seconds to connect and to wait for the controller's answer, per attempt.
    queue_size
        Messages kept while the controller is slow or down; when full the oldest is dropped
        (counted in :attr:`dropped`).
    clock
        Time source for the back-off between attempts while the controller is down
        (1 s doubling to 30 s).
    ca_file
        CA bundle when ``lc_server`` is ``https``.

    Notes
    -----
    A message the controller answers with 502/503/504, or that cannot reach it, is retried
    until delivered (or :meth:`close` gives up); any other error answer (4xx, 500) drops it
    (counted in :attr:`failed`), since re-sending it would get the same answer.
    """

    def __init__(
        self,
        lc_server: str | None,
        *,
        worker: str,
        namespace: str,
        job_name: str,
        job_kind: str,
        timeout: float = 5.0,
        queue_size: int = 100,
        clock: Clock | None = None,
        ca_file: str | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.lc_server = lc_server.rstrip("/") if lc_server else None
        self.worker = worker
        self.namespace = namespace
        self.job_name = job_name
        self.job_kind = job_kind
        self.timeout = timeout
        self.queue_size = queue_size
        self.clock = clock or SystemClock()
        self.ca_file = ca_file
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._down = False
        self._overflow_logged = False
        self._rejected_logged: set[int] = set()
        self._log = log.bind(lc_server=self.lc_server, worker=worker, job=job_name)
        if job_kind not in JOB_KINDS:
            self._log.debug("non-standard ownerKind", job_kind=job_kind)

    @classmethod
    def from_config(
        cls, config: JobConfig, job_kind: str, *, clock: Clock | None = None
    ) -> LCReporter:
        """The reporter for a job: ``LC_SERVER``, ``WORKER_NAME``, ``NAMESPACE``, ``JOB_NAME``.

        As in Sedna, the worker and namespace default to the job name.
        """
        return cls(
            config.lc_server,
            worker=config.worker,
            namespace=config.namespace or config.job_name,
            job_name=config.job_name,
            job_kind=job_kind,
            timeout=min(config.request_timeout, 10.0),
            clock=clock,
            ca_file=config.tls_ca,
        )

    @property
    def enabled(self) -> bool:
        """True when a controller is configured (``LC_SERVER`` set)."""
        return self.lc_server is not None

    @property
    def url(self) -> str | None:
        """Where messages go: ``{LC_SERVER}/sedna/workers/{worker}/info``."""
        if self.lc_server is None:
            return None
        return f"{self.lc_server}/sedna/workers/{quote(self.worker, safe='')}/info"

    @property
    def pending(self) -> int:
        """Messages waiting to be sent."""
        with self._cond:
            return len(self._queue)

    def message(
        self,
        kind: str,
        status: str | None,
        results: Sequence[Mapping[str, Any]] | None = None,
        owner_info: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The message :meth:`report` would send (Sedna's shape; absent keys left out)."""
        msg: dict[str, Any] = {
            "name": self.worker,
            "namespace": self.namespace,
            "ownerName": self.job_name,
            "ownerKind": self.job_kind,
            "kind": kind,
        }
        if status is not None:
            msg["status"] = status
        if results is not None:
            msg["results"] = [dict(r) for r in results]
        if owner_info is not None:
            msg["ownerInfo"] = dict(owner_info)
        return msg

    def report(
        self,
        kind: str,
        status: str | None,
        results: Sequence[Mapping[str, Any]] | None = None,
        owner_info: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a message for the controller; returns at once, never raises.

        ``kind``: train, eval, deploy or inference; ``status``: completed, failed, running (or
        None to leave it out, as Sedna's periodic inference report does); ``results``: items
        from :func:`model_result`; ``owner_info``: free-form (Sedna's ``ownerInfo``).
        """
        if self.lc_server is None:
            return
        try:
            if kind not in KINDS or (status is not None and status not in STATUSES):
                self._log.warning(
                    "unusual LC report kind/status; sending anyway",
                    kind=kind,
                    status=status,
                    kinds=sorted(KINDS),
                    statuses=sorted(STATUSES),
                )
            body = json.dumps(
                self.message(kind, status, results, owner_info), default=_jsonable
            ).encode()
        except Exception:
            self._log.exception("cannot build the LC report; dropped", kind=kind, status=status)
            return
        with self._cond:
            if self._closing:
                self._log.warning("LC report after close(); dropped", kind=kind, status=status)
                return
            while len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.dropped += 1
                if not self._overflow_logged:
                    self._overflow_logged = True
                    self._log.warning(
                        "LC report queue full; dropping the oldest reports",
                        queue_size=self.queue_size,
                    )
            self._queue.append(body)
            self._start_locked()
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued and stop the sender.

        Waits at most ``timeout`` seconds (default: twice the per-attempt timeout), and not at
        all while the controller is known to be down. Undelivered reports are logged, dropped.
        """
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        atexit.unregister(self._close_at_exit)
        if thread is None:
            return
        # While the controller is known to be down the sender is backing off: waiting would
        # only delay the job's exit, so give up at once.
        wait = 0.0 if self._down else (self.timeout * 2 if timeout is None else timeout)
        thread.join(wait)
        left = self.pending
        if left:
            self._log.warning("LC reports not delivered before close", undelivered=left)

    def __enter__(self) -> LCReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sender thread -------------------------------------------------------------------------
    def _close_at_exit(self) -> None:
        self.close()

    def _start_locked(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=_sender_main, args=(self,), name=f"sedna-lc-reporter-{id(self):x}", daemon=True
        )
        self._thread.start()
        # Flush on normal interpreter exit (daemon threads are abandoned after atexit).
        atexit.register(self._close_at_exit)

    def _next(self) -> bytes | None:
        """The head of the queue (left in place until delivered), or None when closed and empty."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            return self._queue[0] if self._queue else None

    def _done(self, body: bytes, outcome: str) -> None:
        with self._cond:
            if self._queue and self._queue[0] is body:  # unless overflow already dropped it
                self._queue.popleft()
            if outcome == _SENT:
                self.sent += 1
            else:
                self.failed += 1

    def _attempt(self, loop: asyncio.AbstractEventLoop, client: Any, body: bytes) -> str:
        assert self.url is not None
        try:
            loop.run_until_complete(
                client.post(self.url, data=body, headers={"Content-Type": "application/json"})
            )
        except ServiceUnavailableError as exc:  # refused, timed out, 502/503/504
            if not self._down:
                self._down = True
                self._log.warning(
                    "local controller unreachable; reports are queued and retried",
                    error=str(exc),
                )
            return _RETRY
        except RemoteError as exc:
            if exc.status not in self._rejected_logged:
                self._rejected_logged.add(exc.status)
                self._log.warning("local controller rejected a report; dropped", error=str(exc))
            return _DROP
        except Exception as exc:  # never let the sender die
            self._log.warning("sending an LC report failed; dropped", error=repr(exc))
            return _DROP
        if self._down:
            self._down = False
            self._overflow_logged = False
            self._log.info("local controller reachable again", dropped_so_far=self.dropped)
        self._rejected_logged.clear()
        return _SENT


def _sender_main(reporter: LCReporter) -> None:
    from sedna_core.service import HttpClient

    loop = asyncio.new_event_loop()
    client = HttpClient(
        reporter.lc_server or "",
        ca_file=reporter.ca_file,
        connect_timeout=reporter.timeout,
        read_timeout=reporter.timeout,
        retries=0,  # this loop retries, with its own back-off, without blocking anyone
        clock=reporter.clock,
    )
    backoff = 1.0
    try:
        while True:
            body = reporter._next()
            if body is None:
                return
            outcome = reporter._attempt(loop, client, body)
            if outcome != _RETRY:
                reporter._done(body, outcome)
                backoff = 1.0
                continue
            if reporter._closing:
                return  # the controller is down and we are closing: give up now
            reporter.clock.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
    finally:
        try:
            loop.run_until_complete(client.close())
        finally:
            loop.close()
