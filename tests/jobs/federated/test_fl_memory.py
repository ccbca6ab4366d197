"""Server memory: the broadcast model is encoded once and shared by all sends, frames are
dropped once every reader passed them, and the distance check allocates no frame-sized
temporary."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import numpy as np
import pytest

from sedna_core.jobs.federated import AggregationServer
from sedna_core.jobs.federated._rounds import Round
from sedna_core.jobs.federated._session import Session
from sedna_core.jobs.federated._spool import DISTANCE_BLOCK, _sq_distance
from sedna_core.wire import SharedChunks, decode_chunk, encode_chunks

MODEL = [np.arange(1000, dtype=np.float32), np.ones((3, 4), np.float64)]


def test_shared_frames_equal_encode_chunks_and_are_dropped_once_passed() -> None:
    shared = SharedChunks(MODEL, chunk_bytes=400)
    a, b, c = shared.reader(), shared.reader(), shared.reader()
    want = list(encode_chunks(MODEL, chunk_bytes=400))
    first = [next(a) for _ in range(5)]
    assert shared.held == 5  # made by the furthest reader, nobody else passed them
    got_b = list(b)
    assert got_b == want
    c.close()  # a reader that stops (its client left) no longer holds frames back
    assert shared.held == len(want) - 4  # a's current frame and everything after it
    assert first + list(a) == want
    assert shared.held == 0
    # the same bytes objects went to both readers: one copy of the model, not one per reader
    assert all(x is y for x, y in zip(first, got_b, strict=False))


def test_reader_taken_late_encodes_its_own_frames() -> None:
    shared = SharedChunks(MODEL, chunk_bytes=400)
    early = shared.reader()
    next(early)
    late = shared.reader()
    assert list(late) == list(encode_chunks(MODEL, chunk_bytes=400))
    early.close()
    assert shared.held == 0


class _FakeWS:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.texts: list[str] = []

    async def send_str(self, text: str) -> None:
        self.texts.append(text)

    async def send_bytes(self, frame: bytes) -> None:
        self.frames.append(frame)
        await asyncio.sleep(0)  # let the other sends interleave, as a real socket would


def test_round_broadcast_shares_one_encoding_across_clients() -> None:
    weights = [np.linspace(0, 1, 5000, dtype=np.float32), np.zeros(7, np.float32)]
    server = AggregationServer(
        "FedAvg", initial_weights=weights, participants_count=3, chunk_bytes=1024
    )
    sessions = [Session(f"c{i}", _FakeWS(), "native") for i in range(3)]  # type: ignore[arg-type]
    dead = Session("gone", _FakeWS(), "native")  # type: ignore[arg-type]
    dead.alive = False

    async def go() -> SharedChunks:
        rnd = Round(1, 0, "train", {s.client_id for s in sessions}, 1e9, 0.0)
        shared = server._shared_model()
        assert shared is not None
        sends = [server._send_round(s, rnd, shared.reader()) for s in [*sessions, dead]]
        await asyncio.gather(*sends)
        return shared

    shared = asyncio.run(go())
    frames = [s.ws.frames for s in sessions]  # type: ignore[attr-defined]
    assert len(frames[0]) == len(list(encode_chunks(weights, chunk_bytes=1024))) > 10
    for other in frames[1:]:
        assert all(x is y for x, y in zip(frames[0], other, strict=True))
    assert shared.held == 0  # nothing left over, the client that was gone included
    got = np.concatenate([decode_chunk(f).data for f in frames[0] if decode_chunk(f).index == 0])
    np.testing.assert_array_equal(got, weights[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_blocked_distance_matches_numpy(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    n = 3 * DISTANCE_BLOCK + 17
    values = rng.standard_normal(n).astype(dtype)
    reference = rng.standard_normal(n).astype(dtype)
    want = float(np.sum((values.astype(np.float64) - reference.astype(np.float64)) ** 2))
    assert _sq_distance(values, reference) == pytest.approx(want, rel=1e-3)
    norm = float(np.sum(values.astype(np.float64) ** 2))
    assert _sq_distance(values, np.zeros(1, dtype)) == pytest.approx(norm, rel=1e-3)


def test_blocked_distance_survives_float32_overflow() -> None:
    values = np.full(2 * DISTANCE_BLOCK, 3e38, np.float32)
    reference = np.full(2 * DISTANCE_BLOCK, -3e38, np.float32)
    got = _sq_distance(values, reference)
    assert got == pytest.approx(2 * DISTANCE_BLOCK * 6e38**2, rel=1e-6)


def test_distance_check_allocates_no_frame_sized_temporary() -> None:
    n = 1 << 20  # one 4 MiB frame of float32
    values = np.ones(n, np.float32)
    reference = np.zeros(n, np.float32)
    tracemalloc.start()
    try:
        _sq_distance(values, reference)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * DISTANCE_BLOCK * 4  # a few blocks, far below the 4 MiB frame


def test_broadcast_to_many_clients_holds_about_one_model() -> None:
    # 10 clients whose sends all wait at once (a real socket's drain): with one encoding per
    # client each would hold its own current frame, 10 frames of the model's size here
    n = 1 << 18  # 1 MiB of float32, sent as one frame
    weights = [np.ones(n, np.float32)]
    server = AggregationServer(
        "FedAvg", initial_weights=weights, participants_count=10, chunk_bytes=4 * n
    )
    sessions = [Session(f"c{i}", _FakeWS(), "native") for i in range(10)]  # type: ignore[arg-type]
    for s in sessions:
        s.ws.frames = _Discard()  # type: ignore[attr-defined]

    async def go() -> int:
        rnd = Round(1, 0, "train", {s.client_id for s in sessions}, 1e9, 0.0)
        shared = server._shared_model()
        assert shared is not None
        tracemalloc.start()
        try:
            await asyncio.gather(*(server._send_round(s, rnd, shared.reader()) for s in sessions))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak = asyncio.run(go())
    assert peak < 2 * 4 * n  # one shared copy of the model (plus small change), not ten


class _Discard(list):  # type: ignore[type-arg]
    def append(self, item: Any) -> None:  # a sent frame is gone from the server's memory
        pass
