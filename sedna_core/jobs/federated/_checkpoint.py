"""Per-round checkpoints of the aggregation server in the artifact store.

One artifact version per completed round holds the global model and the aggregator's state as
length-prefixed :func:`~sedna_core.wire.encode_chunks` frames (written and read a chunk at a
time: no second copy of the model in memory); the round number, history and counters are the
version's metadata. Older versions are pruned, keeping the last :data:`KEEP`.
:class:`ServerCheckpoints` holds the server's side: resume at start, a checkpoint after every
round (written in a worker thread while the next round runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sedna_core.artifacts import ArtifactStore
from sedna_core.errors import ArtifactError, JobError, WireFormatError
from sedna_core.wire import Assembler, encode_chunks

__all__ = ["Checkpoint", "CheckpointStore", "ServerCheckpoints"]

#: prefix of the transform chain's entries in a checkpoint's state
_CHAIN = "__transforms__."

FORMAT = "sdnt-frames"
KEEP = 2
_LEN = struct.Struct("<Q")
_CHUNK = 4 << 20
_TEMP_PREFIX = ".ckpt-"


@attrs.frozen
class Checkpoint:
    """What a server needs to resume: the state after ``round`` completed training rounds."""

    round: int
    weights: list[np.ndarray]
    names: list[str] | None
    state: dict[str, np.ndarray]
    metadata: dict[str, Any]


class CheckpointStore:
    """Save and load one job's checkpoints in an :class:`ArtifactStore` at ``root``."""

    def __init__(self, root: str | os.PathLike[str], job_name: str) -> None:
        self.store = ArtifactStore(root)
        safe = re.sub(r"[^A-Za-z0-9._-]", "-", job_name)[:100].strip(".-") or "job"
        self.name = f"fl-checkpoint-{safe}"
        self._lock_fd: int | None = None

    def save(
        self,
        round_number: int,
        weights: Sequence[np.ndarray],
        state: Mapping[str, np.ndarray],
        metadata: Mapping[str, Any],
    ) -> str:
        """Write a new version; returns its version id. Runs in a worker thread."""
        tensors: dict[str, np.ndarray] = {f"w.{i}": w for i, w in enumerate(weights)}
        tensors.update({f"s.{k}": np.asarray(v) for k, v in state.items()})
        # the writer's pid in the name: a start-up sweep removes only dead writers' leftovers
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_TEMP_PREFIX}{os.getpid()}-", suffix=".bin", dir=self.store.root
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                for frame in encode_chunks(tensors, chunk_bytes=_CHUNK):
                    fh.write(_LEN.pack(len(frame)))
                    fh.write(frame)
            info = self.store.put(
                self.name,
                tmp,
                format=FORMAT,
                metadata={**metadata, "round": round_number},
                filename="checkpoint.bin",
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        for old in self.store.versions(self.name)[:-KEEP]:
            with contextlib.suppress(ArtifactError):
                self.store.delete(self.name, old.version)
        return info.version

    def load(self) -> Checkpoint | None:
        """The latest checkpoint, or None when there is none.

        Raises
        ------
        ArtifactError
            The checkpoint is unreadable or corrupt (IntegrityError when its digest is wrong).
        """
        if self.store.latest(self.name) is None:
            return None
        info = self.store.get(self.name)
        assembler = Assembler(max_bytes=1 << 62)
        try:
            with open(info.path, "rb") as fh:
                while True:
                    head = fh.read(_LEN.size)
                    if not head:
                        break
                    (n,) = _LEN.unpack(head)
                    if n > _CHUNK + (1 << 20):
                        raise WireFormatError(f"frame of {n} bytes is larger than any we write")
                    frame = fh.read(n)
                    if len(frame) != n:
                        raise WireFormatError("truncated frame")
                    assembler.feed(frame)
            tensors = assembler.result()
        except (OSError, WireFormatError) as exc:
            raise ArtifactError(f"checkpoint {info.path} is unreadable: {exc}") from exc
        assert isinstance(tensors, dict)
        weights = [tensors[f"w.{i}"] for i in range(sum(k.startswith("w.") for k in tensors))]
        state = {k[2:]: v for k, v in tensors.items() if k.startswith("s.")}
        meta = dict(info.metadata)
        names = meta.get("names")
        return Checkpoint(
            round=int(meta.get("round", 0)),
            weights=weights,
            names=list(names) if isinstance(names, list) else None,
            state=state,
            metadata=meta,
        )

    @property
    def path(self) -> Path:
        return self.store.root

    def sweep_leftovers(self) -> dict[str, int]:
        """Remove what a server killed while writing a checkpoint left behind; returns counts.

        Our own temporary files carry their writer's pid: those of dead processes go. The
        store's half-written uploads and versions are swept too, but only when no other
        server uses this directory (an exclusive lock; servers hold it shared while they run).
        """
        from sedna_core.jobs.federated._spool import process_alive

        counts = {"checkpoint_temporary": 0}
        for tmp in self.store.root.glob(_TEMP_PREFIX + "*.bin"):
            head = tmp.name[len(_TEMP_PREFIX) :].split("-", 1)[0]
            pid = int(head) if head.isdigit() else None
            if pid is not None and (pid == os.getpid() or process_alive(pid)):
                continue
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                counts["checkpoint_temporary"] += 1
        if self._lock(exclusive=True):
            counts.update(self.store.sweep(lambda name, version: True))
        self._lock(exclusive=False)
        return {k: v for k, v in counts.items() if v}

    def _lock(self, *, exclusive: bool) -> bool:
        """Take this directory's server lock (exclusive: only if free); False when not taken."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no sweeping of shared state
            return False
        if self._lock_fd is None:
            self._lock_fd = os.open(self.store.root / ".fl-server.lock", os.O_CREAT | os.O_RDWR)
        try:
            if exclusive:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Release the directory's server lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class ServerCheckpoints:
    """The aggregation server's checkpoint hooks: resume at start, save after each round.

    Part of :class:`~sedna_core.jobs.federated.AggregationServer` (``_server.py``), which
    holds the state these methods use.
    """

    async def _resume(self) -> None:
        if self._ckpt is None:
            return
        swept = await asyncio.to_thread(self._ckpt.sweep_leftovers)
        if swept:
            self.log.info(
                "removed what an interrupted checkpoint left behind",
                path=str(self._ckpt.path),
                **swept,
            )
        if not self.config.resume:
            return
        ckpt = await asyncio.to_thread(self._ckpt.load)
        if ckpt is None:
            return
        saved = ckpt.metadata.get("aggregation")
        if saved and saved != self.aggregator.name:
            raise JobError(
                f"the checkpoint in {self._ckpt.path} was written by a {saved} job, this server "
                f"runs {self.aggregator.name}: use another checkpoint_dir or job name"
            )
        self._set_global(ckpt.weights, ckpt.names)
        # the transform chain's state (privacy spent, clipping norm) shares the file, prefixed
        chain = {k[len(_CHAIN) :]: v for k, v in ckpt.state.items() if k.startswith(_CHAIN)}
        self.aggregator.load_state_dict(
            {k: v for k, v in ckpt.state.items() if not k.startswith(_CHAIN)}
        )
        self.transforms.load_state_dict(chain)
        self._completed = min(ckpt.round, self.config.exit_round)
        history = ckpt.metadata.get("history")
        self.history = list(history) if isinstance(history, list) else []
        self.stats.update({k: int(v) for k, v in ckpt.metadata.get("stats", {}).items()})
        self._m_round.set(self._completed)
        self.log.info("resumed from checkpoint", completed_rounds=self._completed)

    def _checkpoint(self, number: int) -> None:
        if self._ckpt is None or self._global is None:
            return
        meta = {
            "aggregation": self.aggregator.name,
            "params": {
                k: v
                for k, v in self.aggregator.get_params().items()
                if isinstance(v, int | float | str | bool)
            },
            "exit_round": self.config.exit_round,
            "names": [s.name for s in self._specs]
            if self._specs and all(s.name is not None for s in self._specs)
            else None,
            "history": self.history,
            "stats": dict(self.stats),
        }
        weights, state = self._global, dict(self.aggregator.state_dict())
        state.update({_CHAIN + k: v for k, v in self.transforms.state_dict().items()})
        ckpt = self._ckpt
        self._ckpt_task = asyncio.ensure_future(
            asyncio.to_thread(ckpt.save, number, weights, state, meta)
        )

    async def _wait_checkpoint(self) -> None:
        task, self._ckpt_task = self._ckpt_task, None
        if task is None:
            return
        try:
            version = await task
            self.log.debug("checkpoint written", version=version)
        except Exception:
            self.stats["checkpoint_errors"] += 1
            self.log.exception("checkpoint failed; the job goes on without it")
