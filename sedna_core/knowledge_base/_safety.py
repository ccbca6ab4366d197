"""What the knowledge base refuses: pickled payloads and unsafe names.

Nothing the service receives is ever unpickled; payloads that *are* pickles (or carry them:
joblib files, numpy object arrays, PyTorch's legacy zip checkpoints) are refused outright, so
no client later loads one from the knowledge base by mistake.
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile

__all__ = ["pickle_reason", "safe_name"]

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck", ".pcl")
_PICKLE_FORMATS = {"pkl", "pickle", "joblib", "pck", "pcl"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(filename: str | None, default: str = "file") -> str:
    """A store-safe artifact name from a client's file name: its last path component, with
    anything outside ``[A-Za-z0-9._-]`` replaced, no leading dots, at most 128 characters."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = _UNSAFE.sub("_", base).lstrip("._-")
    base = base.replace("..", "_")[:128]
    return base or default


def _starts_like_pickle(data: bytes) -> bool:
    """A protocol-2+ pickle header followed by valid pickle opcodes."""
    if len(data) < 2 or data[0] != 0x80 or data[1] not in (2, 3, 4, 5):
        return False
    try:
        ops = pickletools.genops(io.BytesIO(data[:64]))
        for count, _ in enumerate(ops):
            if count >= 2:
                return True
    except Exception:
        return False
    return True


def pickle_reason(data: bytes, filename: str = "", fmt: str = "") -> str | None:
    """Why ``data`` counts as a pickled payload, or None if it does not."""
    lower = filename.lower()
    if lower.endswith(_PICKLE_SUFFIXES) or fmt.lower() in _PICKLE_FORMATS:
        return f"the name or format says pickle ({filename or fmt})"
    if _starts_like_pickle(data):
        return "the content is a Python pickle"
    head = _decompressed_head(data)
    if head is not None and _starts_like_pickle(head):
        return "the content is a compressed pickle (joblib)"
    if data[:6] == b"\x93NUMPY" and _npy_has_objects(data):
        return "the numpy array holds Python objects (stored as pickles)"
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.filename.lower().endswith(_PICKLE_SUFFIXES):
                        return f"the archive contains a pickle ({info.filename})"
                    if info.filename.endswith(".npy"):
                        with zf.open(info) as fh:
                            if _npy_has_objects(fh.read(512)):
                                return f"the archive's {info.filename} holds Python objects"
        except zipfile.BadZipFile:
            return None
    return None


def _decompressed_head(data: bytes) -> bytes | None:
    """The first bytes of a zlib/gzip/bz2/xz stream (joblib's compressors), else None."""
    import bz2
    import lzma
    import zlib

    try:
        if data[:1] == b"\x78":
            return zlib.decompressobj().decompress(data[:4096], 64)
        if data[:2] == b"\x1f\x8b":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:4096], 64)
        if data[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(data[:65536], 64)
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(data[:65536], 64)
        if data[:3] == b"]\x00\x00":
            return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data[:65536], 64)
    except Exception:
        return None
    return None


def _npy_has_objects(head: bytes) -> bool:
    text = head[:512].decode("latin-1")
    match = re.search(r"'descr':\s*'([^']*)'", text) or re.search(r"'descr':\s*\[", text)
    if match is None:
        return False
    return "O" in (match.group(1) if match.groups() else "") or "'O'" in text or "|O" in text
