"""Durable, atomic file writes: temp file in the same directory, fsync, os.replace."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

COPY_BLOCK = 1 << 20


def fsync_dir(directory: Path) -> None:
    """Persist a directory entry change (a rename or a new file) on POSIX."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def temp_file(directory: Path, prefix: str = ".tmp-") -> Iterator[tuple[BinaryIO, Path]]:
    """An open temp file in ``directory``, removed on error unless it was renamed away."""
    fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, path
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    with temp_file(path.parent) as (fh, tmp):
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(tmp, path)
    fsync_dir(path.parent)


def copy_hashing(src: BinaryIO, dst: BinaryIO) -> tuple[str, int]:
    """Stream ``src`` into ``dst`` in blocks; return its sha256 hex digest and size."""
    digest = hashlib.sha256()
    size = 0
    while block := src.read(COPY_BLOCK):
        digest.update(block)
        dst.write(block)
        size += len(block)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(COPY_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
