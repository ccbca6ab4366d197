"""Sedna's rules (reference §6.2) and the defined answers for edge cases Sedna crashes on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sedna_plugin_hem import (
    CloudOnlyFilter,
    ConfidenceFilter,
    CrossEntropyFilter,
    EdgeOnlyFilter,
    EntropyFilter,
    IBTFilter,
    MarginFilter,
    RandomFilter,
    ThresholdFilter,
)

from sedna_core.errors import InvalidParameterError

NAN = float("nan")


def box(score: float, label: int = 1) -> list[float]:
    return [0.0, 0.0, 10.0, 10.0, score, label]


# -- CrossEntropy -------------------------------------------------------------------------------


def test_cross_entropy_sedna_examples() -> None:
    miner = CrossEntropyFilter()
    assert miner([0.5, 0.5]) is True
    assert miner([0.9, 0.1]) is False
    conf = miner.confidence(np.array([[0.9, 0.1]]))[0]
    assert conf == pytest.approx(0.531, abs=1e-3)


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        ([0.0, 1.0], False),  # Sedna: math domain error; 0 ln 0 = 0 -> certain
        ([0.0, 0.5, 0.5], True),
        ([1.0], False),  # Sedna: division by zero; one class is certain
        ([], False),  # empty: cannot be judged
        ([NAN, 1.0], False),  # NaN: cannot be judged
        ([1.2, -0.2], False),  # out of range: cannot be judged (Sedna's rule)
        ("abc", False),
        (None, False),
        (0.5, False),  # a scalar is not a probability vector
        ([[0.5, 0.5], [0.5, 0.5]], False),  # two vectors are not one result
    ],
)
def test_cross_entropy_edge_cases(vector: object, expected: bool) -> None:
    assert CrossEntropyFilter()(vector) is expected


def test_numpy_inputs_are_accepted() -> None:
    miner = CrossEntropyFilter()
    assert miner(np.array([0.5, 0.5], dtype=np.float32)) is True
    assert miner(np.array([[0.5, 0.5]])) is True  # a (1, K) row counts as one vector
    assert miner(np.array([0.5, 0.5], dtype=np.complex128)) is False


def test_invalid_is_hard_switch() -> None:
    assert CrossEntropyFilter(invalid_is_hard=True)([NAN, 1.0]) is True
    assert ConfidenceFilter(invalid_is_hard=True)([]) is True
    assert ThresholdFilter(invalid_is_hard=True)([[0, 0, 1, 1]]) is True
    out = ConfidenceFilter(invalid_is_hard=True).mine([[0.99, 0.01], [NAN, 0.1], []])
    assert out.tolist() == [False, True, True]


# -- Confidence, Margin, Entropy ----------------------------------------------------------------


def test_confidence_margin_entropy() -> None:
    assert ConfidenceFilter(threshold=0.8)([0.7, 0.2, 0.1]) is True
    assert ConfidenceFilter(threshold=0.8)([0.85, 0.1, 0.05]) is False
    assert MarginFilter(threshold=0.3)([0.5, 0.4, 0.1]) is True
    assert MarginFilter(threshold=0.3)([0.8, 0.1, 0.1]) is False
    assert MarginFilter(threshold=0.3)([0.9]) is False  # K = 1: margin is p itself
    assert EntropyFilter(threshold=0.5)([0.5, 0.5]) is True  # ln 2 = 0.693 nats
    assert EntropyFilter(threshold=0.5)([1.0, 0.0]) is False
    assert EntropyFilter().entropy(np.array([[0.25] * 4]))[0] == pytest.approx(math.log(4))


def test_margin_with_ties() -> None:
    assert MarginFilter(threshold=0.01)([0.45, 0.45, 0.1]) is True


# -- boxes: Threshold and IBT -------------------------------------------------------------------


def test_threshold_rule() -> None:
    miner = ThresholdFilter(threshold=0.5)
    assert miner([box(0.3), box(0.6)]) is True  # mean 0.45
    assert miner([box(0.5), box(0.6)]) is False
    assert miner([box(1.7)]) is False  # scores are not range-checked (as in Sedna)
    assert miner([]) is False  # empty
    assert miner([[0, 0, 1, 1]]) is False  # a box without a score
    assert miner([box(0.1), [0, 0, 1, 1]]) is False  # one box without a score spoils the result
    assert miner([box(NAN)]) is False
    assert miner([[0, 0, 1, 1, 0.2], [0, 0, 1, 1, 0.3, 1, 7]]) is True  # ragged boxes


def test_ibt_rule() -> None:
    # CRD example 0.9/0.9: hard if >= 10 % of boxes have score <= 0.9
    miner = IBTFilter(threshold_img=0.9, threshold_box=0.9)
    assert miner([box(0.5)] + [box(0.95)] * 9) is True
    assert miner([box(0.95)] * 10) is False
    assert miner([box(0.5), box(1.5)]) is False  # a score outside [0, 1]: invalid
    assert miner(np.array([box(0.95), box(0.2)])) is True
    assert miner([]) is False


def test_box_miner_dense_batch() -> None:
    miner = IBTFilter(threshold_img=0.5, threshold_box=0.5)
    batch = np.array([[box(0.1), box(0.2)], [box(0.9), box(0.8)], [box(0.9), box(NAN)]])
    assert miner.mine(batch).tolist() == [True, False, False]
    assert [miner(s) for s in batch] == [True, False, False]


# -- Random, CloudOnly, EdgeOnly ----------------------------------------------------------------


def test_random_is_seeded_and_chunking_free() -> None:
    one_by_one = RandomFilter(random_ratio=0.4, seed=7)
    singles = [one_by_one(None) for _ in range(50)]
    chunked = RandomFilter(random_ratio=0.4, seed=7)
    batches = np.concatenate([chunked.mine(range(n)) for n in (1, 0, 17, 32)])
    assert batches.tolist() == singles
    assert RandomFilter(random_ratio=0.4, seed=8).mine(range(50)).tolist() != singles


def test_random_ratio_is_respected_and_strings_convert() -> None:
    miner = RandomFilter(random_ratio="0.3", seed="1")  # type: ignore[arg-type]
    assert miner.random_ratio == 0.3
    share = miner.mine(np.zeros((20000, 3))).mean()
    assert 0.28 < share < 0.32
    assert RandomFilter(random_ratio=0.0, seed=1).mine(range(100)).sum() == 0
    assert RandomFilter(random_ratio=1.0, seed=1).mine(range(100)).all()


@pytest.mark.parametrize("bad", [-0.1, 1.5, "x", NAN])
def test_random_ratio_validated(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="random_ratio"):
        RandomFilter(random_ratio=bad)  # type: ignore[arg-type]


def test_threshold_validated() -> None:
    with pytest.raises(InvalidParameterError, match="threshold_cross_entropy"):
        CrossEntropyFilter(threshold_cross_entropy="high")  # type: ignore[arg-type]


def test_cloud_only_and_edge_only() -> None:
    assert CloudOnlyFilter()("anything") is True
    assert EdgeOnlyFilter()([0.1, 0.9]) is False
    assert CloudOnlyFilter().mine(np.zeros((3, 2))).tolist() == [True] * 3
    assert EdgeOnlyFilter().mine([]).tolist() == []


@pytest.mark.parametrize(
    "miner",
    [
        CrossEntropyFilter(),
        ConfidenceFilter(),
        MarginFilter(),
        EntropyFilter(),
        ThresholdFilter(),
        IBTFilter(),
        RandomFilter(seed=0),
        CloudOnlyFilter(),
        EdgeOnlyFilter(),
    ],
    ids=lambda m: m.name,
)
def test_empty_batch(miner: object) -> None:
    for empty in ([], np.zeros((0, 4))):
        out = miner.mine(empty)  # type: ignore[attr-defined]
        assert out.dtype == bool and out.shape == (0,)


def test_get_params_round_trip() -> None:
    miner = IBTFilter(threshold_img=0.9, threshold_box=0.8)
    assert miner.get_params() == {
        "threshold_img": 0.9,
        "threshold_box": 0.8,
        "invalid_is_hard": False,
    }
    assert "IBTFilter(" in repr(miner)
