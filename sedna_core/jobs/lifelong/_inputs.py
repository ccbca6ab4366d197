"""The data arguments of the lifelong-learning job's methods: a datasource, an ``(x, y)``
tuple, or bare samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["unpack"]


def unpack(data: Any) -> tuple[Any, Any]:
    """``(x, y)`` of a datasource, an ``(x, y)`` tuple, or bare samples."""
    if isinstance(data, tuple) and len(data) == 2:
        return data
    if hasattr(data, "x") and not isinstance(data, np.ndarray | Mapping):
        x, columns = data.x, getattr(data, "columns", None)
        if columns and isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == len(columns):
            # CSVDataParse keeps names apart from its 2-D table: attribute tasks need them
            x = {name: x[:, i] for i, name in enumerate(columns)}
        return x, getattr(data, "y", None)
    return data, None
