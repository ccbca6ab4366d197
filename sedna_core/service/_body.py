"""Reading a request body without a full-size copy in the event loop."""

from __future__ import annotations

import numpy as np
from aiohttp import web

from sedna_core.service._app import CONFIG_KEY
from sedna_core.service._http_errors import json_error

__all__ = ["read_body"]


async def read_body(request: web.Request, *, max_size: int | None = None) -> memoryview:
    """The request body, at most ``max_size`` bytes (``max_request_size`` by default; 413 beyond).

    With a ``Content-Length`` the body is read into one uninitialised buffer of that size as it
    arrives, so no step touches the whole body at once (``request.read()`` grows a buffer and
    then copies it into ``bytes``, and ``bytearray(n)`` zero-fills: each a stall of tens of
    milliseconds per 64 MiB in the event loop). The buffer is a writable bytes-like
    ``memoryview``: ``wire.decode`` returns writable views into it.
    """
    limit = request.app[CONFIG_KEY].max_request_size if max_size is None else max_size
    length = request.content_length
    if length is not None:
        if length > limit:
            raise _too_large(length, limit)
        view = memoryview(np.empty(length, dtype=np.uint8)).cast("B")  # pages fault in as filled
        filled = 0
        while filled < length:
            chunk = await request.content.readany()
            if not chunk:
                raise json_error(
                    400,
                    "incomplete_body",
                    f"the body ended after {filled} of the {length} bytes Content-Length announced",
                )
            n = min(len(chunk), length - filled)
            view[filled : filled + n] = memoryview(chunk)[:n]
            filled += n
        return view
    out = bytearray()
    while chunk := await request.content.readany():
        if len(out) + len(chunk) > limit:
            raise _too_large(len(out) + len(chunk), limit, at_least=True)
        out += chunk
    return memoryview(out)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> web.HTTPException:
    got = f"more than {limit}" if at_least else str(size)
    return json_error(
        413,
        "request_too_large",
        f"request body of {got} bytes exceeds the limit of {limit} bytes; send less per "
        "request or raise max_request_size (SEDNA_MAX_REQUEST_SIZE)",
    )
