"""Tests of the {{ algorithm_name }} remodeling."""

from __future__ import annotations

import numpy as np

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def test_every_row_exactly_once() -> None:
    parts = Algo().remodel(np.array([1, 0, -1, 1]))
    assert [(t, rows.tolist()) for t, rows in parts] == [(-1, [2]), (0, [1]), (1, [0, 3])]


def test_small_tasks_join_the_unseen_group() -> None:
    parts = Algo(min_rows=2).remodel(np.array([1, 0, 1]))
    assert [(t, rows.tolist()) for t, rows in parts] == [(-1, [1]), (1, [0, 2])]
