"""Each FedAvg-family strategy gives Flower's result on the same arrays, round after round."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from sedna_plugin_fedavg import FedAdagrad, FedAdam, FedAvg, FedAvgM, FedProx, FedYogi

from sedna_core.algorithms.aggregation import ArrayUpdate


@pytest.fixture(scope="module")
def flwr(tmp_path_factory: pytest.TempPathFactory) -> Any:
    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
    os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    os.environ["FLWR_HOME"] = str(tmp_path_factory.mktemp("flwr-home"))
    return pytest.importorskip("flwr")


def _model(rng: np.random.Generator) -> list[np.ndarray]:
    return [
        rng.normal(size=(7, 5)).astype(np.float32),
        rng.normal(size=(5,)).astype(np.float32),
        rng.normal(size=(3, 2, 4)).astype(np.float32),
    ]


def _updates(rng: np.random.Generator, model: list[np.ndarray], n: int) -> list[tuple]:
    return [
        (
            [(w + rng.normal(scale=0.3, size=w.shape)).astype(np.float32) for w in model],
            int(rng.integers(1, 500)),
        )
        for _ in range(n)
    ]


def _flower_round(flwr: Any, strategy: Any, rnd: int, updates: list[tuple]) -> list[np.ndarray]:
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

    results = [
        (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(w), n, {})) for w, n in updates
    ]
    params, _ = strategy.aggregate_fit(rnd, results, [])
    return parameters_to_ndarrays(params)


def _flower_strategy(flwr: Any, name: str, initial: list[np.ndarray], **kw: Any) -> Any:
    from flwr.common import ndarrays_to_parameters
    from flwr.server import strategy as st

    cls = getattr(st, name)
    return cls(initial_parameters=ndarrays_to_parameters(initial), **kw)


CASES = [
    (FedAvg, {}, "FedAvg", {}),
    (FedProx, {"proximal_mu": 0.5}, "FedProx", {"proximal_mu": 0.5}),
    (
        FedAvgM,
        {"server_momentum": 0.9, "server_learning_rate": 0.7},
        "FedAvgM",
        {"server_momentum": 0.9, "server_learning_rate": 0.7},
    ),
    (
        FedAvgM,
        {"server_momentum": 0.0, "server_learning_rate": 0.5},
        "FedAvgM",
        {"server_momentum": 0.0, "server_learning_rate": 0.5},
    ),
    (FedAdam, {}, "FedAdam", {}),
    (
        FedAdam,
        {"eta": 0.03, "beta_1": 0.5, "beta_2": 0.9, "tau": 1e-3},
        "FedAdam",
        {"eta": 0.03, "beta_1": 0.5, "beta_2": 0.9, "tau": 1e-3},
    ),
    (FedYogi, {}, "FedYogi", {}),
    (FedYogi, {"eta": 0.1, "tau": 1e-2}, "FedYogi", {"eta": 0.1, "tau": 1e-2}),
    (FedAdagrad, {}, "FedAdagrad", {}),
    (FedAdagrad, {"eta": 0.3, "tau": 1e-4}, "FedAdagrad", {"eta": 0.3, "tau": 1e-4}),
]


@pytest.mark.parametrize(("ours_cls", "ours_kw", "flower_name", "flower_kw"), CASES)
@pytest.mark.parametrize("use_sources", [False, True])
def test_same_as_flower_over_rounds(
    flwr: Any, ours_cls: type, ours_kw: dict, flower_name: str, flower_kw: dict, use_sources: bool
) -> None:
    rng = np.random.default_rng(7)
    initial = _model(rng)
    ours = ours_cls(**ours_kw)
    flower = _flower_strategy(flwr, flower_name, initial, **flower_kw)
    global_weights = initial
    for rnd in (1, 2, 3, 4):
        updates = _updates(rng, global_weights, 5)
        ours.begin_round(global_weights)
        for w, n in updates:
            if use_sources:
                ours.add_update(ArrayUpdate(w, n))
            else:
                ours.accumulate(w, n)
        mine = ours.finish()
        theirs = _flower_round(flwr, flower, rnd, updates)
        assert [m.dtype for m in mine] == [np.dtype(np.float32)] * 3
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
        global_weights = mine


def test_chunked_accumulation_equals_whole_updates() -> None:
    rng = np.random.default_rng(3)
    model = _model(rng)
    updates = _updates(rng, model, 4)
    whole = FedAvg().aggregate(model, updates)
    agg = FedAvg()
    agg.begin_round(model)
    for w, n in updates:
        agg.begin_update(n)
        for i, t in enumerate(w):
            flat = t.reshape(-1)
            for start in range(0, flat.size, 4):
                agg.accumulate_chunk(i, start, flat[start : start + 4])
        agg.end_update()
    chunked = agg.finish()
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_sedna_observed_fedavg_example() -> None:
    # Sedna's reference: n=(1, 3), w=(1, 5) -> 4.0
    out = FedAvg().aggregate(
        [np.zeros(1, np.float32)], [([np.ones(1, np.float32)], 1), ([np.full(1, 5, np.float32)], 3)]
    )
    assert out[0].tolist() == [4.0]


def test_state_round_trip_resumes_identically() -> None:
    rng = np.random.default_rng(11)
    model = _model(rng)
    rounds = [_updates(rng, model, 3) for _ in range(4)]
    straight = FedAdam(eta=0.05)
    g = model
    for ups in rounds:
        g = straight.aggregate(g, ups)
    first = FedAdam(eta=0.05)
    g2 = model
    for ups in rounds[:2]:
        g2 = first.aggregate(g2, ups)
    resumed = FedAdam(eta=0.05)
    resumed.load_state_dict({k: v.copy() for k, v in first.state_dict().items()})
    for ups in rounds[2:]:
        g2 = resumed.aggregate(g2, ups)
    for a, b in zip(g, g2, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_updates_keeps_global_and_float16_models() -> None:
    model = [np.arange(6, dtype=np.float16).reshape(2, 3)]
    agg = FedAvg()
    agg.begin_round(model)
    assert agg.finish()[0].tolist() == model[0].tolist()
    out = agg.aggregate(model, [([model[0] + 1], 1), ([model[0] + 3], 1)])
    assert out[0].dtype == np.float16
    np.testing.assert_array_equal(out[0], model[0] + 2)


def test_fedprox_sends_mu_to_clients() -> None:
    assert FedProx(proximal_mu=0.25).client_config() == {"proximal_mu": 0.25}
    assert FedAvg().client_config() == {}
