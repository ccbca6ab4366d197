"""Walk model-sized arrays a block at a time, so server steps need no model-sized temporaries."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK = 1 << 18


def blocks(*arrays: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Matching 1-D block views of same-sized arrays (flattened, C order)."""
    flats = [a.reshape(-1) for a in arrays]
    size = flats[0].size
    for start in range(0, size, BLOCK):
        yield tuple(f[start : start + BLOCK] for f in flats)
