"""SecAgg+ in whole jobs: a real server and real clients on loopback running the secure
stages (keys, shares relayed by the server, masked chunked upload, unmasking), with clients
dropping, too few survivors, malformed shares, and the combinations the server refuses."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import numpy as np
import pytest

from sedna_core.config.federated import FederatedConfig
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs.federated import AggregationServer, FederatedLearning

pytest.importorskip("sedna_plugin_transforms")
pytest.importorskip("cryptography")

from sedna_plugin_transforms.secagg import SecAggPlus

SHAPES = [(60, 50), (7,)]
CLIP, QUANT = 8.0, 1 << 22


class Mover:
    """Local training: a fixed, client-specific step from the global model (seeded)."""

    def __init__(self, k: int, fail: bool = False) -> None:
        rng = np.random.default_rng(100 + k)
        self.steps = [(0.05 * rng.normal(size=s)).astype(np.float32) for s in SHAPES]
        self.w = [np.zeros(s, np.float32) for s in SHAPES]
        self.fail = fail

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        if self.fail:
            raise RuntimeError("simulated crash during local training")
        self.w = [w + s for w, s in zip(self.w, self.steps, strict=True)]
        return {"loss": 1.0}

    def predict(self, x: Any) -> Any:
        return x

    def evaluate(self, data: Any, **kwargs: Any) -> dict[str, float]:
        return {"accuracy": 1.0}

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.w]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = [np.array(w, dtype=np.float32) for w in weights]


class DropsAfterUpload(FederatedLearning):
    """Disconnects right after its masked update went out (before it could unmask)."""

    async def _send_update(self, ws: Any, msg: Any, *args: Any) -> None:
        await super()._send_update(ws, msg, *args)
        if msg.get("task") == "train":
            await ws.close()
            raise JobError("simulated dropout after the masked upload")


def samples(k: int) -> int:
    return 20 + 15 * k


def client(url: str, k: int, cls: type[FederatedLearning] = FederatedLearning, **kw: Any) -> Any:
    config = FederatedConfig.from_env(
        {}, worker_name=f"c{k}", reconnect_backoff=0.05, reconnect_attempts=2
    )
    return cls(Mover(k, **kw), address=url, client_id=f"c{k}", config=config, backend="custom")


def secagg(**param: Any) -> list[dict[str, Any]]:
    return [{"method": "SecAggPlus", "param": {"seed": 7, **param}}]


async def run_job(
    clients: dict[int, tuple[type[FederatedLearning], dict[str, Any]]],
    transforms: Any,
    bounded: Any,
    **server_kw: Any,
) -> tuple[Any, list[Any], AggregationServer]:
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=len(clients),
        port=0,
        round_deadline=60,
        initial_weights=[np.zeros(s, np.float32) for s in SHAPES],
        transforms=transforms,
        **server_kw,
    )
    await server.astart()
    try:
        jobs = [client(server.ws_url, k, cls, **kw) for k, (cls, kw) in clients.items()]
        outcomes = await bounded(
            asyncio.gather(
                *(j.atrain([0] * samples(k)) for k, j in zip(clients, jobs, strict=True)),
                return_exceptions=True,
            )
        )
        result = await bounded(server.wait())
    finally:
        await server.astop()
    return result, outcomes, server


def fedavg(included: list[int]) -> list[np.ndarray]:
    total = sum(samples(k) for k in included)
    return [
        sum(samples(k) * Mover(k).steps[i].astype(np.float64) for k in included) / total
        for i in range(len(SHAPES))
    ]


def assert_fedavg(weights: list[np.ndarray], included: list[int], max_weight: float) -> None:
    """Within the quantisation error: one step (2c/q) per client on the weighted sum, over the
    sum of the weights, plus the weights' own rounding."""
    w = sum(min(samples(k) / max_weight, 1.0) for k in included)
    n = len(included)
    tol = n * (2 * CLIP / QUANT) / w + 0.2 * n / QUANT / w + 1e-6
    for got, want in zip(weights, fedavg(included), strict=True):
        assert np.abs(got - want).max() <= tol
    # and the tolerance is meaningful: far below the spread of the clients' steps
    assert tol < 0.01


