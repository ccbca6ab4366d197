"""Sedna's data sources: ``BaseDataSource``, ``TxtDataParse``, ``CSVDataParse`` (sedna-core's).

Two of Sedna's behaviours are kept here where sedna-core's classes differ:

* ``BaseDataSource(data_type="train", func=None)``: ``x``/``y`` are set afterwards (sedna-core's
  takes ``BaseDataSource(x, y)``);
* ``TxtDataParse(func=f).parse(..., use_raw=True)``: ``x`` holds ``f(line)`` for every line
  (Sedna's incremental-learning examples resolve paths this way); sedna-core ignores ``func``
  with ``use_raw``.

``JSONDataParse`` (COCO/MOT annotations, broken in Sedna) and the Kafka/OBS connectors are not
provided.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from sedna_core.datasources import BaseDataSource as _CoreDataSource
from sedna_core.datasources import CSVDataParse
from sedna_core.datasources import TxtDataParse as _CoreTxtDataParse
from sedna_core.errors import DataSourceError

__all__ = ["BaseDataSource", "CSVDataParse", "TxtDataParse"]


class BaseDataSource(_CoreDataSource):
    """Sedna's ``BaseDataSource(data_type="train", func=None)``: set ``x`` and ``y`` after."""

    def __init__(self, data_type: str = "train", func: Callable[..., Any] | None = None) -> None:
        super().__init__(data_type=data_type, func=func)


class TxtDataParse(_CoreTxtDataParse):
    """sedna-core's ``TxtDataParse`` with Sedna's ``use_raw`` + ``func`` behaviour."""

    def parse(
        self, *files: str | os.PathLike[str], use_raw: bool = False, check_files: bool = True
    ) -> TxtDataParse:
        if not (use_raw and self.process_func is not None):
            super().parse(*files, use_raw=use_raw, check_files=check_files)
            return self
        rows: list[Any] = []
        for f in files:
            if not os.path.isfile(f):
                raise DataSourceError("index file not found", path=os.fspath(f))
            with open(f, encoding="utf-8") as fh:
                for lineno, raw in enumerate(fh, start=1):
                    line = raw.strip()
                    if not line:
                        continue
                    try:
                        rows.append(self.process_func(line))
                    except Exception as exc:
                        raise DataSourceError(
                            f"func failed on this line: {type(exc).__name__}: {exc}",
                            path=os.fspath(f),
                            line=lineno,
                        ) from exc
        self.x = np.array(rows)
        self.y = None
        return self
