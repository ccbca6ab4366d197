"""Tests of the {{ algorithm_name }} aggregation."""

from __future__ import annotations

import numpy as np
from sedna_core.algorithms import ArrayUpdate

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def _updates(values: list[float]) -> list[tuple[list[np.ndarray], int]]:
    return [([np.full((2, 3), v, np.float32), np.full(4, -v, np.float32)], 10) for v in values]


def test_an_outlier_does_not_move_it() -> None:
    start = [np.zeros((2, 3), np.float32), np.zeros(4, np.float32)]
    first, second = Algo().aggregate(start, _updates([1.0, 1.1, 0.9, 1.0, 1e6]))
    assert first.dtype == np.float32 and first.shape == (2, 3)
    np.testing.assert_allclose(first, 1.0, atol=0.1)
    np.testing.assert_allclose(second, -1.0, atol=0.1)


def test_identical_updates_give_themselves() -> None:
    start = [np.zeros((2, 3), np.float32), np.zeros(4, np.float32)]
    out = Algo().aggregate(start, _updates([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(out[0], 2.0, rtol=1e-6)


def test_sources_and_arrays_agree() -> None:
    start = [np.zeros((2, 3), np.float32), np.zeros(4, np.float32)]
    agg = Algo()
    agg.begin_round(start)
    for weights, n in _updates([1.0, 3.0, 8.0]):
        agg.add_update(ArrayUpdate(weights, n))
    np.testing.assert_allclose(agg.finish()[0], agg.aggregate(start, _updates([1.0, 3.0, 8.0]))[0])
