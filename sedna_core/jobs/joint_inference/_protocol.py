"""The big-model service's HTTP API, shared by the service and the edge client.

``POST /{job_name}/predict`` takes either Sedna's JSON body ``{"data": [...]}`` (other keys, such
as Sedna's ``callback``/``post_process``, are ignored as Sedna does) or a binary tensor message
(:data:`sedna_core.wire.CONTENT_TYPE`) holding ``{"data": array}``. It answers in kind:
``{"result": [...]}`` or a tensor message ``{"result": array}``. A result that is not a numeric
array (text, nested objects) is answered as JSON whatever the request was; clients look at the
answer's content type.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from sedna_core import wire
from sedna_core.backends import GenericBackend
from sedna_core.errors import ConfigError, WireFormatError

__all__ = [
    "JSON_CONTENT_TYPE",
    "as_numeric_array",
    "backend_predict",
    "check_job_name",
    "decode_result",
    "encode_data",
    "encode_result",
    "info_path",
    "predict_path",
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


def backend_predict(backend: Any, data: Any, kwargs: dict[str, Any]) -> Any:
    """``backend.predict(data, **kwargs)``.

    Without keyword arguments the generic adapter's ``predict`` is skipped for the model's own:
    the adapter inspects the model's signature on every call (to drop keyword arguments the
    model does not take), a per-request cost with nothing to drop.
    """
    if not kwargs and type(backend) is GenericBackend:
        return backend.model.predict(data)
    return backend.predict(data, **kwargs)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(doc: Any) -> str:
    """JSON text with numpy arrays and scalars as lists and numbers."""
    return json.dumps(doc, default=_json_default)


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
