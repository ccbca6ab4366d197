"""Flower's fastest classic path, for comparison: its gRPC-bidi server and NumPy clients.

``flwr.server.start_server`` and ``flwr.client.start_client`` (``flwr.compat`` in 1.42: the
deprecated but still shipped legacy transport, one long-lived bidirectional gRPC stream per
client; no SuperLink/SuperNode polling). All traffic stays on 127.0.0.1 and Flower's telemetry
and update checks are switched off before it is imported.

Roles (each its own process)::

    python -m benchmarks.baselines.flower_fl server PORT PARAMS CLIENTS ROUNDS
    python -m benchmarks.baselines.flower_fl client PORT PARAMS CID
    python -m benchmarks.baselines.flower_fl clients PORT PARAMS FIRST COUNT   # threads

The server prints one JSON line: the per-round times (from ``configure_fit``, just before the
weights are sent, to the end of ``aggregate_fit``, when the new global weights exist: the same
definition as ours), its peak RSS and the loopback bytes at each round's end. Strategies are
Flower's own ``FedAvg`` (in-place aggregation), unchanged.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

import numpy as np


def quiet_flower() -> None:
    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
    os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    os.environ.setdefault("FLWR_HOME", tempfile.mkdtemp(prefix="flwr-home-"))
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def model(params: int, seed: int = 0) -> list[np.ndarray]:
    """The benchmark model: four float32 tensors totalling ``params`` elements."""
    rng = np.random.default_rng(seed)
    sizes = [params // 2, params // 4, params // 8]
    sizes.append(params - sum(sizes))
    return [rng.standard_normal(n, dtype=np.float32) for n in sizes]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loopback_bytes() -> int:
    """Bytes the loopback interface has carried in this process's network namespace (headers
    included, each byte once). Exclusive to one benchmark only in its own namespace: see
    ``benchmarks/federated_scale.py``, which runs there."""
    with open("/proc/self/net/dev") as fh:
        for line in fh:
            name, _, counters = line.partition(":")
            if name.strip() == "lo":
                return int(counters.split()[8])  # transmitted bytes (= received on lo)
    return 0


def server(port: int, params: int, clients: int, rounds: int) -> None:
    quiet_flower()
    import logging

    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig, start_server
    from flwr.server.strategy import FedAvg

    logging.getLogger("flwr").setLevel(logging.WARNING)
    base = rss_mb()
    times: list[float] = []
    wire: list[int] = []  # loopback bytes at each round's end
    cpu: list[float] = []  # the server's CPU seconds (all threads) at each round's end

    class TimedFedAvg(FedAvg):
        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            self._t0 = time.perf_counter()
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            out = super().aggregate_fit(server_round, results, failures)
            times.append(time.perf_counter() - self._t0)
            wire.append(loopback_bytes())
            cpu.append(time.process_time())
            return out

    strategy = TimedFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=clients,
        min_available_clients=clients,
        initial_parameters=ndarrays_to_parameters(model(params)),
    )
    start_server(
        server_address=f"127.0.0.1:{port}",
        config=ServerConfig(num_rounds=rounds),
        strategy=strategy,
    )
    print(
        json.dumps(
            {
                "round_times": times,
                "peak_rss_mb": peak_rss_mb(),
                "base_rss_mb": base,
                "round_end_wire_bytes": wire,
                "round_end_cpu_s": cpu,
            }
        ),
        flush=True,
    )


def client(port: int, params: int, cid: int) -> None:
    quiet_flower()
    import logging

    from flwr.client import NumPyClient, start_client

    logging.getLogger("flwr").setLevel(logging.WARNING)

    class Client(NumPyClient):
        def get_parameters(self, config: Any) -> list[np.ndarray]:
            return model(params)

        def fit(self, parameters: list[np.ndarray], config: Any) -> Any:
            for w in parameters:  # the same trivial "training" as ours
                w += np.float32(0.001 * (cid + 1))
            return parameters, 100, {}

    start_client(server_address=f"127.0.0.1:{port}", client=Client().to_client(), insecure=True)


def clients(port: int, params: int, first: int, count: int) -> None:
    """``count`` clients in this process, one thread each (Flower's client is blocking), each
    sending the same fixed weights every round (no training): the scaling benchmark's clients."""
    quiet_flower()
    import logging
    import threading

    from flwr.client import NumPyClient, start_client

    logging.getLogger("flwr").setLevel(logging.WARNING)

    class Client(NumPyClient):
        def __init__(self, cid: int) -> None:
            self.weights = [w + np.float32(0.001 * (cid + 1)) for w in model(params)]

        def get_parameters(self, config: Any) -> list[np.ndarray]:
            return self.weights

        def fit(self, parameters: list[np.ndarray], config: Any) -> Any:
            return self.weights, 100, {}

    threads = [
        threading.Thread(
            target=start_client,
            kwargs={
                "server_address": f"127.0.0.1:{port}",
                "client": Client(cid).to_client(),
                "insecure": True,
            },
        )
        for cid in range(first, first + count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def digits_server(port: int, clients: int, rounds: int, local_epochs: int) -> None:
    """FedAvg on the digits scenario; prints the test accuracy after every round."""
    quiet_flower()
    import logging

    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig, start_server
    from flwr.server.strategy import FedAvg

    from examples.demo.federated import SoftmaxRegression, accuracy, load_digits_split

    logging.getLogger("flwr").setLevel(logging.WARNING)
    _, x_te, _, y_te = load_digits_split()
    acc: list[float] = []

    def evaluate(server_round: int, parameters: list[np.ndarray], config: Any) -> Any:
        if server_round > 0:
            acc.append(accuracy(parameters, x_te, y_te))
        return 0.0, {}

    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=clients,
        min_available_clients=clients,
        evaluate_fn=evaluate,
        initial_parameters=ndarrays_to_parameters(SoftmaxRegression().get_weights()),
    )
    start_server(
        server_address=f"127.0.0.1:{port}",
        config=ServerConfig(num_rounds=rounds),
        strategy=strategy,
    )
    print(json.dumps({"accuracy": acc}), flush=True)


def digits_client(port: int, clients: int, cid: int, local_epochs: int) -> None:
    quiet_flower()
    import logging

    from flwr.client import NumPyClient, start_client

    from examples.demo.federated import SoftmaxRegression, dirichlet_partition, load_digits_split

    logging.getLogger("flwr").setLevel(logging.WARNING)
    x_tr, _, y_tr, _ = load_digits_split()
    idx = dirichlet_partition(y_tr, clients, 0.5, 42)[cid]
    data = (x_tr[idx], y_tr[idx])
    model_ = SoftmaxRegression(epochs=local_epochs, seed=cid)

    class Client(NumPyClient):
        def fit(self, parameters: list[np.ndarray], config: Any) -> Any:
            model_.set_weights(parameters)
            metrics = model_.train(data)
            return model_.get_weights(), len(idx), metrics

    start_client(server_address=f"127.0.0.1:{port}", client=Client().to_client(), insecure=True)


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    roles = {
        "server": server,
        "client": client,
        "clients": clients,
        "digits-server": digits_server,
        "digits-client": digits_client,
    }
    roles[role](*(int(x) for x in rest))
