"""The aiohttp application factory every sedna server is built on."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import WSCloseCode, web

from sedna_core._version import __version__
from sedna_core.clock import Clock, SystemClock
from sedna_core.config import ServiceConfig
from sedna_core.errors import WireFormatError
from sedna_core.log import get_logger
from sedna_core.service._guard import BodyTimeoutError, ConnectionGuard
from sedna_core.service._http_errors import JSON, error_type_for, json_error
from sedna_core.service._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from sedna_core.service._metrics import MetricsRegistry
from sedna_core.service._security import check_bearer

__all__ = [
    "CLOCK_KEY",
    "CONFIG_KEY",
    "GUARD_KEY",
    "METRICS_KEY",
    "NAME_KEY",
    "REQUEST_ID_HEADER",
    "create_app",
    "prepare_websocket",
    "public",
    "request_id",
]

log = get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
CONFIG_KEY = web.AppKey("sedna_config", ServiceConfig)
CLOCK_KEY = web.AppKey("sedna_clock", Clock)  # type: ignore[type-abstract]
METRICS_KEY = web.AppKey("sedna_metrics", MetricsRegistry)
NAME_KEY = web.AppKey("sedna_name", str)
_STARTED_KEY = web.AppKey("sedna_started", float)
_WEBSOCKETS_KEY = web.AppKey("sedna_websockets", weakref.WeakSet)
GUARD_KEY = web.AppKey("sedna_connection_guard", ConnectionGuard)
# RequestKey exists from aiohttp 3.12; plain strings work (with a warning) before that.
_REQUEST_ID: Any = (
    web.RequestKey("sedna_request_id", str) if hasattr(web, "RequestKey") else "sedna_request_id"
)
_PUBLIC_ATTR = "__sedna_public__"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_LABEL_CACHE_SIZE = 1024
_random_bits = random.getrandbits

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])


def public(handler: H) -> H:
    """Mark a handler as reachable without the bearer token (like ``/healthz``)."""
    setattr(handler, _PUBLIC_ATTR, True)
    return handler


def request_id(request: web.BaseRequest) -> str:
    """The request's id (the client's ``X-Request-ID`` when it sent a sane one, else a new one)."""
    rid = request.get(_REQUEST_ID)
    if rid is None:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        if incoming and _SAFE_REQUEST_ID.match(incoming):
            rid = incoming
        else:
            # 32 hex digits like uuid4().hex, from the process's PRNG (seeded by the OS, reseeded
            # in forked children): an id to correlate logs, not a secret, so no syscall per request
            rid = f"{_random_bits(128):032x}"
        request[_REQUEST_ID] = rid
    return rid


def _debug_enabled() -> bool:
    """Whether a debug line would be written now (the per-request line is skipped otherwise).

    structlog's filtering loggers know their level; any other wrapper class is asked through
    a logger instance. Looked up per call: logging may be reconfigured at any time.
    """
    wrapper = structlog.get_config()["wrapper_class"]
    known = _DEBUG_BY_WRAPPER.get(wrapper)
    if known is None:
        try:
            known = bool(structlog.get_logger().is_enabled_for(logging.DEBUG))
        except Exception:  # a wrapper without is_enabled_for: log, as before
            known = True
        if getattr(wrapper, "__name__", "").startswith("BoundLoggerFilteringAt"):
            _DEBUG_BY_WRAPPER[wrapper] = known  # fixed level: safe to remember
    return known


_DEBUG_BY_WRAPPER: dict[Any, bool] = {}


async def prepare_websocket(
    request: web.Request,
    response_class: type[web.WebSocketResponse] = web.WebSocketResponse,
    **kwargs: Any,
) -> web.WebSocketResponse:
    """Accept a websocket upgrade; the server closes it (going away) on graceful shutdown.

    ``kwargs`` go to :class:`aiohttp.web.WebSocketResponse` (``heartbeat``, ``max_msg_size``, ...),
    or to ``response_class``, a subclass of it.
    Authentication already happened: the upgrade request passed the bearer-token check.
    """
    ws = response_class(**kwargs)
    await ws.prepare(request)
    request.app[_WEBSOCKETS_KEY].add(ws)
    # an accepted websocket is a session the application chose to hold (public routes included,
    # which authenticate inside the protocol), not a slow client: never evicted as pending
    guard = request.app.get(GUARD_KEY)
    if guard is not None:
        guard.authenticated(request)
    return ws


def _route_label(request: web.Request) -> str:
    # The route template, never the raw path: keeps metric cardinality bounded.
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def _as_json_error(exc: web.HTTPException) -> web.HTTPException:
    """aiohttp's own errors (404 from the router, 413 from ``read()``, ...) in our JSON shape."""
    if exc.status < 400 or exc.content_type == JSON:
        return exc
    text = exc.text or ""
    message = text.removeprefix(f"{exc.status}: ").strip() or exc.reason
    if exc.status == 404:
        message = "no such resource; check the URL path"
    keep = {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }
    return json_error(exc.status, error_type_for(exc.status), message, headers=keep)


