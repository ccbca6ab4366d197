"""The aggregation protocol: JSON control frames and binary weight frames over one websocket.

Every control frame is a JSON object with ``"v": PROTOCOL_VERSION`` and a ``"type"``. Weights
follow a control frame that announces them (``"weights": true`` and their ``"tensors"``) as
binary frames from :func:`sedna_core.wire.encode_chunks`, each at most ``chunk_bytes`` of data,
in order. See ``docs/federated-learning.md`` for the sequence diagrams.

Client -> server: ``join``, ``update`` (+ frames), ``evaluation``, ``failed``, ``leave``.
Server -> client: ``welcome``, ``round`` (+ frames), ``accepted``, ``rejected``, ``late``,
``result``, ``stop`` (+ frames), ``error`` (then the server closes the connection).
With a secure aggregation (``_secagg.py``), a training round adds ``secagg_keys``,
``secagg_shares`` and ``secagg_reveal`` (client -> server) and ``secagg_peers``,
``secagg_inbox`` and ``secagg_unmask`` (server -> client, each built by the server).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import TensorSpec
from sedna_core.errors import InvalidUpdateError, ProtocolError
from sedna_core.wire import SUPPORTED_DTYPES, encode_chunks

__all__ = [
    "CLOSE_PROTOCOL",
    "CLOSE_REPLACED",
    "CLOSE_UNAUTHORIZED",
    "MAX_CONTROL_BYTES",
    "PROTOCOL_VERSION",
    "WS_PATH",
    "ProtocolError",
    "clean_metrics",
    "compatible_dtype",
    "control",
    "json_depth",
    "parse_control",
    "parse_specs",
    "specs_json",
    "weight_frames",
]

PROTOCOL_VERSION = 1
#: the native protocol's websocket path; Sedna's clients use ``/{aggregation}``
WS_PATH = "/fl"
#: websocket close codes (4000-4999 are the application's)
CLOSE_UNAUTHORIZED = 4401
CLOSE_PROTOCOL = 4400
CLOSE_REPLACED = 4409
CLOSE_FAILED = 4500
#: a control frame larger than this is refused (weights never travel in control frames)
MAX_CONTROL_BYTES = 1 << 20
#: the metrics one update may carry
MAX_METRICS = 64
#: deepest JSON nesting read from a peer before it is authenticated (a join is 2 levels deep)
MAX_PRE_AUTH_DEPTH = 16

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def control(kind: str, **fields: Any) -> str:
    """A control frame's text."""
    return json.dumps({"v": PROTOCOL_VERSION, "type": kind, **fields}, allow_nan=False)


