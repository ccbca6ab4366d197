"""Sedna's data sources: ``BaseDataSource``, ``TxtDataParse``, ``CSVDataParse``.

Programs written for Sedna run unchanged, so these keep Sedna's behaviour where sedna-core's
native classes are stricter or pandas-free:

* ``BaseDataSource(data_type="train", func=None)``: ``x``/``y`` are set afterwards (sedna-core's
  takes ``BaseDataSource(x, y)``);
* ``TxtDataParse.parse(None)`` and index files that do not exist give an empty data source, as
  in Sedna (its controller sets no ``TEST_DATASET_URL`` for federated trainers, whose example
  still parses it); this is logged once per process and path. sedna-core's ``TxtDataParse``
  raises ``DataSourceError`` instead;
* ``TxtDataParse(func=f).parse(..., use_raw=True)``: ``x`` holds ``f(line)`` for every line
  (Sedna's incremental-learning examples resolve paths this way);
* ``CSVDataParse(func=f)``: ``f`` gets a pandas ``DataFrame`` per file (or per row mapping) and
  ``x``/``y`` are a ``DataFrame``/``Series``, as Sedna's; sedna-core's ``CSVDataParse`` applies
  a function to each row as a mapping, without pandas.

``JSONDataParse`` (COCO/MOT annotations, broken in Sedna) and the Kafka/OBS connectors are not
provided.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sedna_core.datasources import BaseDataSource as _CoreDataSource
from sedna_core.datasources import TxtDataParse as _CoreTxtDataParse
from sedna_core.errors import DataSourceError
from sedna_core.log import get_logger

__all__ = ["BaseDataSource", "CSVDataParse", "TxtDataParse"]

log = get_logger(__name__)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _skip_missing(files: Sequence[Any], parser: str) -> list[str]:
    """The sources that exist; each missing one is logged once per process (Sedna skipped
    them silently, which hid a wrong path)."""
    present = []
    for f in files:
        if f and os.path.isfile(f):
            present.append(os.fspath(f))
            continue
        key = f"{parser}:{f!r}"
        with _warned_lock:
            first = key not in _warned
            _warned.add(key)
        if first:
            log.warning(
                "no data file here: skipped, as Sedna does (an empty data source if none is left)",
                parser=parser,
                path=None if f is None else os.fspath(f),
            )
    return present


def _process_func(func: Any) -> Callable[..., Any] | None:
    """Sedna's ``func``: a callable, or the name of a class registered as a callback (which
    Sedna instantiates)."""
    if func is None or callable(func):
        return func
    from sedna.common.class_factory import ClassFactory, ClassType

    return ClassFactory.get_cls(ClassType.CALLBACK, func)()  # type: ignore[no-any-return]


class BaseDataSource(_CoreDataSource):
    """Sedna's ``BaseDataSource(data_type="train", func=None)``: set ``x`` and ``y`` after."""

    def __init__(self, data_type: str = "train", func: Callable[..., Any] | None = None) -> None:
        super().__init__(data_type=data_type, func=_process_func(func))


class TxtDataParse(_CoreTxtDataParse):
    """sedna-core's ``TxtDataParse`` with Sedna's handling of absent files and of ``use_raw``
    with ``func``."""

    def __init__(
        self,
        data_type: str = "train",
        func: Callable[..., Any] | None = None,
        *,
        loader: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(data_type=data_type, func=_process_func(func), loader=loader)

    def parse(
        self, *files: str | os.PathLike[str] | None, use_raw: bool = False, check_files: bool = True
    ) -> TxtDataParse:
        present = _skip_missing(files, "TxtDataParse")
        if not present:
            self.x = np.empty((0,))
            self.y = np.empty((0,))
            return self
        if not (use_raw and self.process_func is not None):
            super().parse(*present, use_raw=use_raw, check_files=check_files)
            return self
        rows: list[Any] = []
        for f in present:
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
                            path=f,
                            line=lineno,
                        ) from exc
        self.x = np.array(rows)
        self.y = None
        return self


class CSVDataParse(BaseDataSource):
    """Sedna's ``CSVDataParse``: pandas frames in ``func``, ``x``/``y`` as ``DataFrame``/``Series``.

    ``parse(*sources, label=None, usecols=None, **read_csv_kwargs)``: each source is a CSV path
    (read with ``pandas.read_csv``), a row mapping or a list of row mappings; ``func(frame)``
    returns the processed frame; a frame without the label column is skipped (as in Sedna); the
    label column becomes ``y``.
    """

    def parse(
        self,
        *sources: str | os.PathLike[str] | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        label: str | None = None,
        usecols: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> CSVDataParse:
        import pandas as pd

        if usecols:
            cols = usecols.split(",") if isinstance(usecols, str) else list(usecols)
            cols = [c.strip() for c in cols if c.strip()]
            if label and label not in cols:
                cols.append(label)
            kwargs["usecols"] = cols
        frames: list[Any] = []
        labels: list[Any] = []
        files = [s for s in sources if not isinstance(s, Mapping | list | tuple)]
        present = set(_skip_missing(files, "CSVDataParse")) if files else set()
        for src in sources:
            if isinstance(src, Mapping):
                frame = pd.DataFrame.from_records([dict(src)], **_frame_kwargs(kwargs))
            elif isinstance(src, list | tuple):
                frame = pd.DataFrame.from_records([dict(r) for r in src], **_frame_kwargs(kwargs))
            elif src is not None and os.fspath(src) in present:
                frame = pd.read_csv(src, **kwargs)
            else:
                continue
            if self.process_func is not None:
                processed = self.process_func(frame)
                frame = frame if processed is None else processed  # Sedna's funcs edit in place
            if label:
                if label not in frame.columns:
                    continue
                labels.append(frame[label])
                frame = frame.drop(columns=[label])
            frames.append(frame)
        if not frames:
            self.x = pd.DataFrame()
            self.y = None
            return self
        self.x = pd.concat(frames)
        self.y = pd.concat(labels) if labels else None
        return self


def _frame_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``read_csv`` options that also make sense for rows given as mappings."""
    cols = kwargs.get("usecols")
    return {"columns": list(cols)} if cols else {}
