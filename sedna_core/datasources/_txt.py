"""Sedna's text index files: one ``path label`` pair per line."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.datasources._base import BaseDataSource, to_array
from sedna_core.datasources._parse import index_relative, is_url, typed_column
from sedna_core.errors import DataSourceError

__all__ = ["TxtDataParse"]


class TxtDataParse(BaseDataSource):
    """A dataset read from index files of ``path label`` lines (Sedna's ``TxtDataParse``).

    Without ``func``, a line is split on whitespace into exactly ``path label`` (``path`` alone
    for test data); blank lines and lines starting with ``#`` are skipped; relative paths are
    resolved against the folder of the index file. A missing index file, a malformed line, or
    (with ``check_files``) a listed file that does not exist is a
    :class:`~sedna_core.errors.DataSourceError` naming the file and the line.

    Parameters
    ----------
    data_type
        ``"train"``, ``"eval"``, ``"valid"`` or ``"test"``; only test data may omit labels.
    func
        Sedna's line parser: ``func(line) -> (x, y)`` (or ``(x,)`` for test data). When given,
        its results are used as they are (no path resolution, no loader).
    loader
        ``loader(path) -> sample`` (e.g. an image read into an array), applied to every
        resolved path; equal-shaped samples are stacked into one array.
    """

    def __init__(
        self,
        data_type: str = "train",
        func: Callable[[str], Sequence[Any]] | None = None,
        *,
        loader: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(data_type=data_type, func=func)
        self.loader = loader

    def parse(
        self,
        *files: str | os.PathLike[str],
        use_raw: bool = False,
        check_files: bool = True,
    ) -> TxtDataParse:
        """Read ``files`` (their rows concatenated in order) into ``x`` and ``y``; returns self.

        ``use_raw``: ``x`` gets each line's whitespace-split fields as they are, ``y`` None.
        ``check_files``: verify that every listed local file exists.
        """
        if not files:
            raise DataSourceError("parse() needs at least one index file")
        xs: list[Any] = []
        ys: list[Any] = []
        where: list[tuple[str, int]] = []
        for f in files:
            if f is None:
                raise DataSourceError(
                    "no index file given (None): pass a path, e.g. TRAIN_DATASET_URL or "
                    "TEST_DATASET_URL, which may be unset"
                )
            index = Path(f)
            if not index.is_file():
                raise DataSourceError("index file not found", path=str(index))
            with index.open(encoding="utf-8") as fh:
                for lineno, raw in enumerate(fh, start=1):
                    line = raw.strip()
                    if not line or line.startswith("#"):
                        continue
                    row = self._row(line, index, lineno, use_raw, check_files)
                    xs.append(row[0])
                    if row[1] is not None:
                        ys.append(row[1])
                    where.append((str(index), lineno))
        if ys and len(ys) != len(xs):
            # test data where some lines carry a label and others do not
            raise DataSourceError(
                f"{len(ys)} of {len(xs)} lines have a label; label every line or none",
                path=where[0][0],
            )
        self.x = self._samples(xs, where, use_raw)
        self.y = None if use_raw or not ys else self._labels(ys)
        return self

    def _row(
        self, line: str, index: Path, lineno: int, use_raw: bool, check_files: bool
    ) -> tuple[Any, Any]:
        if use_raw and self.process_func is None:
            return line.split(), None
        if self.process_func is not None:
            try:
                row = self.process_func(line)
            except Exception as exc:
                raise DataSourceError(
                    f"func failed on this line: {type(exc).__name__}: {exc}",
                    path=str(index),
                    line=lineno,
                ) from exc
            if isinstance(row, str) or not isinstance(row, Sequence | np.ndarray) or len(row) == 0:
                raise DataSourceError(
                    f"func must return a sequence (x, y); got {type(row).__name__}",
                    path=str(index),
                    line=lineno,
                )
            if use_raw:
                return row, None  # Sedna: x gets func's whole row, y stays empty
            if len(row) < 2:
                return row[0], self._missing_label(index, lineno)
            return row[0], row[1]
        fields = line.split()
        if len(fields) > 2:
            raise DataSourceError(
                f"expected 'path label', got {len(fields)} fields (paths with spaces need func=)",
                path=str(index),
                line=lineno,
            )
        path = index_relative(fields[0], index)
        if check_files and not is_url(path) and not os.path.exists(path):
            raise DataSourceError(
                f"listed file {path!r} does not exist", path=str(index), line=lineno
            )
        label = fields[1] if len(fields) == 2 else self._missing_label(index, lineno)
        return path, label

    def _missing_label(self, index: Path, lineno: int) -> None:
        if not self.is_test_data:
            raise DataSourceError(
                f"line has no label ({self.data_type} data needs 'path label')",
                path=str(index),
                line=lineno,
            )

    def _samples(self, xs: list[Any], where: list[tuple[str, int]], use_raw: bool) -> np.ndarray:
        if use_raw:
            return to_array(xs)
        if self.loader is None or self.process_func is not None:
            return to_array(xs)
        loaded = []
        for path, (index, lineno) in zip(xs, where, strict=True):
            try:
                loaded.append(self.loader(path))
            except Exception as exc:
                raise DataSourceError(
                    f"loader failed on {path!r}: {type(exc).__name__}: {exc}",
                    path=index,
                    line=lineno,
                ) from exc
        return to_array(loaded)

    @staticmethod
    def _labels(ys: list[Any]) -> np.ndarray:
        if all(isinstance(v, str) for v in ys):
            return typed_column(ys)
        return to_array(ys)
