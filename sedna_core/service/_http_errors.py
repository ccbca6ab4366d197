"""JSON error responses: ``{"error": {"type": ..., "message": ...}}`` for every failure."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

__all__ = ["error_body", "json_error"]

JSON = "application/json"


def _status_classes() -> dict[int, type[web.HTTPException]]:
    out: dict[int, type[web.HTTPException]] = {}
    stack: list[type[web.HTTPException]] = [web.HTTPError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        code = getattr(cls, "status_code", -1)
        if code >= 400 and cls.__module__.startswith("aiohttp"):
            out.setdefault(code, cls)
    return out


_ALL_BY_STATUS = _status_classes()
# 405 and 413 need extra constructor arguments; json_error builds them from the generic class.
_BY_STATUS = {k: v for k, v in _ALL_BY_STATUS.items() if k not in (405, 413)}


class _JSONHTTPError(web.HTTPError):
    """An error status aiohttp has no plain class for (or one whose class needs extra args)."""

    def __init__(self, status: int, *, text: str, headers: Mapping[str, str] | None) -> None:
        self.status_code = status
        super().__init__(text=text, content_type=JSON, headers=headers)


def error_body(type: str, message: str) -> str:
    """The JSON text of an error body."""
    return json.dumps({"error": {"type": type, "message": message}})


def json_error(
    status: int,
    type: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.HTTPException:
    """An aiohttp HTTP exception with our JSON error body; ``raise`` it from a handler.

    ``type`` is a short machine-readable code (``"bad_request"``, ``"not_found"``, ...);
    ``message`` says what was wrong and what to do. The exception is an instance of aiohttp's
    class for that status where one exists (``web.HTTPNotFound`` for 404, ...).
    """
    if not 400 <= status <= 599:
        raise ValueError(f"json_error needs a 4xx or 5xx status, got {status}")
    text = error_body(type, message)
    cls = _BY_STATUS.get(status)
    if cls is None:
        return _JSONHTTPError(status, text=text, headers=headers)
    return cls(text=text, content_type=JSON, headers=headers)


def error_type_for(status: int) -> str:
    """A snake_case type code for a bare HTTP status (``404 -> "not_found"``)."""
    special = {413: "request_too_large", 500: "internal_error"}
    if status in special:
        return special[status]
    cls = _ALL_BY_STATUS.get(status)
    if cls is None:
        return "http_error"
    name = cls.__name__.removeprefix("HTTP")
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
