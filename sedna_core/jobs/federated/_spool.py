"""Receive one client update frame by frame: check each chunk, then spool it to a file.

Nothing reaches the aggregate until the whole update has arrived and every chunk passed the
checks (right tensor, dtype, shape and position; finite values). A bad chunk or a client that
vanishes mid-update just deletes its spool file: exclusion is exact and costs nothing, and the
aggregator never has to subtract a partial update. Spooled bytes live in the page cache, not in
the server's heap, so memory does not grow with the number of clients; the aggregator reads the
complete spools back block by block when the round closes (see
:class:`~sedna_core.algorithms.aggregation.StreamingAggregation`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import TensorSpec, all_finite
from sedna_core.errors import InvalidUpdateError, WireFormatError
from sedna_core.jobs.federated._protocol import check_tensor
from sedna_core.wire import decode_chunk

__all__ = ["SpoolDir", "SpoolUpdate", "UpdateReceiver"]


class SpoolDir:
    """A private directory for one server's spool files (removed on close).

    Files are recycled: rewriting pages a file already has in the page cache is a plain copy,
    while a new file first has to get fresh pages (several times slower). A released file's
    old bytes are never read: a reader only ever sees an update that overwrote all of them.
    """

    def __init__(self, parent: str | None, *, keep: int = 64) -> None:
        if parent:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="sedna-fl-spool-", dir=parent))
        self._n = 0
        self._free: list[Path] = []
        self._keep = keep

    def new_file(self, client_id: str = "") -> Path:
        if self._free:
            return self._free.pop()
        self._n += 1
        return self.path / f"{self._n:08d}.bin"

    def release(self, path: Path) -> None:
        """``path`` may be reused for another update."""
        if len(self._free) < self._keep and path.parent == self.path:
            self._free.append(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def close(self) -> None:
        import shutil

        self._free.clear()
        shutil.rmtree(self.path, ignore_errors=True)


class SpoolUpdate:
    """A complete, checked update in a spool file: an
    :class:`~sedna_core.algorithms.aggregation.UpdateSource`."""

    def __init__(
        self,
        path: Path,
        specs: Sequence[TensorSpec],
        offsets: Sequence[int],
        num_samples: int,
        release: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = path
        self.specs = list(specs)
        self.offsets = list(offsets)
        self.num_samples = num_samples
        self._release = release
        self._fd: int | None = None

    def read(self, index: int, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        spec = self.specs[index]
        n = stop - start
        if out is None or out.size != n or out.dtype != spec.dtype:
            out = np.empty(n, dtype=spec.dtype)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        view = memoryview(out).cast("B")
        pos = self.offsets[index] + start * spec.dtype.itemsize
        done = 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], pos + done)
            if got <= 0:
                raise OSError(f"spool file {self.path} is shorter than expected")
            done += got
        return out

    def arrays(self) -> list[np.ndarray]:
        """The whole update in memory (for small models and the server's first model)."""
        return [self.read(i, 0, s.size).reshape(s.shape) for i, s in enumerate(self.specs)]

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _release(self.path, self._release)


class UpdateReceiver:
    """Checks and spools one update's frames, which must come in :func:`encode_chunks` order.

    Parameters
    ----------
    path
        The spool file to write.
    specs
        The global model's tensors (what the update must match).
    num_samples
        The update's sample count (already checked).
    release
        Called with ``path`` instead of deleting it when the update is discarded (recycling).
    """

    def __init__(
        self,
        path: Path,
        specs: Sequence[TensorSpec],
        num_samples: int,
        release: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = path
        self.specs = list(specs)
        self.num_samples = num_samples
        self._release = release
        self.offsets: list[int] = []
        pos = 0
        for s in self.specs:
            self.offsets.append(pos)
            pos += s.nbytes
        self.nbytes = pos
        # no O_TRUNC: a recycled file keeps its page-cache pages (see SpoolDir)
        self._fd: int | None = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        self._index = 0
        self._elem = 0

    @property
    def done(self) -> bool:
        return self._index >= len(self.specs)

    def feed(self, frame: Any) -> bool:
        """Check one binary frame and spool its data; True once the update is complete.

        Raises
        ------
        InvalidUpdateError
            The frame is malformed, out of order, does not match the global model, or holds
            NaN or infinite values. The receiver is then unusable: :meth:`discard` it.
        """
        if self.done:
            raise InvalidUpdateError("size", "more frames than the update announced")
        try:
            chunk = decode_chunk(frame)
        except WireFormatError as exc:
            raise InvalidUpdateError("malformed", f"bad weight frame: {exc}") from None
        i = self._index
        spec = self.specs[i]
        if chunk.total != len(self.specs):
            raise InvalidUpdateError(
                "count", f"frame says {chunk.total} tensors, the global model has {len(self.specs)}"
            )
        if chunk.index != i:
            raise InvalidUpdateError(
                "malformed", f"frame for tensor {chunk.index} arrived, tensor {i} was expected"
            )
        name = chunk.key if isinstance(chunk.key, str) else None
        check_tensor(i, TensorSpec(name, chunk.dtype, chunk.shape), spec)
        if chunk.offset != self._elem:
            raise InvalidUpdateError(
                "malformed", f"tensor {i}: frame at element {chunk.offset}, expected {self._elem}"
            )
        data = chunk.data
        if not all_finite(data):
            raise InvalidUpdateError("nonfinite", f"tensor {i} holds NaN or infinite values")
        self._write(memoryview(data).cast("B"), self.offsets[i] + self._elem * spec.dtype.itemsize)
        self._elem += data.size
        if self._elem >= spec.size:
            self._index += 1
            self._elem = 0
        return self.done

    def write_tensor(self, index: int, values: np.ndarray) -> None:
        """Spool a whole tensor that arrived some other way (Sedna's JSON lists), checked."""
        spec = self.specs[index]
        if index != self._index:
            raise InvalidUpdateError("malformed", f"tensor {index} out of order")
        arr = np.ascontiguousarray(values, dtype=spec.dtype)
        if arr.shape != spec.shape:
            raise InvalidUpdateError(
                "shape",
                f"tensor {index}: shape {list(arr.shape)}, the global model has {list(spec.shape)}",
            )
        if not all_finite(arr):
            raise InvalidUpdateError("nonfinite", f"tensor {index} holds NaN or infinite values")
        self._write(memoryview(arr.reshape(-1)).cast("B"), self.offsets[index])
        self._index += 1
        self._elem = 0

    def finish(self) -> SpoolUpdate:
        """The complete update as a readable source (the receiver is spent)."""
        if not self.done:
            raise InvalidUpdateError("size", "the update is incomplete")
        self._close()
        return SpoolUpdate(self.path, self.specs, self.offsets, self.num_samples, self._release)

    def discard(self) -> None:
        self._close()
        _release(self.path, self._release)

    def _write(self, view: memoryview, pos: int) -> None:
        assert self._fd is not None
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], pos + done)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _release(path: Path, release: Callable[[Path], None] | None) -> None:
    if release is not None:
        release(path)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
