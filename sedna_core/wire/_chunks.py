"""Chunked form: bounded, self-describing frames a receiver can use as they arrive."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna_core.errors import WireFormatError
from sedna_core.wire._header import (
    KIND_CHUNK,
    as_byte_view,
    check_name,
    count,
    field,
    lookup_dtype,
    pack,
    shape_of,
    unpack,
)
from sedna_core.wire._message import Tensors, iter_tensors

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "Assembler",
    "Chunk",
    "ChunkReader",
    "SharedChunks",
    "decode_chunk",
    "encode_chunks",
]

DEFAULT_CHUNK_BYTES = 4 << 20
MIN_CHUNK_BYTES = 16  # the widest element (complex128) must fit in one chunk
DEFAULT_MAX_BYTES = 4 << 30
_EMPTY = np.dtype("|u1")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One decoded frame: a run of ``data.size`` elements of one tensor, flattened C-order.

    ``key`` is the tensor's list index (int) or dict name (str); it is ``None`` only for the
    single marker frame that encodes an empty container. ``offset`` counts elements from the
    start of the flattened tensor, ``shape`` is the full tensor's shape, ``index`` its
    position and ``total`` how many tensors the message holds.
    """

    key: int | str | None
    index: int
    total: int
    container: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    offset: int
    data: np.ndarray

    @property
    def size(self) -> int:
        """Element count of the full tensor."""
        return math.prod(self.shape)


