"""Mixed fleets: a client speaking KubeEdge Sedna's JSON protocol beside a native client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
import websockets

from sedna_core.jobs.federated import AggregationServer

SHAPES = [(4, 3), (3,)]
INIT = [np.zeros(s, np.float32) for s in SHAPES]


async def sedna_client(url: str, client_id: str, k: float, num_samples: int) -> dict[str, Any]:
    """Sedna's FederatedLearning client loop, as its AggregationClient does it (websockets)."""
    weights = [np.zeros(s, np.float32) for s in SHAPES]  # its own initial model
    rounds = 0
    async with websockets.connect(url, max_size=16 * 1024 * 1024) as ws:
        await ws.send(json.dumps({"type": "subscribe", "client_id": client_id}))
        await ws.recv()  # Sedna's client awaits one frame: its own echo
        while True:
            weights = [(w + k) / 2 for w in weights]  # "train"
            await ws.send(
                json.dumps(
                    {
                        "type": "update_weight",
                        "client": client_id,
                        "job_name": "mixed",
                        "data": {
                            "num_samples": num_samples,
                            "weights": [w.tolist() for w in weights],
                        },
                    }
                )
            )
            while True:  # frames of other types are skipped, as Sedna does
                msg = json.loads(await ws.recv())
                if msg["type"] == "recv_weight":
                    break
            data = msg["data"]
            weights = [np.array(w, dtype=np.float32) for w in data["weights"]]
            rounds += 1
            if data["exit_flag"] == "ok":
                return {"weights": weights, "rounds": rounds, "last": msg}


async def test_sedna_and_native_clients_in_one_job(
    client_factory: Any, fedavg_expected: Any, bounded: Any
) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=3, participants_count=2, port=0, initial_weights=INIT, job_name="mixed"
    )
    await server.astart()
    try:
        native = client_factory(server.ws_url, 1)
        url = server.ws_url + "/FedAvg"
        legacy, _ = await bounded(
            asyncio.gather(sedna_client(url, "sedna-edge", 3.0, 30), native.atrain([0] * 10))
        )
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed"
    assert [r["clients"] for r in result.history] == [["c1", "sedna-edge"]] * 3
    want = fedavg_expected(3, [(1, 10), (3, 30)])
    np.testing.assert_allclose(result.weights[0], want, rtol=1e-6)
    np.testing.assert_allclose(legacy["weights"][0], want, rtol=1e-6)
    np.testing.assert_allclose(native.estimator.get_weights()[0], want, rtol=1e-6)
    assert legacy["rounds"] == 3
    data = legacy["last"]["data"]
    assert data["round_number"] == 3 and data["total_sample"] == 40


async def test_sedna_client_token_in_the_url(bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=1, port=0, initial_weights=INIT, token="s3cret"
    )
    await server.astart()
    try:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
            await bounded(sedna_client(server.ws_url + "/FedAvg", "nobody", 1.0, 5))
        assert err.value.rcvd.code == 4401
        done = await bounded(sedna_client(server.ws_url + "/FedAvg?token=s3cret", "e1", 2.0, 5))
        assert done["rounds"] == 1
        np.testing.assert_allclose(done["weights"][1], 1.0)
    finally:
        await server.astop()


async def test_sedna_update_checked_like_any_other(client_factory: Any, bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=2, quorum=1, port=0, initial_weights=INIT
    )
    await server.astart()
    try:
        native = client_factory(server.ws_url, 1)
        task = asyncio.ensure_future(native.atrain([0]))
        async with websockets.connect(server.ws_url + "/FedAvg") as ws:
            await ws.send(json.dumps({"type": "subscribe", "client_id": "broken"}))
            await ws.recv()
            bad = [np.zeros((3, 4)).tolist(), [0.0, 0.0, 0.0]]  # transposed first layer
            await ws.send(
                json.dumps(
                    {
                        "type": "update_weight",
                        "client": "broken",
                        "data": {"num_samples": 5, "weights": bad},
                    }
                )
            )
            while (msg := json.loads(await bounded(ws.recv())))["type"] != "rejected":
                pass
            assert msg["data"]["reason"] == "shape"
            nan = [np.zeros((4, 3)).tolist(), [0.0, float("nan"), 0.0]]
            await ws.send(
                json.dumps(
                    {
                        "type": "update_weight",
                        "client": "broken",
                        "data": {"num_samples": 5, "weights": nan},
                    }
                )
            )
            while (msg := json.loads(await bounded(ws.recv())))["type"] != "rejected":
                pass
            assert msg["data"]["reason"] == "nonfinite"
            await bounded(task)
            result = await bounded(server.wait())
        assert result.history[0]["clients"] == ["c1"]
    finally:
        await server.astop()
