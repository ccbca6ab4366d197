"""Whole messages: a list or dict of arrays to one buffer and back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from sedna_core.errors import WireFormatError
from sedna_core.wire._header import (
    KIND_MESSAGE,
    PREFIX,
    align,
    as_byte_view,
    check_name,
    count,
    field,
    known_wire_dtype,
    lookup_dtype,
    pack,
    parse_header,
    shape_of,
    unpack_prefix,
    wire_dtype,
)

__all__ = ["Tensors", "decode", "encode", "iter_tensors"]

Tensors = Sequence[Any] | Mapping[str, Any]
_ZEROS = bytes(64)


def iter_tensors(tensors: Tensors) -> tuple[str, Iterator[tuple[int | str, np.ndarray]]]:
    """("list" | "dict", (key, little-endian C-contiguous array) pairs) for a container."""
    if isinstance(tensors, Mapping):
        items: Iterator[tuple[Any, Any]] = iter(tensors.items())
        container = "dict"
    elif isinstance(tensors, Sequence) and not isinstance(tensors, str | bytes | bytearray):
        items = enumerate(tensors)
        container = "list"
    else:
        raise WireFormatError(
            f"expected a list or a dict of arrays, got {type(tensors).__name__}; "
            "wrap a single array in a list"
        )

    def gen() -> Iterator[tuple[int | str, np.ndarray]]:
        for key, value in items:
            if container == "dict":
                check_name(key, "tensor key")
            yield key, _wire_array(value, key)

    return container, gen()


def _wire_array(value: Any, key: int | str) -> np.ndarray:
    try:
        arr = value if type(value) is np.ndarray else np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WireFormatError(f"tensor {key!r} cannot be converted to an array: {exc}") from exc
    dtype = known_wire_dtype(arr.dtype) or wire_dtype(arr.dtype, f"tensor {key!r}")
    if arr.dtype != dtype or not arr.flags.c_contiguous:
        # one copy that fixes byte order and layout together
        arr = arr.astype(dtype, order="C")  # keeps 0-d (ascontiguousarray would not)
    return arr


def encode(tensors: Tensors) -> bytes:
    """Encode a list or a dict of numpy arrays into one self-describing buffer.

    Parameters
    ----------
    tensors
        A sequence of arrays (decoded as a list) or a mapping of str to arrays (decoded as a
        dict, same order). Anything ``np.asarray`` accepts works if its dtype is bool, a
        signed/unsigned integer, float16/32/64 or complex64/128; big-endian and
        non-contiguous arrays are converted.

    Raises
    ------
    WireFormatError
        For object, string, datetime or structured dtypes, and non-string dict keys.
    """
    arrays: list[tuple[int | str, np.ndarray]]
    if type(tensors) is dict:  # the usual container, without the generic iteration
        container = "dict"
        arrays = [
            (check_name(key, "tensor key"), _wire_array(value, key))
            for key, value in tensors.items()
        ]
    else:
        container, items = iter_tensors(tensors)
        arrays = list(items)
    # a service sends the same few layouts over and over: their headers are made once
    signature = (container, tuple((key, arr.dtype.str, arr.shape) for key, arr in arrays))
    known = _HEADERS.get(signature)
    if known is None:
        known = _header_for(container, arrays)
        _remember(_HEADERS, signature, known)
    header, offsets = known
    parts: list[Any] = [header]
    written = 0
    for (_, arr), offset in zip(arrays, offsets, strict=True):
        if offset > written:
            parts.append(_ZEROS[: offset - written])
        if arr.nbytes:
            parts.append(arr)  # C-contiguous: join reads its buffer as raw bytes
        written = offset + arr.nbytes
    # join copies each buffer exactly once: no intermediate tobytes()
    return b"".join(parts)


def _header_for(
    container: str, arrays: list[tuple[int | str, np.ndarray]]
) -> tuple[bytes, tuple[int, ...]]:
    """The packed header of a message holding ``arrays``, and each one's data offset."""
    entries: list[dict[str, Any]] = []
    offsets: list[int] = []
    pos = 0
    for key, arr in arrays:
        pos = align(pos)
        entry: dict[str, Any] = {
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
            "offset": pos,
            "nbytes": arr.nbytes,
        }
        if container == "dict":
            entry = {"name": key, **entry}
        entries.append(entry)
        offsets.append(pos)
        pos += arr.nbytes
    header = pack(KIND_MESSAGE, {"container": container, "data_bytes": pos, "tensors": entries})
    return header, tuple(offsets)


