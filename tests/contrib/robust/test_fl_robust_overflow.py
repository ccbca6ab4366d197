"""Robust strategies sum in float64: finite float32 values near the maximum never overflow."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_plugin_robust import FedMedian, FedTrimmedAvg, Krum, MultiKrum


@pytest.mark.parametrize(
    "agg",
    [FedMedian(), FedTrimmedAvg(beta=0.0), MultiKrum(num_clients_to_keep=2), Krum()],
    ids=lambda a: a.name,
)
def test_huge_finite_values_give_a_finite_model(agg: object) -> None:
    glob = [np.zeros(6, np.float32)]
    top = np.float32(3.4e38)
    updates = [([np.full(6, top)], 10**9), ([np.full(6, top)], 10**9)]
    out = agg.aggregate(glob, updates)[0]  # type: ignore[attr-defined]
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, top)
