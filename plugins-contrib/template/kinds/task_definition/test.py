"""Tests of the {{ algorithm_name }} task definition."""

from __future__ import annotations

import numpy as np

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def test_one_task_per_value_with_a_fitted_allocator() -> None:
    table = {"season": np.array(["winter", "summer", "winter"]), "f": np.zeros((3, 2))}
    result = Algo(column="season").fit(table)
    assert [t.entry for t in result.tasks] == ["summer", "winter"]
    assert result.task_ids.tolist() == [1, 0, 1]
    assert [t.rows.tolist() for t in result.tasks] == [[1], [0, 2]]
    assert result.allocator.allocate(table).tolist() == [1, 0, 1]
    assert result.attribute_columns == ("season",)


def test_its_allocator_conforms_too() -> None:
    from sedna_core.testing import check_algorithm

    check_algorithm({{ module }}.{{ class_name }}Allocator)