async def test_aggregate_equals_fedavg(bounded: Any) -> None:
    plain = {k: (FederatedLearning, {}) for k in range(5)}
    result, outcomes, _server = await run_job(
        plain, secagg(num_shares=5, reconstruction_threshold=3), bounded
    )
    assert result.status == "completed", result.message
    assert all(not isinstance(o, BaseException) for o in outcomes)
    assert_fedavg(result.weights, list(range(5)), 1000.0)
    assert result.history[0]["clients"] == [f"c{k}" for k in range(5)]


async def test_two_of_ten_drop_after_the_masked_upload(bounded: Any) -> None:
    fleet = {k: (DropsAfterUpload if k in (3, 8) else FederatedLearning, {}) for k in range(10)}
    result, outcomes, _server = await run_job(
        fleet, secagg(num_shares=5, reconstruction_threshold=3), bounded
    )
    assert result.status == "completed", result.message
    dropped = [k for k, o in enumerate(outcomes) if isinstance(o, JobError)]
    assert dropped == [3, 8]
    # their masked updates arrived before they left: they count, unmasked by the others
    assert_fedavg(result.weights, list(range(10)), 1000.0)


async def test_two_of_ten_drop_before_the_masked_upload(bounded: Any) -> None:
    fleet = {k: (FederatedLearning, {"fail": k in (1, 6)}) for k in range(10)}
    result, _outcomes, _server = await run_job(
        fleet, secagg(num_shares=5, reconstruction_threshold=3), bounded, quorum=8
    )
    assert result.status == "completed", result.message
    included = [k for k in range(10) if k not in (1, 6)]
    # their pairwise masks were removed with their mask keys, rebuilt from the shares
    assert_fedavg(result.weights, included, 1000.0)
    assert result.history[0]["failed"] == ["c1", "c6"]


async def test_below_the_threshold_the_round_fails_cleanly(bounded: Any) -> None:
    fleet = {0: (FederatedLearning, {}), 1: (DropsAfterUpload, {}), 2: (FederatedLearning, {})}
    result, _outcomes, server = await run_job(
        fleet, secagg(num_shares=3, reconstruction_threshold=3), bounded, max_retries=0
    )
    assert result.status == "failed"
    assert "Secure aggregation" in result.message
    assert "only 2 client(s) revealed their shares" in result.message
    assert "reconstruction threshold 3" in result.message
    # the previous global model is kept
    assert all((w == 0).all() for w in result.weights)
    assert server.stats["secagg_failed_rounds"] == 1


async def test_too_few_masked_updates_names_the_threshold(bounded: Any) -> None:
    fleet = {k: (FederatedLearning, {"fail": k in (0, 1)}) for k in range(5)}
    result, _outcomes, _server = await run_job(
        fleet,
        secagg(num_shares=5, reconstruction_threshold=4),
        bounded,
        quorum=2,
        max_retries=0,
    )
    assert result.status == "failed"
    assert "only 3 masked update(s) arrived" in result.message
    assert "reconstruction threshold 4" in result.message


