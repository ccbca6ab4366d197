"""Strict JSON parsing shared by the servers and the artifact checks: UTF-8, finite numbers
only (``NaN``/``Infinity`` are not JSON), bounded nesting (deep nesting exhausts the recursion
of every later consumer, not just the parser)."""

from __future__ import annotations

import codecs
import itertools
import json
import re
from typing import Any

import numpy as np

__all__ = [
    "CHUNK_BYTES",
    "MAX_JSON_DEPTH",
    "json_depth",
    "parse_json_in_slices",
    "parse_strict_json",
]

MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """How deeply ``raw`` nests arrays and objects (brackets inside strings do not count).

    Vectorised (a regex and a cumulative sum), so checking costs far less than parsing.
    """
    if b"[" not in raw and b"{" not in raw:
        return 0
    bare = _STRING.sub(b'""', raw)
    steps = _STEP[np.frombuffer(bare, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def _refuse_constant(name: str) -> Any:
    raise ValueError(
        f"{name} is not a JSON number: send finite numbers only (encode a missing value as null)"
    )


def parse_strict_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The document in ``raw``, or ValueError saying what is wrong with it."""
    if not raw.strip():
        raise ValueError("it is empty")
    depth = json_depth(raw)
    if depth > max_depth:
        raise ValueError(f"it nests arrays/objects {depth} levels deep; the limit is {max_depth}")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8: {exc}") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ValueError("it nests too deeply") from None


# -- large documents: parsed in slices, so a worker thread yields the GIL between them -----------

#: bytes per slice: one ``json.loads`` call holds the GIL this long (a few ms), no longer
CHUNK_BYTES = 1 << 14
_COMMA, _COLON = ord(","), ord(":")
_NUMERIC_KINDS = "biuf"


_BLOCK = 1 << 20
_NON_SPACE = re.compile(rb"\S")


def _string_spans(raw: bytes, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where :data:`_STRING` matches in ``raw``: starts and (exclusive) ends.

    Without a backslash in ``raw`` its strings are the quotes taken in pairs, found without
    a Python object per string (a 10k-task index has 300k strings: the regex's match objects
    cost more than parsing it); with one, escapes decide, and the regex does."""
    if b"\\" in raw:
        spans = np.array([m.span() for m in _STRING.finditer(raw)], dtype=np.int64)
        if not len(spans):
            return spans, spans
        return spans[:, 0], spans[:, 1]
    quotes = np.flatnonzero(arr == ord('"'))
    paired = len(quotes) - len(quotes) % 2  # an unterminated last quote starts no string
    return quotes[0:paired:2], quotes[1:paired:2] + 1


class _Structure:
    """Where a document's top-level separators are, computed block by block (vectorised, and
    in memory proportional to the separators kept rather than to every byte)."""

    def __init__(self, raw: bytes, offset: int) -> None:
        n = len(raw)
        arr = np.frombuffer(raw, dtype=np.uint8)
        marks = None
        if b'"' in raw:
            starts, ends = _string_spans(raw, arr)
            if len(starts):
                marks = np.zeros(n + 1, dtype=np.int8)
                marks[starts] += 1  # starts are distinct, and so are ends
                marks[ends] -= 1
        depth = in_string = 0
        self.max_depth = 0
        self.first_zero: int | None = None  # first byte from ``offset`` on at depth 0
        positions, depths, chars = [], [], []
        for b0 in range(0, n, _BLOCK):
            block = arr[b0 : b0 + _BLOCK]
            steps = _STEP[block]
            inside = None
            if marks is not None:
                m = marks[b0 : b0 + len(block)]
                inside = (in_string + np.cumsum(m, dtype=np.int32)) > 0
                in_string += int(m.sum(dtype=np.int64))
                steps = np.where(inside, 0, steps)
            d = np.cumsum(steps, dtype=np.int32)
            d += depth
            depth = int(d[-1])
            self.max_depth = max(self.max_depth, int(d.max()))
            lo = max(offset - b0, 0)
            if self.first_zero is None and lo < len(block):
                zero = np.flatnonzero(d[lo:] <= 0)
                if len(zero):
                    self.first_zero = b0 + lo + int(zero[0])
            keep = ((block == _COMMA) | (block == _COLON)) & (d <= 2)
            if inside is not None:
                keep &= ~inside
            idx = np.flatnonzero(keep)
            positions.append(idx + b0)
            depths.append(np.clip(d[idx], -1, 2).astype(np.int8))
            chars.append(block[idx])
        self.pos = np.concatenate(positions)
        self.depth = np.concatenate(depths)
        self.char = np.concatenate(chars)

    def separators(self, lo: int, hi: int, level: int, char: int) -> np.ndarray:
        """Positions in ``[lo, hi)`` of ``char`` outside strings at nesting ``level``."""
        i, j = np.searchsorted(self.pos, [lo, hi])
        sel = (self.depth[i:j] == level) & (self.char[i:j] == char)
        return self.pos[i:j][sel]


def _loads(piece: bytes) -> Any:
    return json.loads(piece, parse_constant=_refuse_constant)


def _as_array(items: list[Any]) -> np.ndarray | None:
    try:
        out = np.asarray(items)
    except (ValueError, TypeError):  # ragged
        return None
    return out if out.dtype.kind in _NUMERIC_KINDS and out.ndim >= 1 else None


def _array_in_slices(
    raw: bytes,
    parts: _Structure,
    lo: int,
    hi: int,
    level: int,
    numeric: bool,
) -> Any:
    """The JSON array whose elements lie in ``raw[lo:hi]`` (between its brackets), parsed a
    slice of elements at a time; a numpy array when ``numeric`` and every element is a number
    or a same-shaped numeric array."""
    cuts = parts.separators(lo, hi, level, _COMMA)
    if not len(cuts):
        items = _loads(b"[" + raw[lo:hi] + b"]")
        block = _as_array(items) if numeric and items else None
        return items if block is None else block
    bounds = np.concatenate(([lo - 1], cuts, [hi])).astype(np.int64)
    # the slice ends, all at once: the last separator within CHUNK_BYTES of each start
    reach = np.searchsorted(bounds, bounds + CHUNK_BYTES, side="right") - 1
    pieces: list[Any] = []
    as_arrays = numeric
    start = 0
    while start < len(bounds) - 1:
        # as many elements as fit one slice (at least one)
        end = min(max(int(reach[start]), start + 1), len(bounds) - 1)
        piece = raw[int(bounds[start]) + 1 : int(bounds[end])]
        if not piece.strip():  # "[,1]", "[1,,2]" across a slice edge, "[1,]"
            raise ValueError(f"an empty array element near byte {bounds[start] + 1}")
        items = _loads(b"[" + piece + b"]")
        if as_arrays:
            block = _as_array(items)
            if block is None or (pieces and block.shape[1:] != pieces[0].shape[1:]):
                as_arrays = False
                pieces = [p.tolist() if isinstance(p, np.ndarray) else p for p in pieces]
                pieces.append(items)
            else:
                pieces.append(block)
        else:
            pieces.append(items)
        start = end
    if as_arrays:
        return np.concatenate(pieces)
    out: list[Any] = []
    for p in pieces:
        out.extend(p)
    return out


def parse_json_in_slices(
    raw: bytes, *, arrays: tuple[str, ...] = (), max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """What :func:`parse_strict_json` returns, parsed so that no single call holds the GIL for
    more than a slice of :data:`CHUNK_BYTES` (run it in a worker thread: the event loop gets
    the GIL between slices). Top-level members named in ``arrays`` that hold numbers come back
    as numpy arrays (converted slice by slice, never as one huge list)."""
    if len(raw) <= CHUNK_BYTES:
        doc = parse_strict_json(raw, max_depth=max_depth)
        if isinstance(doc, dict):
            for key in arrays:
                if isinstance(doc.get(key), list) and doc[key]:
                    block = _as_array(doc[key])
                    if block is not None:
                        doc[key] = block
        return doc
    start = _NON_SPACE.search(raw)
    if start is None:
        raise ValueError("it is empty")
    if not raw.isascii():
        try:
            codecs.getincrementaldecoder("utf-8")().decode(raw, final=True)
        except UnicodeDecodeError as exc:
            raise ValueError(f"it is not UTF-8: {exc}") from None
    offset = start.start()
    end = len(raw)  # one past the document's last byte
    while raw[end - 1 : end].isspace():
        end -= 1
    first = raw[offset : offset + 1]
    if first not in (b"[", b"{") or raw[end - 1 : end] != (b"]" if first == b"[" else b"}"):
        return parse_strict_json(raw, max_depth=max_depth)  # a scalar (or garbage): small work
    parts = _Structure(raw, offset)
    if parts.max_depth > max_depth:
        raise ValueError(
            f"it nests arrays/objects {parts.max_depth} levels deep; the limit is {max_depth}"
        )
    if parts.first_zero != end - 1:  # the document must close exactly at its last byte
        near = parts.first_zero if parts.first_zero is not None else end - 1
        raise ValueError(f"extra data or unbalanced brackets near byte {near}")
    if first == b"[":
        return _array_in_slices(raw, parts, offset + 1, end - 1, 1, False)
    out: dict[str, Any] = {}
    if not raw[offset + 1 : end - 1].strip():
        return out
    cuts = parts.separators(offset + 1, end - 1, 1, _COMMA).tolist()
    bounds = [offset, *cuts, end - 1]
    for a, b in itertools.pairwise(bounds):
        colons = parts.separators(a + 1, b, 1, _COLON)
        if not len(colons):
            raise ValueError(f"a member without ':' near byte {a + 1}")
        key = _loads(raw[a + 1 : int(colons[0])])
        if not isinstance(key, str):
            raise ValueError(f"an object key must be a string near byte {a + 1}")
        value = raw[int(colons[0]) + 1 : b]
        stripped = value.strip()
        if stripped[:1] == b"[" and stripped[-1:] == b"]" and len(stripped) > CHUNK_BYTES:
            v_lo = int(colons[0]) + 1 + value.index(b"[")
            v_hi = int(colons[0]) + 1 + value.rindex(b"]")
            out[key] = _array_in_slices(raw, parts, v_lo + 1, v_hi, 2, key in arrays)
        else:
            out[key] = _loads(value)
            if key in arrays and isinstance(out[key], list) and out[key]:
                block = _as_array(out[key])
                out[key] = out[key] if block is None else block
    return out
