"""Tests of the {{ algorithm_name }} allocation."""

from __future__ import annotations

import numpy as np
from sedna_core.algorithms.mtl import UNSEEN, Task

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}

TASKS = [Task("summer", 0, {"season": "summer"}), Task("winter", 1, {"season": "winter"})]


def test_allocates_by_value_and_unknown_values_are_unseen() -> None:
    allocator = Algo(column="season").fit(None, np.array([0, 1]), TASKS)
    table = {"season": np.array(["winter", "summer", "autumn"])}
    assert allocator.allocate(table).tolist() == [1, 0, UNSEEN]


def test_state_round_trip() -> None:
    allocator = Algo().fit(None, np.array([0, 1]), TASKS)
    fresh = Algo()
    fresh.set_state(allocator.get_state())
    assert fresh.allocate({"season": np.array(["winter"])}).tolist() == [1]
