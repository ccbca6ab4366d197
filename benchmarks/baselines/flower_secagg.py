"""Flower's SecAgg+ on its deployment engine, for ``benchmarks/federated_secagg.py``.

The ``ServerApp`` runs Flower's legacy ``DefaultWorkflow`` with
``SecAggPlusWorkflow`` as its fit workflow and Flower's own ``FedAvg``; the ``ClientApp`` is a
NumPy client behind ``secaggplus_mod``. Both are loaded by Flower's SuperLink / SuperNodes from
a Flower App Bundle that ``benchmarks/federated_secagg.py`` writes (its two components point
here), so nothing in this module starts a process or opens a socket itself.

Settings come from the run config (``[tool.flwr.app.config]``) and each SuperNode's node
config: ``params``, ``rounds``, ``clients``, the SecAgg+ parameters, ``out`` (where the
ServerApp writes its JSON result); per node ``cid`` and ``drop-from`` (from that round on,
0: never, this client leaves each round after its masked vector was sent: it does not answer
the unmask stage). One Flower run thus measures rounds without and then with dropouts, so the
per-run start-up (SuperNode registration, bundle install) is paid once.

Round time: from ``configure_fit`` (the SecAgg+ setup stage asks for it first) to the end of
``aggregate_fit`` (after unmasking), the same definition as ``flower_fl.py`` and as ours.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from benchmarks.baselines.flower_fl import model, peak_rss_mb, quiet_flower, rss_mb

quiet_flower()

from flwr.app import Context, Message  # noqa: E402
from flwr.client import ClientApp, NumPyClient  # noqa: E402
from flwr.client.mod import secaggplus_mod  # noqa: E402
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays  # noqa: E402
from flwr.common.secure_aggregation.secaggplus_constants import (  # noqa: E402
    RECORD_KEY_CONFIGS,
    Key,
    Stage,
)
from flwr.server import LegacyContext, ServerApp, ServerConfig  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow  # noqa: E402

NUM_EXAMPLES = 100  # every client reports the same weight, as ours do in the benchmark


def client_step(cid: int) -> np.float32:
    """The fixed "training" of client ``cid``: a constant added to every weight (no learning)."""
    return np.float32(0.001 * (cid + 1))


# -- ServerApp --------------------------------------------------------------------------------

server_app = ServerApp()


@server_app.main()
def server_main(grid: Any, context: Any) -> None:
    cfg = context.run_config
    params, rounds, clients = int(cfg["params"]), int(cfg["rounds"]), int(cfg["clients"])
    windows: list[tuple[float, float]] = []  # time.monotonic(): the clock the proxy stamps
    final: dict[str, Any] = {}

    class TimedFedAvg(FedAvg):
        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            self._t0 = time.monotonic()
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            out = super().aggregate_fit(server_round, results, failures)
            windows.append((self._t0, time.monotonic()))
            final["weights"] = out[0]
            final["clients"] = [*final.get("clients", []), len(results)]
            return out

    strategy = TimedFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=clients,
        min_available_clients=clients,
        initial_parameters=ndarrays_to_parameters(model(params)),
    )
    base = rss_mb()  # idle: Flower imported, the initial model held (ours likewise)
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy
    )
    workflow = DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=int(cfg["num-shares"]),
            reconstruction_threshold=int(cfg["reconstruction-threshold"]),
            max_weight=float(cfg["max-weight"]),
            clipping_range=float(cfg["clipping-range"]),
            quantization_range=int(cfg["quantization-range"]),
            modulus_range=int(cfg["modulus-range"]),
        )
    )
    workflow(grid, legacy)
    peak = peak_rss_mb()  # before the check below, which holds two more models
    # the aggregate against plain FedAvg of the same fixed updates (equal weights): every
    # client's masked vector was received, dropouts included, so all of them are in the mean
    err = float("nan")
    if final.get("weights") is not None:
        got = parameters_to_ndarrays(final["weights"])
        want = model(params)
        shift = np.float32(np.mean([client_step(c) for c in range(clients)]))
        want = [w + np.float32(len(windows)) * shift for w in want]
        err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True))
    doc = {
        "round_times": [end - start for start, end in windows],
        "ends": [end for _, end in windows],
        "clients_per_round": final.get("clients", []),
        "peak_rss_mb": peak,
        "base_rss_mb": base,
        "max_abs_error_vs_fedavg": err,
    }
    tmp = f"{cfg['out']}.tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, str(cfg["out"]))  # whole or absent: the benchmark polls for it


# -- ClientApp --------------------------------------------------------------------------------


class _Client(NumPyClient):
    def __init__(self, cid: int) -> None:
        self.cid = cid

    def fit(self, parameters: list[np.ndarray], config: Any) -> Any:
        step = client_step(self.cid)
        for w in parameters:
            w += step
        return parameters, NUM_EXAMPLES, {}


def _client_fn(context: Context) -> Any:
    return _Client(int(context.node_config["cid"])).to_client()


def drop_after_masked_vector(msg: Message, ctxt: Context, call_next: Any) -> Message:
    """From round ``drop-from`` on (node config), fail the unmask stage: the server has this
    client's masked vector but never gets its shares, as when a client leaves the round after
    uploading (the dropout SecAgg+ recovers from with the survivors' shares)."""
    drop_from = int(ctxt.node_config.get("drop-from", 0))
    configs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
    if (
        drop_from
        and int(msg.metadata.group_id) >= drop_from  # the workflow's group id: the round
        and configs is not None
        and configs.get(Key.STAGE) == Stage.UNMASK
    ):
        raise ConnectionAbortedError("benchmark dropout: left after sending its masked vector")
    return call_next(msg, ctxt)


client_app = ClientApp(client_fn=_client_fn, mods=[drop_after_masked_vector, secaggplus_mod])
