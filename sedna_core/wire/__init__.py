"""Tensors on the wire: lists or dicts of numpy arrays to bytes and back, never pickles.

A message is a 12-byte binary prefix (magic ``SDNT``, version, kind, header length), a JSON
header describing each tensor (little-endian numpy dtype descriptor, shape, byte offset and
length) and the raw little-endian buffers, each aligned to 64 bytes. Decoding returns
zero-copy views. The chunked form splits tensors into bounded frames that each describe
themselves (tensor key, dtype, full shape, element offset and count), so a receiver can
process pieces as they arrive. Anything malformed raises
:class:`~sedna_core.errors.WireFormatError`.
See ``docs/runtime.md`` for the byte layout.
"""

from __future__ import annotations

from sedna_core.wire._chunks import (
    DEFAULT_CHUNK_BYTES,
    Assembler,
    Chunk,
    ChunkReader,
    SharedChunks,
    decode_chunk,
    encode_chunks,
)
from sedna_core.wire._header import MAX_HEADER_BYTES, MAX_NDIM, MAX_TENSOR_BYTES, SUPPORTED_DTYPES
from sedna_core.wire._message import decode, encode

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_CHUNK_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_NDIM",
    "MAX_TENSOR_BYTES",
    "SUPPORTED_DTYPES",
    "Assembler",
    "Chunk",
    "ChunkReader",
    "SharedChunks",
    "decode",
    "decode_chunk",
    "encode",
    "encode_chunks",
]

CONTENT_TYPE = "application/x-sedna-tensors"
