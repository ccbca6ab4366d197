"""Tests of the {{ algorithm_name }} update decision."""

from __future__ import annotations

import numpy as np
from sedna_core.algorithms.mtl import Task

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def test_known_rows_update_their_tasks_and_the_rest_are_new() -> None:
    tasks = [Task("a", 0), Task("b", 1), Task("c", 2)]
    allocation = np.array([0, 1, -1, 0, 1])
    unseen = np.array([False, False, False, False, True])
    plan = Algo(strategy="retrain").decide(None, None, tasks, allocation, unseen)
    assert {k: v.tolist() for k, v in plan.updates.items()} == {0: [0, 3], 1: [1]}
    assert plan.strategies == {0: "retrain", 1: "retrain"}
    assert plan.new_rows.tolist() == [2, 4]
