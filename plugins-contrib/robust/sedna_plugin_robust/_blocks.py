"""Block sizes and buffers for walking N updates a block of coordinates at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import TensorSpec, UpdateSource, iter_blocks, read_block

#: bytes of one (clients x block) buffer
BUDGET = 32 << 20


def block_elements(n_updates: int, itemsize: int) -> int:
    """Coordinates per block so that one block of every update fits the budget."""
    return max(1024, BUDGET // max(1, n_updates * itemsize))


def stacked_blocks(
    specs: Sequence[TensorSpec], updates: Sequence[UpdateSource]
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """``(tensor index, start, stop, rows)``: ``rows[k]`` is update k's block (a reused buffer)."""
    widest = max((s.dtype.itemsize for s in specs), default=1)
    block = block_elements(len(updates), widest)
    buffers: dict[np.dtype[Any], np.ndarray] = {}
    for index, start, stop in iter_blocks(specs, block):
        dtype = specs[index].dtype
        buf = buffers.get(dtype)
        if buf is None:
            buf = buffers[dtype] = np.empty((len(updates), block), dtype=dtype)
        yield index, start, stop, read_block(updates, index, start, stop, buf)


def result_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Float tensors keep their dtype, integer ones aggregate in float64."""
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def empty_like_specs(specs: Sequence[TensorSpec]) -> list[np.ndarray]:
    """Result arrays, of :func:`result_dtype`."""
    return [np.empty(s.shape, dtype=result_dtype(s.dtype)) for s in specs]


def reduce_blocks(
    specs: Sequence[TensorSpec],
    updates: Sequence[UpdateSource],
    reduce: Callable[[np.ndarray], np.ndarray],
) -> list[np.ndarray]:
    """New weights whose every block is ``reduce(rows)`` of the updates' blocks (one per row)."""
    out = empty_like_specs(specs)
    flat = [o.reshape(-1) for o in out]
    for index, start, stop, rows in stacked_blocks(specs, updates):
        flat[index][start:stop] = reduce(rows)
    return out
