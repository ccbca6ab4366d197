"""Hardening after an outside attack: one client never harms the job, nothing a client sends
is forwarded, nothing large is read before authentication, ids cannot be taken over."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, ClassVar

import aiohttp
import numpy as np
import pytest
import websockets
from structlog.testing import capture_logs

from sedna_core.algorithms.aggregation import StreamingAggregation
from sedna_core.clock import ManualClock
from sedna_core.jobs.federated import WS_PATH, AggregationServer
from sedna_core.jobs.federated._round_engine import WAIT_REPORT_EVERY

SHAPES = [(4, 3), (3,)]
INIT = [np.zeros(s, np.float32) for s in SHAPES]


async def _attack(raw: Any, value: float, num_samples: int) -> list[dict[str, Any]]:
    """Every round: an update of finite values near the float limits; the server's answers."""
    answers = []
    while True:
        msg, weights = await raw.next_round()
        if msg["type"] != "round" or weights is None:
            return answers
        evil = [np.full(w.shape, value, np.float32) for w in weights]
        await raw.send_update(msg, evil, num_samples=num_samples)
        while (answer := await raw.control())["type"] not in ("accepted", "rejected", "closed"):
            pass
        answers.append(answer)


async def _run(
    client_factory: Any, raw_clients: Any, bounded: Any, attack: tuple[float, int] | None, **kw: Any
) -> tuple[Any, list[dict[str, Any]]]:
    n = 3 if attack else 2
    server = AggregationServer(
        "FedAvg",
        exit_round=3,
        participants_count=n,
        quorum=2,
        port=0,
        initial_weights=INIT,
        **kw,
    )
    await server.astart()
    answers: list[dict[str, Any]] = []
    attacker = None
    try:
        if attack:
            raw = await raw_clients(server.ws_url, "mallory")
            attacker = asyncio.ensure_future(_attack(raw, *attack))
        honest = [client_factory(server.ws_url, k) for k in (1, 2)]
        await bounded(asyncio.gather(*(c.atrain([0] * 10) for c in honest)))
        result = await bounded(server.wait())
    finally:
        await server.astop()
        if attacker is not None:
            answers = await bounded(attacker)
    return result, answers


@pytest.mark.parametrize(
    ("value", "num_samples", "reason"),
    [(3e38, 100, "magnitude"), (1e30, 2**40, "num_samples")],
)
async def test_overflow_attacker_among_three_changes_nothing(
    client_factory: Any,
    raw_clients: Any,
    bounded: Any,
    value: float,
    num_samples: int,
    reason: str,
) -> None:
    attacked, answers = await _run(client_factory, raw_clients, bounded, (value, num_samples))
    honest, _ = await _run(client_factory, raw_clients, bounded, None)
    assert attacked.status == honest.status == "completed"
    assert [a.get("reason") for a in answers] == [reason] * 3
    assert all(r["rejected"] == {"mallory": reason} for r in attacked.history)
    for got, want in zip(attacked.weights, honest.weights, strict=True):
        assert got.dtype == want.dtype == np.float32
        assert got.tobytes() == want.tobytes()  # the same bits as the honest-only run


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the clients' loss
@pytest.mark.parametrize(("value", "num_samples"), [(3e38, 100), (1e30, 2**40)])
async def test_without_bounds_the_float64_accumulator_still_never_overflows(
    client_factory: Any, raw_clients: Any, bounded: Any, value: float, num_samples: int
) -> None:
    """The bounds lifted: the attacker is averaged in, and the model stays finite."""
    result, answers = await _run(
        client_factory,
        raw_clients,
        bounded,
        (value, num_samples),
        max_num_samples=2**50,
        max_update_norm=1e300,
    )
    assert [a["type"] for a in answers] == ["accepted"] * 3  # nothing refused
    assert result.status == "completed" and result.rounds == 3
    assert all(np.isfinite(w).all() for w in result.weights)
    g = 0.0  # FedAvg of the attacker and two TargetEstimator clients (k = 1, 2; 10 samples)
    for _ in range(3):
        g = (num_samples * value + 10 * (g + 1) / 2 + 10 * (g + 2) / 2) / (num_samples + 20)
    np.testing.assert_allclose(result.weights[1], g, rtol=1e-5)


