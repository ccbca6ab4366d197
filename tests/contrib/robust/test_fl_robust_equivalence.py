"""Median, trimmed mean, Krum and Multi-Krum give Flower's results on the same arrays."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from sedna_plugin_robust import FedMedian, FedTrimmedAvg, Krum, MultiKrum
from sedna_plugin_robust import _blocks as robust_blocks

from sedna_core.algorithms.aggregation import ArrayUpdate


@pytest.fixture(scope="module")
def agg_fns(tmp_path_factory: pytest.TempPathFactory) -> Any:
    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
    os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    os.environ["FLWR_HOME"] = str(tmp_path_factory.mktemp("flwr-home"))
    pytest.importorskip("flwr")
    from flwr.server.strategy import aggregate

    return aggregate


def _clients(seed: int, n: int, byzantine: int = 2) -> tuple[list[np.ndarray], list[tuple]]:
    rng = np.random.default_rng(seed)
    model = [rng.normal(size=(9, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    results = []
    for k in range(n):
        w = [(m + rng.normal(scale=0.1, size=m.shape)).astype(np.float32) for m in model]
        if k < byzantine:  # scaled, sign-flipped attackers
            w = [(-20.0 * x).astype(np.float32) for x in w]
        results.append((w, int(rng.integers(1, 100))))
    return model, results


def _ours(agg: Any, model: list[np.ndarray], results: list[tuple], sources: bool) -> list:
    agg.begin_round(model)
    for w, n in results:
        if sources:
            agg.add_update(ArrayUpdate(w, n))
        else:
            agg.accumulate(w, n)
    return agg.finish()


@pytest.mark.parametrize("sources", [False, True])
@pytest.mark.parametrize("n", [5, 10])
def test_median(agg_fns: Any, n: int, sources: bool) -> None:
    model, results = _clients(n, n)
    mine = _ours(FedMedian(), model, results, sources)
    for a, b in zip(mine, agg_fns.aggregate_median(results), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.2, 0.3, 0.45])
def test_trimmed_mean(agg_fns: Any, beta: float) -> None:
    model, results = _clients(1, 10)
    mine = _ours(FedTrimmedAvg(beta=beta), model, results, True)
    for a, b in zip(mine, agg_fns.aggregate_trimmed_avg(results, beta), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("f", "keep"), [(0, 0), (1, 0), (2, 0), (2, 3), (2, 5), (1, 8)])
def test_krum_and_multikrum(agg_fns: Any, f: int, keep: int) -> None:
    model, results = _clients(3 + f + keep, 10)
    agg = Krum(num_malicious_clients=f) if keep == 0 else MultiKrum(f, num_clients_to_keep=keep)
    mine = _ours(agg, model, results, True)
    theirs = agg_fns.aggregate_krum(results, f, keep)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # the attackers are never chosen
    attackers = [results[0][0][0], results[1][0][0]]
    assert not any(np.allclose(mine[0], x) for x in attackers)


def test_multikrum_default_keeps_n_minus_f() -> None:
    model, results = _clients(4, 6)
    got = _ours(MultiKrum(num_malicious_clients=2), model, results, False)
    honest = results[2:]
    total = sum(n for _, n in honest)
    expected = sum(w[0] * n for w, n in honest) / total
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)


def test_small_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch, agg_fns: Any) -> None:
    monkeypatch.setattr(robust_blocks, "BUDGET", 64)  # forces 1024-element blocks
    rng = np.random.default_rng(0)
    model = [rng.normal(size=(3000,)).astype(np.float32)]
    results = [
        ([m + rng.normal(size=m.shape).astype(np.float32) for m in model], 5) for _ in range(7)
    ]
    for a, b in zip(
        _ours(FedMedian(), model, results, True), agg_fns.aggregate_median(results), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    mine = _ours(Krum(1), model, results, True)
    np.testing.assert_allclose(mine[0], agg_fns.aggregate_krum(results, 1, 0)[0])


@pytest.mark.parametrize("params", [{"beta": 0.5}, {"beta": -0.1}])
def test_bad_parameters(params: dict) -> None:
    from sedna_core.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        FedTrimmedAvg(**params)
