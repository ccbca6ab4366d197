"""The service base every sedna server and client is built on.

Servers::

    app = create_app(name="kb", config=ServiceConfig.from_env())
    app.router.add_get("/items", list_items)          # handlers raise json_error(...) on bad input
    runner = ServiceRunner(app, config)
    await runner.start(); runner.url                  # or start_in_background() / run_forever()

Clients::

    async with HttpClient(runner.url, token=...) as c:
        (await c.get("/items")).json()
    SyncClient(HttpClient(url)).post("/x", json={...})  # blocking twin for synchronous code

See ``docs/runtime.md`` for the security defaults, timeouts and retries.
"""

from sedna_core.service._app import (
    CLOCK_KEY,
    CONFIG_KEY,
    GUARD_KEY,
    METRICS_KEY,
    NAME_KEY,
    REQUEST_ID_HEADER,
    create_app,
    prepare_websocket,
    public,
    request_id,
)
from sedna_core.service._background import BackgroundLoop
from sedna_core.service._body import read_body
from sedna_core.service._client import HttpClient, RemoteUnavailableError, Response
from sedna_core.service._guard import BodyTimeoutError, ConnectionGuard
from sedna_core.service._http_errors import error_body, json_error
from sedna_core.service._json import MAX_JSON_DEPTH, dumps_json, loads_json, read_json
from sedna_core.service._metrics import Counter, Gauge, Histogram, MetricsRegistry
from sedna_core.service._runner import ServiceRunner
from sedna_core.service._security import check_bearer, check_service_config, is_loopback
from sedna_core.service._sync import SyncClient, SyncWebSocket

__all__ = [
    "CLOCK_KEY",
    "CONFIG_KEY",
    "GUARD_KEY",
    "MAX_JSON_DEPTH",
    "METRICS_KEY",
    "NAME_KEY",
    "REQUEST_ID_HEADER",
    "BackgroundLoop",
    "BodyTimeoutError",
    "ConnectionGuard",
    "Counter",
    "Gauge",
    "Histogram",
    "HttpClient",
    "MetricsRegistry",
    "RemoteUnavailableError",
    "Response",
    "ServiceRunner",
    "SyncClient",
    "SyncWebSocket",
    "check_bearer",
    "check_service_config",
    "create_app",
    "dumps_json",
    "error_body",
    "is_loopback",
    "json_error",
    "loads_json",
    "prepare_websocket",
    "public",
    "read_body",
    "read_json",
    "request_id",
]
