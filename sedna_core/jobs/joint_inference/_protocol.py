"""The big-model service's HTTP API, shared by the service and the edge client.

``POST /{job_name}/predict`` takes either Sedna's JSON body ``{"data": [...]}`` (other keys, such
as Sedna's ``callback``/``post_process``, are ignored as Sedna does) or a binary tensor message
(:data:`sedna_core.wire.CONTENT_TYPE`) holding ``{"data": array}``. It answers in kind:
``{"result": [...]}`` or a tensor message ``{"result": array}``. A result that is not a numeric
array (text, nested objects) is answered as JSON whatever the request was; clients look at the
answer's content type.

``GET /{job_name}/predict/ws`` opens a websocket for the same binary exchange without an HTTP
request per call (authentication happens once, on the upgrade): each binary frame the client
sends is a tensor message ``{"data": array}``; the service answers each one, in order, with a
binary frame ``{"result": array}`` or a text frame holding JSON, either ``{"result": ...}`` (a
result that is not a numeric array) or ``{"status": 400, "error": {"type", "message"}}`` (what the
HTTP route would have answered with that status). The client sends the next request only after
the answer to the previous one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from sedna_core import wire
from sedna_core.errors import AuthenticationError, ConfigError, RemoteError, WireFormatError
from sedna_core.service import dumps_json

__all__ = [
    "JSON_CONTENT_TYPE",
    "as_numeric_array",
    "check_job_name",
    "decode_result",
    "decode_stream_text",
    "encode_data",
    "encode_result",
    "error_frame",
    "info_path",
    "predict_path",
    "stream_path",
]

JSON_CONTENT_TYPE = "application/json"
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_WIRE_KINDS = frozenset("biuf")


def check_job_name(name: str) -> str:
    """``name`` when it can be a URL path segment (``JOB_NAME``), else a ConfigError."""
    if not isinstance(name, str) or not _JOB_NAME.match(name):
        raise ConfigError("JOB_NAME", name, "letters, digits, '.', '_' and '-' (a URL segment)")
    return name


def predict_path(job_name: str) -> str:
    return f"/{job_name}/predict"


def info_path(job_name: str) -> str:
    return f"/{job_name}"


def stream_path(job_name: str) -> str:
    return f"/{job_name}/predict/ws"


def error_frame(status: int, error_body: str) -> str:
    """A stream's error answer: ``{"status": ..., "error": {...}}`` from an HTTP error body."""
    try:
        error = json.loads(error_body).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        error = {"type": "http_error", "message": error_body}
    return json.dumps({"status": status, "error": error})


def decode_stream_text(text: str) -> Any:
    """The ``result`` of a stream's text answer, or the RemoteError it reports."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise WireFormatError(f"the cloud's stream answer is not JSON: {exc}") from exc
    if isinstance(doc, dict) and "result" in doc:
        return doc["result"]
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        error = doc["error"]
        status = doc.get("status")
        status = status if isinstance(status, int) and not isinstance(status, bool) else 500
        kind = error.get("type")
        message = error.get("message")
        cls = AuthenticationError if status in (401, 403) else RemoteError
        raise cls(
            status,
            str(kind) if kind is not None else None,
            str(message) if message is not None else None,
        )
    raise WireFormatError("the cloud's stream answer has neither 'result' nor 'error'")


def as_numeric_array(value: Any) -> np.ndarray | None:
    """``value`` as a real numeric array (bool, int, float), or None when it is not one."""
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in _WIRE_KINDS else None
    if isinstance(value, str | bytes | dict):
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return arr if arr.dtype.kind in _WIRE_KINDS else None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(doc: Any) -> str:
    """JSON text with numpy arrays and scalars as lists and numbers; non-finite floats as
    ``"NaN"``/``"Infinity"``/``"-Infinity"`` strings (bare NaN is not JSON)."""
    return dumps_json(doc, default=_json_default)


def encode_data(data: Any, fmt: str) -> tuple[bytes, str]:
    """A predict request body and its content type (binary only for numeric arrays)."""
    if fmt == "binary":
        arr = as_numeric_array(data)
        if arr is not None:
            return wire.encode({"data": arr}), wire.CONTENT_TYPE
    return dumps({"data": data}).encode(), JSON_CONTENT_TYPE


def encode_result(result: Any, binary: bool) -> tuple[bytes, str]:
    """A predict answer body and its content type."""
    if binary:
        arr = as_numeric_array(result)
        if arr is not None:
            return wire.encode({"result": arr}), wire.CONTENT_TYPE
    return dumps({"result": result}).encode(), JSON_CONTENT_TYPE


def decode_result(content_type: str, body: bytes) -> Any:
    """The ``result`` of a predict answer (an array for binary answers, JSON values otherwise).

    Raises WireFormatError when the answer is not a predict answer.
    """
    if content_type.split(";")[0].strip().lower() == wire.CONTENT_TYPE:
        tensors = wire.decode(body, copy=True)
        if not isinstance(tensors, dict) or "result" not in tensors:
            raise WireFormatError("the cloud's tensor answer has no 'result' tensor")
        return tensors["result"]
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"the cloud's answer is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or "result" not in doc:
        raise WireFormatError("the cloud's JSON answer has no 'result' key")
    return doc["result"]
