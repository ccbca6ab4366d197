"""One connected client on the server side: its websocket, send lock and update in progress."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any, Literal

import aiohttp
import numpy as np
from aiohttp import web

from sedna_core.jobs.federated._protocol import control
from sedna_core.jobs.federated._spool import SpoolUpdate, UpdateReceiver
from sedna_core.wire import ChunkReader, SharedChunks

__all__ = ["SEND_ERRORS", "Session"]

#: what sending on a websocket raises when the peer is gone
SEND_ERRORS = (ConnectionError, RuntimeError, aiohttp.ClientError, asyncio.TimeoutError)


class Session:
    """A client connection.

    ``kind`` is ``"native"`` (this package's protocol) or ``"sedna"`` (Sedna's JSON protocol).
    Sends are serialised by a lock so the frames of two messages never interleave.
    """

    def __init__(
        self, client_id: str, ws: web.WebSocketResponse, kind: Literal["native", "sedna"]
    ) -> None:
        self.client_id = client_id
        self.ws = ws
        self.kind = kind
        self.lock = asyncio.Lock()
        self.alive = True
        # update in progress (native): receiver, its round number and task, its metrics
        self.receiver: UpdateReceiver | None = None
        self.receiving: tuple[int, str] | None = None
        self.update_metrics: dict[str, float] = {}
        # skip binary frames until the next control frame (after a rejection or a late update)
        self.discarding = False
        # Sedna clients send updates unasked; one waits here until a round takes it
        self.waiting_update: SpoolUpdate | None = None
        # ...or its last update was refused while no round was open: the reason, until a
        # round counts it (a Sedna client cannot resend, the round must not wait for it)
        self.refused: str | None = None
        #: the labels the client announced when it joined (classifiers), for the job's classes
        self.labels: list[Any] | None = None

    def __repr__(self) -> str:
        return f"Session({self.client_id!r}, {self.kind})"

    async def send(self, kind: str, **fields: Any) -> bool:
        """Send a control frame; False when the client is gone."""
        return await self.send_text(control(kind, **fields))

    async def send_text(self, text: str) -> bool:
        if not self.alive:
            return False
        try:
            async with self.lock:
                await self.ws.send_str(text)
            return True
        except SEND_ERRORS:
            self.alive = False
            return False

    async def send_weights(
        self, kind: str, weights: Sequence[np.ndarray], chunk_bytes: int, **fields: Any
    ) -> bool:
        """A control frame announcing weights, then their frames; False when the client is gone."""
        frames = SharedChunks(list(weights), chunk_bytes=chunk_bytes).reader()
        return await self.send_frames(kind, frames, **fields)

    async def send_frames(self, kind: str, frames: ChunkReader, **fields: Any) -> bool:
        """Like :meth:`send_weights` with frames already encoded (a model broadcast to many
        clients shares one :class:`~sedna_core.wire.SharedChunks`); ``frames`` is closed in
        every case, so a send that fails or never starts holds none of them."""
        try:
            if not self.alive:
                return False
            async with self.lock:
                await self.ws.send_str(control(kind, weights=True, **fields))
                for frame in frames:
                    await self.ws.send_bytes(frame)
            return True
        except SEND_ERRORS:
            self.alive = False
            return False
        finally:
            frames.close()

    async def send_json(self, doc: Any) -> bool:
        """A raw JSON text frame (Sedna's protocol has no version field)."""
        return await self.send_text(json.dumps(doc, allow_nan=False))

    def drop_update(self) -> None:
        """Forget the update in progress (its spool file is deleted)."""
        if self.receiver is not None:
            self.receiver.discard()
        self.receiver = None
        self.receiving = None
        self.update_metrics = {}

    def drop_waiting(self) -> None:
        if self.waiting_update is not None:
            self.waiting_update.discard()
            self.waiting_update = None

    async def close(self, code: int, message: str) -> None:
        self.alive = False
        self.drop_update()
        self.drop_waiting()
        try:
            with contextlib.suppress(*SEND_ERRORS):
                await self.ws.close(code=code, message=message.encode()[:120])
        except asyncio.CancelledError:
            # aiohttp shares one drain future per connection: when a send still waiting on it
            # is cancelled (the server stopping while a large model streams to a slow client),
            # this close gets that cancellation, not its own (the transport is closed anyway);
            # only a cancellation of this task goes on
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
