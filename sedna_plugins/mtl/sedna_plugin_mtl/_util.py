"""Small helpers shared by this plugin's algorithms (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna_core.algorithms.mtl import Column, column_values, has_column
from sedna_core.errors import DataSourceError

__all__ = ["as_columns", "require_columns", "row_keys"]

_SEP = "\x1f"  # joins attribute values into one key; cannot occur in normal text


def as_columns(attribute: Sequence[Column] | str | None) -> list[Column]:
    """Normalise an ``attribute`` parameter: ``"season, city"`` or a list; digit strings become
    positions (so ``ATTRIBUTE="0,3"`` from the environment addresses numpy columns)."""
    if attribute is None:
        return []
    items: Sequence[Any] = attribute.split(",") if isinstance(attribute, str) else attribute
    out: list[Column] = []
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
            out.append(int(item) if item.lstrip("-").isdigit() else item)
        else:
            out.append(int(item))
    return out


def require_columns(x: Any, columns: Sequence[Column], who: str) -> None:
    missing = [c for c in columns if not has_column(x, c)]
    if missing:
        raise DataSourceError(
            f"{who} needs the attribute column(s) {missing} in the samples; give a table that has "
            "them (a mapping of column name to values, a DataFrame, or a 2-D array with "
            "positional columns)"
        )


def row_keys(x: Any, columns: Sequence[Column]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct attribute-value combinations of ``x``: ``(keys, inverse)`` where ``keys[j]`` is a
    tuple-like string key and ``inverse[i]`` the key index of row ``i`` (vectorised)."""
    parts = [np.asarray(column_values(x, c)).astype(str) for c in columns]
    joined = parts[0]
    for p in parts[1:]:
        joined = np.char.add(np.char.add(joined, _SEP), p)
    keys, inverse = np.unique(joined, return_inverse=True)
    return keys, inverse.reshape(-1)


def key_of(values: Sequence[Any]) -> str:
    return _SEP.join(str(v) for v in values)


def split_key(key: str) -> list[str]:
    return str(key).split(_SEP)