def create_app(*, name: str, config: ServiceConfig, clock: Clock | None = None) -> web.Application:
    """An aiohttp application with sedna's health, metrics, errors, limits and authentication.

    Parameters
    ----------
    name
        The service's name (reported by ``/healthz`` and in logs).
    config
        Bind, token, TLS and limit settings; ``config.max_request_size`` caps request bodies (413).
    clock
        Time source for uptime and latency (tests pass a ``ManualClock``).

    Notes
    -----
    ``/healthz`` is always public; ``/metrics`` and every route you add need
    ``Authorization: Bearer <config.token>`` when a token is set (mark exceptions with
    :func:`public`). Raise :func:`json_error` from handlers; any other exception becomes a logged
    500 JSON error and the server keeps serving. Every response carries ``X-Request-ID``.
    """
    clock = clock or SystemClock()
    metrics = MetricsRegistry()
    requests_total = metrics.counter(
        "sedna_http_requests_total", "HTTP requests handled", ["route", "method", "status"]
    )
    errors_total = metrics.counter(
        "sedna_http_errors_total", "HTTP error responses (4xx and 5xx)", ["route", "type"]
    )
    latency = metrics.histogram(
        "sedna_http_request_duration_seconds", "Time to handle a request", ["route", "method"]
    )
    in_flight = metrics.gauge("sedna_http_requests_in_flight", "Requests being handled").series()
    uptime = metrics.gauge("sedna_service_uptime_seconds", "Seconds since the app was created")
    info = metrics.gauge(
        "sedna_service_info", "The service and sedna-core version", ["name", "version"]
    )
    info.set(1, name=name, version=__version__)
    slog = log.bind(service=name)

    # Label keys resolved once per route/method/status instead of per request.
    requests_by: dict[tuple[str, str, int], Any] = {}
    latency_by: dict[tuple[str, str], Any] = {}
    dropped = metrics.counter(
        "sedna_http_connections_dropped_total",
        "Connections cut for slowness (header_timeout, body_timeout), evicted as the oldest "
        "slow unauthenticated one (evicted), or refused with 503 while the pending-connection "
        "cap was full of fresh ones (refused)",
        ["reason"],
    )
    guard = ConnectionGuard(
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        max_pending=config.max_pending_connections,
        on_drop=lambda reason: dropped.inc(reason=reason),
    )
    token = config.token
    max_size = config.max_request_size
    max_json = config.max_json_size

    # One middleware (not two): each layer costs a coroutine per request.
    @web.middleware
    async def observe(request: web.Request, handler: Any) -> web.StreamResponse:
        rid = request_id(request)
        match_info = request.match_info
        route = _route_label(request)
        method = request.method
        started = clock.monotonic()
        status = 500
        error_type: str | None = None
        in_flight.inc()
        tokens = structlog.contextvars.bind_contextvars(request_id=rid)
        request_done = guard.request_started(request)
        try:
            # guard: authentication, then the announced body size
            if token:
                if check_bearer(request.headers.get("Authorization"), token):
                    guard.authenticated(request)
                elif not getattr(match_info.handler, _PUBLIC_ATTR, False):
                    raise json_error(
                        401,
                        "unauthorized",
                        "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                        headers={"WWW-Authenticate": 'Bearer realm="sedna"'},
                    )
            else:
                guard.authenticated(request)  # no token: a complete request is all we can ask
            size = request.content_length
            if size is not None and size > max_size:
                raise json_error(
                    413,
                    "request_too_large",
                    f"request body of {size} bytes exceeds the limit of {max_size} bytes; "
                    "send less per request or raise max_request_size (SEDNA_MAX_REQUEST_SIZE)",
                )
            if size is not None and size > max_json and request.content_type == JSON:
                raise json_error(
                    413,
                    "request_too_large",
                    f"JSON body of {size} bytes exceeds the JSON limit of {max_json} bytes; "
                    "send large data as binary tensors, or raise max_json_size "
                    "(SEDNA_MAX_JSON_SIZE)",
                )
            response = await handler(request)
            status = response.status
            if status >= 400:  # a handler that returned (not raised) an error response
                error_type = error_type_for(status)
            return response
        except web.HTTPException as exc:
            converted = _as_json_error(exc)
            status = converted.status
            if status >= 400:
                error_type = error_type_for(status)
            if status >= 500:
                slog.bind(request_id=rid).warning(
                    "request failed", method=method, route=route, status=status
                )
            raise converted from None
        except WireFormatError as exc:
            status, error_type = 400, "wire_format_error"
            raise json_error(400, error_type, str(exc)) from None
        except BodyTimeoutError as exc:
            status, error_type = 408, "request_timeout"
            raise json_error(408, error_type, str(exc)) from None
        except (asyncio.CancelledError, ConnectionError):
            # The client went away (nginx's 499), e.g. mid websocket handshake under load: not a
            # server fault, and aiohttp itself logs a premature disconnection at debug level.
            status = 499
            raise
        except Exception:
            error_type = "internal_error"
            slog.bind(request_id=rid).exception(
                "unhandled error in request handler", method=method, route=route
            )
            raise json_error(
                500,
                error_type,
                f"internal server error; quote request id {rid} when reporting it",
            ) from None
        finally:
            request_done()
            structlog.contextvars.reset_contextvars(**tokens)
            in_flight.dec()
            elapsed = max(0.0, clock.monotonic() - started)
            counter = requests_by.get((route, method, status))
            if counter is None:
                counter = requests_total.series(route=route, method=method, status=str(status))
                if len(requests_by) < _LABEL_CACHE_SIZE:  # clients choose methods: bounded
                    requests_by[(route, method, status)] = counter
            counter.inc()
            timer = latency_by.get((route, method))
            if timer is None:
                timer = latency.series(route=route, method=method)
                if len(latency_by) < _LABEL_CACHE_SIZE:
                    latency_by[(route, method)] = timer
            timer.observe(elapsed)
            if error_type is not None:
                errors_total.inc(route=route, type=error_type)
            if _debug_enabled():
                slog.debug(
                    "request",
                    request_id=rid,
                    method=method,
                    route=route,
                    status=status,
                    seconds=elapsed,
                )

    app = web.Application(middlewares=[observe], client_max_size=config.max_request_size)
    app[CONFIG_KEY] = config
    app[CLOCK_KEY] = clock
    app[METRICS_KEY] = metrics
    app[NAME_KEY] = name
    app[_STARTED_KEY] = clock.monotonic()
    app[_WEBSOCKETS_KEY] = weakref.WeakSet()
    app[GUARD_KEY] = guard

    @public
    async def healthz(request: web.Request) -> web.Response:
        up = clock.monotonic() - request.app[_STARTED_KEY]
        return web.json_response({"status": "ok", "name": name, "uptime": round(up, 3)})

    async def metrics_handler(request: web.Request) -> web.Response:
        uptime.set(clock.monotonic() - request.app[_STARTED_KEY])
        return web.Response(
            body=metrics.render().encode(),
            headers={"Content-Type": METRICS_CONTENT_TYPE},
        )

    async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[REQUEST_ID_HEADER] = request_id(request)

    async def close_websockets(app: web.Application) -> None:
        for ws in list(app[_WEBSOCKETS_KEY]):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    app.on_response_prepare.append(add_request_id)
    app.on_shutdown.append(close_websockets)
    return app
