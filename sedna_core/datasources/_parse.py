"""Helpers shared by the file parsers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["is_url", "typed_column"]


def is_url(text: str) -> bool:
    """``s3://...``, ``http://...``: left as written, never joined to a folder."""
    return "://" in text


def typed_column(values: Sequence[str]) -> np.ndarray:
    """Strings as integers if all are integers, else floats if all are numbers, else strings.

    Sedna kept labels as strings (numpy's choice for mixed rows); typed labels are what every
    framework wants.
    """
    if len(values) == 0:
        return np.empty((0,))
    try:
        return np.asarray([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.asarray(values, dtype=str)


def index_relative(path: str, index_file: Path) -> str:
    """``path`` resolved against the folder of the index file that names it."""
    if is_url(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(index_file.parent, path))
