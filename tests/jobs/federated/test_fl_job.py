"""A real server and real clients on loopback: whole jobs, selection, evaluation, late joiners."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from sedna_core.clock import ManualClock
from sedna_core.jobs.federated import AggregationServer


async def test_fedavg_job_end_to_end(
    client_factory: Any, fedavg_expected: Any, bounded: Any
) -> None:
    seen: list[dict[str, Any]] = []
    server = AggregationServer(
        "FedAvg",
        exit_round=3,
        participants_count=3,
        port=0,
        round_deadline=60,
        evaluate_every=2,
        on_round=seen.append,
    )
    await server.astart()
    try:
        clients = [client_factory(server.ws_url, k) for k in range(3)]
        data = [list(range(10)), list(range(20)), list(range(30))]
        trained = await bounded(
            asyncio.gather(*(c.atrain(d) for c, d in zip(clients, data, strict=True)))
        )
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed" and result.rounds == 3
    want = fedavg_expected(3, [(0, 10), (1, 20), (2, 30)])
    for c, est in zip(clients, trained, strict=True):
        assert est is c.estimator
        np.testing.assert_allclose(c.estimator.get_weights()[0], want, rtol=1e-6)
    np.testing.assert_allclose(result.weights[1], want, rtol=1e-6)
    assert [r["round"] for r in result.history] == [1, 2, 3]
    assert result.history[0]["clients"] == ["c0", "c1", "c2"]
    assert result.history[0]["num_samples"] == 60
    assert "loss" in result.history[0]["metrics"]
    # federated evaluation after round 2 and the last round, sample-weighted
    ev = result.history[1]["evaluation"]
    assert ev["num_samples"] == 60 and set(ev["metrics"]) == {"accuracy"}
    assert "evaluation" in result.history[2]
    assert len([r for r in seen if "clients" in r]) == 3
    assert all(c.history for c in clients)


async def test_initial_weights_and_server_optimiser(client_factory: Any, bounded: Any) -> None:
    init = [np.ones((4, 3), np.float32), np.ones(3, np.float32)]
    server = AggregationServer(
        {"method": "FedAvgM", "param": {"server_momentum": "0.5"}},
        exit_round=2,
        participants_count=2,
        port=0,
        initial_weights=init,
    )
    await server.astart()
    try:
        clients = [client_factory(server.ws_url, k) for k in (2, 4)]
        await bounded(asyncio.gather(*(c.atrain([0] * 5) for c in clients)))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    # by hand: g=1, clients (1+2)/2 and (1+4)/2 -> avg 2; d = g - avg = -1; m = d; g = 1 - m = 2
    # round 2: clients 2 and 3 -> avg 2.5; d = -0.5; m = 0.5 * -1 - 0.5 = -1; g = 2 - m = 3
    np.testing.assert_allclose(result.weights[0], 3.0, rtol=1e-6)
    # every client trained from the server's model, not its own zeros
    assert clients[0].estimator.model.trained == 2


async def test_fraction_selects_a_seeded_subset(client_factory: Any, bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=3, participants_count=5, quorum=2, fraction=0.4, seed=7, port=0
    )
    await server.astart()
    try:
        clients = [client_factory(server.ws_url, k) for k in range(5)]
        await bounded(asyncio.gather(*(c.atrain([0]) for c in clients)))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    chosen = [r["clients"] for r in result.history]
    assert all(len(c) == 2 for c in chosen)
    from sedna_core.jobs.federated._rounds import select_clients

    ids = [f"c{k}" for k in range(5)]
    assert chosen == [sorted(select_clients(ids, 0.4, 2, 7, r, 0)) for r in (1, 2, 3)]
    # each client ends with the final global model
    for c in clients:
        np.testing.assert_array_equal(c.estimator.get_weights()[0], result.weights[0])


async def test_late_joiner_gets_the_current_model(client_factory: Any, bounded: Any) -> None:
    clock = ManualClock()
    init = [np.full((4, 3), 3, np.float32), np.full(3, 3, np.float32)]
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=1,
        port=0,
        round_deadline=100,
        initial_weights=init,
        clock=clock,
    )
    await server.astart()
    gate_client = client_factory(server.ws_url, 0)
    try:
        import threading

        gate = threading.Event()
        slow = client_factory(server.ws_url, 1, gate=gate)
        slow_task = asyncio.ensure_future(slow.atrain([0]))
        await bounded(
            server.wait_until(
                lambda s: s.current_round is not None and s.current_round.task == "train"
            )
        )
        # c0 joins while round 1 is open: it is asked too and trains from the global model
        task = asyncio.ensure_future(gate_client.atrain([0] * 3))
        await bounded(
            server.wait_until(
                lambda s: "c0" in (s.current_round.updates if s.current_round else {})
            )
        )
        assert gate_client.estimator.model.trained == 1
        gate.set()
        await bounded(asyncio.gather(slow_task, task))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    # c0: (3 + 0)/2 = 1.5 with 3 samples; c1: (3 + 1)/2 = 2 with 1 sample
    np.testing.assert_allclose(result.weights[0], (1.5 * 3 + 2 * 1) / 4, rtol=1e-6)


async def test_fedprox_mu_reaches_the_estimator(client_factory: Any, bounded: Any) -> None:
    server = AggregationServer(
        {"method": "FedProx", "param": {"proximal_mu": "0.3"}},
        exit_round=1,
        participants_count=1,
        port=0,
    )
    await server.astart()
    try:
        client = client_factory(server.ws_url, 1)
        await bounded(client.atrain([0], epochs=2))
        await bounded(server.wait())
    finally:
        await server.astop()
    assert client.estimator.model.kwargs == [{"proximal_mu": 0.3, "epochs": 2}]


async def test_sync_train_facade_and_background_server(client_factory: Any) -> None:
    server = AggregationServer("FedAvg", exit_round=1, participants_count=1, port=0)
    server.start_in_background()
    try:
        client = client_factory(server.ws_url, 2)
        done = await asyncio.to_thread(client.train, [0, 1], post_process=lambda e: "post")
        assert done == "post"
        assert server.wait_background(30).status == "completed"
    finally:
        server.stop_background()


def test_status_route_and_metrics() -> None:
    async def main() -> dict[str, Any]:
        from sedna_core.service import HttpClient

        server = AggregationServer("FedAvg", exit_round=1, port=0, token="t0k")
        await server.astart()
        try:
            async with HttpClient(server.url, token="t0k") as http:
                status = (await http.get("/fl/status")).json()
                metrics = (await http.get("/metrics")).text()
                sedna = (await http.get("/FedAvg")).json()
        finally:
            await server.astop()
        return {"status": status, "metrics": metrics, "sedna": sedna}

    out = asyncio.run(main())
    assert out["status"]["aggregation"] == "FedAvg" and out["status"]["exit_round"] == 1
    assert "sedna_fl_clients" in out["metrics"]
    assert out["sedna"] == {"clients": []}


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"exit_round": 0}, "exit_round"),
        ({"exit_round": -3}, "exit_round"),
        ({"quorum": 5, "participants_count": 2}, "quorum"),
        ({"quorum": 0}, "quorum"),
        ({"participants_count": 0}, "participants_count"),
        ({"round_deadline": -1}, "round_deadline"),
        ({"fraction": 1.5}, "fraction"),
        ({"max_retries": -1}, "max_retries"),
        ({"chunk_bytes": 10}, "chunk_bytes"),
    ],
)
def test_impossible_settings_are_one_line_errors(bad: dict[str, Any], named: str) -> None:
    from sedna_core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        AggregationServer("FedAvg", **bad)
    message = str(err.value)
    assert message.startswith(named) and "\n" not in message and "expected" in message


def test_sedna_compat_server_still_clamps_exit_round() -> None:
    from sedna.service.server import AggregationServer as SednaAggregationServer

    assert SednaAggregationServer("FedAvg", exit_round=0).config.exit_round == 1
