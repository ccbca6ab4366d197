"""Checkpoints after every round; a restarted server resumes, the job ends as if uninterrupted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.jobs.federated import AggregationServer
from sedna_core.jobs.federated._checkpoint import CheckpointStore

INIT = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
SETTINGS = {
    "aggregation": {"method": "FedAdam", "param": {"eta": "0.05"}},
    "exit_round": 5,
    "participants_count": 3,
}


async def _uninterrupted(client_factory: Any, bounded: Any) -> list[np.ndarray]:
    server = AggregationServer(**SETTINGS, port=0, initial_weights=INIT)
    await server.astart()
    try:
        clients = [client_factory(server.ws_url, k) for k in range(3)]
        await bounded(asyncio.gather(*(c.atrain([0] * (k + 1)) for k, c in enumerate(clients))))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed"
    return result.weights


async def test_restart_mid_job_gives_the_same_final_weights(
    client_factory: Any, bounded: Any, tmp_path: Path
) -> None:
    reference = await _uninterrupted(client_factory, bounded)

    first = AggregationServer(
        **SETTINGS,
        port=0,
        initial_weights=INIT,
        checkpoint_dir=str(tmp_path / "ckpt"),
        job_name="restart-me",
    )
    await first.astart()
    port = first.port
    clients = [client_factory(first.ws_url, k) for k in range(3)]
    tasks = [asyncio.ensure_future(c.atrain([0] * (k + 1))) for k, c in enumerate(clients)]
    # crash in the middle of round 3: two of three updates are in
    await bounded(
        first.wait_until(
            lambda s: (
                s._completed == 2
                and s.current_round is not None
                and s.current_round.task == "train"
                and len(s.current_round.updates) >= 1
            )
        )
    )
    await first.astop()
    assert not any(t.done() for t in tasks)  # the clients keep trying to reconnect

    second = AggregationServer(
        **SETTINGS, port=port, checkpoint_dir=str(tmp_path / "ckpt"), job_name="restart-me"
    )
    await second.astart()
    try:
        result = await bounded(second.wait())
        await bounded(asyncio.gather(*tasks))
    finally:
        await second.astop()
    assert result.status == "completed" and result.rounds == 5
    assert [r["round"] for r in result.history] == [1, 2, 3, 4, 5]
    for got, want in zip(result.weights, reference, strict=True):
        np.testing.assert_array_equal(got, want)  # bit for bit
    for c in clients:
        np.testing.assert_array_equal(c.estimator.get_weights()[0], reference[0])


async def test_a_completed_job_serves_its_final_model(
    client_factory: Any, bounded: Any, tmp_path: Path
) -> None:
    kw = {
        "aggregation": "FedAvg",
        "exit_round": 1,
        "participants_count": 1,
        "checkpoint_dir": str(tmp_path),
        "initial_weights": INIT,
    }
    server = AggregationServer(**kw, port=0)
    await server.astart()
    try:
        await bounded(client_factory(server.ws_url, 2).atrain([0]))
        final = (await bounded(server.wait())).weights
    finally:
        await server.astop()
    again = AggregationServer(**kw, port=0)
    await again.astart()
    try:
        assert (await bounded(again.wait())).status == "completed"
        late = client_factory(again.ws_url, 7)  # joins after the end: gets the final model
        await bounded(late.atrain([0]))
        assert late.estimator.model.trained == 0
        np.testing.assert_array_equal(late.estimator.get_weights()[0], final[0])
    finally:
        await again.astop()


def test_checkpoint_round_trip_and_pruning(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "job/with odd:name")
    assert store.load() is None
    weights = [np.arange(12, dtype=np.float32).reshape(3, 4), np.ones(2, np.float64)]
    for r in (1, 2, 3):
        store.save(
            r,
            weights,
            {"m.0": weights[0] * r, "step": np.array(r)},
            {"history": [{"round": r}], "names": ["a", "b"]},
        )
    ckpt = store.load()
    assert ckpt is not None and ckpt.round == 3 and ckpt.names == ["a", "b"]
    for a, b in zip(ckpt.weights, weights, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(ckpt.state["m.0"], weights[0] * 3)
    assert int(ckpt.state["step"]) == 3
    assert len(store.store.versions(store.name)) == 2  # older versions pruned
