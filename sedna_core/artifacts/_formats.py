"""Which artifact formats are accepted, and the parsers that verify them without running code.

The knowledge base (and anything else that takes files from the network) stores a file only
when its bytes *parse* as an accepted format with a parser that cannot execute code: a name,
an extension or magic bytes alone never count. Everything else, pickles above all (and joblib,
``torch.save`` checkpoints, object arrays, HDF5 with Lambda layers...), is refused with the
list of accepted formats.

==============  =========================================================================
format          verified by
==============  =========================================================================
safetensors     its 8-byte header length, JSON header (dtypes, shapes, offsets that tile
                the data exactly), nothing after the data
keras           Keras 3 zip: only ``config.json``, ``metadata.json``, ``model.weights.h5``
                / ``.npz`` and ``assets/``; both JSON files parse; no ``__lambda__`` (code)
                layers; the weights parse (HDF5 through h5py when installed, npz as below)
json            strict JSON (XGBoost's JSON models included): UTF-8, finite numbers,
                bounded nesting
ubj             UBJSON (XGBoost's binary models): parsed completely, an object at the root
skops           skops zip: ``skops.io.get_untrusted_types`` parses its schema without
                building objects; every type must be trusted by skops or be ``sklearn.*``
onnx            protobuf wire format: ``ModelProto`` with ``ir_version`` and a ``graph``
                that is itself a well-formed message
npy             numpy's header parser; no object (pickled) dtype; the data size matches the
                shape exactly
npz             a zip of ``.npy`` members, each checked as above (headers only: no inflating)
csv, txt        UTF-8 without NUL bytes, not a (protocol-0) pickle program; csv parses
png, jpeg,      chunk/segment structure walked to the end marker (PNG CRCs checked), and
gif, bmp, webp  nothing after it
==============  =========================================================================
"""

from __future__ import annotations

import csv
import io
import json
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from sedna_core._strict_json import parse_strict_json
from sedna_core.errors import UnsafeArtifactError

__all__ = ["ACCEPTED_FORMATS", "GENERIC_FORMATS", "accepted_text", "canonical_format", "verify"]

# name -> aliases (file extensions and spellings clients use)
_ALIASES: dict[str, tuple[str, ...]] = {
    "safetensors": ("safetensors", "st"),
    "keras": ("keras",),
    "json": ("json", "xgb", "xgboost"),
    "ubj": ("ubj", "ubjson"),
    "skops": ("skops",),
    "onnx": ("onnx",),
    "npy": ("npy",),
    "npz": ("npz",),
    "csv": ("csv",),
    "txt": ("txt", "text", "md", "yaml", "yml", "log"),
    "png": ("png",),
    "jpeg": ("jpeg", "jpg"),
    "gif": ("gif",),
    "bmp": ("bmp",),
    "webp": ("webp",),
}
ACCEPTED_FORMATS: tuple[str, ...] = tuple(_ALIASES)
_BY_ALIAS = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
#: declared formats that say nothing about the content: the content is identified by parsing
GENERIC_FORMATS = frozenset({"", "bin", "dat", "data", "model", "sample", "file", "blob"})
_PICKLE_NAMES = frozenset(
    {"pkl", "pickle", "joblib", "pck", "pcl", "pt", "pth", "ckpt", "sav", "dill", "cloudpickle"}
)
_MAX_MEMBERS = 10_000
_MAX_SIDE_JSON = 64 << 20  # a Keras config or a skops schema


def accepted_text() -> str:
    """The accepted formats, for error messages."""
    return ", ".join(ACCEPTED_FORMATS)


def canonical_format(declared: str) -> str | None:
    """The accepted format a declared format or extension names, else None."""
    return _BY_ALIAS.get(declared.lower().lstrip("."))


def _refuse(message: str) -> UnsafeArtifactError:
    return UnsafeArtifactError(
        f"{message}; accepted formats: {accepted_text()} (see docs/knowledge-base.md)",
        ACCEPTED_FORMATS,
    )


