"""Helpers for the incremental-learning tests: a tiny JSON-file backend, a plugin manager with the
miners and the sklearn backend, a recording reporter, and SEA-like data."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from sedna_core.algorithms import BaseBackend
from sedna_core.errors import BackendError
from sedna_core.plugins import hookimpl


class TagModel:
    """A "model" that predicts a constant tag; ``hook`` runs after each row (tests interleave)."""

    def __init__(self, tag: str = "untrained") -> None:
        self.tag = tag


class TagBackend(BaseBackend):
    """Saves ``{"tag": ...}`` as JSON; predict answers the tag for every row, one row at a time
    (reading the model for each row, so an in-place reload during a call would show up)."""

    name: ClassVar[str] = "tag"
    framework: ClassVar[str] = "tag"
    model_suffix: ClassVar[str] = ".json"

    def __init__(self, estimator: Any = None) -> None:
        super().__init__(estimator if estimator is not None else TagModel())
        self.row_hook: Callable[[int], None] | None = None

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        x, _ = train_data
        self.model.tag = f"trained-{len(x)}"
        return {"loss": 0.5}

    def predict(self, data: Any, **kwargs: Any) -> np.ndarray:
        out = []
        for i in range(len(data)):
            out.append(self.model.tag)
            if self.row_hook is not None:
                self.row_hook(i)
        return np.asarray(out)

    def evaluate(self, data: Any, metrics: Any = None, **kwargs: Any) -> dict[str, float]:
        return {"accuracy": 1.0}

    def save(self, path: str | os.PathLike[str]) -> str:
        target = self._model_file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"tag": self.model.tag}))
        return str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        file = self._existing_model_file(path)
        try:
            doc = json.loads(file.read_text())
            self.model = TagModel(str(doc["tag"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"{file} is not a tag model: {exc}") from exc

    def get_weights(self) -> list[np.ndarray]:
        return []

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        pass


class Recorder:
    """A plugin that records lifecycle hooks."""

    def __init__(self) -> None:
        self.deployed: list[tuple[str, str, dict[str, float]]] = []
        self.hard: list[int] = []
        self._lock = threading.Lock()

    @hookimpl
    def sedna_model_deployed(self, job_name: str, version: str, metrics: Any) -> None:
        self.deployed.append((job_name, version, dict(metrics)))

    @hookimpl
    def sedna_hard_example_found(self, job_name: str, count: int, stats: Any) -> None:
        with self._lock:
            self.hard.append(count)


class FakeReporter:
    """Stands in for the LC reporter: keeps every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def report(
        self,
        kind: str,
        status: str | None,
        results: list[dict[str, Any]] | None = None,
        owner_info: dict[str, Any] | None = None,
    ) -> None:
        self.messages.append({"kind": kind, "status": status, "results": results})

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(m["kind"], m["status"]) for m in self.messages]

    def close(self) -> None:
        pass


@pytest.fixture
def il_pm(sedna_pm: Any) -> Iterator[tuple[Any, Recorder]]:
    """A plugin manager with the hem and sklearn plugins and a hook recorder."""
    import sedna_plugin_hem.hooks
    import sedna_plugin_sklearn.hooks

    sedna_pm.register(sedna_plugin_hem.hooks, name="hem")
    sedna_pm.register(sedna_plugin_sklearn.hooks, name="sklearn")
    recorder = Recorder()
    sedna_pm.register(recorder, name="recorder")
    yield sedna_pm, recorder


def sea(n: int, threshold: float = 8.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SEA-concept samples: label ``x0 + x1 > threshold``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 10.0, size=(n, 3))
    return x, (x[:, 0] + x[:, 1] > threshold).astype(np.int64)


@pytest.fixture
def tag_backend() -> type[TagBackend]:
    """The TagBackend class (test modules cannot import conftest under importlib mode)."""
    return TagBackend


@pytest.fixture
def sea_data() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return sea


@pytest.fixture
def fake_reporter() -> FakeReporter:
    return FakeReporter()
