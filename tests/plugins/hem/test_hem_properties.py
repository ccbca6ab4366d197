"""Property tests: the batch form decides exactly as the per-sample form, sample by sample."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sedna_plugin_hem import (
    ConfidenceFilter,
    CrossEntropyFilter,
    EntropyFilter,
    IBTFilter,
    MarginFilter,
    RandomFilter,
    ThresholdFilter,
)

PROB_MINERS = (CrossEntropyFilter, ConfidenceFilter, MarginFilter, EntropyFilter)

# probabilities with the awkward values Sedna crashes on (0, 1) and some invalid ones
probability = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 1.0, 0.5, float("nan"), -0.1, 1.1, float("inf")]),
)
thresholds = st.floats(0.0, 2.5, allow_nan=False)


def normalised(rows: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return rows / rows.sum(axis=1, keepdims=True)


@given(
    st.sampled_from(PROB_MINERS),
    thresholds,
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=probability
    ),
    st.booleans(),
    st.booleans(),
)
def test_probability_batch_equals_per_sample(cls, threshold, matrix, normalise, invalid_is_hard):
    if normalise:
        matrix = normalised(np.abs(matrix))
    miner = cls(threshold, invalid_is_hard=invalid_is_hard)
    batch = miner.mine(matrix)
    assert batch.dtype == bool and batch.shape == (matrix.shape[0],)
    singles = [miner(row) for row in matrix]
    assert batch.tolist() == singles
    assert miner.mine(matrix.tolist()).tolist() == singles  # lists decide like arrays
    assert miner.mine(matrix.astype(np.float32)).tolist() == [
        miner(row) for row in matrix.astype(np.float32)
    ]


@given(
    st.sampled_from(PROB_MINERS),
    thresholds,
    st.lists(st.lists(probability, max_size=6), max_size=8),
)
def test_probability_ragged_batch(cls, threshold, rows):
    miner = cls(threshold)
    assert miner.mine(rows).tolist() == [miner(r) for r in rows]


boxes_strategy = st.lists(
    st.one_of(
        st.lists(st.floats(-1, 2, allow_nan=False), min_size=6, max_size=6),
        st.lists(probability, min_size=3, max_size=7),  # some boxes lack a score
    ),
    max_size=6,
)


@given(
    st.sampled_from([ThresholdFilter, IBTFilter]),
    st.floats(0, 1),
    st.lists(boxes_strategy, max_size=8),
)
def test_box_batch_equals_per_sample(cls, threshold, samples):
    miner = cls(threshold) if cls is ThresholdFilter else cls(threshold, 1 - threshold)
    assert miner.mine(samples).tolist() == [miner(s) for s in samples]


@given(st.integers(0, 2**63), st.floats(0, 1), st.lists(st.integers(0, 20), max_size=6))
def test_random_batches_equal_one_by_one(seed, ratio, chunks):
    total = sum(chunks)
    singles = RandomFilter(ratio, seed=seed)
    expected = [singles(None) for _ in range(total)]
    chunked = RandomFilter(ratio, seed=seed)
    got = [d for n in chunks for d in chunked.mine([None] * n).tolist()]
    assert got == expected
