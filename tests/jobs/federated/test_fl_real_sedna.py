"""Mixed fleets with KubeEdge Sedna's real federated client (``../shared/peers/sedna-lib``):
two real Sedna clients and one native client sending float64, in one job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from sedna_core.config.federated import FederatedConfig
from sedna_core.jobs.federated import AggregationServer, FederatedLearning

SHAPES = [(4, 3), (3,)]

#: Sedna's own client loop (FederatedLearning.train -> AggregationClient), unchanged. Sedna's
#: generic backend leaves get/set_weights unimplemented and this venv has no TensorFlow, so the
#: two methods are set to exactly what Sedna's KerasBackend does (tolist / np.array).
SEDNA_CLIENT = r"""
import json, os
import numpy as np
from sedna.backend.base import BackendBase
BackendBase.get_weights = lambda self: [x.tolist() for x in self.estimator.get_weights()]
BackendBase.set_weights = lambda self, w: self.estimator.set_weights([np.array(x) for x in w])
from sedna.core.federated_learning import FederatedLearning

class Target:
    def __init__(self, k):
        self.k = k
        self.w = [np.zeros((4, 3)), np.zeros(3)]
    def train(self, train_data, valid_data=None, **kwargs):
        self.w = [(w + self.k) / 2 for w in self.w]
        return {}
    def get_weights(self):
        return self.w
    def set_weights(self, weights):
        self.w = weights
    def save(self, path):
        with open(path, "w") as fh:
            fh.write("model")

fl = FederatedLearning(estimator=Target(float(os.environ["K"])), aggregation="FedAvg")
fl.train(list(range(int(os.environ["N"]))))
print("FINAL " + json.dumps([w.tolist() for w in fl.estimator.estimator.w]), flush=True)
"""


class Float64Target:
    """A native client whose framework holds float64 (numpy, scikit-learn)."""

    def __init__(self, k: float) -> None:
        self.k = k
        self.w = [np.zeros(s) for s in SHAPES]

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        self.w = [(w + self.k) / 2 for w in self.w]
        return {}

    def predict(self, x: Any) -> Any:
        return x

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.w]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = [np.asarray(w, dtype=np.float64) for w in weights]


@pytest.fixture
async def local_controller() -> AsyncIterator[str]:
    """Sedna's workers report every round to their local controller: a stand-in on loopback."""

    async def info(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/sedna/workers/{name}/info", info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
async def test_two_real_sedna_clients_and_a_float64_native_client(
    real_sedna: Any, local_controller: str, bounded: Any, tmp_path: Path, dtype: Any
) -> None:
    rounds = 2
    server = AggregationServer(
        "FedAvg",
        exit_round=rounds,
        participants_count=3,
        port=0,
        job_name="mixed",
        initial_weights=[np.zeros(s, dtype) for s in SHAPES],
    )
    await server.astart()
    procs = []
    try:
        for name, k, n in (("edge-1", 1.0, 30), ("edge-2", 2.0, 50)):
            env = real_sedna.env(
                AGG_PORT=server.port,
                WORKER_NAME=name,
                JOB_NAME="mixed",
                MODEL_URL=str(tmp_path / name),
                LC_SERVER=local_controller,
                K=k,
                N=n,
            )
            procs.append(real_sedna.popen(SEDNA_CLIENT, env))
        native = FederatedLearning(
            Float64Target(4.0),
            address=server.ws_url,
            client_id="native",
            config=FederatedConfig.from_env({}, worker_name="native"),
            backend="custom",
        )
        await bounded(native.atrain(list(range(20))), 180)
        result = await bounded(server.wait(), 180)
        outputs = [await bounded(asyncio.to_thread(p.communicate), 180) for p in procs]
    finally:
        await server.astop()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    # the float64 update was converted, never refused; nobody was asked to resend
    assert result.status == "completed", result.message
    assert [r["clients"] for r in result.history] == [["edge-1", "edge-2", "native"]] * rounds
    assert all(not r["rejected"] for r in result.history)
    assert server.stats["retries"] == 0
    # aggregated in the job's dtype: float64 gives Sedna's own server's precision
    g = 0.0
    for _ in range(rounds):
        g = (30 * (g + 1) / 2 + 50 * (g + 2) / 2 + 20 * (g + 4) / 2) / 100
    assert all(w.dtype == dtype for w in result.weights)
    rtol = 1e-15 if dtype == np.float64 else 1e-7
    np.testing.assert_allclose(result.weights[0], g, rtol=rtol)
    for out, _ in outputs:
        final = json.loads(out.split("FINAL ", 1)[1])
        np.testing.assert_allclose(np.asarray(final[1]), g, rtol=rtol)
