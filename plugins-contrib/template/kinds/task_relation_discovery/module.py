"""``{{ algorithm_name }}``: tasks sharing an attribute share a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sedna_core.algorithms import BaseTaskRelationDiscover
from sedna_core.algorithms.mtl import Task, TaskGroup

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseTaskRelationDiscover):
    """Tasks with the same value of one ``meta_attr`` key form a group (one model per group).

    Parameters
    ----------
    key
        The attribute that relates tasks; a task without it is a group of its own.
    """

    name: ClassVar[str] = "{{ algorithm_name }}"

    def __init__(self, key: str = "climate") -> None:
        self.key = key

    def discover(self, tasks: Sequence[Task]) -> list[TaskGroup]:
        """Groups covering every task exactly once, in order of first appearance."""
        groups: dict[str, list[Task]] = {}
        for task in tasks:
            groups.setdefault(str(task.meta_attr.get(self.key, task.entry)), []).append(task)
        return [TaskGroup(entry, members) for entry, members in groups.items()]

    @classmethod
    def conformance_inputs(cls) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls the conformance kit makes, in order, on one instance."""
        dry = {"climate": "dry"}
        tasks = [Task("a", 0, dry), Task("b", 1, {}), Task("c", 2, dry)]
        return [("discover", (tasks,))]
