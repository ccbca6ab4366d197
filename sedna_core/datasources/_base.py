"""The data container every job and backend takes, and the helper that unpacks it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sedna_core.errors import DataSourceError

__all__ = ["DATA_TYPES", "BaseDataSource", "as_x", "as_xy", "to_array"]

#: Sedna's data types; only ``"test"`` changes behaviour (labels are optional)
DATA_TYPES = ("train", "eval", "valid", "test")


class BaseDataSource:
    """Samples ``x`` and labels ``y`` (None for unlabelled data), Sedna-compatible.

    Parameters
    ----------
    x, y:
        Samples (first axis) and labels; ``len(y)`` must equal ``len(x)``.
    data_type:
        ``"train"``, ``"eval"``, ``"valid"`` or ``"test"`` (Sedna's values).
    func:
        Sedna's ``process_func``: a parser's per-item function (see the parsers).
    meta_attr:
        Per-sample attributes (lifelong learning's task attributes), kept as given.
    """

    def __init__(
        self,
        x: Any = None,
        y: Any = None,
        *,
        data_type: str = "train",
        func: Callable[..., Any] | None = None,
        meta_attr: Any = None,
    ) -> None:
        if x is not None and y is not None and _length(x) != _length(y):
            raise DataSourceError(f"x has {_length(x)} samples but y has {_length(y)} labels")
        self.x = x
        self.y = y
        self.data_type = data_type
        self.process_func = func
        self.meta_attr = meta_attr

    @property
    def is_test_data(self) -> bool:
        return self.data_type == "test"

    def num_examples(self) -> int:
        """Number of samples (Sedna's method)."""
        return len(self)

    def __len__(self) -> int:
        return 0 if self.x is None else _length(self.x)

    def __repr__(self) -> str:
        shape = getattr(self.x, "shape", None)
        return (
            f"{type(self).__name__}(data_type={self.data_type!r}, n={len(self)}"
            + (f", x.shape={shape}" if shape is not None else "")
            + f", labelled={self.y is not None})"
        )


def _length(obj: Any) -> int:
    shape = getattr(obj, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    if isinstance(obj, Mapping):
        # a column table ({"season": [...], "temp": [...]}): its rows, not its column count
        return len(next(iter(obj.values()))) if obj else 0
    return len(obj)


def as_xy(data: Any) -> tuple[Any, Any]:
    """``(x, y)`` from a datasource (anything with ``.x``/``.y``), an ``(x, y)`` tuple, or a
    mapping with ``"x"``/``"y"`` keys. A bare array (or list) is ``(data, None)``.
    """
    if data is None:
        raise DataSourceError("no data given: pass a datasource or an (x, y) tuple")
    if hasattr(data, "x") and not isinstance(data, np.ndarray):
        return data.x, getattr(data, "y", None)
    if isinstance(data, tuple):
        if len(data) != 2:
            raise DataSourceError(f"a data tuple must be (x, y); got a tuple of {len(data)} items")
        return data[0], data[1]
    if isinstance(data, dict):
        if "x" not in data:
            raise DataSourceError(f"a data mapping needs an 'x' key; got keys {sorted(data)}")
        return data["x"], data.get("y")
    if isinstance(data, np.ndarray | list) or hasattr(data, "__array__"):
        return data, None
    raise DataSourceError(
        f"cannot read samples from a {type(data).__name__}: pass a BaseDataSource, "
        "an (x, y) tuple, or an array of samples"
    )


def as_x(data: Any) -> Any:
    """The samples to predict on: a datasource's ``x``; anything else as it is."""
    if hasattr(data, "x") and not isinstance(data, np.ndarray):
        return data.x
    return data


def to_array(items: Sequence[Any]) -> np.ndarray:
    """Items as one numpy array: stacked when they are equal-shaped arrays, else 1-D.

    Ragged rows become a 1-D object array (numpy refuses to guess since 1.24).
    """
    if len(items) == 0:
        return np.empty((0,))
    if all(isinstance(i, str) for i in items):
        return np.asarray(items, dtype=str)
    arrays = [np.asarray(i) if not isinstance(i, str) else None for i in items]
    if all(a is not None and a.dtype != object for a in arrays):
        shapes = {a.shape for a in arrays if a is not None}
        if len(shapes) == 1:
            return np.stack(arrays)  # type: ignore[arg-type]
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out
