"""Dropouts, deadlines, quorum, retries: rounds close, jobs end, nothing hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest

from sedna_core.clock import ManualClock
from sedna_core.errors import JobError
from sedna_core.jobs.federated import AggregationServer
from sedna_core.wire import encode_chunks

INIT = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]


async def test_two_frozen_clients_of_ten_round_closes_at_deadline(
    client_factory: Any, fedavg_expected: Any, bounded: Any
) -> None:
    clock = ManualClock()
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=10,
        quorum=8,
        round_deadline=100,
        port=0,
        initial_weights=INIT,
        clock=clock,
    )
    await server.astart()
    gate = threading.Event()  # the two "killed" clients never finish training
    clients = [client_factory(server.ws_url, k, gate=gate if k >= 8 else None) for k in range(10)]
    tasks = [asyncio.ensure_future(c.atrain([0] * 10)) for c in clients]
    try:
        await bounded(
            server.wait_until(
                lambda s: (
                    s.current_round is not None and len(s.current_round.updates) == 8 and s.idle
                )
            )
        )
        assert server.phase == "train" and server.current_round.pending == {"c8", "c9"}
        clock.advance(99)  # not yet
        await asyncio.sleep(0)
        assert server.current_round is not None
        clock.advance(1)  # the deadline: the round closes with the 8 that reported
        result = await bounded(server.wait())
        assert result.status == "completed"
        record = result.history[0]
        assert record["clients"] == [f"c{k}" for k in range(8)]
        assert record["missing"] == ["c8", "c9"]
        want = fedavg_expected(1, [(k, 10) for k in range(8)])
        np.testing.assert_allclose(result.weights[0], want, rtol=1e-6)
        gate.set()  # the frozen clients wake up: their updates are late, then they stop
        await bounded(asyncio.gather(*tasks))
        assert server.stats["late"] == 2
    finally:
        gate.set()
        await server.astop()


_KILLABLE = r"""
import sys, threading, numpy as np
from sedna_core.jobs.federated import FederatedLearning
class Est:
    w = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
    def train(self, *a, **k):
        print("training", flush=True); threading.Event().wait()  # frozen until killed
    def predict(self, x): return x
    def get_weights(self): return self.w
    def set_weights(self, w): self.w = w
