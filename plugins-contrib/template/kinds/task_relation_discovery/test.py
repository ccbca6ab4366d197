"""Tests of the {{ algorithm_name }} relation discovery."""

from __future__ import annotations

from sedna_core.algorithms.mtl import Task

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def test_groups_by_attribute_and_covers_every_task_once() -> None:
    tasks = [Task("a", 0, {"climate": "dry"}), Task("b", 1, {}), Task("c", 2, {"climate": "dry"})]
    groups = Algo(key="climate").discover(tasks)
    assert [(g.entry, g.task_ids) for g in groups] == [("dry", [0, 2]), ("b", [1])]