def encode_chunks(tensors: Tensors, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
    """Encode tensors as frames whose payload never exceeds ``chunk_bytes``.

    Each frame carries the tensor key, dtype, full shape, element offset and count, so a
    receiver can process frames in any order (see :class:`Assembler` and :func:`decode_chunk`).
    Tensors are converted one at a time, lazily, as frames are pulled.
    """
    if (
        isinstance(chunk_bytes, bool)
        or not isinstance(chunk_bytes, int)
        or chunk_bytes < MIN_CHUNK_BYTES
    ):
        raise WireFormatError(
            f"chunk_bytes={chunk_bytes!r} must be an integer >= {MIN_CHUNK_BYTES}"
        )
    container, items = iter_tensors(tensors)
    total = len(tensors)
    return _frames(container, total, items, chunk_bytes)


def _frames(
    container: str, total: int, items: Iterator[tuple[int | str, np.ndarray]], chunk_bytes: int
) -> Iterator[bytes]:
    if total == 0:
        yield pack(KIND_CHUNK, {"container": container, "tensors": 0})
        return
    for index, (key, arr) in enumerate(items):
        base: dict[str, Any] = {"container": container, "tensors": total, "index": index}
        if container == "dict":
            base["name"] = key
        base["dtype"] = arr.dtype.str
        base["shape"] = list(arr.shape)
        flat = arr.reshape(-1)
        per = chunk_bytes // arr.dtype.itemsize
        for start in range(0, max(flat.size, 1), per):
            piece = flat[start : start + per]
            head = pack(KIND_CHUNK, {**base, "offset": start, "count": int(piece.size)})
            yield head + memoryview(piece).cast("B") if piece.size else head


class SharedChunks:
    """The frames of :func:`encode_chunks` for one message, made once for several readers.

    A server sending the same model to many clients would otherwise encode (copy) it once
    per client, holding one frame per concurrent send. Here each frame is made when the
    furthest reader first needs it and dropped as soon as every reader has passed it (or
    closed), so at most one copy of the message is held, however many readers there are.

    Take every reader with :meth:`reader` before any of them starts; a reader taken later
    encodes its own frames. Close readers that stop early (:meth:`ChunkReader.close`), or
    the frames they have not passed are held until this object is dropped.
    """

    def __init__(self, tensors: Tensors, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self._tensors = tensors
        self._chunk_bytes = chunk_bytes
        self._source = encode_chunks(tensors, chunk_bytes=chunk_bytes)  # checks chunk_bytes
        self._frames: dict[int, bytes] = {}
        self._left: dict[int, int] = {}  # frame index -> readers that have not passed it
        self._made = 0
        self._ended = False
        self._readers = 0  # open shared readers

    @property
    def held(self) -> int:
        """Frames held now (made, and not yet passed by every open reader)."""
        return len(self._frames)

    def reader(self) -> ChunkReader:
        """A new reader of every frame, in order."""
        if self._made:  # too late to share: frames it needs may be gone
            return ChunkReader(None, encode_chunks(self._tensors, chunk_bytes=self._chunk_bytes))
        self._readers += 1
        return ChunkReader(self, None)

    def _frame(self, index: int) -> bytes | None:
        if index == self._made and not self._ended:
            try:
                frame = next(self._source)
            except StopIteration:
                self._ended = True
                self._tensors = []  # nothing more to encode: let the arrays go
                return None
            self._frames[index] = frame
            self._left[index] = self._readers
            self._made += 1
        return self._frames.get(index)

    def _passed(self, index: int) -> None:
        left = self._left.get(index)
        if left is None:
            return
        if left <= 1:
            del self._frames[index], self._left[index]
        else:
            self._left[index] = left - 1

    def _leave(self, position: int) -> None:
        self._readers -= 1
        for index in range(position, self._made):
            self._passed(index)


class ChunkReader:
    """One reader's iterator over a :class:`SharedChunks` (see there)."""

    def __init__(self, shared: SharedChunks | None, own: Iterator[bytes] | None) -> None:
        self._shared = shared
        self._own = own
        self._position = 0
        self._open = True

    def __iter__(self) -> ChunkReader:
        return self

    def __next__(self) -> bytes:
        if not self._open:
            raise StopIteration
        if self._own is not None:
            return next(self._own)
        assert self._shared is not None
        if self._position:
            self._shared._passed(self._position - 1)  # the caller is done with the last one
        frame = self._shared._frame(self._position)
        if frame is None:
            self._open = False
            self._shared._readers -= 1
            raise StopIteration
        self._position += 1
        return frame

    def close(self) -> None:
        """Stop reading: frames this reader has not passed no longer wait for it."""
        if not self._open:
            return
        self._open = False
        if self._shared is not None:
            self._shared._leave(max(0, self._position - 1))
        self._own = None


def decode_chunk(frame: Any, *, copy: bool = False) -> Chunk:
    """Decode one frame of :func:`encode_chunks`; ``data`` views ``frame`` unless ``copy``.

    Raises
    ------
    WireFormatError
        For anything malformed, truncated, oversized or unsupported; nothing else.
    """
    view = as_byte_view(frame)
    header, start = unpack(view, KIND_CHUNK)
    what = "chunk"
    container = field(header, "container", str, what)
    if container not in ("list", "dict"):
        raise WireFormatError(f"chunk: container {container!r} must be 'list' or 'dict'")
    total = count(header, "tensors", what)
    payload = len(view) - start
    if total == 0:
        if payload:
            raise WireFormatError("chunk: the empty-container marker carries data")
        data = np.empty(0, dtype=_EMPTY)
        return Chunk(None, -1, 0, container, _EMPTY, (0,), 0, data)
    index = count(header, "index", what)
    if index >= total:
        raise WireFormatError(f"chunk: index {index} is not below the tensor count {total}")
    what = f"chunk of tensor {index}"
    key: int | str = check_name(header.get("name"), what) if container == "dict" else index
    dtype = lookup_dtype(header.get("dtype"), what)
    shape, size = shape_of(header, dtype, what)
    offset = count(header, "offset", what)
    n = count(header, "count", what)
    if offset + n > size or (n == 0 and size != 0):
        raise WireFormatError(
            f"{what}: elements [{offset}, {offset + n}) do not fit shape {list(shape)}"
        )
    if payload != n * dtype.itemsize:
        raise WireFormatError(
            f"{what}: {payload} data bytes, expected {n * dtype.itemsize} "
            "(truncated or trailing bytes)"
        )
    data = np.frombuffer(view, dtype=dtype, count=n, offset=start)
    return Chunk(key, index, total, container, dtype, shape, offset, data.copy() if copy else data)


class Assembler:
    """Rebuilds what :func:`encode_chunks` encoded, from frames in any order.

    Parameters
    ----------
    max_bytes
        Refuse (WireFormatError) frames announcing more tensor bytes than this in total,
        before allocating them; default 4 GiB.
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._container: str | None = None
        self._total: int | None = None
        self._arrays: dict[int, np.ndarray] = {}
        self._keys: dict[int, int | str] = {}
        self._names: set[str] = set()
        self._spans: dict[int, list[tuple[int, int]]] = {}
        self._filled: dict[int, int] = {}
        self._complete = 0
        self._bytes = 0
        self._marker = False

    @property
    def done(self) -> bool:
        """True once every element of every tensor has arrived."""
        if self._total == 0:
            return self._marker
        return self._total is not None and self._complete == self._total

    def feed(self, frame: Any) -> Chunk:
        """Decode ``frame``, copy its elements into place and return the chunk.

        Raises WireFormatError for malformed frames and for frames that contradict earlier
        ones (another container or tensor count, dtype, shape or name) or overlap them.
        """
        chunk = decode_chunk(frame)
        if self._total is None:
            self._container, self._total = chunk.container, chunk.total
        elif (chunk.container, chunk.total) != (self._container, self._total):
            raise WireFormatError(
                f"frame belongs to another message ({chunk.total} tensors in a {chunk.container}, "
                f"expected {self._total} in a {self._container})"
            )
        if chunk.key is None:
            if self._marker:
                raise WireFormatError("duplicate empty-container marker")
            self._marker = True
            return chunk
        i = chunk.index
        arr = self._arrays.get(i)
        if arr is None:
            nbytes = chunk.size * chunk.dtype.itemsize
            if self._bytes + nbytes > self._max_bytes:
                raise WireFormatError(
                    f"message exceeds {self._max_bytes} bytes; "
                    "raise Assembler(max_bytes=...) if that is expected"
                )
            if isinstance(chunk.key, str):
                if chunk.key in self._names:
                    raise WireFormatError(f"duplicate tensor name {chunk.key!r}")
                self._names.add(chunk.key)
            self._bytes += nbytes
            arr = np.empty(chunk.shape, dtype=chunk.dtype)
            self._arrays[i], self._keys[i] = arr, chunk.key
            self._spans[i], self._filled[i] = [], 0
        elif (chunk.key, chunk.dtype, chunk.shape) != (self._keys[i], arr.dtype, arr.shape):
            raise WireFormatError(
                f"frame for tensor {i} contradicts earlier frames (name, dtype or shape)"
            )
        elif arr.size == 0:
            raise WireFormatError(f"duplicate frame for empty tensor {i}")
        n = chunk.data.size
        spans = self._spans[i]
        lo, hi = chunk.offset, chunk.offset + n
        at = bisect.bisect_left(spans, (lo, hi))
        if (at > 0 and spans[at - 1][1] > lo) or (at < len(spans) and spans[at][0] < hi):
            raise WireFormatError(f"frame for tensor {i} overlaps elements already received")
        if n:
            spans.insert(at, (lo, hi))
            arr.reshape(-1)[lo:hi] = chunk.data
        self._filled[i] += n
        if self._filled[i] == arr.size:
            self._complete += 1
        return chunk

    def result(self) -> list[np.ndarray] | dict[str, np.ndarray]:
        """The rebuilt list or dict; WireFormatError if frames are still missing."""
        if not self.done:
            if self._total is None:
                raise WireFormatError("no frame received yet")
            missing = [
                i
                for i in range(self._total)
                if i not in self._arrays or self._filled[i] < self._arrays[i].size
            ]
            raise WireFormatError(f"incomplete: tensors {missing[:10]} still miss frames")
        ordered = [self._arrays[i] for i in range(len(self._arrays))]
        if self._container == "dict":
            return {str(self._keys[i]): a for i, a in enumerate(ordered)}
        return ordered
