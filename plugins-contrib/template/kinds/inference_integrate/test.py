"""Tests of the {{ algorithm_name }} integration."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_core.algorithms.mtl import TaskResult

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def test_results_come_back_in_input_order() -> None:
    results = [
        TaskResult("a", 0, np.array([2, 0]), np.array([1, 2])),
        TaskResult("b", 1, np.array([1]), np.array([5])),
    ]
    assert Algo().integrate(results, 3).tolist() == [2, 5, 1]


def test_a_row_without_result_is_an_error_or_filled() -> None:
    results = [TaskResult("a", 0, np.array([0]), np.array([1.5]))]
    with pytest.raises(ValueError, match=r"rows \[1\] have no result"):
        Algo().integrate(results, 2)
    assert Algo(fill=-1.0).integrate(results, 2).tolist() == [1.5, -1.0]
