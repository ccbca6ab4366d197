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

FORMAT = "sdnt-frames"
KEEP = 2
_LEN = struct.Struct("<Q")
_CHUNK = 4 << 20


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
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".bin", dir=self.store.root)
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


class ServerCheckpoints:
    """The aggregation server's checkpoint hooks: resume at start, save after each round.

    Part of :class:`~sedna_core.jobs.federated.AggregationServer` (``_server.py``), which
    holds the state these methods use.
    """

    async def _resume(self) -> None:
        if self._ckpt is None or not self.config.resume:
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
        self.aggregator.load_state_dict(ckpt.state)
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
        weights, state = self._global, self.aggregator.state_dict()
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
