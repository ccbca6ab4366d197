"""Input handling shared by the miners: how results become float arrays, and what is invalid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna_core.errors import InvalidParameterError
from sedna_core.log import get_logger

__all__ = ["as_float_array", "check_threshold", "count_samples", "warn_unjudged"]

KIND = "hard_example_mining"

log = get_logger("sedna_plugin_hem")


def warn_unjudged(miner: Any, problem: str, advice: str) -> None:
    """Warn, once per miner instance, that some input could not be judged (so it was decided by
    ``invalid_is_hard``, usually "not hard"): a miner fed labels or the wrong shape otherwise
    routes nothing and says nothing."""
    if miner.__dict__.get("_warned_unjudged"):
        return
    miner.__dict__["_warned_unjudged"] = True  # a benign race may warn twice, never zero times
    decided = "hard" if getattr(miner, "invalid_is_hard", False) else "not hard"
    log.warning(
        f"{miner.name} cannot judge its input: {problem}; such samples count as {decided}. "
        f"{advice}",
        miner=miner.name,
    )


def as_float_array(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, or None where it is not numeric (ragged, text, complex)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return None
        return value.astype(np.float64, copy=False)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    return arr


def count_samples(results: Sequence[Any] | np.ndarray) -> int:
    """How many samples a batch holds (its first axis)."""
    shape = getattr(results, "shape", None)
    if shape is not None:
        if len(shape) == 0:
            raise TypeError("mine() takes a batch with samples along the first axis, got a scalar")
        return int(shape[0])
    return len(results)


def check_threshold(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, miner: str
) -> float:
    """``value`` as a finite float within [low, high], else an error naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if (
        not np.isfinite(number)
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        bounds = f" in [{low}, {high}]" if low is not None and high is not None else ""
        raise InvalidParameterError(
            f"{miner}: {name}={value!r} is not valid; expected a finite number{bounds}",
            kind=KIND,
        )
    return number
