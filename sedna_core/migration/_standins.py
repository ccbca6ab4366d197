"""Plain stand-ins for the classes a Sedna knowledge-base pickle names.

The restricted unpickler builds these instead of Sedna's classes (or anything else): they only
store what the pickle gives them and never run code.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataSource", "Model", "Opaque", "StandIn", "Task", "TaskGroup"]


class StandIn:
    """Takes constructor arguments and pickled state as plain attributes."""

    #: ``module.qualname`` of the class the pickle named
    pickled_as: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update({str(k): v for k, v in state.items()})
        else:
            self.__dict__["state"] = state

    def __repr__(self) -> str:
        keys = ", ".join(sorted(k for k in self.__dict__ if k != "args"))
        return f"<{type(self).__name__} from {self.pickled_as or '?'}: {keys}>"


class Task(StandIn):
    """Sedna's ``Task``: entry, samples, meta_attr, model, result (and scores)."""


class TaskGroup(StandIn):
    """Sedna's ``TaskGroup``: entry, tasks, samples, model."""


class Model(StandIn):
    """Sedna's ``Model``: index, entry, model (a path or URL), result, meta_attr."""


class DataSource(StandIn):
    """Sedna's ``BaseDataSource`` (and its parsers): x, y, data_type, meta_attr."""


class Opaque(StandIn):
    """Anything else the pickle names (an extractor, a pandas frame...): kept, never used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Opaque:
        return Opaque(*args, **kwargs)
