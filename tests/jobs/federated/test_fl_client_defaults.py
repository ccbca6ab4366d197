"""Federated clients that work by default: unique ids, clear token errors, the job's classes
fixed by the server from what scikit-learn clients announce, refusals at start."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from structlog.testing import capture_logs

from sedna_core.config.federated import FederatedConfig
from sedna_core.errors import AuthenticationError, BackendError, ServiceUnavailableError
from sedna_core.jobs.federated import WS_PATH, AggregationServer, FederatedLearning

INIT = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]


class _Serving:
    def predict(self, x: Any) -> Any:
        return x

    def train(self, data: Any) -> None:
        pass


@pytest.mark.parametrize("worker", [None, "edge-a"])
def test_client_id_is_unique_unless_worker_name_is_set(
    monkeypatch: pytest.MonkeyPatch, worker: str | None
) -> None:
    if worker is None:
        monkeypatch.delenv("WORKER_NAME", raising=False)
    else:
        monkeypatch.setenv("WORKER_NAME", worker)
    a = FederatedLearning(estimator=_Serving(), backend="custom")
    b = FederatedLearning(estimator=_Serving(), backend="custom")
    if worker is None:
        assert a.client_id != b.client_id  # two processes of one program never collide
        assert re.fullmatch(r"[A-Za-z0-9._-]+-\d+-[0-9a-f]{6}", a.client_id)
    else:
        assert a.client_id == b.client_id == worker  # Sedna's controller names its workers


async def test_a_wrong_token_says_to_check_sedna_token(client_factory: Any, bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=1, port=0, token="s3cret", initial_weights=INIT
    )
    await server.astart()
    try:
        with capture_logs() as logs, pytest.raises(AuthenticationError) as err:
            await bounded(client_factory(server.ws_url, 1, token="guess").atrain([0]))
    finally:
        await server.astop()
    assert "401/4401 from the server: check SEDNA_TOKEN" in str(err.value)
    ours = [e for e in logs if e["logger"] == "sedna_core.jobs.federated._client"]
    warned = [e for e in ours if e["log_level"] == "warning"]
    assert [e["event"] for e in warned] == ["401/4401 from the server: check SEDNA_TOKEN"]


# the clients train in threads of one process, where warnings' filters are shared (and so
# the client's own silencing of ConvergenceWarning can race); one client per process has none
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("declared", [False, True], ids=["announced", "declared"])
async def test_unfitted_sklearn_clients_with_disjoint_labels_share_the_jobs_classes(
    bounded: Any, declared: bool
) -> None:
    x, y = make_blobs(n_samples=400, centers=4, n_features=5, random_state=0)
    shards = [(x[y < 2], y[y < 2]), (x[y >= 2], y[y >= 2])]  # each client: two of four classes
    server = AggregationServer("FedAvg", exit_round=5, participants_count=2, port=0)
    await server.astart()
    try:
        clients = [
            FederatedLearning(
                LogisticRegression(solver="saga", max_iter=1),
                address=server.ws_url,
                client_id=f"c{k}",
                classes=range(4) if declared else None,
                config=FederatedConfig.from_env({}, worker_name=f"c{k}"),
            )
            for k in range(2)
        ]
        await bounded(asyncio.gather(*(c.atrain(s) for c, s in zip(clients, shards, strict=True))))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    # declared classes are not announced: the server then fixes none
    assert result.status == "completed" and server._classes == (None if declared else [0, 1, 2, 3])
    assert result.weights[0].shape == (4, 5)
    for c in clients:  # both end with the global model over all four classes
        assert c.estimator.model.classes_.tolist() == [0, 1, 2, 3]
        assert c.estimator.evaluate((x, y))["accuracy"] > 0.9


async def test_announced_labels_are_checked(bounded: Any) -> None:
    server = AggregationServer("FedAvg", exit_round=1, participants_count=1, port=0)
    await server.astart()
    try:
        async with aiohttp.ClientSession() as session:
            url = server.ws_url.replace("ws://", "http://") + WS_PATH
            async with session.ws_connect(url) as ws:
                join = {"v": 1, "type": "join", "client_id": "c1", "labels": [{"a": 1}]}
                await ws.send_str(json.dumps(join))
                error = json.loads((await bounded(ws.receive())).data)
        assert error["type"] == "error" and "labels must be a list" in error["message"]
        assert server.clients == []
    finally:
        await server.astop()


def test_a_model_that_cannot_learn_across_rounds_is_refused_before_joining() -> None:
    x, y = make_blobs(n_samples=40, centers=2, n_features=3, random_state=0)
    # nothing listens on port 9: a refusal at start never gets as far as connecting
    fl = FederatedLearning(RandomForestClassifier(), address="ws://127.0.0.1:9")
    with pytest.raises(BackendError, match="LogisticRegression"):
        fl.train((x, y))


async def test_an_id_in_use_is_a_warning_that_says_what_to_do(
    client_factory: Any, raw_clients: Any, bounded: Any
) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=2, port=0, initial_weights=INIT
    )
    await server.astart()
    try:
        holder = await raw_clients(server.ws_url, "c1")  # a live connection under "c1"
        assert holder.welcome["type"] == "welcome"
        with capture_logs() as logs, pytest.raises(ServiceUnavailableError):
            await bounded(client_factory(server.ws_url, 1, attempts=1).atrain([0]))
    finally:
        await server.astop()
    warned = [
        e["event"]
        for e in logs
        if e["logger"] == "sedna_core.jobs.federated._client" and e["log_level"] == "warning"
    ]
    assert len(warned) == 2 and all("already connected" in w for w in warned)
    assert "give every client its own id (WORKER_NAME" in warned[0]


async def test_a_replaced_connection_is_a_warning_and_the_client_carries_on(
    client_factory: Any, raw_clients: Any, bounded: Any
) -> None:
    tokens = {"c1": "one", "c2": "two"}
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=2,
        port=0,
        client_tokens=tokens,
        initial_weights=INIT,
    )
    await server.astart()
    try:
        with capture_logs() as logs:
            c1 = client_factory(server.ws_url, 1, token="one")
            task = asyncio.ensure_future(c1.atrain([0]))
            await bounded(server.wait_until(lambda s: s.clients == ["c1"]))
            intruder = await raw_clients(server.ws_url, "c1", token="one")  # replaces c1 ...
            assert (await bounded(intruder.until("closed")))["code"] == 4409  # ... who returns
            c2 = client_factory(server.ws_url, 2, token="two")
            await bounded(asyncio.gather(task, c2.atrain([0])))
        assert (await bounded(server.wait())).status == "completed"
    finally:
        await server.astop()
    warned = [
        e["event"]
        for e in logs
        if e["logger"] == "sedna_core.jobs.federated._client" and e["log_level"] == "warning"
    ]
    assert len(warned) == 1 and "replaced this one (close 4409)" in warned[0]
    assert "WORKER_NAME" in warned[0]
