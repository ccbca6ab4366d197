"""Run an aiohttp application: in the current loop, in a background thread, or until a signal."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from aiohttp import web

from sedna_core.config import ServiceConfig
from sedna_core.errors import ConfigError
from sedna_core.log import get_logger
from sedna_core.service._app import GUARD_KEY
from sedna_core.service._background import BackgroundLoop
from sedna_core.service._guard import ConnectionGuard
from sedna_core.service._security import check_service_config, server_ssl_context

__all__ = ["ServiceRunner"]

log = get_logger(__name__)

# How long start_in_background waits for the bind before giving up.
_START_TIMEOUT = 60.0


class _GuardedAppRunner(web.AppRunner):
    """An AppRunner whose connections go through the app's :class:`ConnectionGuard`."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._sedna_guard = guard

    async def _make_server(self) -> web.Server:
        return self._sedna_guard.wrap(await super()._make_server())


def _url_host(host: str) -> str:
    # A wildcard bind is reached through loopback from this machine.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class ServiceRunner:
    """Serve ``app`` as ``config`` says: bind rules, TLS, graceful shutdown.

    Parameters
    ----------
    app
        Usually from :func:`~sedna_core.service.create_app`.
    config
        ``host``/``port`` to bind (port 0 picks a free one), ``token``/``insecure`` (a non-loopback
        host needs a token unless ``insecure``), ``tls_cert``/``tls_key`` (both or neither),
        ``shutdown_timeout`` (seconds in-flight requests get to finish on stop).

    Examples
    --------
    >>> runner = ServiceRunner(app, config)       # doctest: +SKIP
    >>> await runner.start(); runner.url          # doctest: +SKIP
    'http://127.0.0.1:41237'
    """

    def __init__(self, app: web.Application, config: ServiceConfig) -> None:
        self.app = app
        self.config = config
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._tls = False
        self._background = BackgroundLoop(f"sedna-service-{id(self):x}")

    # -- in the caller's event loop --------------------------------------------------------
    async def start(self) -> None:
        """Check the settings, bind and start serving (returns once listening)."""
        if self._runner is not None:
            raise RuntimeError("this ServiceRunner is already started")
        check_service_config(self.config)
        ssl_context = server_ssl_context(self.config)
        guard = self.app.get(GUARD_KEY)
        options: dict[str, Any] = {
            "handle_signals": False,
            "access_log": None,  # requests are logged (and counted) by create_app's middleware
            "shutdown_timeout": self.config.shutdown_timeout,
            # an unread body (a refused request) is drained at most this long, then cut
            "lingering_time": min(10.0, self.config.body_timeout),
        }
        runner = (
            web.AppRunner(self.app, **options)
            if guard is None  # an application not built by create_app
            else _GuardedAppRunner(self.app, guard, **options)
        )
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                "port", f"{self.config.host}:{self.config.port}", f"a free address to bind ({exc})"
            ) from exc
        self._runner = runner
        self._tls = ssl_context is not None
        self._port = int(runner.addresses[0][1])
        log.info("service listening", url=self.url, tls=self._tls, auth=bool(self.config.token))

    async def stop(self) -> None:
        """Stop accepting; in-flight requests get ``shutdown_timeout`` seconds to finish."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.cleanup()
        log.info("service stopped", port=self._port)

    @property
    def started(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        """The bound port (the real one when config.port was 0)."""
        if self._port is None:
            raise RuntimeError("the service is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http(s)://HOST:PORT``; for websockets replace the scheme with ``ws``/``wss``."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{_url_host(self.config.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws(s)://HOST:PORT``."""
        return "ws" + self.url.removeprefix("http")

    # -- in a private loop on a daemon thread -----------------------------------------------
    def start_in_background(self) -> None:
        """Serve from a daemon thread with its own event loop; returns once bound.

        Raises what :meth:`start` raises (a :class:`ConfigError` for unsafe settings).
        """
        if self._background.running:
            raise RuntimeError("this ServiceRunner already runs in the background")
        self._background.start(self.start, timeout=_START_TIMEOUT)

    def stop_background(self) -> None:
        """Stop (gracefully) what :meth:`start_in_background` started and join its thread."""
        self._background.stop(self.stop, timeout=self.config.shutdown_timeout + 10.0)

    # -- blocking, for a process's main thread -----------------------------------------------
    def run_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop gracefully (call from the main thread)."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                    signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
            await self.start()
            try:
                await stop.wait()
                log.info("signal received, shutting down", timeout=self.config.shutdown_timeout)
            finally:
                await self.stop()

        asyncio.run(main())

    async def __aenter__(self) -> ServiceRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
