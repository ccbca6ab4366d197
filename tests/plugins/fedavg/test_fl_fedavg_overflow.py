"""Finite client values can never overflow the aggregate: float64 accumulation, results in the
model's dtype."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_plugin_fedavg import FedAdam, FedAvg, FedAvgM

from sedna_core.algorithms.aggregation import ArrayUpdate

BIG = {np.float32: 3e38, np.float16: 6e4}


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("as_source", [False, True])
def test_values_near_the_dtype_maximum_average_to_a_finite_model(
    dtype: type, as_source: bool
) -> None:
    big = BIG[dtype]
    glob = [np.zeros((5, 7), dtype)]
    updates = [([np.full((5, 7), big, dtype)], 100), ([np.full((5, 7), big, dtype)], 2**40)]
    updates.append(([np.ones((5, 7), dtype)], 10))
    agg = FedAvg()
    agg.begin_round(glob)
    for weights, n in updates:
        if as_source:
            agg.add_update(ArrayUpdate(weights, n))
        else:
            agg.accumulate(weights, n)
    (out,) = agg.finish()
    assert out.dtype == dtype and np.isfinite(out).all()
    want = (float(dtype(big)) * (100 + 2**40) + 10.0) / (100 + 2**40 + 10)
    np.testing.assert_allclose(out.astype(np.float64), want, rtol=1e-3)


def test_float64_models_average_in_float64() -> None:
    glob = [np.zeros(3)]
    a, b = np.array([0.1, 0.2, 0.3]), np.array([1e-12, 3.0, 7.0])
    out = FedAvg().aggregate(glob, [([a], 3), ([b], 7)])[0]
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, (3 * a + 7 * b) / 10)


@pytest.mark.parametrize("cls", [FedAvgM, FedAdam])
def test_server_optimisers_stay_finite_on_huge_float32_updates(cls: type) -> None:
    glob = [np.zeros(4, np.float32)]
    agg = cls()
    out = agg.aggregate(
        glob, [([np.full(4, 3e38, np.float32)], 100), ([np.ones(4, np.float32)], 1)]
    )
    assert out[0].dtype == np.float32
    assert all(np.isfinite(v).all() for v in agg.state_dict().values())
