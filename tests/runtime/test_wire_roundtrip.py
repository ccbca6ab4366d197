"""Round trips of the tensor wire format: every supported dtype, any shape, any layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sedna_core import wire
from sedna_core.errors import WireFormatError

BASE_DTYPES = [np.dtype(d) for d in wire.SUPPORTED_DTYPES]
ALL_DTYPES = BASE_DTYPES + [d.newbyteorder(">") for d in BASE_DTYPES if d.itemsize > 1]


def _bits(a: np.ndarray) -> bytes:
    """Exact little-endian bytes of an array (NaN payloads and -0.0 included)."""
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert got.dtype == want.dtype.newbyteorder("<") or got.dtype == want.dtype
    assert got.dtype.byteorder in ("<", "|", "=")
    assert _bits(got) == _bits(want)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from(ALL_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    a = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["c", "transposed", "strided", "fortran"]))
    if layout == "transposed" and a.ndim > 1:
        a = a.T
    elif layout == "strided" and a.ndim >= 1:
        a = a[..., ::2]
    elif layout == "fortran":
        a = np.asfortranarray(a)
    return a


tensor_lists = st.lists(arrays(), max_size=6)
tensor_dicts = st.dictionaries(st.text(max_size=12), arrays(), max_size=6)


@given(tensor_lists)
def test_list_round_trip(tensors: list[np.ndarray]) -> None:
    out = wire.decode(wire.encode(tensors))
    assert isinstance(out, list) and len(out) == len(tensors)
    for got, want in zip(out, tensors, strict=True):
        assert_same(got, want)


@given(tensor_dicts)
def test_dict_round_trip_keeps_names_and_order(tensors: dict[str, np.ndarray]) -> None:
    out = wire.decode(wire.encode(tensors))
    assert isinstance(out, dict) and list(out) == list(tensors)
    for name, want in tensors.items():
        assert_same(out[name], want)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_each_dtype_zero_d_and_empty(dtype: np.dtype) -> None:
    tensors = [
        np.array(1, dtype=dtype),
        np.zeros((0, 3), dtype=dtype),
        np.ones((2, 3), dtype=dtype),
    ]
    for got, want in zip(wire.decode(wire.encode(tensors)), tensors, strict=True):
        assert_same(got, want)


def test_decode_is_zero_copy_and_aligned() -> None:
    data = wire.encode([np.arange(1000, dtype=np.float64), np.arange(7, dtype=np.complex128)])
    out = wire.decode(data)
    for a in out:
        assert not a.flags.owndata and not a.flags.writeable
        assert a.ctypes.data % a.dtype.alignment == 0
    copied = wire.decode(data, copy=True)
    assert all(a.flags.writeable and a.flags.owndata for a in copied)
    assert all(a.flags.writeable for a in wire.decode(bytearray(data)))


def test_accepts_memoryview_and_python_values() -> None:
    data = wire.encode([[1, 2, 3], 2.5, True])
    out = wire.decode(memoryview(data))
    assert [a.tolist() for a in out] == [[1, 2, 3], 2.5, True]


def test_empty_containers() -> None:
    assert wire.decode(wire.encode([])) == []
    assert wire.decode(wire.encode({})) == {}


@pytest.mark.parametrize(
    "value",
    [
        np.array(["a", "b"]),
        np.array([b"x"]),
        np.array([object()], dtype=object),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.zeros(2, dtype=[("a", "<f4")]),
        np.zeros(2, dtype=np.longdouble),
        [[1, 2], [3]],
    ],
    ids=["str", "bytes", "object", "datetime", "structured", "longdouble", "ragged"],
)
def test_encode_refuses_non_numeric(value: object) -> None:
    with pytest.raises(WireFormatError):
        wire.encode([value])


@pytest.mark.parametrize("bad", [np.zeros(3), "abc", b"abc", 5, {1: np.zeros(1)}])
def test_encode_refuses_bad_containers(bad: object) -> None:
    with pytest.raises(WireFormatError):
        wire.encode(bad)  # type: ignore[arg-type]
