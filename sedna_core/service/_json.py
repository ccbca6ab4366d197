"""Strict JSON in and valid JSON out for every server.

In: bounded size (``max_json_size``: JSON is decoded holding the GIL, so its size bounds the
event-loop stall), UTF-8, bounded nesting, finite numbers only (``NaN``/``Infinity`` are not
JSON), each failure a 400/413 that says what was wrong.

Out: non-finite floats are encoded the way protobuf's JSON mapping does, as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (never the bare tokens, which are not JSON).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import math
import threading
from typing import Any

from aiohttp import web

from sedna_core._strict_json import (
    CHUNK_BYTES,
    MAX_JSON_DEPTH,
    parse_json_in_slices,
    parse_strict_json,
)
from sedna_core.service._app import CONFIG_KEY
from sedna_core.service._http_errors import json_error

__all__ = ["MAX_JSON_DEPTH", "dumps_json", "loads_json", "read_json"]


def loads_json(raw: bytes | str, *, what: str = "the body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode strict JSON or raise a 400 ``invalid_json`` naming the problem."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    try:
        return parse_strict_json(data, max_depth=max_depth)
    except ValueError as exc:  # JSONDecodeError, NaN, depth, huge integers, bad UTF-8
        raise json_error(400, "invalid_json", f"{what} is not valid JSON: {exc}") from None


async def read_json(
    request: web.Request,
    *,
    what: str = "the body",
    max_size: int | None = None,
    arrays: tuple[str, ...] = (),
) -> Any:
    """Read and decode a JSON request body, at most ``max_size`` bytes (the service's
    ``max_json_size`` by default; 413 beyond it, even without a Content-Length).

    A body larger than one slice (16 KiB) is decoded in a worker thread, a slice at a time, so
    the event loop keeps answering (``json.loads`` holds the GIL for the whole call; slices
    bound each hold). Top-level members named in ``arrays`` that hold numbers come back as
    numpy arrays, converted slice by slice.
    """
    if max_size is None:
        max_size = request.app[CONFIG_KEY].max_json_size
    if request.content_length is not None and request.content_length > max_size:
        raise _too_large(request.content_length, max_size)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > max_size:
            raise _too_large(size, max_size, at_least=True)
        chunks.append(chunk)
    raw = b"".join(chunks)
    del chunks
    if len(raw) <= CHUNK_BYTES:
        try:
            return parse_json_in_slices(raw, arrays=arrays)
        except ValueError as exc:
            raise json_error(400, "invalid_json", f"{what} is not valid JSON: {exc}") from None
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(
            _decoder(), functools.partial(parse_json_in_slices, raw, arrays=arrays)
        )
    except ValueError as exc:  # JSONDecodeError, NaN, depth, huge integers, bad UTF-8
        raise json_error(400, "invalid_json", f"{what} is not valid JSON: {exc}") from None


_DECODER: concurrent.futures.ThreadPoolExecutor | None = None
_DECODER_LOCK = threading.Lock()


def _decoder() -> concurrent.futures.ThreadPoolExecutor:
    """One thread decodes large JSON bodies, one after another, for the whole process: every
    extra thread holding the GIL would lengthen the event loops' waits for it."""
    global _DECODER
    with _DECODER_LOCK:
        if _DECODER is None:
            _DECODER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sedna-json")
        return _DECODER


def _too_large(size: int, limit: int, *, at_least: bool = False) -> web.HTTPException:
    got = f"more than {limit}" if at_least else str(size)
    return json_error(
        413,
        "request_too_large",
        f"JSON body of {got} bytes exceeds the JSON limit of {limit} bytes; send large data as "
        "binary tensors, or raise max_json_size (SEDNA_MAX_JSON_SIZE)",
    )


def _finite(value: Any) -> Any:
    if not isinstance(value, str | bytes) and callable(getattr(value, "tolist", None)):
        value = value.tolist()  # numpy arrays and scalars
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes bare ``NaN``/``Infinity`` (see the module docstring)."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # rare: only documents holding non-finite floats pay for the walk
        return json.dumps(_finite(value), allow_nan=False, **kwargs)
