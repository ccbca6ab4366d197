"""Every backend learns in every job: sklearn, xgboost, torch, keras and a custom estimator x
federated, incremental and lifelong learning, on small real data (the joint-inference column is
tests/matrix/test_matrix_joint_inference.py).

- federated: 4 clients, Dirichlet(0.5) label shards of digits (seed 0), FedAvg, 10 rounds; the
  global model is within 5 points of the same backend trained centrally, or the backend is
  refused at start with the documented message (XGBoost: trees have no weights to average).
- incremental: the SEA drifting stream (shortened): at least one deployment after the drift and
  none before it.
- lifelong: two tasks (digits as they are, and with inverted pixels), one model per task; each
  task's accuracy is at least chance (1/10) + 30 points.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from sedna_core.config.federated import FederatedConfig
from sedna_core.errors import BackendError
from sedna_core.jobs.federated import AggregationServer, FederatedLearning

from .conftest import (
    BACKENDS,
    FACTORIES,
    Digits,
    labels_of,
    make_backend,
    require_backend,
)

ROUNDS = 10

#: per-round local training in a federated job (central training uses the conftest defaults)
FEDERATED_OPTIONS: dict[str, dict[str, Any]] = {
    "torch": {"epochs": 2},
    "keras": {"epochs": 1},
    "custom": {},
    "sklearn": {},
    "xgboost": {},
}


def _federated_model(name: str) -> Any:
    if name == "sklearn":  # one local epoch per round, continued from the global weights
        from sklearn.linear_model import LogisticRegression

        return make_backend(name, LogisticRegression(solver="saga", max_iter=1, random_state=0))
    if name == "custom":
        from .conftest import CustomSoftmax

        return make_backend(name, CustomSoftmax(epochs=1))
    return make_backend(name, **FEDERATED_OPTIONS[name])


async def _federated(name: str, parts: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    server = AggregationServer(
        "FedAvg", exit_round=ROUNDS, participants_count=len(parts), port=0, job_name="matrix"
    )
    await server.astart()
    try:
        clients = [
            FederatedLearning(
                _federated_model(name), address=server.ws_url, config=FederatedConfig.from_env({})
            )
            for _ in parts
        ]
        await asyncio.gather(*(c.atrain(p) for c, p in zip(clients, parts, strict=True)))
        result = await server.wait()
    finally:
        await server.astop()
    assert result.status == "completed", result.message
    return clients[0].estimator


@pytest.mark.parametrize("name", BACKENDS)
def test_federated(name: str, digits: Digits, dirichlet_parts: Any, central_scores: Any) -> None:
    require_backend(name)
    if name == "xgboost":
        from sedna_plugin_xgboost.backend import FEDERATED_REFUSAL

        with pytest.raises(BackendError) as err:
            asyncio.run(_federated(name, dirichlet_parts))
        assert str(err.value) == FEDERATED_REFUSAL
        return
    model = asyncio.run(_federated(name, dirichlet_parts))
    federated = float(np.mean(labels_of(model.predict(digits.x_test)) == digits.y_test))
    central = central_scores(name)
    print(f"federated {name}: {federated:.3f} (central {central:.3f})")
    assert federated >= central - 0.05, (federated, central)


def _scaled(name: str, model: Any) -> Any:
    """Networks see the stream's features (0 to 10) scaled to [0, 1], as any user would do."""
    if name == "torch":
        import torch

        class Scale(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x / 10.0

        return torch.nn.Sequential(Scale(), *model)
    if name == "keras":
        import keras

        return keras.Sequential([keras.Input((3,)), keras.layers.Rescaling(0.1), *model.layers])
    return model


@pytest.mark.parametrize("name", BACKENDS)
def test_incremental(name: str, tmp_path: Any) -> None:
    from sedna_core.config.incremental import IncrementalConfig
    from sedna_core.jobs.incremental import IncrementalLearning, LoopRunner, sea_drift_stream

    require_backend(name)
    drift_at = 1500
    # each retraining trains a fresh copy on the hard examples; a keras epoch costs more
    options = {
        "torch": {"epochs": 30, "learning_rate": 0.05},
        "keras": {"epochs": 10, "learning_rate": 0.05},
    }
    model = _scaled(name, FACTORIES[name](n_features=3, n_classes=2))
    job = IncrementalLearning(
        make_backend(name, model, **options.get(name, {})),
        {"method": "Margin", "param": {"threshold": 0.75}},
        config=IncrementalConfig.from_env({}),
        workspace=tmp_path / "ws",
        deploy_rule="accuracy_delta > 0.02 and paired_z > 2",
        min_eval_size=50,
        train_trigger="num_of_samples >= 25",
        mine_proba=True,
    )
    decisions: list[tuple[int, Any]] = []
    runner = LoopRunner(job, explore=0.01, on_decision=lambda p, d: decisions.append((p, d)))
    stream = sea_drift_stream(3000, drift_at=drift_at, seed=1)
    first = [next(stream) for _ in range(10)]
    runner.bootstrap(np.concatenate([b[0] for b in first]), np.concatenate([b[1] for b in first]))
    report = runner.run(stream)
    deployed = [pos for pos, d in decisions if d.deployed]
    print(f"incremental {name}: deployed at {deployed}", report.summary(drift_at=drift_at))
    assert deployed and min(deployed) > drift_at, deployed


@pytest.mark.parametrize("name", BACKENDS)
def test_lifelong(name: str, digits: Digits, tmp_path: Any) -> None:
    from sedna_core.jobs.lifelong import LifelongLearning

    require_backend(name)

    def tasks(x: np.ndarray) -> dict[str, np.ndarray]:
        both = np.vstack([x, 1.0 - x])  # task "inverted": the same digits, pixels inverted
        names = np.array(["plain"] * len(x) + ["inverted"] * len(x))
        return {"pixels": both, "task": names}

    ll = LifelongLearning(
        estimator=make_backend(name, FACTORIES[name]),
        task_definition={"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["task"]}},
        task_allocation={"method": "TaskAllocationByDataAttr", "param": {"attribute": ["task"]}},
        output_url=str(tmp_path),
    )
    ll.train((tasks(digits.x_train), np.concatenate([digits.y_train, digits.y_train])))
    test = tasks(digits.x_test)
    pred, _, _ = ll.inference(test)
    truth = np.concatenate([digits.y_test, digits.y_test])
    got = labels_of(np.asarray(pred))
    for task in ("plain", "inverted"):
        mine = test["task"] == task
        acc = float(np.mean(got[mine] == truth[mine]))
        print(f"lifelong {name} {task}: {acc:.3f}")
        assert acc >= 0.1 + 0.30, (task, acc)
