"""Sedna's federated-learning protocol re-created for comparison ("Sedna's way").

Mirrors KubeEdge Sedna's ``AggregationServer`` and ``FederatedLearning`` client (reference §3.1,
§3.2, §3.3): a FastAPI websocket endpoint ``/{aggregation}`` served by uvicorn (``ws_max_size``
20 MiB, as Sedna's example), JSON text frames carrying the weights as nested lists of floats,
the ``Aggregator`` slot logic (aggregate when ``participants_count`` clients have an update,
FedAvg over the lists with numpy, broadcast ``recv_weight`` with the result as lists to every
client), and the client loop built on the ``websockets`` library (train, ``get_weights`` as
lists, send ``update_weight``, block on ``recv_weight``, ``set_weights``). Benchmark use only.

Roles (each its own process)::

    python -m benchmarks.baselines.sedna_fl_json server PORT PARAMS CLIENTS ROUNDS
    python -m benchmarks.baselines.sedna_fl_json client PORT PARAMS CID

Round time: from the server starting to broadcast the previous round's weights (Sedna has no
round-start message: that broadcast is what makes clients train) to the end of aggregation.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at
# definition time to inject the WebSocket.
import asyncio
import json
import sys
import time
from typing import Any

import numpy as np

from benchmarks.baselines.flower_fl import model, peak_rss_mb, rss_mb

WS_SIZE = 20 * 1024 * 1024


def server(port: int, params: int, clients: int, rounds: int) -> None:
    import uvicorn
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect

    base = rss_mb()
    app = FastAPI()
    conns: dict[str, WebSocket] = {}
    slots: dict[str, tuple[int, list] | None] = {}
    state: dict[str, Any] = {"round": 0, "sent_at": None, "times": [], "done": False}

    def fedavg(updates: list[tuple[int, list]]) -> list:
        total = sum(n for n, _ in updates)
        layers = len(updates[0][1])
        out = []
        for i in range(layers):
            acc = np.sum([np.array(w[i]) * (n / total) for n, w in updates], axis=0)
            out.append(acc.tolist())
        return out

    @app.websocket("/{aggregation}")
    async def endpoint(ws: WebSocket, aggregation: str) -> None:
        await ws.accept()
        client_id = None
        try:
            while True:
                msg = json.loads(await ws.receive_text())
                if msg["type"] == "subscribe":
                    client_id = msg["client_id"]
                    for other in conns.values():
                        await other.send_json({"type": "CLIENT_JOIN", "data": client_id})
                    conns[client_id] = ws
                    slots[client_id] = None
                    for c in conns.values():
                        await c.send_json(msg)
                elif msg["type"] == "update_weight":
                    data = msg["data"]
                    slots[msg["client"]] = (data["num_samples"], data["weights"])
                    ready = [s for s in slots.values() if s is not None]
                    if len(ready) >= clients:
                        state["round"] += 1
                        weights = fedavg(ready)
                        if state["sent_at"] is not None:
                            state["times"].append(time.perf_counter() - state["sent_at"])
                        exit_flag = "ok" if state["round"] >= rounds else "continue"
                        reply = {
                            **msg,
                            "type": "recv_weight",
                            "round_number": state["round"],
                            "data": {
                                "total_sample": sum(n for n, _ in ready),
                                "round_number": state["round"],
                                "weights": weights,
                                "exit_flag": exit_flag,
                            },
                        }
                        state["sent_at"] = time.perf_counter()
                        for key in slots:
                            slots[key] = None
                        for c in list(conns.values()):
                            await c.send_json(reply)
                        if exit_flag == "ok":
                            state["done"] = True
                else:
                    for c in conns.values():
                        await c.send_json(msg)
        except WebSocketDisconnect:
            conns.pop(client_id or "", None)
            slots.pop(client_id or "", None)
            if state["done"] and not conns:
                server_obj.should_exit = True

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws_max_size=WS_SIZE, log_level="warning", ws="websockets"
    )
    server_obj = uvicorn.Server(config)
    server_obj.run()
    print(
        json.dumps(
            {
                "round_times": [float("nan"), *state["times"]],
                "peak_rss_mb": peak_rss_mb(),
                "base_rss_mb": base,
            }
        ),
        flush=True,
    )


def client(port: int, params: int, cid: int) -> None:
    import websockets

    weights = model(params)
    step = np.float32(0.001 * (cid + 1))

    async def run() -> None:
        nonlocal weights
        url = f"ws://127.0.0.1:{port}/FedAvg"
        for _ in range(50):  # Sedna retries its connect every few seconds; we are quicker
            try:
                ws = await websockets.connect(url, max_size=WS_SIZE)
                break
            except OSError:
                await asyncio.sleep(0.2)
        client_id = f"sedna-{cid}"
        await ws.send(json.dumps({"type": "subscribe", "client_id": client_id}))
        await ws.recv()  # its own echo
        while True:
            for w in weights:  # "training"
                w += step
            lists = [w.tolist() for w in weights]  # Sedna's Keras backend returns lists
            await ws.send(
                json.dumps(
                    {
                        "type": "update_weight",
                        "client": client_id,
                        "data": {"num_samples": 100, "weights": lists},
                        "job_name": "bench",
                    }
                )
            )
            while True:
                msg = json.loads(await ws.recv())
                if msg["type"] == "recv_weight":
                    break
            data = msg["data"]
            weights = [np.array(w, dtype=np.float32) for w in data["weights"]]
            if data["exit_flag"] == "ok":
                break
        await ws.close()

    asyncio.run(run())


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "server":
        server(*(int(x) for x in rest))  # type: ignore[call-arg]
    else:
        client(*(int(x) for x in rest))  # type: ignore[call-arg]