def verify(data: bytes, declared: str = "", filename: str = "") -> str:
    """Check that ``data`` parses as the format declared (or, for a generic declaration such as
    ``bin``, as one of the binary formats); return the accepted format it was verified as.

    Raises :class:`~sedna_core.errors.UnsafeArtifactError` saying why it was refused.
    """
    if not data:
        raise _refuse("the file is empty")
    declared = (declared or "").lower().lstrip(".")
    if not declared and "." in filename:
        declared = filename.rsplit(".", 1)[-1].lower()
    if declared in _PICKLE_NAMES or filename.lower().endswith(
        tuple(f".{n}" for n in _PICKLE_NAMES)
    ):
        raise _refuse(
            f"pickled files are refused by design ({filename or declared}): loading a pickle runs "
            "code; save models as safetensors, .keras, XGBoost JSON/UBJ or skops"
        )
    fmt = canonical_format(declared)
    if fmt is not None:
        try:
            _VERIFIERS[fmt](data)
        except UnsafeArtifactError:
            raise
        except Exception as exc:  # each parser's own error: the content is not what it claims
            if _pickle_program(data):
                raise _refuse(
                    f"the content is a pickle, not {fmt}: pickled files are refused by design"
                ) from None
            raise _refuse(f"the content is not a valid {fmt} file ({exc})") from None
    elif declared not in GENERIC_FORMATS:
        raise _refuse(f"format {declared!r} is not accepted")
    else:
        fmt = _sniff(data)
    # pickle.load stops at STOP and ignores what follows: a file that *starts* with a pickle
    # program is dangerous to anyone who unpickles it, whatever else it also parses as
    if _pickle_program(data):
        raise _refuse(f"the file is also a pickle program (a {fmt}/pickle polyglot)")
    return fmt


def _sniff(data: bytes) -> str:
    for candidate in _SNIFF_ORDER:
        try:
            _VERIFIERS[candidate](data)
        except Exception:
            continue
        return candidate
    if _pickle_program(data):
        raise _refuse("the content is a pickle: pickled files are refused by design")
    raise _refuse("the content parses as none of the accepted binary formats")


# -- text ------------------------------------------------------------------------------------


def _pickle_program(data: bytes, max_ops: int = 100_000) -> bool:
    """Whether ``data`` starts with a complete pickle program (any protocol, PROTO or not)."""
    try:
        for count, (op, _arg, _pos) in enumerate(pickletools.genops(io.BytesIO(data))):
            if op.name == "STOP":
                return count > 0
            if count >= max_ops:
                return True  # that many valid opcodes in a row is no text anyone wrote
    except Exception:
        return False
    return False


def _text(data: bytes) -> str:
    if b"\x00" in data:
        raise ValueError("it contains NUL bytes (binary data)")
    text = data.decode("utf-8-sig")  # UnicodeDecodeError is a ValueError
    if _pickle_program(data):
        raise _refuse("the text is a pickle program (protocol 0/1 pickles are text)")
    return text


def _txt(data: bytes) -> None:
    _text(data)


def _csv(data: bytes) -> None:
    rows = 0
    for _row in csv.reader(io.StringIO(_text(data), newline="")):
        rows += 1
    if not rows:
        raise ValueError("no rows")


def _json(data: bytes) -> None:
    parse_strict_json(data)


# -- tensors ---------------------------------------------------------------------------------

