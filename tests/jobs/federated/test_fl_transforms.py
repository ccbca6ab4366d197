"""Update transforms in whole jobs: a real server and real clients on loopback, the chain
negotiated in the welcome frame, compressed updates decoded and checked, DP accounting."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import aiohttp
import numpy as np
import pytest

from sedna_core.algorithms import BaseUpdateTransform
from sedna_core.config.federated import FederatedConfig
from sedna_core.errors import JobError
from sedna_core.jobs.federated import AggregationServer, FederatedLearning
from sedna_core.jobs.federated import _client as client_module

pytest.importorskip("sedna_plugin_transforms")

SHAPE = (200, 500)


class Mover:
    """Local training: a fixed, client-specific step from the global model (seeded)."""

    def __init__(self, k: int) -> None:
        rng = np.random.default_rng(k)
        self.step = (0.01 * rng.normal(size=SHAPE)).astype(np.float32)
        self.w = [np.zeros(SHAPE, np.float32)]

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        self.w = [self.w[0] + self.step]
        return {"loss": 1.0}

    def predict(self, x: Any) -> Any:
        return x

    def evaluate(self, data: Any, **kwargs: Any) -> dict[str, float]:
        return {"accuracy": 1.0}

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.w]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = [np.array(w, dtype=np.float32) for w in weights]


def _client(url: str, k: int, plugin_manager: Any = None) -> FederatedLearning:
    config = FederatedConfig.from_env(
        {}, worker_name=f"c{k}", reconnect_backoff=0.05, reconnect_attempts=3
    )
    return FederatedLearning(
        Mover(k),
        address=url,
        client_id=f"c{k}",
        config=config,
        backend="custom",
        plugin_manager=plugin_manager,
    )


async def _job(
    transforms: Any, rounds: int = 2, n: int = 3, bounded: Any = None, **server_kw: Any
) -> tuple[Any, list[FederatedLearning], AggregationServer]:
    server = AggregationServer(
        "FedAvg",
        exit_round=rounds,
        participants_count=n,
        port=0,
        round_deadline=60,
        initial_weights=[np.zeros(SHAPE, np.float32)],
        transforms=transforms,
        **server_kw,
    )
    await server.astart()
    try:
        clients = [_client(server.ws_url, k) for k in range(n)]
        await bounded(asyncio.gather(*(c.atrain([0] * 10) for c in clients)))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    return result, clients, server


def _exact(rounds: int, n: int) -> np.ndarray:
    return rounds * np.mean([Mover(k).step for k in range(n)], axis=0)


@pytest.fixture
def wire_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of the update frames clients send (the chain's wire format)."""
    sent: list[int] = []
    real = client_module.encode_chunks

    def counting(arrays: Any, **kw: Any) -> Any:
        for frame in real(arrays, **kw):
            sent.append(len(frame))
            yield frame

    monkeypatch.setattr(client_module, "encode_chunks", counting)
    return sent


async def test_uncompressed_baseline_and_int8(wire_bytes: list[int], bounded: Any) -> None:
    result, _, _ = await _job(None, bounded=bounded)
    plain = sum(wire_bytes)
    wire_bytes.clear()
    assert result.status == "completed"
    np.testing.assert_allclose(result.weights[0], _exact(2, 3), rtol=1e-5, atol=1e-7)

    result, clients, _ = await _job(["Int8"], bounded=bounded)
    assert result.status == "completed" and result.rounds == 2
    assert plain / sum(wire_bytes) > 3.9  # int8 and a scale per 1024 values
    err = np.abs(result.weights[0] - _exact(2, 3))
    step = max(float(np.abs(Mover(k).step).max()) for k in range(3)) / 127
    assert float(err.max()) <= 2 * step  # each round within one quantisation step
    assert float(err.mean()) < step / 4  # unbiased rounding: errors average out
    # every client ends with the server's model
    for c in clients:
        np.testing.assert_array_equal(c.estimator.get_weights()[0], result.weights[0])


