"""Sedna's CSV datasets: one sample per row, one column holds the label."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.datasources._base import BaseDataSource
from sedna_core.datasources._parse import typed_column
from sedna_core.errors import DataSourceError

__all__ = ["CSVDataParse"]

Row = dict[str, str]


class CSVDataParse(BaseDataSource):
    """A table read from CSV files (or row mappings), Sedna's ``CSVDataParse`` without pandas.

    ``x`` is a 2-D array (float when every kept column is numeric, else object), ``columns``
    names its columns, and ``y`` holds the label column (typed: int, float or str).

    Parameters
    ----------
    data_type:
        ``"train"``, ``"eval"``, ``"valid"`` or ``"test"``; only test data may lack the label.
    func:
        Applied to every row: ``func(row: dict[str, str]) -> dict | None`` (None drops the
        row). Sedna applied it to a pandas frame per file; a row function needs no pandas.
    """

    def __init__(
        self,
        data_type: str = "train",
        func: Callable[[Row], Row | None] | None = None,
    ) -> None:
        super().__init__(data_type=data_type, func=func)
        self.columns: list[str] = []

    def parse(
        self,
        *sources: str | os.PathLike[str] | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        label: str | None = None,
        usecols: str | Sequence[str] | None = None,
    ) -> CSVDataParse:
        """Read ``sources`` (CSV paths, a row mapping, or a list of them); returns self.

        ``label``: the label column (None: unlabelled, ``y`` is None). ``usecols``: the
        feature columns to keep (a list or Sedna's comma-separated string); default all but
        the label. A missing file, a row with the wrong number of fields, or a missing label
        column (except in test data) is a :class:`~sedna_core.errors.DataSourceError` naming
        the file and line.
        """
        if not sources:
            raise DataSourceError("parse() needs at least one CSV file or row mapping")
        wanted = _columns(usecols)
        rows: list[Row] = []
        header: list[str] | None = None
        for src in sources:
            for where, lineno, row in _rows(src):
                if self.process_func is not None:
                    try:
                        processed = self.process_func(row)
                    except Exception as exc:
                        raise DataSourceError(
                            f"func failed on this row: {type(exc).__name__}: {exc}",
                            path=where,
                            line=lineno,
                        ) from exc
                    if processed is None:
                        continue
                    row = {str(k): v for k, v in processed.items()}
                cols = wanted if wanted else [c for c in row if c != label]
                missing = [c for c in cols if c not in row]
                if missing:
                    raise DataSourceError(
                        f"no column(s) {missing}; the row has {sorted(row)}",
                        path=where,
                        line=lineno,
                    )
                if label is not None and label not in row and not self.is_test_data:
                    raise DataSourceError(
                        f"no label column {label!r} ({self.data_type} data needs one); "
                        f"columns are {sorted(row)}",
                        path=where,
                        line=lineno,
                    )
                if header is None:
                    header = cols
                elif cols != header:
                    raise DataSourceError(
                        f"columns {cols} differ from the first source's {header}",
                        path=where,
                        line=lineno,
                    )
                rows.append(row)
        self.columns = list(header or [])
        self.x = _table([[r[c] for c in self.columns] for r in rows], len(self.columns))
        labels = [r[label] for r in rows if label is not None and label in r]
        if label is None or not labels:
            self.y = None
        elif len(labels) != len(rows):
            raise DataSourceError(f"{len(labels)} of {len(rows)} rows have label {label!r}")
        else:
            self.y = typed_column([str(v) for v in labels])
        return self


def _columns(usecols: str | Sequence[str] | None) -> list[str]:
    if usecols is None:
        return []
    if isinstance(usecols, str):
        return [c.strip() for c in usecols.split(",") if c.strip()]
    return [str(c) for c in usecols]


def _rows(src: Any) -> Iterable[tuple[str | None, int | None, Row]]:
    if isinstance(src, Mapping):
        yield None, None, {str(k): v for k, v in src.items()}
        return
    if isinstance(src, Sequence) and not isinstance(src, str):
        for i, item in enumerate(src):
            if not isinstance(item, Mapping):
                raise DataSourceError(f"row {i} is a {type(item).__name__}, not a mapping")
            yield None, None, {str(k): v for k, v in item.items()}
        return
    if src is None:
        raise DataSourceError("no CSV file given (None): pass a path or row mappings")
    path = Path(src)
    if not path.is_file():
        raise DataSourceError("CSV file not found", path=str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DataSourceError("CSV file is empty (no header line)", path=str(path))
        header = [h.strip() for h in header]
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataSourceError(
                    f"expected {len(header)} fields ({', '.join(header)}), got {len(fields)}",
                    path=str(path),
                    line=reader.line_num,
                )
            yield str(path), reader.line_num, dict(zip(header, fields, strict=True))


def _table(cells: list[list[Any]], ncols: int) -> np.ndarray:
    """Rows of cells as a float array when every cell is a number (empty -> NaN), else object."""
    if not cells:
        return np.empty((0, ncols))
    try:
        return np.asarray([[_number(v) for v in row] for row in cells], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.empty((len(cells), ncols), dtype=object)
        for i, row in enumerate(cells):
            out[i, :] = row
        return out


def _number(value: Any) -> float:
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return math.nan
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    return float(value)
