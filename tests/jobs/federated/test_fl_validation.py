"""Bad updates are rejected with a reason, bad clients are refused, everyone else is served."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from sedna_core.errors import AuthenticationError
from sedna_core.jobs.federated import AggregationServer
from sedna_core.wire import encode_chunks

INIT = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]


async def _one_round_of_abuse(raw: Any, kind: str) -> dict[str, Any]:
    """Receive a round, misbehave in one way, return the server's answer."""
    msg, weights = await raw.next_round()
    assert msg["type"] == "round" and weights is not None
    good = [w + 1 for w in weights]
    if kind == "malformed_frame":
        await raw.ws.send_str("this is not json")  # a bad control frame: rejected, kept connected
        assert (await raw.until("rejected"))["reason"] == "malformed"
        await raw.send_update(msg, good, frames=[b"\x00garbage" * 10])
    elif kind == "wrong_shape":
        await raw.send_update(msg, [np.zeros((3, 4), np.float32), good[1]])
    elif kind == "nan":
        bad = [good[0], good[1].copy()]
        bad[1][2] = np.nan
        await raw.send_update(msg, bad)
    elif kind == "extra_tensor":  # an oversized update: more than the model
        await raw.send_update(msg, [*good, np.zeros(1000, np.float32)])
    elif kind == "wrong_dtype":  # complex cannot become float32 (float64 could: converted)
        await raw.send_update(msg, [g.astype(np.complex64) for g in good])
    elif kind == "too_many_frames":  # the announced update, then more data than it holds
        frames = list(encode_chunks(good, chunk_bytes=4096))
        await raw.send_update(msg, good, frames=[*frames, frames[-1]])
        accepted = await raw.until("accepted")
        assert accepted["type"] == "accepted"
    return await raw.until("rejected")


async def test_bad_updates_are_rejected_and_others_served(
    client_factory: Any, raw_clients: Any, fedavg_expected: Any, bounded: Any
) -> None:
    cases = [
        "malformed_frame",
        "wrong_shape",
        "nan",
        "extra_tensor",
        "wrong_dtype",
        "too_many_frames",
    ]
    server = AggregationServer(
        "FedAvg",
        exit_round=len(cases) + 1,
        participants_count=2,
        quorum=1,
        port=0,
        initial_weights=INIT,
        chunk_bytes=1024,
    )
    await server.astart()
    try:
        raw = await raw_clients(server.ws_url, "mallory")
        good = client_factory(server.ws_url, 1)
        task = asyncio.ensure_future(good.atrain([0] * 10))
        reasons = {}
        for kind in cases:
            reply = await bounded(_one_round_of_abuse(raw, kind))
            reasons[kind] = (reply["reason"], reply["message"])
        # a single frame over the frame limit: the connection is closed with 1009
        msg, weights = await bounded(raw.next_round())
        await raw.send_update(msg, weights, frames=[b"\x00" * (2 << 20)])
        closed = await bounded(raw.until("closed"))
        assert closed["code"] == 1009
        await bounded(task)
        result = await bounded(server.wait())
    finally:
        await server.astop()
    assert {k: r for k, (r, _) in reasons.items()} == {
        "malformed_frame": "malformed",
        "wrong_shape": "shape",
        "nan": "nonfinite",
        "extra_tensor": "count",
        "wrong_dtype": "dtype",
        "too_many_frames": "malformed",
    }
    assert "NaN" in reasons["nan"][1] and "(4, 3)" not in reasons["wrong_shape"][1]
    assert result.status == "completed" and result.rounds == len(cases) + 1
    # mallory's one accepted update (too_many_frames, round 6) counted; nothing else did
    history = result.history
    assert [r["clients"] for r in history[:5]] == [["c1"]] * 5
    assert history[5]["clients"] == ["c1", "mallory"]
    assert server.stats["rejected_malformed"] == 3  # the text frame, garbage, extra frame
    assert server.stats["rejected_nonfinite"] == 1
    assert server.stats["oversized_frames"] == 1


async def test_wrong_token_is_refused(client_factory: Any, raw_clients: Any, bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=1, port=0, token="s3cret", initial_weights=INIT
    )
    await server.astart()
    try:
        intruder = client_factory(server.ws_url, 9, token="guess")
        with pytest.raises(AuthenticationError):
            await bounded(intruder.atrain([0]))
        raw = await raw_clients(server.ws_url, "raw", token=None)
        assert raw.welcome["type"] == "error" and raw.welcome["code"] == "unauthorized"
        assert raw.closed["code"] == 4401
        assert server.clients == [] and server.stats["refused"] == 2
        member = client_factory(server.ws_url, 1, token="s3cret")
        await bounded(member.atrain([0]))
        assert (await bounded(server.wait())).status == "completed"
    finally:
        await server.astop()


async def test_per_client_tokens(client_factory: Any, bounded: Any) -> None:
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
        with pytest.raises(AuthenticationError):  # c2 with c1's token
            await bounded(client_factory(server.ws_url, 2, token="one").atrain([0]))
        with pytest.raises(AuthenticationError):  # an id not in the table
            await bounded(client_factory(server.ws_url, 3, token="one").atrain([0]))
        ok = [client_factory(server.ws_url, k, token=tokens[f"c{k}"]) for k in (1, 2)]
        await bounded(asyncio.gather(*(c.atrain([0]) for c in ok)))
        assert (await bounded(server.wait())).status == "completed"
    finally:
        await server.astop()


async def test_protocol_version_and_join_checks(raw_clients: Any) -> None:
    server = AggregationServer("FedAvg", exit_round=1, port=0, initial_weights=INIT)
    await server.astart()
    try:
        future = await raw_clients(server.ws_url, "x", version=2)
        assert future.welcome["code"] == "protocol" and "version 2" in future.welcome["message"]
        bad_id = await raw_clients(server.ws_url, "no spaces allowed")
        assert bad_id.welcome["code"] == "protocol"
        assert server.clients == []
    finally:
        await server.astop()


async def test_unasked_update_is_refused(raw_clients: Any, bounded: Any) -> None:
    server = AggregationServer(
        "FedAvg", exit_round=1, participants_count=5, port=0, initial_weights=INIT
    )
    await server.astart()
    try:
        raw = await raw_clients(server.ws_url, "eager")
        await raw.ws.send_str(
            json.dumps({"v": 1, "type": "update", "round": 1, "num_samples": 3, "tensors": []})
        )
        reply = await bounded(raw.until("rejected"))
        assert reply["reason"] == "unexpected"
    finally:
        await server.astop()