async def test_topk_int8_fp16_chains(wire_bytes: list[int], bounded: Any) -> None:
    result, _, _ = await _job(["FP16"], bounded=bounded)
    assert result.status == "completed"
    np.testing.assert_allclose(result.weights[0], _exact(2, 3), rtol=2e-3, atol=1e-5)
    wire_bytes.clear()
    result, _, _ = await _job(
        [{"method": "TopK", "param": {"ratio": 0.05}}, "Int8"], rounds=3, bounded=bounded
    )
    assert result.status == "completed" and result.rounds == 3
    full = 3 * 3 * np.prod(SHAPE) * 4
    assert full / sum(wire_bytes) > 10


async def test_clip_noise_compress_with_accounting(bounded: Any) -> None:
    from sedna_core.service import HttpClient

    dp = {
        "method": "DifferentialPrivacyClientSideFixedClipping",
        "param": {"noise_multiplier": 0.8, "clipping_norm": 0.5, "seed": 7, "sampling_rate": 0.1},
    }
    server = AggregationServer(
        "FedAvg",
        exit_round=2,
        participants_count=3,
        port=0,
        round_deadline=60,
        initial_weights=[np.zeros(SHAPE, np.float32)],
        transforms=[dp, "Int8"],
    )
    await server.astart()
    try:
        clients = [_client(server.ws_url, k) for k in range(3)]
        await bounded(asyncio.gather(*(c.atrain([0] * 10) for c in clients)))
        result = await bounded(server.wait())
        async with HttpClient(server.url) as http:
            metrics = (await http.get("/metrics")).text()
    finally:
        await server.astop()
    assert result.status == "completed"
    eps = [r["transforms"]["epsilon"] for r in result.history]
    assert eps[0] < eps[1]
    from sedna_plugin_transforms import epsilon_of

    assert eps[1] == pytest.approx(epsilon_of(0.8, 0.1, 2, 1e-5))
    assert result.history[1]["transforms"]["noise_stddev"] == pytest.approx(0.8 * 0.5 / 3)
    assert 'sedna_fl_transform_value{name="epsilon"}' in metrics


async def test_privacy_budget_stops_the_job_cleanly(bounded: Any) -> None:
    from sedna_plugin_transforms import epsilon_of

    one, two = epsilon_of(1.0, 1.0, 1, 1e-5), epsilon_of(1.0, 1.0, 2, 1e-5)
    dp = {
        "method": "DifferentialPrivacyServerSideFixedClipping",
        "param": {
            "noise_multiplier": 1.0,
            "clipping_norm": 1.0,
            "seed": 1,
            "max_epsilon": (one + two) / 2,
        },
    }
    result, clients, _ = await _job([dp], rounds=5, bounded=bounded)
    assert result.status == "completed" and result.rounds == 1
    assert "privacy budget" in result.message
    assert result.history[-1]["transforms"]["epsilon"] == pytest.approx(one)
    for c in clients:  # the clients got the final model and stopped normally
        np.testing.assert_array_equal(c.estimator.get_weights()[0], result.weights[0])


class Masking(BaseUpdateTransform):
    """A transform only the server has (its clients lack the plugin)."""

    name: ClassVar[str] = "AcmeMasking"
    client_side: ClassVar[bool] = True

    def __init__(self) -> None:
        pass


async def test_client_lacking_a_piece_refuses_to_join(bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, port=0, round_deadline=5, max_retries=0, transforms=[Masking]
    )
    await server.astart()
    try:
        client = _client(server.ws_url, 0)
        with pytest.raises(JobError, match=r"AcmeMasking.*Install the plugin"):
            await bounded(client.atrain([0]))
    finally:
        await server.astop()


async def test_sedna_protocol_clients_refused_when_the_chain_acts_on_clients(
    bounded: Any,
) -> None:
    server = AggregationServer("FedAvg", exit_round=1, port=0, transforms=["Int8"])
    await server.astart()
    try:
        url = server.ws_url.replace("ws://", "http://") + "/FedAvg"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"type": "subscribe", "client_id": "s1"}))
            msg = await bounded(ws.receive())
            assert msg.type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4400
            assert "Sedna" in (msg.extra or "")
        assert server.stats["refused_transforms"] == 1
    finally:
        await server.astop()
    # a chain that acts on the server only lets them in
    server = AggregationServer(
        "FedAvg", exit_round=1, port=0, transforms=["DifferentialPrivacyServerSideFixedClipping"]
    )
    assert not server.transforms.client_side


