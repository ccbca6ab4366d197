"""Tests of {{ dist_name }}: the conformance kit, registration, the rule."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_core.plugins import create_algorithm
from sedna_core.testing import check_algorithm, parametrize_with_checks

from {{ package }} import hooks
from {{ package }}.miner import {{ class_name }}


@parametrize_with_checks([{{ class_name }}])
def test_conformance(algorithm, check) -> None:
    check(algorithm)


def test_registered_under_its_name(sedna_pm) -> None:
    sedna_pm.register(hooks, name="{{ dist_name }}")
    check_algorithm({{ class_name }}, plugin_manager=sedna_pm)  # the name resolves to the class
    miner = create_algorithm(
        "hard_example_mining", {"method": "{{ algorithm_name }}", "param": {"margin": "0.25"}}
    )
    assert isinstance(miner, {{ class_name }}) and miner.margin == 0.25


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
    assert {{ class_name }}(margin=0.1)(result) is hard


def test_batch_equals_per_sample() -> None:
    rng = np.random.default_rng(0)
    batch = rng.dirichlet(np.ones(4), size=32)
    miner = {{ class_name }}(margin=0.2)
    assert miner.mine(batch).tolist() == [miner(p) for p in batch]
