"""What the four jobs share: configuration, the wrapped estimator, logging, lifecycle hooks and
reports to Sedna's local controller."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, ClassVar, Self

from sedna_core.clock import Clock, SystemClock
from sedna_core.config import JobConfig
from sedna_core.log import configure_logging, get_logger

__all__ = ["JobBase"]


class JobBase:
    """Base of every job.

    Parameters
    ----------
    estimator
        The user's model: an instance, a class or a factory (instantiated lazily by its backend),
        or an already wrapped :class:`~sedna_core.algorithms.BaseBackend`. ``None`` for jobs
        that build their estimators themselves.
    config
        The job's configuration (explicit arguments, then Sedna's environment, then defaults).
    backend
        Backend name (``"torch"``, ``"KERAS"``...); ``BACKEND_TYPE`` otherwise; detected otherwise.
    plugin_manager
        The plugin manager to resolve algorithms with (tests inject one); the process-wide one
        by default.
    clock
        Time source for everything time-dependent in the job.
    """

    #: Sedna's ``ownerKind`` for this job (``jointinferenceservice``, ...)
    job_kind: ClassVar[str] = "default"

    def __init__(
        self,
        estimator: Any = None,
        *,
        config: JobConfig,
        backend: str | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        configure_logging()
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.plugin_manager = plugin_manager
        self.log = get_logger(type(self).__module__, job=config.job_name, worker=config.worker)
        self.estimator = self._wrap(estimator, backend)
        from sedna_core.reporting import LCReporter

        self.reporter = LCReporter.from_config(config, self.job_kind, clock=self.clock)
        self._closed = False

    def _wrap(self, estimator: Any, backend: str | None) -> Any:
        if estimator is None:
            return None
        from sedna_core.backends import set_backend

        return set_backend(
            estimator, backend, config=self.config, plugin_manager=self.plugin_manager
        )

    def announce(self, hook: str, **kwargs: Any) -> None:
        """Call the lifecycle hook ``hook`` on every plugin (plugin errors are logged)."""
        from sedna_core.plugins import announce

        announce(hook, plugin_manager=self.plugin_manager, **kwargs)

    def report(
        self,
        kind: str,
        status: str | None,
        results: list[dict[str, Any]] | None = None,
        owner_info: dict[str, Any] | None = None,
    ) -> None:
        """Tell Sedna's local controller (only when ``LC_SERVER`` is set); never blocks.

        Parameters
        ----------
        kind
            The message kind Sedna's local controller expects (``"train"``, ``"eval"``,
            ``"inference"``, ...).
        status
            The phase's status (``"completed"``, ``"failed"``, ...), or None for none.
        results
            The phase's results (one dict per output, e.g. model path and metrics), if any.
        owner_info
            Extra information about the job that sends the message, if any.
        """
        self.reporter.report(kind, status, results=results, owner_info=owner_info)

    def close(self) -> None:
        """Release background resources (reporter); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.reporter.close()

    async def aclose(self) -> None:
        """:meth:`close` from async code (jobs with async clients also close those in the
        running loop); the blocking part runs in a thread, so the loop keeps going."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