_ST_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def _safetensors(data: bytes) -> None:
    if len(data) < 8:
        raise ValueError("shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or 8 + n > len(data) or n > 100 << 20:
        raise ValueError(f"header length {n} does not fit the {len(data)}-byte file")
    header = parse_strict_json(data[8 : 8 + n].rstrip(b" "))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    body = len(data) - 8 - n
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise ValueError("__metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"tensor {name!r}: needs exactly dtype, shape and data_offsets")
        size = _ST_DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
        shape, offsets = entry["shape"], entry["data_offsets"]
        if size is None:
            raise ValueError(f"tensor {name!r}: unknown dtype {entry['dtype']!r}")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError(f"tensor {name!r}: bad shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= body
        ):
            raise ValueError(f"tensor {name!r}: bad data_offsets {offsets!r}")
        if offsets[1] - offsets[0] != size * int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"tensor {name!r}: data_offsets do not match its shape and dtype")
        spans.append(tuple(offsets))
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise ValueError("the tensors' data do not tile the data section")
        end = stop
    if end != body:
        raise ValueError(f"{body - end} bytes after the last tensor")


def _npy_member(fp: Any, size: int) -> None:
    """Check an npy stream of ``size`` bytes from its header (the data is never read)."""
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    if version == (1, 0):
        shape, _fortran, dtype = fmt.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _fortran, dtype = fmt.read_array_header_2_0(fp)
    else:
        raise ValueError(f"npy version {version} is not accepted (1.0 and 2.0 are)")
    if dtype.hasobject:
        raise _refuse("the array holds Python objects (stored as pickles)")
    expected = fp.tell() + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if expected != size:
        raise ValueError(f"{size} bytes where the header announces {expected}")


def _npy(data: bytes) -> None:
    _npy_member(io.BytesIO(data), len(data))


def _zip(data: bytes) -> zipfile.ZipFile:
    if not data.startswith(b"PK\x03\x04"):
        raise ValueError("not a zip archive")
    zf = zipfile.ZipFile(io.BytesIO(data))
    if len(zf.infolist()) > _MAX_MEMBERS:
        raise ValueError(f"more than {_MAX_MEMBERS} members")
    return zf


def _npz(data: bytes) -> None:
    with _zip(data) as zf:
        members = zf.infolist()
        if not members:
            raise ValueError("no arrays")
        for info in members:
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ValueError(f"member {info.filename!r} is not an .npy array")
            with zf.open(info) as fh:
                _npy_member(fh, info.file_size)


# -- models ----------------------------------------------------------------------------------


def _walk(doc: Any) -> Any:
    yield doc  # depth is bounded: parse_strict_json refused deep documents
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _walk(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _walk(v)


def _side_json(zf: zipfile.ZipFile, name: str) -> Any:
    info = zf.getinfo(name)
    if info.file_size > _MAX_SIDE_JSON:
        raise ValueError(f"{name} is {info.file_size} bytes")
    return parse_strict_json(zf.read(info))


def _keras(data: bytes) -> None:
    with _zip(data) as zf:
        names = set(zf.namelist())
        allowed = {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}
        extra = sorted(n for n in names - allowed if not n.startswith("assets/"))
        if extra:
            raise ValueError(f"unexpected members {extra[:5]}")
        if not {"config.json", "metadata.json"} <= names:
            raise ValueError("config.json and metadata.json are required")
        config = _side_json(zf, "config.json")
        if not isinstance(config, dict) or not isinstance(_side_json(zf, "metadata.json"), dict):
            raise ValueError("config.json and metadata.json must be JSON objects")
        for node in _walk(config):
            if isinstance(node, dict) and node.get("class_name") == "__lambda__":
                raise _refuse("the model has a Lambda layer holding Python code")
        if "model.weights.npz" in names:
            _npz(zf.read("model.weights.npz"))
        if "model.weights.h5" in names:
            _hdf5(zf.read("model.weights.h5"))


def _hdf5(data: bytes) -> None:
    if not data.startswith(b"\x89HDF\r\n\x1a\n"):
        raise ValueError("the weights are not HDF5")
    try:
        import h5py
    except ImportError:  # the signature is all we can check; HDF5 itself holds no code
        return
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visit(lambda name: None)  # walks every group and dataset header


def _skops(data: bytes) -> None:
    with _zip(data) as zf:
        if "schema.json" not in zf.namelist():
            raise ValueError("no schema.json")
    try:
        import skops.io as sio
    except ImportError:
        raise _refuse("skops is not installed here, so .skops files cannot be verified") from None
    untrusted = [t for t in sio.get_untrusted_types(data=data) if not t.startswith("sklearn.")]
    if untrusted:
        raise _refuse(
            f"the skops file holds types that are not trusted: {', '.join(untrusted[:10])}"
        )


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _protobuf_fields(data: bytes) -> dict[int, list[Any]]:
    """Every field of a protobuf message: ``{number: [value or bytes, ...]}``."""
    fields: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(data, pos)
            value, pos = data[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire} is not used by ONNX")
        if pos > len(data):
            raise ValueError("truncated field")
        fields.setdefault(number, []).append((wire, value))
    return fields


def _onnx(data: bytes) -> None:
    model = _protobuf_fields(data)
    if not any(w == 0 for w, _ in model.get(1, [])):
        raise ValueError("no ir_version (ModelProto field 1)")
    graphs = [v for w, v in model.get(7, []) if w == 2]
    if not graphs:
        raise ValueError("no graph (ModelProto field 7)")
    for graph in graphs:
        _protobuf_fields(graph)


def _ubj(data: bytes) -> None:
    """A complete UBJSON document (XGBoost's format), iteratively, with an object at its root."""
    pos = 0
    n = len(data)

    def take(k: int) -> bytes:
        nonlocal pos
        if pos + k > n:
            raise ValueError("truncated")
        out = data[pos : pos + k]
        pos += k
        return out

    ints = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}
    sizes = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8, b"d": 4, b"D": 8, b"C": 1}

    def length() -> int:
        marker = take(1)
        if marker not in ints:
            raise ValueError(f"bad length marker {marker!r}")
        (value,) = struct.unpack(ints[marker], take(sizes[marker]))
        if value < 0:
            raise ValueError("negative length")
        return int(value)

    def scalar(marker: bytes) -> None:
        if marker in (b"Z", b"N", b"T", b"F"):
            return
        if marker in sizes:
            take(sizes[marker])
        elif marker in (b"S", b"H"):
            take(length())
        else:
            raise ValueError(f"unknown type marker {marker!r}")

    # each stack entry: [kind "{"/"[", remaining count or None, element type or None]
    first = take(1)
    if first != b"{":
        raise ValueError("the root is not an object")
    stack: list[list[Any]] = []

    def open_container(kind: bytes) -> None:
        typ = count = None
        if pos < n and data[pos : pos + 1] == b"$":
            take(1)
            typ = take(1)
            if data[pos : pos + 1] != b"#":
                raise ValueError("a typed container needs a count")
        if pos < n and data[pos : pos + 1] == b"#":
            take(1)
            count = length()
        if kind == b"[" and typ in sizes and count is not None:  # a packed numeric array
            take(sizes[typ] * count)
            return
        stack.append([kind, count, typ])
        if len(stack) > 256:
            raise ValueError("nested too deeply")

    open_container(b"{")
    while stack:
        kind, count, typ = stack[-1]
        if count is None:
            if data[pos : pos + 1] in (b"}", b"]"):
                if take(1) != (b"}" if kind == b"{" else b"]"):
                    raise ValueError("mismatched container end")
                stack.pop()
                continue
        elif count == 0:
            stack.pop()
            continue
        else:
            stack[-1][1] = count - 1
        if kind == b"{":
            take(length())  # the key
        marker = typ if typ is not None else take(1)
        if marker in (b"{", b"["):
            open_container(marker)
        else:
            scalar(marker)
    if pos != n:
        raise ValueError(f"{n - pos} bytes after the document")


