"""Receive one client update frame by frame: check each chunk, then spool it to a file.

Nothing reaches the aggregate until the whole update has arrived and every chunk passed the
checks (right tensor, a dtype convertible to the model's, shape and position; finite values;
its distance from the global model within the server's bound). A bad chunk or a client that
vanishes mid-update just deletes its spool file: exclusion is exact and costs nothing, and the
aggregator never has to subtract a partial update. Spooled bytes live in the page cache, not in
the server's heap, so memory does not grow with the number of clients; the aggregator reads the
complete spools back block by block when the round closes (see
:class:`~sedna_core.algorithms.aggregation.StreamingAggregation`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import TensorSpec, all_finite
from sedna_core.errors import InvalidUpdateError, WireFormatError
from sedna_core.jobs.federated._protocol import check_tensor, compatible_dtype
from sedna_core.log import get_logger
from sedna_core.wire import decode_chunk

__all__ = [
    "SpoolDir",
    "SpoolUpdate",
    "UpdateBound",
    "UpdateReceiver",
    "default_spool_parent",
    "filesystem_of",
    "process_alive",
    "sweep_spools",
]

log = get_logger(__name__)

PREFIX = "sedna-fl-spool-"
#: filesystems that live in memory: a spool there counts as the server's memory
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})


def filesystem_of(path: str | os.PathLike[str]) -> str:
    """The type of the filesystem holding ``path`` (``"ext4"``, ``"tmpfs"``...; ``"unknown"``
    where ``/proc/mounts`` cannot tell)."""
    target = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def default_spool_parent() -> Path:
    """Where spools go by default: the first writable, disk-backed one of ``/var/tmp``, the
    system temporary directory and the user's cache directory (``/tmp`` is a RAM filesystem on
    many systems, and a spool there is held in memory)."""
    candidates = [Path("/var/tmp"), Path(tempfile.gettempdir())]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(Path(cache) / "sedna")
    for parent in candidates:
        if filesystem_of(parent) in RAM_FILESYSTEMS:
            continue
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(parent, os.W_OK | os.X_OK):
            return parent
    return Path(tempfile.gettempdir())


def sweep_spools(parent: str | os.PathLike[str]) -> list[Path]:
    """Remove the spool directories a dead server left in ``parent``; returns them.

    A spool's name carries its server's process id; one whose process is gone (a ``kill -9``,
    a crash) is removed with its files. Spools of running servers are left alone, and so is
    an old-style spool without a process id unless it is empty.
    """
    removed = []
    try:
        entries = list(Path(parent).glob(PREFIX + "*"))
    except OSError:
        return removed
    for entry in entries:
        if not entry.is_dir() or entry.is_symlink():
            continue
        pid = _owner(entry.name)
        if pid is None:
            with contextlib.suppress(OSError):
                entry.rmdir()  # only succeeds when empty
                removed.append(entry)
            continue
        if pid == os.getpid() or process_alive(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def _owner(name: str) -> int | None:
    head = name[len(PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class SpoolDir:
    """A private directory for one server's spool files (removed on close).

    Files are recycled: rewriting pages a file already has in the page cache is a plain copy,
    while a new file first has to get fresh pages (several times slower). A released file's
    old bytes are never read: a reader only ever sees an update that overwrote all of them.

    ``parent`` None means :func:`default_spool_parent` (disk-backed). Spools that dead
    servers left in the parent are swept first, and the location is logged (with a warning
    when it is a RAM filesystem, whose bytes count as the server's memory).
    """

    def __init__(self, parent: str | None, *, keep: int = 64) -> None:
        base = Path(parent) if parent else default_spool_parent()
        base.mkdir(parents=True, exist_ok=True)
        swept = sweep_spools(base)
        if swept:
            log.info(
                "removed spool directories left by stopped servers",
                count=len(swept),
                parent=str(base),
            )
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
        self.filesystem = filesystem_of(self.path)
        self.in_memory = self.filesystem in RAM_FILESYSTEMS
        if self.in_memory:
            log.warning(
                "the update spool is on a RAM filesystem: its bytes count as server memory; "
                "set spool_dir (AGG_SPOOL_DIR) to a disk-backed directory",
                spool=str(self.path),
                filesystem=self.filesystem,
            )
        else:
            log.info("update spool", spool=str(self.path), filesystem=self.filesystem)
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


class UpdateBound:
    """How far one update may lie from the global model, checked before it is folded in.

    An update ``u`` is refused when ``||u - g||_2 > ratio * ||g||_2 + absolute`` (``g`` the
    global model, all tensors together): a client sending values near the float maximum, or
    anything else absurdly far from the model, is dropped with the reason ``magnitude``.
    """

    def __init__(self, reference: Sequence[np.ndarray], ratio: float, absolute: float) -> None:
        self.reference = [np.ascontiguousarray(r).reshape(-1) for r in reference]
        self.norm = math.sqrt(sum(_sq_norm(r) for r in self.reference))
        self.ratio = ratio
        self.absolute = absolute
        self.limit = ratio * self.norm + absolute
        self.limit_sq = self.limit * self.limit

    def check(self, sq_distance: float) -> None:
        if not sq_distance <= self.limit_sq:  # NaN-safe: NaN fails too
            raise InvalidUpdateError(
                "magnitude",
                f"the update lies {math.sqrt(sq_distance):.3g} (L2) from the global model, "
                f"above the server's bound {self.limit:.3g} = {self.ratio:g} x the model's norm "
                f"{self.norm:.3g} + {self.absolute:g} (max_update_ratio / max_update_norm, "
                "AGG_MAX_UPDATE_RATIO / AGG_MAX_UPDATE_NORM)",
            )


#: elements per block of the distance checks: their temporaries stay this small (a check on
#: a whole 4 MiB frame would allocate a frame-sized difference per frame, per client)
DISTANCE_BLOCK = 1 << 15


def _sq_norm(values: np.ndarray) -> float:
    return _sq_distance(values, np.zeros(1, dtype=values.dtype))


def _sq_distance(values: np.ndarray, reference: np.ndarray) -> float:
    """``||values - reference||^2`` (``reference`` of the same size, or one element), block by
    block of :data:`DISTANCE_BLOCK` elements so that no temporary grows with the input."""
    total = 0.0
    one = reference.size == 1
    for start in range(0, values.size, DISTANCE_BLOCK):
        stop = start + DISTANCE_BLOCK
        total += _sq_distance_block(values[start:stop], reference if one else reference[start:stop])
    return total


def _sq_distance_block(values: np.ndarray, reference: np.ndarray) -> float:
    """One block's ``||values - reference||^2``, never overflowing: one fast pass in the
    values' own float dtype (BLAS), redone in float64 only when that pass overflowed."""
    if values.dtype.kind == "f" and values.dtype.itemsize >= 4:
        with np.errstate(over="ignore", invalid="ignore"):
            diff = np.subtract(values, reference, dtype=values.dtype)
            fast = float(np.dot(diff, diff))
        if math.isfinite(fast):
            return fast
    wide = np.complex128 if values.dtype.kind == "c" else np.float64
    diff = np.subtract(values, reference, dtype=wide)
    return float(np.vdot(diff, diff).real)


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
    bound
        The global model and how far from it the update may lie (None: no bound, as for the
        first model a client provides).
    """

    def __init__(
        self,
        path: Path,
        specs: Sequence[TensorSpec],
        num_samples: int,
        release: Callable[[Path], None] | None = None,
        bound: UpdateBound | None = None,
    ) -> None:
        self.path = path
        self.specs = list(specs)
        self.num_samples = num_samples
        self._release = release
        self.bound = bound
        #: True when the frames are a transform chain's wire format, decoded once complete
        self.encoded = False
        self._sq_distance = 0.0
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
            The frame is malformed, out of order, does not match the global model, holds NaN
            or infinite values (also after conversion to the model's dtype), or takes the
            update beyond the bound. The receiver is then unusable: :meth:`discard` it.
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
        data = self._checked(i, chunk.data)
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
        arr = np.ascontiguousarray(values)
        if not compatible_dtype(arr.dtype, spec.dtype):
            raise InvalidUpdateError(
                "dtype", f"tensor {index}: {arr.dtype} values cannot be converted to {spec.dtype}"
            )
        if arr.shape != spec.shape:
            raise InvalidUpdateError(
                "shape",
                f"tensor {index}: shape {list(arr.shape)}, the global model has {list(spec.shape)}",
            )
        arr = self._checked(index, arr.reshape(-1))
        self._write(memoryview(arr).cast("B"), self.offsets[index])
        self._index += 1
        self._elem = 0

    def _checked(self, index: int, data: np.ndarray) -> np.ndarray:
        """``data`` (the next elements of tensor ``index``) finite, in the model's dtype and
        within the bound; raises :class:`InvalidUpdateError` otherwise."""
        spec = self.specs[index]
        if not all_finite(data):
            raise InvalidUpdateError("nonfinite", f"tensor {index} holds NaN or infinite values")
        if data.dtype != spec.dtype:  # a compatible dtype (checked before): convert it
            with np.errstate(over="ignore", invalid="ignore"):
                data = np.ascontiguousarray(data, dtype=spec.dtype)
            if not all_finite(data):
                raise InvalidUpdateError(
                    "range", f"tensor {index} holds values beyond the range of {spec.dtype}"
                )
        if self.bound is not None:
            reference = self.bound.reference[index][self._elem : self._elem + data.size]
            self._sq_distance += _sq_distance(data, reference)
            self.bound.check(self._sq_distance)
        return data

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