class _Layout(NamedTuple):
    """A validated message header: what ``decode`` needs to cut the data section."""

    container: str
    data_bytes: int
    #: (name or None, dtype, shape, element count, byte offset) per tensor
    tensors: tuple[tuple[str | None, np.dtype[Any], tuple[int, ...], int, int], ...]


def decode(data: Any, *, copy: bool = False) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Decode what :func:`encode` produced.

    Arrays are zero-copy views into ``data`` (read-only when ``data`` is ``bytes``) unless
    ``copy=True``; they keep ``data`` alive. Dtypes come back little-endian.

    Raises
    ------
    WireFormatError
        For anything malformed, truncated, oversized or unsupported; nothing else.
    """
    view = as_byte_view(data)
    start = unpack_prefix(view, KIND_MESSAGE)
    raw = bytes(view[PREFIX.size : start])
    # headers already validated are looked up, not parsed and checked again
    layout = _LAYOUTS.get(raw)
    if layout is None:
        layout = _layout_of(parse_header(raw))
        if len(raw) <= _CACHED_HEADER_BYTES:
            _remember(_LAYOUTS, raw, layout)
    if start + layout.data_bytes != len(view):
        raise WireFormatError(
            f"message: header announces {start + layout.data_bytes} bytes but the buffer holds "
            f"{len(view)} (truncated or trailing bytes)"
        )
    out_list: list[np.ndarray] = []
    out_dict: dict[str, np.ndarray] = {}
    for name, dtype, shape, size, offset in layout.tensors:
        if size:  # a view of the right shape in one call (the layout checked the bounds)
            arr = np.ndarray(shape, dtype=dtype, buffer=view, offset=start + offset)
        else:
            arr = np.frombuffer(view, dtype=dtype, count=0, offset=start + offset).reshape(shape)
        if copy:
            arr = arr.copy()
        if name is None:
            out_list.append(arr)
        else:
            out_dict[name] = arr
    return out_dict if layout.container == "dict" else out_list


def _layout_of(header: dict[str, Any]) -> _Layout:
    """Check a message header; WireFormatError for anything wrong."""
    container = field(header, "container", str, "message")
    if container not in ("list", "dict"):
        raise WireFormatError(f"message: container {container!r} must be 'list' or 'dict'")
    entries = field(header, "tensors", list, "message")
    data_bytes = count(header, "data_bytes", "message")
    tensors = []
    names: set[str] = set()
    end = 0
    for i, entry in enumerate(entries):
        what = f"tensor {i}"
        if not isinstance(entry, dict):
            raise WireFormatError(f"{what}: descriptor must be a JSON object")
        dtype = lookup_dtype(entry.get("dtype"), what)
        shape, size = shape_of(entry, dtype, what)
        offset = count(entry, "offset", what)
        nbytes = count(entry, "nbytes", what)
        if nbytes != size * dtype.itemsize:
            raise WireFormatError(
                f"{what}: nbytes={nbytes} does not match shape {list(shape)} of {dtype}"
            )
        if offset < end or offset + nbytes > data_bytes:
            raise WireFormatError(
                f"{what}: bytes [{offset}, {offset + nbytes}) overlap or run past the data"
            )
        end = offset + nbytes
        name = None
        if container == "dict":
            name = check_name(entry.get("name"), what)
            if name in names:
                raise WireFormatError(f"{what}: duplicate tensor name {name!r}")
            names.add(name)
        tensors.append((name, dtype, shape, size, offset))
    return _Layout(container, data_bytes, tuple(tensors))


# Bounded memo tables; the oldest entry goes first when one is full.
_CACHE_ENTRIES = 256
_CACHED_HEADER_BYTES = 4096  # longer headers (many tensors) are parsed every time
_HEADERS: dict[tuple[Any, ...], tuple[bytes, tuple[int, ...]]] = {}
_LAYOUTS: dict[bytes, _Layout] = {}


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    if len(table) >= _CACHE_ENTRIES:
        with contextlib.suppress(StopIteration, RuntimeError):  # changed by another thread
            table.pop(next(iter(table)), None)
    table[key] = value