# -- images ----------------------------------------------------------------------------------


def _png(data: bytes) -> None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("no PNG signature")
    pos, first = 8, True
    while True:
        if pos + 12 > len(data):
            raise ValueError("truncated chunk")
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + size
        if end > len(data):
            raise ValueError(f"chunk {kind!r} runs past the end")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise ValueError(f"chunk {kind!r} fails its CRC")
        if first and kind != b"IHDR":
            raise ValueError("the first chunk is not IHDR")
        first = False
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes after IEND")


def _jpeg(data: bytes) -> None:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("no JPEG start-of-image marker")
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # end of image
            if data[pos:].strip(b"\x00"):
                raise ValueError(f"{n - pos} bytes after the end-of-image marker")
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            raise ValueError("truncated segment")
        (size,) = struct.unpack(">H", data[pos : pos + 2])
        if size < 2 or pos + size > n:
            raise ValueError("bad segment length")
        pos += size
        if marker == 0xDA:  # entropy-coded data follows: up to the next real marker
            while True:
                nxt = data.find(b"\xff", pos)
                if nxt < 0 or nxt + 1 >= n:
                    raise ValueError("no end-of-image marker")
                follower = data[nxt + 1]
                if follower == 0x00 or 0xD0 <= follower <= 0xD7 or follower == 0xFF:
                    pos = nxt + (2 if follower != 0xFF else 1)
                    continue
                pos = nxt
                break
    raise ValueError("no end-of-image marker")


