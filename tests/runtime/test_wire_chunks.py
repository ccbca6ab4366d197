"""The chunked wire form: bounded frames, any order, incremental processing, strict assembly."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sedna_core import wire
from sedna_core.errors import WireFormatError

DTYPES = [np.dtype(d) for d in wire.SUPPORTED_DTYPES] + [np.dtype(">f8"), np.dtype(">c8")]
arrays = st.builds(
    lambda a, t: a.T if t else a,
    hnp.arrays(
        st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)
    ),
    st.booleans(),
)
containers = st.lists(arrays, max_size=4) | st.dictionaries(st.text(max_size=6), arrays, max_size=4)


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def _same(got: Any, want: Any) -> None:
    assert type(got) is type(want) and len(got) == len(want)
    pairs = (
        zip(got.values(), want.values(), strict=True)
        if isinstance(want, dict)
        else zip(got, want, strict=True)
    )
    if isinstance(want, dict):
        assert list(got) == list(want)
    for g, w in pairs:
        assert g.shape == w.shape and _bits(g) == _bits(w)


@given(containers, st.integers(min_value=16, max_value=200), st.randoms(use_true_random=False))
def test_chunked_round_trip_any_order(tensors: Any, chunk_bytes: int, rnd: Any) -> None:
    frames = list(wire.encode_chunks(tensors, chunk_bytes=chunk_bytes))
    rnd.shuffle(frames)
    asm = wire.Assembler()
    for i, frame in enumerate(frames):
        assert not asm.done
        chunk = asm.feed(frame)
        assert chunk.data.nbytes <= chunk_bytes
        assert asm.done == (i == len(frames) - 1)
    _same(asm.result(), tensors)


def test_frames_are_bounded_and_self_describing() -> None:
    w = np.arange(1000, dtype=np.float32).reshape(10, 100)
    frames = list(wire.encode_chunks({"w": w, "s": np.float64(2.5)}, chunk_bytes=1024))
    chunks = [wire.decode_chunk(f) for f in frames]
    assert [c.key for c in chunks] == ["w"] * 4 + ["s"]
    assert [c.offset for c in chunks] == [0, 256, 512, 768, 0]
    assert all(c.shape == (10, 100) and c.dtype == np.float32 and c.total == 2 for c in chunks[:4])
    assert all(len(f) <= 1024 + 256 for f in frames)
    assert chunks[4].shape == () and chunks[4].data.tolist() == [2.5] and chunks[4].size == 1
    # a receiver can accumulate piece by piece, without rebuilding the tensor first
    acc = np.zeros(1000, dtype=np.float64)
    for c in chunks[:4]:
        acc[c.offset : c.offset + c.data.size] += c.data
    assert np.array_equal(acc.reshape(10, 100), w)


def test_default_chunk_size_and_views() -> None:
    w = np.ones(3 << 20, dtype=np.float32)  # 12 MiB -> three 4 MiB frames
    frames = list(wire.encode_chunks([w]))
    assert len(frames) == 3
    chunk = wire.decode_chunk(frames[1])
    assert chunk.key == 0 and chunk.offset == 1 << 20 and not chunk.data.flags.owndata
    assert wire.decode_chunk(frames[1], copy=True).data.flags.owndata


def test_empty_containers_and_empty_tensors() -> None:
    for empty in ([], {}):
        frames = list(wire.encode_chunks(empty))
        assert len(frames) == 1 and wire.decode_chunk(frames[0]).key is None
        asm = wire.Assembler()
        asm.feed(frames[0])
        assert asm.done and asm.result() == empty
        with pytest.raises(WireFormatError, match="duplicate"):
            asm.feed(frames[0])
    frames = list(wire.encode_chunks([np.zeros((0, 4), np.int16)]))
    asm = wire.Assembler()
    asm.feed(frames[0])
    assert asm.done and asm.result()[0].shape == (0, 4)
    with pytest.raises(WireFormatError, match="duplicate"):
        asm.feed(frames[0])


def test_assembler_refuses_contradictions_and_overlaps() -> None:
    a = list(wire.encode_chunks([np.arange(8, dtype=np.int32)], chunk_bytes=16))
    b = list(wire.encode_chunks([np.arange(8, dtype=np.int64)], chunk_bytes=16))
    c = list(wire.encode_chunks([np.arange(8, dtype=np.int32), np.zeros(1)], chunk_bytes=16))
    d = list(wire.encode_chunks({"x": np.arange(8, dtype=np.int32)}, chunk_bytes=16))
    asm = wire.Assembler()
    asm.feed(a[0])
    for bad, why in (
        (a[0], "overlap"),
        (b[1], "contradicts"),
        (c[1], "another message"),
        (d[1], "another"),
    ):
        with pytest.raises(WireFormatError, match=why):
            asm.feed(bad)
    with pytest.raises(WireFormatError, match="incomplete"):
        asm.result()
    asm.feed(a[1])
    assert asm.done and asm.result()[0].tolist() == list(range(8))


def test_assembler_refuses_duplicate_names_and_oversized_messages() -> None:
    frames = list(wire.encode_chunks({"x": np.zeros(2), "y": np.zeros(2)}))
    twin = frames[1].replace(b'"name":"y"', b'"name":"x"')
    asm = wire.Assembler()
    asm.feed(frames[0])
    with pytest.raises(WireFormatError, match="duplicate tensor name"):
        asm.feed(twin)
    small = wire.Assembler(max_bytes=100)
    with pytest.raises(WireFormatError, match="max_bytes"):
        small.feed(next(wire.encode_chunks([np.zeros(100)])))
    with pytest.raises(WireFormatError, match="no frame"):
        wire.Assembler().result()


def frame(header: dict[str, Any], data: bytes = b"") -> bytes:
    body = json.dumps(header).encode()
    return b"SDNTC".replace(b"C", b"\x01C") + b"\0\0" + struct.pack("<I", len(body)) + body + data


BASE = {
    "container": "list",
    "tensors": 1,
    "index": 0,
    "dtype": "<f4",
    "shape": [4],
    "offset": 0,
    "count": 2,
}


@pytest.mark.parametrize(
    "data",
    [
        frame(BASE, bytes(4)),  # short payload
        frame(BASE, bytes(12)),  # long payload
        frame({**BASE, "offset": 3}, bytes(8)),  # runs past the tensor
        frame({**BASE, "count": 0}),  # empty piece of a non-empty tensor
        frame({**BASE, "index": 1}, bytes(8)),  # index beyond the tensor count
        frame({**BASE, "index": -1}, bytes(8)),
        frame({**BASE, "shape": [2**62, 2**62]}, bytes(8)),
        frame({**BASE, "dtype": "|O"}, bytes(8)),
        frame({**BASE, "container": "dict"}, bytes(8)),  # dict frame without a name
        frame({"container": "list", "tensors": 0}, b"x"),  # marker with data
        frame({k: v for k, v in BASE.items() if k != "count"}, bytes(8)),
        wire.encode([np.zeros(2)]),  # a whole message given to decode_chunk
    ],
)
def test_malformed_frames(data: bytes) -> None:
    with pytest.raises(WireFormatError):
        wire.decode_chunk(data)
    with pytest.raises(WireFormatError):
        wire.Assembler().feed(data)


@pytest.mark.parametrize("chunk_bytes", [0, 15, -1, 2.5, True])
def test_chunk_bytes_validated(chunk_bytes: Any) -> None:
    with pytest.raises(WireFormatError, match="chunk_bytes"):
        wire.encode_chunks([np.zeros(1)], chunk_bytes=chunk_bytes)