@pytest.mark.parametrize("how", ["missing", "garbled"])
async def test_malformed_shares_are_rejected_without_breaking_the_round(
    bounded: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """c5 sends a shares frame the server refuses (a neighbour's ciphertext missing), or one
    whose ciphertext to one neighbour does not decrypt: the round completes either way."""
    original = SecAggPlus.client_round

    def client_round(self: SecAggPlus, number: int, attempt: int, cid: str) -> Any:
        secret = original(self, number, attempt, cid)
        if cid != "c5":
            return secret
        share_keys = secret.share_keys

        def bad_share_keys(*args: Any) -> tuple[dict[str, bytes], bytes]:
            ciphertexts, commitment = share_keys(*args)
            first = sorted(ciphertexts)[0]
            if how == "missing":
                del ciphertexts[first]
            else:
                ciphertexts[first] = bytes(len(ciphertexts[first]))
            return ciphertexts, commitment

        secret.share_keys = bad_share_keys
        return secret

    monkeypatch.setattr(SecAggPlus, "client_round", client_round)
    fleet = {k: (FederatedLearning, {}) for k in range(6)}
    result, _outcomes, server = await run_job(
        fleet, secagg(num_shares=5, reconstruction_threshold=3), bounded, quorum=5
    )
    assert result.status == "completed", result.message
    if how == "missing":
        assert server.stats["rejected_secagg"] == 1
        assert result.history[0]["rejected"] == {"c5": "secagg"}
        assert_fedavg(result.weights, list(range(5)), 1000.0)
    else:
        assert_fedavg(result.weights, list(range(6)), 1000.0)


def test_combinations_that_need_single_updates_are_refused() -> None:
    weights = [np.zeros(3, np.float32)]
    dp_server = {
        "method": "DifferentialPrivacyServerSideFixedClipping",
        "param": {"noise_multiplier": 1.0, "clipping_norm": 1.0, "num_sampled_clients": 5},
    }
    with pytest.raises(ConfigError, match="client-side variant"):
        AggregationServer(initial_weights=weights, transforms=[dp_server, "SecAggPlus"])
    with pytest.raises(ConfigError, match="changes the update's format"):
        AggregationServer(initial_weights=weights, transforms=["Int8", "SecAggPlus"])
    with pytest.raises(ConfigError, match="last piece"):
        AggregationServer(initial_weights=weights, transforms=["SecAggPlus", "FP16"])
    with pytest.raises(ConfigError, match="distance"):
        AggregationServer(initial_weights=weights, transforms=["SecAggPlus"], max_update_norm=5.0)
    dp_client = {**dp_server, "method": "DifferentialPrivacyClientSideFixedClipping"}
    AggregationServer(initial_weights=weights, transforms=[dp_client, "SecAggPlus"])


def test_robust_aggregators_are_refused() -> None:
    pytest.importorskip("sedna_plugin_robust")
    for name in ("FedMedian", "Krum"):
        with pytest.raises(ConfigError, match="needs to see every update"):
            AggregationServer(name, transforms=["SecAggPlus"])


async def test_client_side_dp_before_secagg(bounded: Any) -> None:
    """Clients clip, the server noises the unmasked mean (no noise here: the aggregate is then
    FedAvg's), and the privacy accounting still reports each round."""
    dp = {
        "method": "DifferentialPrivacyClientSideFixedClipping",
        "param": {"noise_multiplier": 0.0, "clipping_norm": 100.0, "num_sampled_clients": 4},
    }
    fleet = {k: (FederatedLearning, {}) for k in range(4)}
    result, _outcomes, _server = await run_job(
        fleet, [dp, *secagg(num_shares=3, reconstruction_threshold=2)], bounded
    )
    assert result.status == "completed", result.message
    assert_fedavg(result.weights, list(range(4)), 1000.0)
    assert "clipping_norm" in result.history[0]["transforms"]


@pytest.mark.parametrize("misstep", ["update_first", "shares_to_a_stranger", "bad_key"])
async def test_a_misbehaving_client_is_dropped_and_the_round_goes_on(
    bounded: Any, raw_clients: Any, misstep: str
) -> None:
    """A hand-driven client breaks the stages: it uploads before the key stages, addresses a
    share to a client that is not its neighbour, or announces a key of the wrong length. It is
    rejected (reason ``secagg``); the three honest clients' round completes."""
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=4,
        quorum=3,
        port=0,
        round_deadline=60,
        initial_weights=[np.zeros(s, np.float32) for s in SHAPES],
        transforms=secagg(num_shares=4, reconstruction_threshold=2),
    )
    await server.astart()
    try:
        evil = await raw_clients(server.ws_url, "evil")
        honest = [client(server.ws_url, k) for k in range(3)]
        jobs = asyncio.gather(*(c.atrain([0] * samples(k)) for k, c in enumerate(honest)))
        msg, _ = await bounded(evil.next_round())
        head = {"v": 1, "round": msg["round"], "attempt": msg["attempt"]}
        if misstep == "update_first":
            wire = [np.zeros(s, np.uint32) for s in SHAPES] + [np.zeros(1, np.uint32)]
            await evil.send_update(msg, wire)
        else:
            size = 31 if misstep == "bad_key" else 32
            keys = {k: base64.b64encode(os.urandom(size)).decode() for k in ("enc", "mask")}
            await evil.ws.send_str(json.dumps({**head, "type": "secagg_keys", "keys": keys}))
        if misstep == "shares_to_a_stranger":
            await bounded(evil.until("secagg_peers"))
            shares = {"nobody": base64.b64encode(bytes(40)).decode()}
            await evil.ws.send_str(
                json.dumps(
                    {**head, "type": "secagg_shares", "shares": shares, "commitment": "AAAA"}
                )
            )
        rejected = await bounded(evil.until("rejected"))
        assert rejected["reason"] == "secagg"
        await bounded(jobs)
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed", result.message
    assert result.history[0]["rejected"] == {"evil": "secagg"}
    assert_fedavg(result.weights, [0, 1, 2], 1000.0)
