"""Whole messages: a list or dict of arrays to one buffer and back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from sedna_core.errors import WireFormatError
from sedna_core.wire._header import (
    KIND_MESSAGE,
    align,
    as_byte_view,
    check_name,
    count,
    field,
    lookup_dtype,
    pack,
    shape_of,
    unpack,
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
            yield key, _wire_array(value, f"tensor {key!r}")

    return container, gen()


def _wire_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WireFormatError(f"{what} cannot be converted to an array: {exc}") from exc
    dtype = wire_dtype(arr.dtype, what)
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
    container, items = iter_tensors(tensors)
    entries: list[dict[str, Any]] = []
    buffers: list[np.ndarray] = []
    pos = 0
    for key, arr in items:
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
        buffers.append(arr)
        pos += arr.nbytes
    header = pack(KIND_MESSAGE, {"container": container, "data_bytes": pos, "tensors": entries})
    parts: list[Any] = [header]
    written = 0
    for entry, arr in zip(entries, buffers, strict=True):
        if entry["offset"] > written:
            parts.append(_ZEROS[: entry["offset"] - written])
        if arr.nbytes:
            parts.append(memoryview(arr.reshape(-1)).cast("B"))
        written = entry["offset"] + arr.nbytes
    # join copies each buffer exactly once: no intermediate tobytes()
    return b"".join(parts)


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
    header, start = unpack(view, KIND_MESSAGE)
    container = field(header, "container", str, "message")
    if container not in ("list", "dict"):
        raise WireFormatError(f"message: container {container!r} must be 'list' or 'dict'")
    entries = field(header, "tensors", list, "message")
    data_bytes = count(header, "data_bytes", "message")
    if start + data_bytes != len(view):
        raise WireFormatError(
            f"message: header announces {start + data_bytes} bytes but the buffer holds "
            f"{len(view)} (truncated or trailing bytes)"
        )
    out_list: list[np.ndarray] = []
    out_dict: dict[str, np.ndarray] = {}
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
        arr = np.frombuffer(view, dtype=dtype, count=size, offset=start + offset).reshape(shape)
        if copy:
            arr = arr.copy()
        if container == "dict":
            name = check_name(entry.get("name"), what)
            if name in out_dict:
                raise WireFormatError(f"{what}: duplicate tensor name {name!r}")
            out_dict[name] = arr
        else:
            out_list.append(arr)
    return out_dict if container == "dict" else out_list
