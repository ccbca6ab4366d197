"""Fixtures for the federated-learning tests: deterministic estimators and a raw protocol client."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest

from sedna_core.config.federated import FederatedConfig
from sedna_core.jobs.federated import WS_PATH, FederatedLearning
from sedna_core.wire import Assembler, encode_chunks

SHAPES = [(4, 3), (3,)]


class TargetEstimator:
    """Deterministic local training: move halfway towards this client's target.

    ``gate`` (a threading.Event) makes ``train`` block until set: a frozen client.
    """

    def __init__(self, k: float, gate: threading.Event | None = None) -> None:
        self.target = [np.full(s, k, np.float32) for s in SHAPES]
        self.w = [np.zeros(s, np.float32) for s in SHAPES]
        self.gate = gate
        self.trained = 0
        self.kwargs: list[dict[str, Any]] = []

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        if self.gate is not None:
            self.gate.wait()
        self.kwargs.append(kwargs)
        self.trained += 1
        self.w = [
            ((w + t) / 2).astype(np.float32) for w, t in zip(self.w, self.target, strict=True)
        ]
        return {"loss": float(np.abs(self.w[0] - self.target[0]).mean())}

    def predict(self, x: Any) -> Any:
        return x

    def evaluate(self, data: Any, **kwargs: Any) -> dict[str, float]:
        return {"accuracy": float(self.w[1].mean())}

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.w]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = [np.array(w, dtype=np.float32) for w in weights]


def make_client(
    url: str,
    k: int,
    *,
    gate: threading.Event | None = None,
    token: str | None = None,
    backoff: float = 0.05,
    attempts: int = 8,
) -> FederatedLearning:
    config = FederatedConfig.from_env(
        {},
        worker_name=f"c{k}",
        token=token,
        reconnect_backoff=backoff,
        reconnect_attempts=attempts,
    )
    return FederatedLearning(
        TargetEstimator(float(k), gate),
        address=url,
        client_id=f"c{k}",
        config=config,
        backend="custom",
    )


def expected_fedavg(rounds: int, clients: list[tuple[float, int]]) -> np.ndarray:
    """The global value after ``rounds`` of FedAvg over TargetEstimator clients (k, samples)."""
    g = 0.0
    total = sum(n for _, n in clients)
    for _ in range(rounds):
        g = sum(n * (g + k) / 2 for k, n in clients) / total
    return np.float32(g)


class RawClient:
    """Speaks the native protocol by hand, to send what a well-behaved client never would."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.welcome: dict[str, Any] = {}
        self.closed: dict[str, Any] = {}

    @classmethod
    async def connect(
        cls, url: str, client_id: str, token: str | None = None, *, version: int = 1
    ) -> RawClient:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(url.replace("ws://", "http://") + WS_PATH)
        client = cls(session, ws)
        await ws.send_str(
            json.dumps({"v": version, "type": "join", "client_id": client_id, "token": token})
        )
        client.welcome = await client.control()
        if client.welcome["type"] == "error":  # refused: read (and so answer) the close
            client.closed = await client.control()
        return client

    async def control(self, timeout: float = 30.0) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                return json.loads(msg.data)
            if msg.type != aiohttp.WSMsgType.BINARY:
                return {
                    "type": "closed",
                    "code": self.ws.close_code,
                    "data": msg.data,
                    "extra": msg.extra,
                }

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            msg = await self.control()
            if msg["type"] in (kind, "closed"):
                return msg

    async def weights(self, msg: dict[str, Any]) -> list[np.ndarray]:
        asm = Assembler()
        while not asm.done:
            frame = await self.ws.receive(timeout=30)
            asm.feed(frame.data)
        out = asm.result()
        assert isinstance(out, list)
        return out

    async def next_round(self) -> tuple[dict[str, Any], list[np.ndarray] | None]:
        msg = await self.until("round")
        if msg["type"] != "round":
            return msg, None
        return msg, (await self.weights(msg) if msg.get("weights") else None)

    async def send_update(
        self,
        msg: dict[str, Any],
        arrays: list[np.ndarray],
        *,
        num_samples: int = 10,
        tensors: list[dict[str, Any]] | None = None,
        frames: list[bytes] | None = None,
    ) -> None:
        spec = tensors or [
            {"name": None, "dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays
        ]
        await self.ws.send_str(
            json.dumps(
                {
                    "v": 1,
                    "type": "update",
                    "round": msg["round"],
                    "attempt": msg.get("attempt", 0),
                    "num_samples": num_samples,
                    "metrics": {},
                    "tensors": spec,
                }
            )
        )
        for frame in frames if frames is not None else encode_chunks(arrays, chunk_bytes=4096):
            await self.ws.send_bytes(frame)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@pytest.fixture
def client_factory() -> Callable[..., FederatedLearning]:
    return make_client


@pytest.fixture
def fedavg_expected() -> Callable[[int, list[tuple[float, int]]], np.ndarray]:
    return expected_fedavg


@pytest.fixture
def target_estimator() -> type[TargetEstimator]:
    return TargetEstimator


@pytest.fixture
async def raw_clients() -> AsyncIterator[Callable[..., Any]]:
    made: list[RawClient] = []

    async def connect(url: str, client_id: str, token: str | None = None, **kw: Any) -> RawClient:
        client = await RawClient.connect(url, client_id, token, **kw)
        made.append(client)
        return client

    yield connect
    for c in made:
        await c.close()


async def within(awaitable: Any, seconds: float = 60.0) -> Any:
    """A safety net so a broken test fails instead of hanging (not a timing assertion)."""
    return await asyncio.wait_for(awaitable, seconds)


@pytest.fixture
def bounded() -> Callable[..., Any]:
    return within
