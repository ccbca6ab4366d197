"""Sedna's hard-example-mining module: ``BaseFilter`` for user filters, and Sedna's filter classes
(``IBTFilter``, ``ThresholdFilter``, ...) resolved to sedna-core's miners of the same names.

A user filter registered with ``@ClassFactory.register(ClassType.HEM, alias=...)`` becomes a
sedna-core miner (see :mod:`sedna._adapters`).
"""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["BaseFilter"]

#: Sedna's class names -> the names of the same miners in sedna-core (sedna-plugin-hem)
_BUILTIN = {
    "ThresholdFilter": "Threshold",
    "IBTFilter": "IBT",
    "CrossEntropyFilter": "CrossEntropy",
    "RandomFilter": "Random",
    "CloudOnlyFilter": "CloudOnly",
    "EdgeOnlyFilter": "EdgeOnly",
}


class BaseFilter(metaclass=abc.ABCMeta):
    """Sedna's base of hard-example filters: ``__call__(infer_result) -> bool`` (True: hard)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    @abc.abstractmethod
    def __call__(self, infer_result: Any = None) -> bool:
        """Whether ``infer_result`` is a hard example."""

    @classmethod
    def data_check(cls, data: Any) -> bool:
        """Sedna's helper: ``0 <= float(data) <= 1``."""
        try:
            return 0 <= float(data) <= 1
        except (TypeError, ValueError):
            return False


def __getattr__(name: str) -> Any:
    if name in _BUILTIN:
        from sedna_core.plugins import resolve_algorithm

        return resolve_algorithm("hard_example_mining", _BUILTIN[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