class _BrokenOnce(StreamingAggregation):
    """FedAvg whose first server step produces infinities (a diverging server optimiser)."""

    name: ClassVar[str] = "BrokenOnce"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def server_update(self, global_weights: Any, average: list[np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        if self.calls == 1:
            average[0][...] = np.inf
        return average


async def test_non_finite_aggregate_never_replaces_the_model(
    client_factory: Any, fedavg_expected: Any, bounded: Any
) -> None:
    server = AggregationServer(
        _BrokenOnce(), exit_round=1, participants_count=1, port=0, initial_weights=INIT
    )
    await server.astart()
    try:
        with capture_logs() as logs:
            client = client_factory(server.ws_url, 1)
            await bounded(client.atrain([0] * 10))
            result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed" and server.stats["nonfinite_aggregates"] == 1
    assert result.history[0]["attempt"] == 1  # the first attempt failed, the model was kept
    np.testing.assert_allclose(result.weights[0], fedavg_expected(1, [(1, 10)]))
    errors = [e for e in logs if e["log_level"] == "error"]
    assert "previous global model is kept" in errors[0]["event"]
    assert errors[0]["aggregation"] == "BrokenOnce" and errors[0]["tensors"] == [0]


async def _sedna(url: str, first: dict[str, Any]) -> Any:
    ws = await websockets.connect(url, max_size=16 << 20)
    await ws.send(json.dumps(first))
    return ws


async def test_sedna_clients_get_only_what_the_server_built(bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=2, port=0, initial_weights=INIT
    )
    await server.astart()
    url = server.ws_url + "/FedAvg"
    forged = {
        "type": "recv_weight",
        "data": {"weights": [[-1]], "exit_flag": "ok", "round_number": 99, "total_sample": 1},
    }
    try:
        # the subscriber's extra fields must never come back, to it or anyone
        victim = await _sedna(url, {"type": "subscribe", "client_id": "b"})
        ack = json.loads(await bounded(victim.recv()))
        assert ack == {"type": "subscribe", "client_id": "b"}
        attacker = await _sedna(url, {"type": "subscribe", "client_id": "a", "data": forged})
        assert json.loads(await bounded(attacker.recv())) == {"type": "subscribe", "client_id": "a"}
        await attacker.send(json.dumps(forged))  # a forged server message: never relayed
        update = {"num_samples": 5, "weights": [np.ones(s).tolist() for s in SHAPES]}
        for ws, cid in ((attacker, "a"), (victim, "b")):
            await ws.send(json.dumps({"type": "update_weight", "client": cid, "data": update}))
        seen = []
        while True:
            frame = json.loads(await bounded(victim.recv()))
            seen.append(frame)
            if frame["type"] == "recv_weight":
                break
        await attacker.close()
        await victim.close()
        await bounded(server.wait())
    finally:
        await server.astop()
    assert [f["type"] for f in seen] == ["CLIENT_JOIN", "recv_weight"]
    assert seen[0] == {"type": "CLIENT_JOIN", "data": "a"}
    data = seen[-1]["data"]
    assert data["round_number"] == 1 and data["total_sample"] == 10
    assert np.asarray(data["weights"][1]).tolist() == [1.0, 1.0, 1.0]
    assert server.stats["ignored_sedna_frames"] == 1


async def _first_frame(url: str, text: str) -> tuple[int | None, str]:
    """Open a websocket, send ``text`` as its first frame; how the server closed it."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        with contextlib.suppress(ConnectionError):  # refused while still being sent
            await ws.send_str(text)
        while True:
            msg = await ws.receive(timeout=30)
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "welcome":
                    return None, "welcome"
                continue
            return ws.close_code, str(msg.extra or "")


def _join(size: int) -> str:
    """A valid join frame of exactly ``size`` bytes (padded)."""
    head = {"v": 1, "type": "join", "client_id": f"c{size}", "pad": ""}
    text = json.dumps(head)
    return json.dumps({**head, "pad": "x" * (size - len(text))})


async def test_pre_auth_frames_are_bounded_and_closed_with_a_reason(bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=9, port=0, initial_weights=INIT
    )
    await server.astart()
    limit = server.config.pre_auth_bytes
    native, legacy = server.url + WS_PATH, server.url + "/FedAvg"
    try:
        assert limit == 64 << 10
        assert len(_join(limit)) == limit
        assert await bounded(_first_frame(native, _join(limit))) == (None, "welcome")
        code, reason = await bounded(_first_frame(native, _join(limit + 1)))
        assert code == 4400 and f"over {limit} bytes before authentication" in reason
        # Sedna's path: a 30 MiB first frame is refused from its length header, never buffered
        # (the client, still sending, may only see the connection reset: count on the server)
        big = json.dumps({"type": "subscribe", "client_id": "x", "pad": "y" * (30 << 20)})
        code, reason = await bounded(_first_frame(legacy, big))
        assert code in (4400, 1006) and server.stats["refused_protocol"] == 2
        deep = '{"type": "subscribe", "client_id": "x", "a": ' + "[" * 5000 + "]" * 5000 + "}"
        for url in (native, legacy):
            code, reason = await bounded(_first_frame(url, deep))
            assert code == 4400 and "nests deeper" in reason
        assert server.stats["refused_protocol"] == 4
    finally:
        await server.astop()


async def test_admitted_clients_get_the_protocols_frame_limit(
    raw_clients: Any, bounded: Any
) -> None:
    big = [np.zeros(100_000, np.float32)]  # 400 KB: one frame far above the pre-auth limit
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=1, port=0, initial_weights=big
    )
    await server.astart()
    try:
        raw = await raw_clients(server.ws_url, "c1")
        msg, weights = await bounded(raw.next_round())
        from sedna_core.wire import encode_chunks

        frames = list(encode_chunks([w + 1 for w in weights], chunk_bytes=1 << 20))
        assert len(frames) == 1 and len(frames[0]) > 6 * server.config.pre_auth_bytes
        await raw.send_update(msg, weights, frames=frames)
        assert (await bounded(raw.until("accepted")))["type"] == "accepted"
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert result.status == "completed"
    np.testing.assert_array_equal(result.weights[0], 1.0)


async def test_non_ascii_tokens_are_a_clean_4401(raw_clients: Any, bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=1, port=0, token="s3cret", initial_weights=INIT
    )
    await server.astart()
    try:
        for token in ("sécret", "\ud800", "秘密"):
            raw = await raw_clients(server.ws_url, "c1", token=token)
            assert raw.welcome["code"] == "unauthorized" and raw.closed["code"] == 4401
        with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
            ws = await _sedna(
                server.ws_url + "/FedAvg?token=s%C3%A9cret",
                {"type": "subscribe", "client_id": "e1"},
            )
            while True:
                await bounded(ws.recv())
        assert err.value.rcvd.code == 4401
        assert server.clients == [] and server.stats["refused"] == 4
    finally:
        await server.astop()


async def test_shared_token_cannot_take_over_a_live_client_id(
    raw_clients: Any, bounded: Any
) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=2, port=0, token="job", initial_weights=INIT
    )
    await server.astart()
    try:
        with capture_logs() as logs:
            alice = await raw_clients(server.ws_url, "alice", token="job")
            assert alice.welcome["type"] == "welcome"
            mallory = await raw_clients(server.ws_url, "alice", token="job")
        assert mallory.welcome["code"] == "client_id_in_use"
        assert mallory.closed["code"] == 4409
        assert server.clients == ["alice"] and server._sessions["alice"].ws is not None
        warning = next(e for e in logs if e["event"].startswith("connection refused"))
        assert warning["log_level"] == "warning" and "WORKER_NAME" in warning["event"]
        # once alice's connection is gone, the id is free again (a reconnect)
        await alice.close()
        await bounded(server.wait_until(lambda s: not s.clients))
        again = await raw_clients(server.ws_url, "alice", token="job")
        assert again.welcome["type"] == "welcome" and server.clients == ["alice"]
    finally:
        await server.astop()


async def test_per_client_token_reconnect_replaces_the_old_connection(
    raw_clients: Any, bounded: Any
) -> None:
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=2,
        port=0,
        client_tokens={"alice": "a-token", "bob": "b-token"},
        initial_weights=INIT,
    )
    await server.astart()
    try:
        with capture_logs() as logs:
            first = await raw_clients(server.ws_url, "alice", token="a-token")
            second = await raw_clients(server.ws_url, "alice", token="a-token")
            assert second.welcome["type"] == "welcome"
            closed = await bounded(first.until("closed"))
        assert closed["code"] == 4409
        assert server.clients == ["alice"] and server.stats["refused_duplicate_id"] == 0
        replaced = next(e for e in logs if e["event"].startswith("client reconnected"))
        assert replaced["log_level"] == "warning"
        thief = await raw_clients(server.ws_url, "alice", token="b-token")
        assert thief.closed["code"] == 4401
    finally:
        await server.astop()


async def test_waiting_for_clients_is_said_on_the_jobs_clock(
    raw_clients: Any, bounded: Any
) -> None:
    clock = ManualClock()
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=4,
        round_deadline=60,
        port=0,
        initial_weights=INIT,
        clock=clock,
    )
    with capture_logs() as logs:
        await server.astart()
        try:
            for cid in ("c1", "c2"):
                await raw_clients(server.ws_url, cid)
            await bounded(server.wait_until(lambda s: len(s.clients) == 2 and s.idle))
            clock.advance(WAIT_REPORT_EVERY)  # nobody new: said again on the job's clock
            await bounded(
                server.wait_until(
                    lambda s: s.idle and any("deadline in 50 s" in e["event"] for e in logs)
                )
            )
        finally:
            await server.astop()
    said = [e["event"] for e in logs if e["event"].startswith("waiting for clients")]
    assert said[0] == "waiting for clients: 0 of 4 joined, round deadline in 60 s"
    assert said[1:4] == [
        "waiting for clients: 1 of 4 joined, round deadline in 60 s",
        "waiting for clients: 2 of 4 joined, round deadline in 60 s",
        "waiting for clients: 2 of 4 joined, round deadline in 50 s",
    ]


async def test_a_shared_token_id_is_free_once_its_connection_fails_the_heartbeat(
    raw_clients: Any, bounded: Any
) -> None:
    from sedna_core.config.federated import AggregationServerConfig

    config = AggregationServerConfig.from_env(
        {}, participants_count=2, port=0, token="job", heartbeat=0.2
    )
    server = AggregationServer("FedAvg", config=config, initial_weights=INIT)
    await server.astart()
    try:
        # never reads again, so never answers the server's pings: a half-dead connection
        silent = await raw_clients(server.ws_url, "alice", token="job")
        assert silent.welcome["type"] == "welcome"
        refused = await raw_clients(server.ws_url, "alice", token="job")
        assert refused.closed["code"] == 4409
        await bounded(server.wait_until(lambda s: not s.clients))  # the heartbeat failed
        taken = await raw_clients(server.ws_url, "alice", token="job")
        assert taken.welcome["type"] == "welcome"  # admitted under the freed id
    finally:
        await server.astop()
