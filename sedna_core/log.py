"""Structured logging through structlog.

:func:`configure_logging` is called once by the CLI or by the first job (later calls are no-ops
unless ``force=True``): console rendering on a terminal, JSON lines otherwise
(``SEDNA_LOG_FORMAT=console|json`` chooses), level from ``LOG_LEVEL``. Loggers carry job, round,
peer and request id as bound fields: ``get_logger(__name__).bind(job=..., round=3)``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any, Literal

import structlog

__all__ = ["configure_logging", "get_logger"]

_lock = threading.Lock()
_configured = False


def configure_logging(
    level: str | int | None = None,
    fmt: Literal["auto", "console", "json"] | None = None,
    *,
    force: bool = False,
) -> None:
    """Set up structlog (and the stdlib ``logging`` root it writes through) once."""
    global _configured
    with _lock:
        if _configured and not force:
            return
        level = level or os.environ.get("LOG_LEVEL", "INFO")
        if isinstance(level, str):
            numeric = logging.getLevelName(level.upper())
            if not isinstance(numeric, int):
                from sedna_core.errors import ConfigError

                raise ConfigError("LOG_LEVEL", level, "DEBUG, INFO, WARNING, ERROR or CRITICAL")
            level = numeric
        fmt = fmt or os.environ.get("SEDNA_LOG_FORMAT", "auto")  # type: ignore[assignment]
        if fmt == "auto":
            fmt = "console" if sys.stderr.isatty() else "json"
        renderer: Any = (
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
            if fmt == "console"
            else structlog.processors.JSONRenderer()
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.StackInfoRenderer(),
                structlog.processors.format_exc_info,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=False,
        )
        _configured = True


def get_logger(name: str | None = None, **fields: Any) -> Any:
    """A structlog logger bound to ``logger=name`` and any extra ``fields``."""
    log = structlog.get_logger()
    if name:
        fields["logger"] = name
    return log.bind(**fields) if fields else log
