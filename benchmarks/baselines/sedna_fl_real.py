"""Sedna's real federated-learning server and client transport (``../shared/peers/sedna-lib``,
unmodified), run with the Sedna venv's python by ``benchmarks/federated_sedna_protocol.py``.

Roles (each its own process; ``PYTHONPATH`` = the Sedna SDK and this repository's root)::

    python -m benchmarks.baselines.sedna_fl_real server PORT PARAMS CLIENTS ROUNDS
    python -m benchmarks.baselines.sedna_fl_real client PORT PARAMS CID

Server: ``sedna.service.server.AggregationServer("FedAvg", host="127.0.0.1", ...)`` as Sedna's
aggregation worker starts it (FastAPI/uvicorn websocket, JSON text frames, its ``Aggregator`` and
its ``FedAvg`` over nested lists), ``ws_size`` raised to 64 MiB so the 200k model fits (Sedna's
default, 10 MiB, is also what its example passes). The only addition: Sedna's ``FedAvg.aggregate``
is wrapped to record the time each aggregation ends; after the last round the server prints its
round times and exits (Sedna's server itself never exits).

Client: Sedna's ``AggregationClient`` (its websocket transport: ``send`` of the JSON message,
``recv(wait_data_type="recv_weight")``) driven by the loop of Sedna's ``FederatedLearning.train``
(train, ``get_weights`` as lists, ``update_weight``, wait for ``recv_weight``, ``set_weights``),
without the per-round report to Sedna's local controller and model save, which have no peer in
the other systems (and retry for seconds where no controller runs).

Round time: from one aggregation's end to the next (the broadcast of the new weights, the
clients' step and uploads, the server's parsing and FedAvg); round 1 is skipped.
"""

import itertools
import json
import os
import sys
import threading
import time

import numpy as np

from benchmarks.baselines.flower_fl import model, peak_rss_mb, rss_mb

WS_SIZE = 64 * 1024 * 1024


def server(port: int, params: int, clients: int, rounds: int) -> None:
    from sedna.algorithms.aggregation.aggregation import FedAvg
    from sedna.service.server import AggregationServer

    base = rss_mb()
    ends: list[float] = []
    aggregate = FedAvg.aggregate

    def timed(self, clients_):  # Sedna's FedAvg, with the end of each aggregation recorded
        out = aggregate(self, clients_)
        ends.append(time.perf_counter())
        if len(ends) == rounds:
            threading.Timer(3.0, finish).start()  # let the last broadcast reach the clients
        return out

    def finish() -> None:
        times = [float("nan")] + [b - a for a, b in itertools.pairwise(ends)]
        print(
            json.dumps({"round_times": times, "peak_rss_mb": peak_rss_mb(), "base_rss_mb": base}),
            flush=True,
        )
        os._exit(0)  # Sedna's server has no exit of its own

    FedAvg.aggregate = timed
    AggregationServer(
        "FedAvg",
        host="127.0.0.1",
        http_port=port,
        exit_round=rounds,
        participants_count=clients,
        ws_size=WS_SIZE,
    ).start()


def client(port: int, params: int, cid: int) -> None:
    from sedna.service.client import AggregationClient

    weights = model(params)
    step = np.float32(0.001 * (cid + 1))
    for _ in range(100):  # wait for the server to listen (Sedna's own retry waits 3 s)
        try:
            node = AggregationClient(
                url=f"ws://127.0.0.1:{port}/FedAvg",
                client_id=f"sedna-real-{cid}",
                ping_timeout=300,
                max_size=WS_SIZE,
            )
            break
        except Exception:
            time.sleep(0.2)
    else:
        raise SystemExit("Sedna's aggregation server did not answer")
    while True:
        for w in weights:  # "training"
            w += step
        lists = [w.tolist() for w in weights]  # Sedna's backends return lists
        node.send({"num_samples": 100, "weights": lists}, msg_type="update_weight")
        received = None
        while not received:  # other messages (joins, echoes) come back as None, as in Sedna
            received = node.recv(wait_data_type="recv_weight")
        data = received["data"]
        weights = [np.array(w, dtype=np.float32) for w in data["weights"]]
        if data["exit_flag"] == "ok":
            break


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "server":
        server(*(int(x) for x in rest))
    else:
        client(*(int(x) for x in rest))
