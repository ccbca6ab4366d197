"""Malformed, truncated, hostile bytes: WireFormatError and nothing else, never a pickle."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sedna_core import wire
from sedna_core.errors import WireFormatError

SAMPLE = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, 2], dtype=np.int64)}
ENCODED = wire.encode(SAMPLE)
FRAMES = list(wire.encode_chunks(SAMPLE, chunk_bytes=16))


def message(
    header: Any, data: bytes = b"", *, kind: bytes = b"M", header_len: int | None = None
) -> bytes:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(body) if header_len is None else header_len
    return b"SDNT" + bytes([1]) + kind + b"\0\0" + struct.pack("<I", size) + body + data


def decode_or_error(data: Any) -> None:
    """The only outcomes allowed for arbitrary input: a decode, or WireFormatError."""
    try:
        out = wire.decode(data)
    except WireFormatError:
        return
    assert isinstance(out, list | dict)


def decode_chunk_or_error(data: Any) -> None:
    try:
        chunk = wire.decode_chunk(data)
    except WireFormatError:
        return
    assert isinstance(chunk, wire.Chunk)


def entry(**over: Any) -> dict[str, Any]:
    return {"dtype": "<f4", "shape": [2], "offset": 0, "nbytes": 8, **over}


GOOD = {"container": "list", "data_bytes": 8, "tensors": [entry()]}


def test_handmade_message_decodes() -> None:
    assert wire.decode(message(GOOD, bytes(8)))[0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"SDN",
        b"XXXX\x01M\0\0\0\0\0\0",
        b"SDNT\x02M\0\0\0\0\0\0",  # unknown version
        b"SDNT\x01M\x01\0\0\0\0\0",  # reserved bytes set
        b"SDNT\x01Z\0\0\2\0\0\0{}",  # unknown kind
        message(GOOD, bytes(8), kind=b"C"),  # a chunk frame given to decode
        message(b"{}", header_len=0xFFFFFFFF),  # header length beyond any limit
        message(b"{}", header_len=1000),  # header length beyond the buffer
        message(b"\xff\xfe{}"),  # not UTF-8
        message(b"[" * 100_000 + b"]" * 100_000),  # nesting deeper than the recursion limit
        message(b'{"container": "list", "data_bytes": 1' + b"0" * 5000 + b"}"),  # 5000-digit int
        message(b'{"container": "list", "container": "dict", "data_bytes": 0, "tensors": []}'),
        message(b'{"container": "list", "data_bytes": NaN, "tensors": []}'),
        message([]),
        message({"container": "set", "data_bytes": 0, "tensors": []}),
        message({"container": "list", "data_bytes": -1, "tensors": []}),
        message({"container": "list", "data_bytes": True, "tensors": []}),
        message({"container": "list", "tensors": []}),
        message({"container": "list", "data_bytes": 0, "tensors": {}}),
        message({"container": "list", "data_bytes": 0, "tensors": [1]}),
        message({**GOOD, "data_bytes": 8}, bytes(7)),  # truncated data
        message({**GOOD, "data_bytes": 8}, bytes(9)),  # trailing bytes
        message({**GOOD, "tensors": [entry(dtype="|O")]}, bytes(8)),  # object dtype
        message({**GOOD, "tensors": [entry(dtype="O")]}, bytes(8)),
        message({**GOOD, "tensors": [entry(dtype="<U2")]}, bytes(8)),
        message({**GOOD, "tensors": [entry(dtype="|V8")]}, bytes(8)),
        message({**GOOD, "tensors": [entry(dtype=[["a", "<f4"]])]}, bytes(8)),
        message({**GOOD, "tensors": [entry(dtype="<M8[D]")]}, bytes(8)),
        message(
            {**GOOD, "tensors": [entry(dtype=">f4")]}, bytes(8)
        ),  # only little-endian on the wire
        message({**GOOD, "tensors": [entry(shape=[-2])]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=[2.0])]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=[True, 2])]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=2)]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=[1] * 64)]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=[2**62, 2**62], nbytes=8)]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=[0, 2**62, 2**62], nbytes=0)]}, bytes(8)),
        message({**GOOD, "tensors": [entry(shape=[2**40], nbytes=2**42)]}, bytes(8)),
        message({**GOOD, "tensors": [entry(nbytes=4)]}, bytes(8)),  # nbytes disagrees with shape
        message({**GOOD, "tensors": [entry(offset=4)]}, bytes(8)),  # runs past the data
        message({**GOOD, "tensors": [entry(offset=2**70)]}, bytes(8)),
        message({**GOOD, "tensors": [entry(), entry()]}, bytes(8)),  # overlapping tensors
        message(
            {
                "container": "dict",
                "data_bytes": 16,
                "tensors": [entry(name="a"), entry(name="a", offset=8)],
            },
            bytes(16),
        ),  # duplicate names
        message({"container": "dict", "data_bytes": 8, "tensors": [entry(name=3)]}, bytes(8)),
        message({"container": "dict", "data_bytes": 8, "tensors": [entry()]}, bytes(8)),  # no name
    ],
)
def test_malformed_messages_raise_wire_format_error(data: bytes) -> None:
    with pytest.raises(WireFormatError):
        wire.decode(data)


@pytest.mark.parametrize(
    "data",
    [None, 3, "text", object(), np.zeros((2, 2))[:, ::2], memoryview(ENCODED * 2)[::2]],
    ids=["none", "int", "str", "object", "strided-array", "strided-view"],
)
def test_non_buffers_raise_wire_format_error(data: Any) -> None:
    with pytest.raises(WireFormatError):
        wire.decode(data)
    with pytest.raises(WireFormatError):
        wire.decode_chunk(data)


def test_multibyte_buffers_are_read_as_bytes() -> None:
    assert len(ENCODED) % 4 == 0
    words = np.frombuffer(ENCODED, dtype=np.uint32)  # any contiguous buffer works, as raw bytes
    assert wire.decode(words)["b"].tolist() == [1, 2]
    with pytest.raises(WireFormatError):  # one extra word is trailing data: refused, not misread
        wire.decode(np.concatenate([words, words[:1]]))


def test_pickle_bytes_are_refused() -> None:
    import pickle

    with pytest.raises(WireFormatError, match="magic"):
        wire.decode(pickle.dumps(SAMPLE))


@given(st.binary(max_size=512))
def test_random_garbage(data: bytes) -> None:
    decode_or_error(data)
    decode_chunk_or_error(data)


@given(st.binary(max_size=256))
def test_random_garbage_behind_a_valid_prefix(data: bytes) -> None:
    decode_or_error(b"SDNT\x01M\0\0" + struct.pack("<I", len(data)) + data)
    decode_chunk_or_error(b"SDNT\x01C\0\0" + struct.pack("<I", len(data)) + data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
descriptors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=3) | st.integers(),
        "dtype": st.sampled_from([*wire.SUPPORTED_DTYPES, "|O", "<U1", "x"]) | json_values,
        "shape": st.lists(st.integers(min_value=-2, max_value=2**64), max_size=5) | json_values,
        "offset": st.integers(min_value=-2, max_value=2**64) | json_values,
        "nbytes": st.integers(min_value=-2, max_value=2**64) | json_values,
    },
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "container": st.sampled_from(["list", "dict", "x"]) | json_values,
        "data_bytes": st.integers(min_value=-2, max_value=2**64) | json_values,
        "tensors": st.lists(descriptors, max_size=4) | json_values,
    },
)


@given(headers, st.binary(max_size=64))
def test_structured_hostile_headers(header: dict[str, Any], data: bytes) -> None:
    decode_or_error(message(header, data))


@given(st.data())
def test_truncation_always_fails(data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(ENCODED) - 1))
    with pytest.raises(WireFormatError):
        wire.decode(ENCODED[:cut])
    frame = data.draw(st.sampled_from(FRAMES))
    with pytest.raises(WireFormatError):
        wire.decode_chunk(frame[: data.draw(st.integers(min_value=0, max_value=len(frame) - 1))])


@given(st.data())
def test_bit_flips_decode_or_raise(data: st.DataObject) -> None:
    for blob, check in (
        (ENCODED, decode_or_error),
        (data.draw(st.sampled_from(FRAMES)), decode_chunk_or_error),
    ):
        buf = bytearray(blob)
        for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
            bit = data.draw(st.integers(min_value=0, max_value=len(buf) * 8 - 1))
            buf[bit // 8] ^= 1 << (bit % 8)
        check(bytes(buf))


@given(st.data())
def test_frames_fed_to_an_assembler_in_any_corruption(data: st.DataObject) -> None:
    asm = wire.Assembler(max_bytes=1 << 20)
    for frame in FRAMES:
        buf = bytearray(frame)
        if data.draw(st.booleans()):
            bit = data.draw(st.integers(min_value=0, max_value=len(buf) * 8 - 1))
            buf[bit // 8] ^= 1 << (bit % 8)
        try:
            asm.feed(bytes(buf))
        except WireFormatError:
            continue
    try:
        out = asm.result()
    except WireFormatError:
        return
    assert isinstance(out, dict)
