"""Streams for the loop runner: batches of ``(x, y)``.

:func:`sea_drift_stream` is a small built-in synthetic stream with an abrupt drift (SEA
concepts: three features in [0, 10], label ``x0 + x1 > threshold``, the threshold changing at
``drift_at``), so the loop runs without any dataset. :func:`csv_stream` reads a CSV file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sedna_core.errors import ConfigError, DataSourceError

__all__ = ["csv_stream", "sea_drift_stream"]

Batch = tuple[np.ndarray, np.ndarray]


def sea_drift_stream(
    n: int = 20_000,
    *,
    drift_at: int = 10_000,
    thresholds: Sequence[float] = (8.0, 7.0),
    noise: float = 0.0,
    batch_size: int = 50,
    seed: int = 0,
) -> Iterator[Batch]:
    """SEA concepts with an abrupt drift: threshold ``thresholds[0]`` before ``drift_at``,
    ``thresholds[1]`` from then on; ``noise`` flips that share of labels.

    Parameters
    ----------
    n
        Samples in the stream.
    drift_at
        Index of the first sample of the second concept.
    thresholds
        The two concepts' thresholds on ``x0 + x1``.
    noise
        Share of labels flipped, in [0, 1].
    batch_size
        Samples per batch (the last batch may be shorter).
    seed
        Seed of the features and of the label noise (same seed, same stream).

    Returns
    -------
    Iterator[tuple[numpy.ndarray, numpy.ndarray]]
        ``(x, y)`` batches: ``x`` float64 of shape ``(batch, 3)``, ``y`` int64 labels 0/1.
    """
    if batch_size < 1 or n < 0:
        raise ConfigError("batch_size", batch_size, "a positive batch size and n >= 0")
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 10.0, size=(n, 3))
    threshold = np.where(np.arange(n) < drift_at, thresholds[0], thresholds[1])
    y = (x[:, 0] + x[:, 1] > threshold).astype(np.int64)
    if noise:
        flip = rng.random(n) < noise
        y[flip] = 1 - y[flip]
    for start in range(0, n, batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def csv_stream(
    path: str | os.PathLike[str],
    *,
    label_column: int | str = -1,
    batch_size: int = 50,
    header: bool | None = None,
) -> Iterator[Batch]:
    """Batches from a CSV file of numeric features and one label column.

    ``label_column`` is an index (negative counts from the end) or a header name; ``header``
    None detects a header row (a name for the label column, or a first row whose features are
    not all numbers). Labels that are all integers become an integer array.

    Parameters
    ----------
    path
        The CSV file (UTF-8); empty lines are skipped.
    label_column
        The label column: an index (negative counts from the end) or a header name.
    batch_size
        Rows per batch (the last batch may be shorter).
    header
        Whether the first row is a header (None: detect it).

    Returns
    -------
    Iterator[tuple[numpy.ndarray, numpy.ndarray]]
        ``(x, y)`` batches: ``x`` float64 features of shape ``(rows, columns - 1)``, ``y`` the
        labels (int64 when all are integers, else float64, else strings).

    Raises
    ------
    DataSourceError
        No such file, a row with another number of columns, or a non-numeric feature.
    """
    file = Path(path)
    if not file.is_file():
        raise DataSourceError("no such CSV file", path=str(file))
    with open(file, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None:
            return
        by_name = isinstance(label_column, str) and not label_column.lstrip("-").isdigit()
        if header is not None:
            has_header = header
        elif by_name:
            has_header = True
        else:  # a header is a first row whose features are not numbers
            idx = _column(label_column, None, len(first))
            has_header = not _numeric_row([v for i, v in enumerate(first) if i != idx])
        names = [c.strip() for c in first] if has_header else None
        col = _column(label_column, names, len(first))
        rows: list[list[str]] = [] if has_header else [first]
        line = 1
        for row in reader:
            line += 1
            if not row:
                continue
            if len(row) != len(first):
                raise DataSourceError(
                    f"expected {len(first)} columns, got {len(row)}", path=str(file), line=line
                )
            rows.append(row)
            if len(rows) == batch_size:
                yield _batch(rows, col, file, line)
                rows = []
        if rows:
            yield _batch(rows, col, file, line)


def _numeric_row(row: Sequence[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def _column(label: int | str, names: list[str] | None, width: int) -> int:
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        if names is None or label not in names:
            raise ConfigError("label_column", label, f"a column index or one of {names or []}")
        return names.index(label)
    idx = int(label)
    if not -width <= idx < width:
        raise ConfigError("label_column", label, f"an index between {-width} and {width - 1}")
    return idx % width


def _batch(rows: list[list[str]], col: int, file: Path, line: int) -> Batch:
    try:
        table = np.asarray(rows, dtype=object)
        x = np.delete(table, col, axis=1).astype(np.float64)
        raw = table[:, col]
        try:
            as_float = raw.astype(np.float64)
            y = as_float.astype(np.int64) if np.all(as_float == np.round(as_float)) else as_float
        except ValueError:
            y = raw.astype(str)
    except ValueError as exc:
        raise DataSourceError(f"non-numeric feature: {exc}", path=str(file), line=line) from exc
    return x, y
