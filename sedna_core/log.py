"""Structured logging through structlog.

:func:`configure_logging` is called once by the CLI or by the first job (later calls are no-ops
unless ``force=True``): console rendering on a terminal, JSON lines otherwise
(``SEDNA_LOG_FORMAT=console|json|auto`` chooses), level from ``LOG_LEVEL``. Loggers carry job,
round, peer and request id as bound fields: ``get_logger(__name__).bind(job=..., round=3)``;
:func:`log_context` binds fields for everything logged inside a block (the service base binds
``request_id`` this way for each request).

Code that logs before anything configured logging (a library function called first) configures
it from the environment on the first log line, so logs never reach stdout and ``LOG_LEVEL``
holds; an application that configured structlog itself keeps its own set-up.

Records from the standard :mod:`logging` module (aiohttp, sqlalchemy, ...) are rendered the same
way when the application has not set up its own handlers on the root logger.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

__all__ = ["Logger", "configure_logging", "get_logger", "log_context"]

_lock = threading.Lock()
_configured = False
_LEVELS = "DEBUG, INFO, WARNING, ERROR or CRITICAL"
_FORMATS = ("auto", "console", "json")


class _SednaHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler we installed, so a forced reconfiguration replaces only ours."""


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (it may be swapped later,
    e.g. by pytest's capture), instead of the stream current at configuration time."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _parse_level(level: str | int) -> int:
    from sedna_core.errors import ConfigError

    if isinstance(level, int):
        return level
    text = level.strip().upper()
    if text.isdigit():
        return int(text)
    numeric = logging.getLevelName(text)
    if not isinstance(numeric, int):
        raise ConfigError("LOG_LEVEL", level, _LEVELS)
    return numeric


def configure_logging(
    level: str | int | None = None,
    fmt: Literal["auto", "console", "json"] | None = None,
    *,
    force: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Set up structlog (and a matching stdlib ``logging`` root handler) once.

    Parameters
    ----------
    level
        A level name or number; default ``LOG_LEVEL`` from the environment, else ``INFO``.
    fmt
        ``console`` (human, colours on a terminal), ``json`` (one object per line) or ``auto``
        (console when ``stream`` is a terminal); default ``SEDNA_LOG_FORMAT``, else ``auto``.
    force
        Reconfigure even if already configured.
    stream
        Where logs go; default ``sys.stderr``.

    Raises
    ------
    ConfigError
        ``LOG_LEVEL`` or ``SEDNA_LOG_FORMAT`` has a value that is not understood.
    """
    from sedna_core.errors import ConfigError

    global _configured
    with _lock:
        if _configured and not force:
            return
        numeric = _parse_level(
            level if level is not None else os.environ.get("LOG_LEVEL") or "INFO"
        )
        fmt_value = fmt or os.environ.get("SEDNA_LOG_FORMAT") or "auto"
        fmt_value = fmt_value.strip().lower()  # type: ignore[assignment]
        if fmt_value not in _FORMATS:
            raise ConfigError("SEDNA_LOG_FORMAT", fmt_value, "console, json or auto")
        out = stream if stream is not None else _CurrentStderr()
        tty = bool(getattr(out, "isatty", lambda: False)())
        if fmt_value == "auto":
            fmt_value = "console" if tty else "json"
        shared: list[Any] = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
        ]
        renderer: Any
        if fmt_value == "console":
            renderer = structlog.dev.ConsoleRenderer(colors=tty)
            final: list[Any] = [renderer]  # it renders exceptions itself
        else:
            renderer = structlog.processors.JSONRenderer()
            final = [structlog.processors.format_exc_info, renderer]
        structlog.configure(
            processors=[*shared, *final],
            wrapper_class=structlog.make_filtering_bound_logger(numeric),
            logger_factory=structlog.PrintLoggerFactory(file=out),
            cache_logger_on_first_use=False,
        )
        _configure_stdlib(numeric, out, shared, final, force=force)
        _configured = True


def _configure_stdlib(
    level: int, out: TextIO, shared: list[Any], final: list[Any], *, force: bool
) -> None:
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _SednaHandler)]
    if force:
        for handler in ours:
            root.removeHandler(handler)
        ours = []
    if root.handlers and not ours:
        return  # the application configured logging itself: leave it alone
    handler = _SednaHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def _configure_on_first_use() -> None:
    """Configure from the environment when sedna-core logs before any job or CLI command did
    (``create_algorithm``, ``list_plugins``, ``set_backend``, ``fetch`` called directly):
    structlog's own default would print to stdout and ignore ``LOG_LEVEL``. An application
    that configured structlog itself keeps its configuration."""
    global _configured
    if structlog.is_configured():
        _configured = True
        return
    from sedna_core.errors import ConfigError

    try:
        configure_logging()
    except ConfigError as exc:  # a bad LOG_LEVEL must not break the call that merely logs
        configure_logging(level="INFO", fmt="auto")
        structlog.get_logger().warning("logging set to INFO", problem=str(exc))


def get_logger(name: str | None = None, **fields: Any) -> Logger:
    """A structlog logger bound to ``logger=name`` and any extra ``fields``.

    The logger stays lazy: it renders through whatever configuration is current when it logs,
    so module-level loggers follow a later :func:`configure_logging` (or a test's capture).
    """
    if name:
        fields["logger"] = name
    return Logger(fields)


class Logger:
    """A lazily bound structlog logger: ``bind`` returns a new one, nothing is cached."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def bind(self, **fields: Any) -> Logger:
        return Logger({**self._fields, **fields})

    def unbind(self, *keys: str) -> Logger:
        return Logger({k: v for k, v in self._fields.items() if k not in keys})

    def _log(self, method: str, event: str | None, args: tuple[Any, ...], kw: Any) -> Any:
        if not _configured:
            _configure_on_first_use()
        logger = structlog.get_logger().bind(**self._fields)
        return getattr(logger, method)(event, *args, **kw)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._log("debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._log("info", event, args, kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._log("warning", event, args, kw)

    warn = warning

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._log("error", event, args, kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._log("exception", event, args, kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._log("critical", event, args, kw)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` (job, round, peer, request_id, ...) to every log line inside the block.

    Context-local: concurrent asyncio tasks and threads each see their own fields.
    """
    with structlog.contextvars.bound_contextvars(**fields):
        yield