FederatedLearning(Est(), address=sys.argv[1], client_id=sys.argv[2], backend="custom").train([0])
"""


async def test_killed_client_processes_never_block_the_round(
    client_factory: Any, fedavg_expected: Any, bounded: Any
) -> None:
    server = AggregationServer(
        "FedAvg",
        exit_round=2,
        participants_count=10,
        quorum=8,
        round_deadline=600,
        port=0,
        initial_weights=INIT,
    )
    await server.astart()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _KILLABLE, server.ws_url, f"c{k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for k in (8, 9)
    ]
    clients = [client_factory(server.ws_url, k) for k in range(8)]
    tasks = [asyncio.ensure_future(c.atrain([0] * 10)) for c in clients]
    try:
        for p in procs:  # both are inside round 1's training
            assert await bounded(asyncio.to_thread(p.stdout.readline)) == "training\n"
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        result = await bounded(server.wait())  # long before the 600 s deadline
        await bounded(asyncio.gather(*tasks))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        await server.astop()
    assert result.status == "completed"
    assert result.history[0]["clients"] == [f"c{k}" for k in range(8)]
    assert set(result.history[0]["failed"]) == {"c8", "c9"}
    assert result.history[1]["clients"] == [f"c{k}" for k in range(8)]
    want = fedavg_expected(2, [(k, 10) for k in range(8)])
    np.testing.assert_allclose(result.weights[0], want, rtol=1e-6)


async def test_quorum_missed_retries_then_fails_clearly(client_factory: Any, bounded: Any) -> None:
    clock = ManualClock()
    server = AggregationServer(
        "FedAvg",
        exit_round=2,
        participants_count=2,
        quorum=2,
        round_deadline=10,
        max_retries=2,
        port=0,
        initial_weights=INIT,
        clock=clock,
    )
    await server.astart()
    try:
        lonely = client_factory(server.ws_url, 1)
        task = asyncio.ensure_future(lonely.atrain([0]))
        for attempt in range(3):
            await bounded(
                server.wait_until(
                    lambda s, a=attempt: (
                        s.idle
                        and s.phase == "waiting"
                        and len(s.clients) == 1
                        and s.stats["retries"] == a
                    )
                )
            )
            clock.advance(10)
        result = await bounded(server.wait())
        assert result.status == "failed"
        assert "round 1 missed its quorum 3 time(s)" in result.message
        assert "AGG_QUORUM" in result.message
        with pytest.raises(JobError, match="missed its quorum"):
            await bounded(task)
    finally:
        await server.astop()


async def test_no_client_at_all_still_ends(bounded: Any) -> None:
    clock = ManualClock()
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=1,
        round_deadline=5,
        max_retries=0,
        port=0,
        clock=clock,
    )
    await server.astart()
    try:
        await bounded(server.wait_until(lambda s: s.idle and s.phase == "waiting"))
        clock.advance(5)
        assert (await bounded(server.wait())).status == "failed"
    finally:
        await server.astop()


async def test_disconnect_mid_update_is_excluded_exactly(
    client_factory: Any, raw_clients: Any, fedavg_expected: Any, bounded: Any
) -> None:
    init = [np.zeros((64, 32), np.float32), np.zeros(32, np.float32)]
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=3, quorum=2, port=0, initial_weights=init
    )
    await server.astart()
    try:
        raw = await raw_clients(server.ws_url, "raw")
        good = [client_factory(server.ws_url, k) for k in (1, 2)]
        for g in good:  # their models match the server's
            g.estimator.model.w = [w.copy() for w in init]
            g.estimator.model.target = [
                np.full(w.shape, float(g.client_id[1:]), np.float32) for w in init
            ]
        tasks = [asyncio.ensure_future(g.atrain([0] * 4)) for g in good]
        msg, weights = await bounded(raw.next_round())
        poisoned = [np.full(w.shape, 1e6, np.float32) for w in weights]
        frames = list(encode_chunks(poisoned, chunk_bytes=1024))
        assert len(frames) > 3
        await raw.send_update(msg, poisoned, frames=frames[:2])  # half an update, then gone
        await bounded(
            server.wait_until(
                lambda s: (
                    s.current_round is not None
                    and s.current_round.task == "train"
                    and len(s.current_round.updates) == 0
                    and "raw" in s.clients
                )
            )
        )
        await raw.close()
        result = await bounded(server.wait())
        await bounded(asyncio.gather(*tasks))
    finally:
        await server.astop()
    assert result.history[0]["clients"] == ["c1", "c2"]
    assert result.history[0]["failed"] == ["raw"]
    # bit-exact: the half update never touched the aggregate
    want = fedavg_of([[np.full(w.shape, k / 2, np.float32) for w in init] for k in (1, 2)])
    for got, exp in zip(result.weights, want, strict=True):
        np.testing.assert_array_equal(got, exp)


def fedavg_of(updates: list[list[np.ndarray]]) -> list[np.ndarray]:
    from sedna_plugin_fedavg import FedAvg

    return FedAvg().aggregate([np.zeros_like(u) for u in updates[0]], [(u, 4) for u in updates])


async def test_update_after_the_deadline_is_late(
    client_factory: Any, raw_clients: Any, bounded: Any
) -> None:
    clock = ManualClock()
    server = AggregationServer(
        "FedAvg",
        exit_round=2,
        participants_count=2,
        quorum=1,
        round_deadline=50,
        port=0,
        initial_weights=INIT,
        clock=clock,
    )
    await server.astart()
    try:
        raw = await raw_clients(server.ws_url, "slow")
        good = client_factory(server.ws_url, 1)
        task = asyncio.ensure_future(good.atrain([0]))
        msg, weights = await bounded(raw.next_round())
        await bounded(
            server.wait_until(
                lambda s: s.current_round is not None and "c1" in s.current_round.updates and s.idle
            )
        )
        clock.advance(50)
        await bounded(server.wait_until(lambda s: s._completed == 1))
        await raw.send_update(msg, weights)  # round 1 is over
        reply = await bounded(raw.until("late"))
        assert reply["type"] == "late" and reply["round"] == 1
        assert server.stats["late"] == 1
        await raw.close()
        await bounded(task)
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed" and result.history[0]["clients"] == ["c1"]
