"""What calibration relies on (``hardness`` and ``at_hardness`` decide exactly as the threshold
does) and the one warning a miner gives when fed what it cannot judge."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_plugin_hem import (
    ConfidenceFilter,
    CrossEntropyFilter,
    EntropyFilter,
    IBTFilter,
    MarginFilter,
    RandomFilter,
    ThresholdFilter,
)
from structlog.testing import capture_logs

PROBABILITY_MINERS = [ConfidenceFilter, CrossEntropyFilter, MarginFilter, EntropyFilter]


@pytest.mark.parametrize("cls", PROBABILITY_MINERS)
def test_at_hardness_decides_exactly_where_hardness_exceeds_the_cut(cls):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6) * 0.3, size=500)
    p[:3] = [[1 / 6] * 6, [1, 0, 0, 0, 0, 0], [np.nan] * 6]
    miner = cls(invalid_is_hard=True)
    h = miner.hardness(p)
    assert np.isnan(h[2]) and not np.isnan(h[:2]).any() and not np.isnan(h[3:]).any()
    for cut in [*np.quantile(h[~np.isnan(h)], [0.0, 0.1, 0.5, 0.9, 1.0]), h[0], h[1]]:
        at = miner.at_hardness(float(cut))
        expected = np.where(np.isnan(h), True, h > cut)
        np.testing.assert_array_equal(at.mine(p), expected)
        np.testing.assert_array_equal([at(row) for row in p], expected)  # per sample too
        assert at.invalid_is_hard is True  # the other parameters are kept
    assert cls.needs_probabilities is True
    # a list of rows (ragged path) gives the same hardness as the matrix
    np.testing.assert_array_equal(miner.hardness(list(p[3:10])), h[3:10])


def test_miners_that_do_not_judge_probabilities_say_so():
    for cls in (IBTFilter, ThresholdFilter, RandomFilter):
        assert cls.needs_probabilities is False
        assert not hasattr(cls, "hardness")


@pytest.mark.parametrize(
    ("batch", "said"),
    [
        (np.array([0, 3, 1, 2]), "class labels"),
        (np.array([[2.0, -1.0], [0.5, 0.5]]), "outside [0, 1]"),
        (np.zeros((3, 0)), "empty"),
        ([[0.5, 0.5], "cat", None], "not numeric"),
    ],
)
def test_unjudgeable_input_warns_once_per_miner(batch, said):
    miner = ConfidenceFilter()
    with capture_logs() as logs:
        for _ in range(3):
            miner.mine(batch)
        miner(batch[0] if len(batch) else batch)
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert len(warned) == 1
    assert said in warned[0]["event"] and "not hard" in warned[0]["event"]
    assert warned[0]["miner"] == "Confidence"


def test_good_input_and_empty_detections_do_not_warn():
    probs = np.random.default_rng(1).dirichlet(np.ones(4), size=20)
    boxes = [[[0, 0, 5, 5, 0.9, 1]], []]  # an image without detections is normal
    with capture_logs() as logs:
        ConfidenceFilter().mine(probs)
        IBTFilter().mine(boxes)
        ThresholdFilter()(boxes[1])
    assert not [e for e in logs if e["log_level"] == "warning"]


def test_box_miners_on_probabilities_name_the_classifier_miners():
    probs = np.random.default_rng(2).dirichlet(np.ones(10), size=50)
    for miner in (IBTFilter(), ThresholdFilter()):
        with capture_logs() as logs:
            assert not miner.mine(probs).any()
            miner.mine(probs)
        warned = [e["event"] for e in logs if e["log_level"] == "warning"]
        assert len(warned) == 1 and "flat vector" in warned[0]
        assert "Confidence or CrossEntropy" in warned[0]
