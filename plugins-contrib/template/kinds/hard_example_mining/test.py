"""Tests of the {{ algorithm_name }} rule."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_core.plugins import create_algorithm

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def test_created_from_strings(sedna_pm) -> None:
    miner = create_algorithm(Algo.kind, {"method": Algo, "param": {"margin": "0.25"}})
    assert isinstance(miner, Algo) and miner.margin == 0.25


@pytest.mark.parametrize(
    ("result", "hard"),
    [
        ([0.9, 0.05, 0.05], False),
        ([0.5, 0.45, 0.05], True),
        ([1.0], False),  # one class: cannot be judged
        ([0.5, float("nan")], False),
        ([1.5, -0.5], False),
        ("not a result", False),
    ],
)
def test_rule(result, hard) -> None:
    assert Algo(margin=0.1)(result) is hard


def test_batch_equals_per_sample() -> None:
    rng = np.random.default_rng(0)
    batch = rng.dirichlet(np.ones(4), size=32)
    miner = Algo(margin=0.2)
    assert miner.mine(batch).tolist() == [miner(p) for p in batch]
