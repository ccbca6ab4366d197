"""A bounded on-disk store of hard examples found in service.

Layout under ``root``::

    manifest.json         what is held: chunks, ids, counters (written last, atomically)
    c000001.x.npy         the samples of one ``add`` call (np.save, allow_pickle=False)
    c000001.y.npy         their labels, once known (same rows)
    c000001.m.npy         which rows are labelled, when only some are

Each :meth:`HardExampleStore.add` writes one chunk; files are written before the manifest that
names them, so a crash leaves the previous state (stray files are removed on the next open).
Every sample gets an increasing id. When the store is full, ``when_full="drop_oldest"`` drops the
oldest samples and ``"drop_newest"`` refuses the incoming ones; either way they are counted in
:attr:`dropped`, which survives restarts like everything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import numpy as np

from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import ConfigError, DataSourceError
from sedna_core.log import get_logger

__all__ = ["WHEN_FULL", "HardExampleStore", "HardExamples"]

log = get_logger(__name__)

WHEN_FULL = ("drop_oldest", "drop_newest")
_MANIFEST = "manifest.json"
_FORMAT = 1
_CHUNK = re.compile(r"^c\d{6,}\.[xym]\.npy$")


@attrs.frozen
class HardExamples:
    """Samples read from the store: ``ids``, ``x``, ``y`` (None when no row is labelled) and
    ``labelled`` (which rows have a label)."""

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray | None
    labelled: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@attrs.define
class _Chunk:
    name: str
    first_id: int
    rows: int
    skip: int = 0  # rows dropped from the front (oldest first)
    labels: str = "none"  # "none" | "some" | "all"
    time: float = 0.0
    model_version: str | None = None
    source: str = "hard"

    @property
    def held(self) -> int:
        return self.rows - self.skip

    @property
    def ids(self) -> np.ndarray:
        return np.arange(self.first_id + self.skip, self.first_id + self.rows, dtype=np.int64)


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with what ``write`` writes: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_npy(path: Path, array: np.ndarray) -> None:
    _write_atomic(path, lambda fh: np.save(fh, array, allow_pickle=False))


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    text = json.dumps(doc, indent=1, sort_keys=True)
    _write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _as_samples(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biufcUS":
        raise DataSourceError(
            f"{what} must be numbers or strings to be stored safely (.npy without pickle); "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim == 0:
        raise DataSourceError(f"{what} must have samples along the first axis; got a scalar")
    return arr


class HardExampleStore:
    """Hard examples on disk, bounded, labelled later, surviving restarts.

    Parameters
    ----------
    root
        Directory of the store (created if missing); reopening it restores everything.
    capacity
        Most samples held at once.
    when_full
        ``"drop_oldest"`` (default) or ``"drop_newest"``.
    clock
        Source of the timestamps recorded with each chunk.

    Thread-safe: inference threads may add while a trainer reads.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        capacity: int = 10_000,
        when_full: str = "drop_oldest",
        clock: Clock | None = None,
    ) -> None:
        if capacity < 1:
            raise ConfigError("capacity", capacity, "an integer of at least 1")
        if when_full not in WHEN_FULL:
            raise ConfigError("when_full", when_full, " or ".join(WHEN_FULL))
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.capacity = int(capacity)
        self.when_full = when_full
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._chunks: list[_Chunk] = []
        self._next_id = 0
        self._next_chunk = 1
        self._dropped = 0
        self._mark = -1  # ids <= mark were used by a training run
        self._doomed: list[_Chunk] = []  # dropped chunks whose files go once the manifest is saved
        self._warned_full = False
        self._load()
        with self._lock:
            if len(self) > self.capacity:  # reopened with a smaller capacity
                self._drop_oldest(len(self) - self.capacity)
                self._save()

    # -- persistence ------------------------------------------------------------------------

    def _load(self) -> None:
        path = self.root / _MANIFEST
        referenced: set[str] = set()
        if path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if doc.get("format") != _FORMAT:
                    raise ValueError(f"unknown format {doc.get('format')!r}")
                self._chunks = [_Chunk(**c) for c in doc["chunks"]]
                self._next_id = int(doc["next_id"])
                self._next_chunk = int(doc["next_chunk"])
                self._dropped = int(doc["dropped"])
                self._mark = int(doc.get("mark", -1))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataSourceError(
                    f"hard-example manifest is unreadable ({exc}); move the directory aside "
                    "to start a new store",
                    path=str(path),
                ) from exc
            for c in self._chunks:
                referenced.add(f"{c.name}.x.npy")
                if c.labels != "none":
                    referenced.add(f"{c.name}.y.npy")
                if c.labels == "some":
                    referenced.add(f"{c.name}.m.npy")
        for entry in self.root.iterdir():  # leftovers of a crash between files and manifest
            if (_CHUNK.match(entry.name) and entry.name not in referenced) or (
                entry.name.startswith(".") and entry.is_file()
            ):
                with contextlib.suppress(OSError):
                    entry.unlink()

    def _save(self) -> None:
        _write_json(
            self.root / _MANIFEST,
            {
                "format": _FORMAT,
                "capacity": self.capacity,
                "when_full": self.when_full,
                "next_id": self._next_id,
                "next_chunk": self._next_chunk,
                "dropped": self._dropped,
                "mark": self._mark,
                "chunks": [attrs.asdict(c) for c in self._chunks],
            },
        )

    def _file(self, chunk: _Chunk, part: str) -> Path:
        return self.root / f"{chunk.name}.{part}.npy"

    # -- counters ---------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return sum(c.held for c in self._chunks)

    @property
    def dropped(self) -> int:
        """Samples dropped (or refused) because the store was full, since it was created."""
        with self._lock:
            return self._dropped

    @property
    def total_added(self) -> int:
        """Samples ever offered to the store (held, dropped or refused)."""
        with self._lock:
            return self._next_id

    def count(self, *, labelled_only: bool = False, since_mark: bool = False) -> int:
        """Samples held, optionally only labelled ones and only those newer than :meth:`mark`."""
        with self._lock:
            total = 0
            for c in self._chunks:
                ids = c.ids
                keep = ids > self._mark if since_mark else np.ones(len(ids), bool)
                if labelled_only:
                    keep &= self._labelled_rows(c)
                total += int(keep.sum())
            return total

    def mark(self) -> None:
        """Remember that every sample held now was used (e.g. by a training run); the retrain
        trigger counts only samples added after this (``count(since_mark=True)``)."""
        with self._lock:
            self._mark = self._next_id - 1
            self._save()

    # -- writing ----------------------------------------------------------------------------

    def add(
        self,
        x: Any,
        y: Any = None,
        *,
        model_version: str | None = None,
        source: str = "hard",
    ) -> np.ndarray:
        """Store samples (rows of ``x``), with labels ``y`` if known; returns the ids kept.

        ``source`` tags why they were kept (``"hard"``, ``"random"``...).
        """
        xs = _as_samples(x, "hard examples")
        ys = None if y is None else _as_samples(y, "labels")
        if ys is not None and len(ys) != len(xs):
            raise DataSourceError(f"{len(xs)} samples but {len(ys)} labels")
        if len(xs) == 0:
            return np.empty(0, dtype=np.int64)
        with self._lock:
            first = self._next_id
            self._next_id += len(xs)
            skip = 0
            free = self.capacity - len(self)
            if len(xs) > free:
                if self.when_full == "drop_newest":
                    refused = len(xs) - max(free, 0)
                    self._dropped += refused
                    xs = xs[: max(free, 0)]
                    ys = None if ys is None else ys[: len(xs)]
                    if refused and not self._warned_full:
                        self._warned_full = True  # once until space frees up: not per request
                        log.warning(
                            "hard-example store full: refusing new samples", refused=refused
                        )
                    if len(xs) == 0:
                        self._save()
                        return np.empty(0, dtype=np.int64)
                else:
                    skip = max(0, len(xs) - self.capacity)  # more than fit at all
                    self._dropped += skip
                    xs = xs[skip:]
                    ys = None if ys is None else ys[skip:]
                    self._drop_oldest(len(xs) - free)
            chunk = _Chunk(
                name=f"c{self._next_chunk:06d}",
                first_id=first + skip,
                rows=len(xs),
                labels="none" if ys is None else "all",
                time=self._clock.time(),
                model_version=model_version,
                source=source,
            )
            self._next_chunk += 1
            _write_npy(self._file(chunk, "x"), xs)
            if ys is not None:
                _write_npy(self._file(chunk, "y"), ys)
            self._chunks.append(chunk)
            self._save()
            self._collect()
            return chunk.ids

    def _drop_oldest(self, n: int) -> None:
        while n > 0 and self._chunks:
            c = self._chunks[0]
            take = min(n, c.held)
            c.skip += take
            self._dropped += take
            n -= take
            if c.held == 0:
                self._chunks.pop(0)
                self._doomed.append(c)

    def _collect(self) -> None:
        """Delete files of chunks the saved manifest no longer names."""
        for c in self._doomed:
            for part in "xym":
                with contextlib.suppress(FileNotFoundError):
                    self._file(c, part).unlink()
        self._doomed.clear()

    def set_labels(self, ids: Any, y: Any) -> None:
        """Label held samples by id (ids no longer held are ignored)."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        ys = _as_samples(y, "labels")
        if len(ys) != len(wanted):
            raise DataSourceError(f"{len(wanted)} ids but {len(ys)} labels")
        with self._lock:
            for c in self._chunks:
                lo, hi = c.first_id + c.skip, c.first_id + c.rows
                sel = (wanted >= lo) & (wanted < hi)
                if not sel.any():
                    continue
                rows = wanted[sel] - c.first_id
                labels, mask = self._labels_of(c, ys.dtype, ys.shape[1:])
                labels[rows] = ys[sel]
                mask[rows] = True
                _write_npy(self._file(c, "y"), labels)
                if mask[c.skip :].all():
                    c.labels = "all"
                else:
                    c.labels = "some"
                    _write_npy(self._file(c, "m"), mask)
            self._save()

    def _labels_of(
        self, c: _Chunk, dtype: np.dtype[Any], shape: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        if c.labels == "none":
            return np.zeros((c.rows, *shape), dtype=dtype), np.zeros(c.rows, bool)
        labels = np.load(self._file(c, "y"), allow_pickle=False)
        if c.labels == "all":
            mask = np.ones(c.rows, bool)
        else:
            mask = np.load(self._file(c, "m"), allow_pickle=False)
        return labels, mask

    def _labelled_rows(self, c: _Chunk) -> np.ndarray:
        if c.labels == "all":
            return np.ones(c.held, bool)
        if c.labels == "none":
            return np.zeros(c.held, bool)
        return np.load(self._file(c, "m"), allow_pickle=False)[c.skip :]

    def clear(self) -> None:
        """Forget every held sample (counters are kept)."""
        with self._lock:
            self._doomed.extend(self._chunks)
            self._chunks = []
            self._warned_full = False
            self._save()
            self._collect()

    # -- reading ----------------------------------------------------------------------------

    def load(
        self, *, labelled_only: bool = False, last: int | None = None, since_mark: bool = False
    ) -> HardExamples:
        """The held samples, oldest first.

        Parameters
        ----------
        labelled_only
            Only samples with a label.
        last
            Only the newest ``last`` samples (after the other filters).
        since_mark
            Only samples added after :meth:`mark`.
        """
        with self._lock:
            ids, xs, ys, ms = [], [], [], []
            for c in self._chunks:
                cid = c.ids
                x = np.load(self._file(c, "x"), allow_pickle=False)[c.skip :]
                labelled = self._labelled_rows(c)
                keep = np.ones(len(cid), bool)
                if since_mark:
                    keep &= cid > self._mark
                if labelled_only:
                    keep &= labelled
                if not keep.any():
                    continue
                y = None
                if c.labels != "none":
                    y = np.load(self._file(c, "y"), allow_pickle=False)[c.skip :][keep]
                ids.append(cid[keep])
                xs.append(x[keep])
                ys.append(y)
                ms.append(labelled[keep])
        if not ids:
            return HardExamples(np.empty(0, np.int64), np.empty((0,)), None, np.empty(0, bool))
        try:
            x_all = np.concatenate(xs)
        except ValueError as exc:
            raise DataSourceError(f"stored samples have different shapes: {exc}") from exc
        y_all = None
        if any(y is not None for y in ys):
            ref = next(y for y in ys if y is not None)
            parts = [
                y if y is not None else np.zeros((len(x), *ref.shape[1:]), ref.dtype)
                for x, y in zip(xs, ys, strict=True)
            ]
            y_all = np.concatenate(parts)
        out = HardExamples(np.concatenate(ids), x_all, y_all, np.concatenate(ms))
        if last is not None and len(out) > last:
            cut = len(out) - last
            out = HardExamples(
                out.ids[cut:],
                out.x[cut:],
                None if out.y is None else out.y[cut:],
                out.labelled[cut:],
            )
        return out

    def stats(self) -> dict[str, int]:
        """Counters for reports: held, labelled, new since the mark, dropped, capacity."""
        with self._lock:
            return {
                "held": len(self),
                "labelled": self.count(labelled_only=True),
                "new": self.count(since_mark=True),
                "dropped": self._dropped,
                "capacity": self.capacity,
            }
