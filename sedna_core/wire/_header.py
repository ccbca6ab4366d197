"""The binary prefix, the JSON header and the checks both message kinds share.

Every message and every chunk frame starts with a fixed 12-byte prefix::

    0  4  magic      b"SDNT"
    4  1  version    1
    5  1  kind       b"M" (whole message) or b"C" (chunk frame)
    6  2  reserved   zero
    8  4  header_len uint32, little-endian: bytes of UTF-8 JSON (space padded) that follow

The raw data section starts right after the header, at a multiple of :data:`ALIGN` bytes
from the start, so decoded views are aligned for every supported dtype.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from sedna_core.errors import WireFormatError

MAGIC = b"SDNT"
VERSION = 1
KIND_MESSAGE = ord("M")
KIND_CHUNK = ord("C")
ALIGN = 64
PREFIX = struct.Struct("<4sBBHI")
MAX_HEADER_BYTES = 64 << 10  # far below bodies: a header is decoded in the event loop (GIL)
MAX_NDIM = 32
# No single tensor may claim more than this (1 TiB): far beyond any model, small enough that
# the arithmetic on it never strays near int64 limits in numpy.
MAX_TENSOR_BYTES = 1 << 40

# Little-endian descriptors of every dtype the wire carries. Decoding looks descriptors up
# here and never hands a peer's string to np.dtype().
_DTYPES: dict[str, np.dtype[Any]] = {
    d.str: d
    for d in (
        np.dtype(name).newbyteorder("<")
        for name in (
            "bool",
            "int8",
            "uint8",
            "int16",
            "uint16",
            "int32",
            "uint32",
            "int64",
            "uint64",
            "float16",
            "float32",
            "float64",
            "complex64",
            "complex128",
        )
    )
}
SUPPORTED_DTYPES: tuple[str, ...] = tuple(_DTYPES)


# dtype -> the dtype that carries it, remembered for the dtypes met (bounded)
_WIRE_OF: dict[np.dtype[Any], np.dtype[Any]] = {}
_WIRE_OF_MAX = 256


def wire_dtype(dtype: np.dtype[Any], what: str) -> np.dtype[Any]:
    """The little-endian dtype that carries ``dtype``, or WireFormatError if none does."""
    found = _WIRE_OF.get(dtype)
    if found is None:
        found = _find_wire_dtype(dtype, what)
        if len(_WIRE_OF) < _WIRE_OF_MAX:
            _WIRE_OF[dtype] = found
    return found


def known_wire_dtype(dtype: np.dtype[Any]) -> np.dtype[Any] | None:
    """The dtype carrying ``dtype`` if it was met before (a dict lookup), else None."""
    return _WIRE_OF.get(dtype)


def _find_wire_dtype(dtype: np.dtype[Any], what: str) -> np.dtype[Any]:
    if dtype.fields is not None or dtype.subdtype is not None:
        raise WireFormatError(
            f"{what}: structured dtype {dtype} is not supported; send plain arrays"
        )
    le = dtype.newbyteorder("<") if dtype.byteorder not in ("|", "<") else dtype
    found = _DTYPES.get(le.str)
    if found is None:
        raise WireFormatError(
            f"{what}: dtype {dtype} cannot travel on the wire; "
            f"convert to one of {', '.join(SUPPORTED_DTYPES)}"
        )
    return found


def lookup_dtype(descr: object, what: str) -> np.dtype[Any]:
    if not isinstance(descr, str) or descr not in _DTYPES:
        raise WireFormatError(f"{what}: unsupported dtype descriptor {descr!r}")
    return _DTYPES[descr]


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def pack(kind: int, header: dict[str, Any]) -> bytes:
    """Prefix plus the JSON header, padded with spaces so the data section is aligned."""
    body = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    if len(body) > MAX_HEADER_BYTES:
        raise WireFormatError(
            f"header of {len(body)} bytes exceeds {MAX_HEADER_BYTES}; "
            "send fewer tensors per message"
        )
    padded = align(PREFIX.size + len(body)) - PREFIX.size
    return PREFIX.pack(MAGIC, VERSION, kind, 0, padded) + body + b" " * (padded - len(body))


def as_byte_view(data: object) -> memoryview:
    """A flat unsigned-byte view of any contiguous buffer, or WireFormatError."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
        if not view.c_contiguous:
            raise ValueError("not contiguous")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
    except (TypeError, ValueError, BufferError) as exc:
        raise WireFormatError(
            f"expected bytes, bytearray or a contiguous buffer, got {type(data).__name__}"
        ) from exc
    return view


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)  # in C; the Python loop runs only to name a repeated field
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise WireFormatError(f"header repeats the field {key!r}")
            seen.add(key)
    return obj