def parse_control(text: str) -> dict[str, Any]:
    """The control frame in ``text``; :class:`ProtocolError` when it is not one we read."""
    if len(text) > MAX_CONTROL_BYTES:
        raise ProtocolError(f"control frame of {len(text)} bytes exceeds {MAX_CONTROL_BYTES}")
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"control frame is not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("control frame must be a JSON object with a string 'type'")
    if msg.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {msg.get('v')!r} is not supported (this side speaks "
            f"{PROTOCOL_VERSION}); upgrade the older side"
        )
    return msg


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest, without parsing it.

    One regex pass drops string literals (brackets inside them do not count), then a running
    sum over the brackets left gives the depth: linear time, no recursion, so a hostile frame
    is measured before ``json.loads`` could recurse on it.
    """
    depth = deepest = 0
    for ch in _JSON_STRING.sub("", text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def field(msg: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """``msg[name]`` checked against ``kind`` (bools are never ints here)."""
    value = msg.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ProtocolError(f"'{msg.get('type')}' frame: field {name!r} is missing or not {kind}")
    return value


def specs_json(specs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "dtype": s.dtype.newbyteorder("<").str, "shape": list(s.shape)}
        for s in specs
    ]


def parse_specs(items: Any, *, max_bytes: int) -> list[TensorSpec]:
    """Tensor specs announced by a peer, bounded before anything is allocated."""
    if not isinstance(items, list) or not items:
        raise InvalidUpdateError("malformed", "'tensors' must be a non-empty list")
    specs = []
    total = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidUpdateError("malformed", f"tensor {i}: descriptor must be an object")
        name, dtype, shape = item.get("name"), item.get("dtype"), item.get("shape")
        if name is not None and not isinstance(name, str):
            raise InvalidUpdateError("malformed", f"tensor {i}: name must be a string")
        if dtype not in SUPPORTED_DTYPES:
            raise InvalidUpdateError("dtype", f"tensor {i}: unsupported dtype {dtype!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > 32
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InvalidUpdateError("shape", f"tensor {i}: bad shape {shape!r}")
        spec = TensorSpec(name, np.dtype(dtype), shape)
        total += math.prod(shape) * spec.dtype.itemsize
        if total > max_bytes:
            raise InvalidUpdateError(
                "size", f"the tensors announced exceed {max_bytes} bytes (the model size limit)"
            )
        specs.append(spec)
    return specs


def check_specs(got: Sequence[TensorSpec], expected: Sequence[TensorSpec]) -> None:
    """An update's announced tensors must be the global model's: count, names, dtypes, shapes."""
    if len(got) != len(expected):
        raise InvalidUpdateError(
            "count", f"update has {len(got)} tensors, the global model has {len(expected)}"
        )
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        check_tensor(i, g, e)


def compatible_dtype(got: np.dtype[Any], expected: np.dtype[Any]) -> bool:
    """Whether values of dtype ``got`` may be converted to the model's ``expected`` dtype.

    Mixed fleets send what their frameworks hold (float64 from numpy or scikit-learn, float32
    from torch): any real float or integer converts to a float model (values out of its range
    then fail the finite-value check), reals convert to complex, and integers to integers only
    when no value can change. Complex to real would drop a part: refused.
    """
    if got == expected:
        return True
    if expected.kind == "f":
        return got.kind in "fiu"
    if expected.kind == "c":
        return got.kind in "fciu"
    if expected.kind in "iu":
        return got.kind in "iu" and bool(np.can_cast(got, expected, "safe"))
    return False


def check_tensor(i: int, got: TensorSpec, expected: TensorSpec) -> None:
    """Tensor ``i`` of an update (announced, or as its frames say) must be the global model's.

    Names are compared where both have one; then dtype (a compatible one is converted, see
    :func:`compatible_dtype`) and shape.
    """
    if got.name is not None and expected.name is not None and got.name != expected.name:
        raise InvalidUpdateError(
            "name", f"tensor {i} is named {got.name!r}, the global model's is {expected.name!r}"
        )
    if not compatible_dtype(got.dtype, expected.dtype):
        raise InvalidUpdateError(
            "dtype",
            f"tensor {i}: dtype {got.dtype} cannot be converted to the global model's "
            f"{expected.dtype}",
        )
    if got.shape != expected.shape:
        raise InvalidUpdateError(
            "shape",
            f"tensor {i}: shape {list(got.shape)}, the global model has {list(expected.shape)}",
        )


def clean_metrics(value: Any) -> dict[str, float]:
    """Finite numeric metrics from a peer (anything else dropped), at most :data:`MAX_METRICS`."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, float] = {}
    for key, v in value.items():
        if len(out) >= MAX_METRICS:
            break
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        if isinstance(key, str) and len(key) <= 64 and numeric and math.isfinite(v):
            out[key] = float(v)
    return out


def numeric_metrics(result: Any) -> dict[str, float]:
    """Numbers from what a backend's train/evaluate returned (the last value of histories)."""
    history = getattr(result, "history", result)  # a Keras History object
    if not isinstance(history, Mapping):
        return {}
    out: dict[str, float] = {}
    for key, value in history.items():
        if isinstance(value, list | tuple) and value:
            value = value[-1]
        if isinstance(value, np.generic):
            value = value.item()
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and math.isfinite(value):
            out[str(key)] = float(value)
    return out


async def weight_frames(weights: Sequence[np.ndarray], chunk_bytes: int) -> AsyncIterator[bytes]:
    """Binary frames of ``weights``, produced lazily (one chunk in memory at a time)."""
    for frame in encode_chunks(list(weights), chunk_bytes=chunk_bytes):
        yield frame
