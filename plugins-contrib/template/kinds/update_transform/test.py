"""Tests of the {{ algorithm_name }} transform."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_core.algorithms import TransformContext
from sedna_core.algorithms.aggregation import specs_of
from sedna_core.errors import InvalidUpdateError

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def _delta() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(8, 5)).astype(np.float32), np.arange(3, dtype=np.int64)]


def test_roundtrip_keeps_signs_and_mean_step() -> None:
    delta = _delta()
    ctx = TransformContext(1, specs_of(delta))
    t = Algo()
    wire = t.encode(delta, ctx)
    out = t.decode(wire, specs_of(delta), ctx)
    assert np.array_equal(np.sign(out[0]), np.sign(delta[0]))
    np.testing.assert_allclose(np.abs(out[0]).mean(), np.abs(delta[0]).mean(), rtol=1e-6)
    np.testing.assert_array_equal(out[1], delta[1])  # integers pass through
    assert sum(w.nbytes for w in wire[:2]) < delta[0].nbytes / 3


def test_malformed_signs_are_refused() -> None:
    delta = _delta()
    ctx = TransformContext(1, specs_of(delta))
    wire = Algo().encode(delta, ctx)
    wire[0] = np.full_like(wire[0], 5)
    with pytest.raises(InvalidUpdateError):
        Algo().decode(wire, specs_of(delta), ctx)