async def test_undecodable_update_is_rejected_and_others_count(bounded: Any) -> None:
    """A client whose top-k indices are out of range is rejected; the round goes on."""
    from sedna_plugin_transforms import TopK

    class Broken(TopK):
        name: ClassVar[str] = "TopK"

        def encode(self, delta, ctx):  # type: ignore[no-untyped-def]
            out = super().encode(delta, ctx)
            out[0] = out[0].copy()
            out[0][-1] = 10**9  # beyond the tensor
            return out

    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=3,
        quorum=2,
        port=0,
        round_deadline=60,
        max_retries=0,
        initial_weights=[np.zeros(SHAPE, np.float32)],
        transforms=[{"method": "TopK", "param": {"ratio": 1.0, "error_feedback": False}}],
    )
    # the third client's own plugins make "TopK" the broken one
    from types import SimpleNamespace

    from sedna_core.backends import _hooks as core_hooks
    from sedna_core.plugins import SednaPluginManager, hookimpl

    pm = SednaPluginManager()
    pm.register(core_hooks, name="sedna-core")
    pm.register(
        SimpleNamespace(sedna_register_update_transforms=hookimpl(lambda: [Broken])),
        name="broken",
    )
    await server.astart()
    try:
        clients = [_client(server.ws_url, k) for k in range(2)] + [_client(server.ws_url, 2, pm)]
        await bounded(asyncio.gather(*(c.atrain([0] * 10) for c in clients)))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert isinstance(clients[2]._transforms.transforms[0], Broken)
    assert result.status == "completed"
    assert result.history[0]["rejected"] == {"c2": "decode"}
    np.testing.assert_allclose(result.weights[0], _exact(1, 2), rtol=1e-5, atol=1e-7)


# -- sedna serve aggregation --transforms ----------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "says"),
    [
        ("Int8,TopKX", "no update_transform algorithm named 'TopKX'"),
        ('[{"method": "Int8", "param": {"block": 0}}]', "block must be a positive integer"),
        ('{"method": "TopK", "param": {"ratoi": 0.1}}', "has no parameter(s) ratoi"),
        ('[{"method": "Int8"', "not valid JSON"),
    ],
)
def test_cli_transforms_mistakes_are_one_line_usage_errors(
    chain: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sedna_core.cli.main import main

    rc = main(["serve", "aggregation", "--port", "0", "--transforms", chain])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"sedna serve aggregation: --transforms {chain!r}: ")
    assert says in err and err.count("\n") == 1


async def test_cli_transforms_run_a_compressed_job(bounded: Any, tmp_path: Any) -> None:
    """The JSON spelling with parameters, in a served job with real clients."""
    import os
    import subprocess
    import sys

    init = tmp_path / "init.npz"
    np.savez(init, np.zeros(SHAPE, np.float32))
    chain = '[{"method": "TopK", "param": {"ratio": 1.0}}, "Int8"]'
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sedna_core.cli.main",
            "serve",
            "aggregation",
            "--port",
            "0",
            "--participants",
            "2",
            "--exit-round",
            "2",
            "--json",
            "--linger",
            "2",
            "--initial-weights",
            str(init),
            "--transforms",
            chain,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEDNA_LOG_FORMAT": "json"},
    )
    try:
        line = await bounded(asyncio.to_thread(proc.stdout.readline))
        assert "listening on ws://127.0.0.1:" in line, line + proc.stderr.read()
        clients = [_client(line.strip().rsplit(" ", 1)[-1], k) for k in range(2)]
        await bounded(asyncio.gather(*(c.atrain([0] * 10) for c in clients)))
        out, err = await bounded(asyncio.to_thread(proc.communicate))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "job completed: 2 round(s)"
    assert [t.name for t in clients[0]._transforms.transforms] == ["TopK", "Int8"]
    got = clients[0].estimator.get_weights()[0]
    step = max(float(np.abs(Mover(k).step).max()) for k in range(2)) / 127
    assert float(np.abs(got - _exact(2, 2)).max()) <= 2 * step  # int8 quantisation only