def unpack(view: memoryview, kind: int) -> tuple[dict[str, Any], int]:
    """Parse prefix and header; return the header and where the data section starts."""
    start = unpack_prefix(view, kind)
    return parse_header(view[PREFIX.size : start]), start


def unpack_prefix(view: memoryview, kind: int) -> int:
    """Check the prefix; return where the data section starts (the header ends)."""
    if len(view) < PREFIX.size:
        raise WireFormatError(
            f"truncated: {len(view)} bytes is shorter than the {PREFIX.size}-byte prefix"
        )
    magic, version, got_kind, reserved, header_len = PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise WireFormatError(
            f"not sedna tensor bytes (magic {bytes(magic)!r}, expected {MAGIC!r})"
        )
    if version != VERSION:
        raise WireFormatError(
            f"wire format version {version} is not supported (this build reads {VERSION})"
        )
    if got_kind != kind:
        names = {
            KIND_MESSAGE: "a whole message (use decode)",
            KIND_CHUNK: "a chunk frame (use decode_chunk)",
        }
        raise WireFormatError(f"this is {names.get(got_kind, f'an unknown kind {got_kind}')}")
    if reserved != 0:
        raise WireFormatError("reserved prefix bytes are not zero")
    if header_len > MAX_HEADER_BYTES:
        raise WireFormatError(f"header length {header_len} exceeds the limit of {MAX_HEADER_BYTES}")
    start: int = PREFIX.size + header_len
    if start > len(view):
        raise WireFormatError(
            f"truncated: header of {header_len} bytes runs past the {len(view)}-byte buffer"
        )
    return start


def parse_header(raw: bytes | memoryview) -> dict[str, Any]:
    """The JSON header (an object without repeated fields), or WireFormatError."""
    try:
        header = json.loads(bytes(raw), object_pairs_hook=_no_duplicates)
    except WireFormatError:
        raise
    except (ValueError, RecursionError) as exc:  # bad UTF-8/JSON, huge ints, deep nesting
        raise WireFormatError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireFormatError("header must be a JSON object")
    return header


def field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in obj:
        raise WireFormatError(f"{what}: header lacks {name!r}")
    value = obj[name]
    # bool is an int in Python, never a count or a size on the wire
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WireFormatError(f"{what}: {name!r} has the wrong type ({type(value).__name__})")
    return value


def count(obj: dict[str, Any], name: str, what: str) -> int:
    value: int = field(obj, name, int, what)
    if value < 0 or value > MAX_TENSOR_BYTES:
        raise WireFormatError(f"{what}: {name}={value} is out of range")
    return value


def shape_of(obj: dict[str, Any], dtype: np.dtype[Any], what: str) -> tuple[tuple[int, ...], int]:
    """The declared shape and its element count, bounded before anything is allocated."""
    dims = field(obj, "shape", list, what)
    if len(dims) > MAX_NDIM:
        raise WireFormatError(f"{what}: {len(dims)} dimensions exceed the limit of {MAX_NDIM}")
    size = 1
    bound = 1  # product ignoring zeros: numpy refuses shapes whose nonzero dims overflow
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise WireFormatError(f"{what}: shape {dims!r} must hold non-negative integers")
        size *= d
        bound *= max(d, 1)
        if bound * dtype.itemsize > MAX_TENSOR_BYTES:
            raise WireFormatError(f"{what}: shape {dims!r} is absurdly large")
    return tuple(dims), size


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise WireFormatError(f"{what}: tensor names must be strings, got {type(name).__name__}")
    return name
