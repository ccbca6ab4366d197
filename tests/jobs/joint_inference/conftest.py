"""Fixtures for the joint-inference tests: tiny numpy models, real services on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sedna_plugin_hem.hooks

from sedna_core.jobs.joint_inference import BigModelService
from sedna_core.log import configure_logging

N_FEATURES = 8
N_CLASSES = 3


class LinearSoftmax:
    """A deterministic "model": softmax(x @ w); counts calls and samples it was asked for."""

    def __init__(self, seed: int = 0, scale: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(N_FEATURES, N_CLASSES)) * scale
        self.calls = 0
        self.samples = 0
        self.gate: threading.Event | None = None  # set: predict waits for it
        self.entered = threading.Event()
        self.fail: BaseException | None = None

    def fit(self, x: Any, y: Any) -> LinearSoftmax:
        return self

    def predict(self, x: Any) -> np.ndarray:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        arr = np.asarray(x, dtype=np.float64)
        self.samples += len(arr)
        logits = arr @ self.w
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def load(self, model_url: str) -> None:
        with np.load(model_url, allow_pickle=False) as data:
            self.w = data["w"]


@pytest.fixture(autouse=True, scope="session")
def _logging_configured() -> None:
    """Configure logging up front, so a job's first configure_logging() cannot replace a test's
    structlog.testing.capture_logs()."""
    configure_logging()


@pytest.fixture
def models() -> SimpleNamespace:
    """An edge model (unsure: small weights) and a cloud model (confident: large weights)."""
    return SimpleNamespace(
        edge=LinearSoftmax(seed=1, scale=0.3),
        cloud=LinearSoftmax(seed=2, scale=3.0),
        cls=LinearSoftmax,
    )


@pytest.fixture
def samples() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(40, N_FEATURES))


@pytest.fixture
def hem_pm(sedna_pm: Any) -> Any:
    """The process-wide plugin manager for the test, holding only sedna-plugin-hem."""
    sedna_pm.register(sedna_plugin_hem.hooks, name="sedna-plugin-hem")
    return sedna_pm


@pytest.fixture
def serve(models: SimpleNamespace) -> Iterator[Callable[..., BigModelService]]:
    """Start BigModelServices on 127.0.0.1 (ephemeral ports); all are stopped at teardown."""
    started: list[BigModelService] = []

    def start(estimator: Any = None, **kwargs: Any) -> BigModelService:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("job_name", "ji")
        svc = BigModelService(estimator if estimator is not None else models.cloud, **kwargs)
        started.append(svc)
        return svc.start(block=False)

    yield start
    for model in (models.cloud, models.edge):
        if model.gate is not None:
            model.gate.set()  # release stalled predictions before stopping
    for svc in started:
        svc.close()


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) for the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