def _gif(data: bytes) -> None:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("no GIF header")
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)

    def sub_blocks(p: int) -> int:
        while True:
            if p >= len(data):
                raise ValueError("truncated data sub-blocks")
            size = data[p]
            p += 1 + size
            if size == 0:
                return p

    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            if pos + 1 != len(data):
                raise ValueError("bytes after the GIF trailer")
            return
        if block == 0x21:
            pos = sub_blocks(pos + 2)
        elif block == 0x2C:
            if pos + 10 > len(data):
                raise ValueError("truncated image descriptor")
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            pos = sub_blocks(pos + 1)  # after the LZW minimum code size
        else:
            raise ValueError(f"unknown GIF block 0x{block:02x}")
    raise ValueError("no GIF trailer")


def _bmp(data: bytes) -> None:
    if len(data) < 26 or not data.startswith(b"BM"):
        raise ValueError("no BMP header")
    size, _r, offset, dib = struct.unpack("<IIII", data[2:18])
    if size != len(data):
        raise ValueError(f"the header says {size} bytes, the file has {len(data)}")
    if dib not in (12, 40, 52, 56, 64, 108, 124) or not 14 + dib <= offset <= len(data):
        raise ValueError("inconsistent BMP headers")


def _webp(data: bytes) -> None:
    if len(data) < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("no RIFF/WEBP header")
    (size,) = struct.unpack("<I", data[4:8])
    if size + 8 != len(data):
        raise ValueError("the RIFF size does not match the file")
    pos, first = 12, True
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated chunk")
        kind = data[pos : pos + 4]
        (chunk,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if first and kind not in (b"VP8 ", b"VP8L", b"VP8X"):
            raise ValueError("the first chunk is not VP8/VP8L/VP8X")
        first = False
        pos += 8 + chunk + (chunk & 1)
    if pos != len(data):
        raise ValueError("chunks run past the end")


_VERIFIERS: dict[str, Callable[[bytes], None]] = {
    "safetensors": _safetensors,
    "keras": _keras,
    "json": _json,
    "ubj": _ubj,
    "skops": _skops,
    "onnx": _onnx,
    "npy": _npy,
    "npz": _npz,
    "csv": _csv,
    "txt": _txt,
    "png": _png,
    "jpeg": _jpeg,
    "gif": _gif,
    "bmp": _bmp,
    "webp": _webp,
}
# what a generic declaration ("bin", no extension) may turn out to be: formats with structure
# (never csv/txt: almost any bytes are text), cheapest checks first
_SNIFF_ORDER = (
    "npy", "png", "jpeg", "gif", "bmp", "webp", "npz", "keras", "skops", "json", "ubj",
    "safetensors", "onnx",
)  # fmt: skip
assert set(_VERIFIERS) == set(ACCEPTED_FORMATS)
_ = json  # XGBoost JSON models are plain JSON documents
