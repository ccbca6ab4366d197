"""A bounded on-disk store of hard examples found in service.

Layout under ``root``::

    manifest.json         a snapshot: chunks, ids, counters (replaced atomically)
    journal.jsonl         changes since the snapshot, one JSON line each (appended, fsync'd)
    c000001.x.npy         the samples of one ``add`` call (np.save, allow_pickle=False)
    c000001.y.npy         their labels, once known (same rows)
    c000001.m.npy         which rows are labelled, when only some are

Each :meth:`HardExampleStore.add` writes one chunk, then appends one journal line naming it (the
chunk's entry, the counters, the oldest chunk still held): the work per call does not grow with
the number of chunks held. An add is acknowledged once its line is fsync'd. A crash mid-append
leaves a torn last line, which the next open discards with the files it named (that add was never
acknowledged); earlier lines are untouched. The journal is folded into the manifest when it holds
more lines than half the chunks held (and at least ``_COMPACT_AT``), so that cost is O(1)
amortised, and on open. Lines carry a sequence number and the manifest the last one it
includes, so a crash between writing the manifest and emptying the journal replays nothing
twice. Manifests of format 1 (no journal) load unchanged and are rewritten as format 2 on open;
format 2 refuses to load in older versions, which would otherwise ignore the journal and delete
the chunk files only it names.

Every sample gets an increasing id. When the store is full, ``when_full="drop_oldest"`` drops the
oldest samples and ``"drop_newest"`` refuses the incoming ones; either way they are counted in
:attr:`dropped`, which survives restarts like everything else.
"""

from __future__ import annotations

import bisect
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
_JOURNAL = "journal.jsonl"
_FORMAT = 2
_READS = (1, 2)  # format 1: the manifest alone, before the journal
_COMPACT_AT = 1024  # fold the journal into the manifest past max(this, chunks held / 2) lines
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

    @property
    def number(self) -> int:
        return int(self.name[1:])

    def entry(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


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


def _fsync_dir(path: Path) -> None:
    """Make renames and new names in ``path`` durable (POSIX; Windows cannot open a directory)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        self._firsts: list[int] = []  # first_id of each chunk, for bisecting ids to chunks
        self._held = 0
        self._seq = 0  # sequence number of the last change written (journal line or manifest)
        self._journal_lines = 0  # lines in the journal not yet folded into the manifest
        self._journal_size = 0  # bytes of whole lines in the journal
        self._stale = True  # the files on disk need a compaction (set by _load)
        self._next_id = 0
        self._next_chunk = 1
        self._dropped = 0
        self._mark = -1  # ids <= mark were used by a training run
        self._doomed: list[_Chunk] = []  # dropped chunks whose files go once the manifest is saved
        self._warned_full = False
        with self._lock:
            self._load()
            if self._held > self.capacity:  # reopened with a smaller capacity
                self._drop_oldest(self._held - self.capacity)
                self._stale = True
            if self._stale:
                self._compact()
            self._collect()

    # -- persistence ------------------------------------------------------------------------

    def _load(self) -> None:
        path = self.root / _MANIFEST
        if path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if doc.get("format") not in _READS:
                    raise ValueError(f"unknown format {doc.get('format')!r}")
                # format 1 is rewritten as 2 so older versions cannot ignore the journal
                self._stale = doc["format"] != _FORMAT
                self._chunks = [_Chunk(**c) for c in doc["chunks"]]
                self._next_id = int(doc["next_id"])
                self._next_chunk = int(doc["next_chunk"])
                self._dropped = int(doc["dropped"])
                self._mark = int(doc.get("mark", -1))
                self._seq = int(doc.get("journal_seq", 0))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataSourceError(
                    f"hard-example manifest is unreadable ({exc}); move the directory aside "
                    "to start a new store",
                    path=str(path),
                ) from exc
        self._replay()
        self._firsts = [c.first_id for c in self._chunks]
        self._held = sum(c.held for c in self._chunks)
        referenced: set[str] = set()
        for c in self._chunks:
            referenced.add(f"{c.name}.x.npy")
            if c.labels != "none":
                referenced.add(f"{c.name}.y.npy")
            if c.labels == "some":
                referenced.add(f"{c.name}.m.npy")
        for entry in self.root.iterdir():  # leftovers of a crash between files and journal
            if (_CHUNK.match(entry.name) and entry.name not in referenced) or (
                entry.name.startswith(".") and entry.is_file()
            ):
                with contextlib.suppress(OSError):
                    entry.unlink()

    def _replay(self) -> None:
        """Apply the journal lines newer than the manifest; drop a torn last line."""
        path = self.root / _JOURNAL
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        self._stale = self._stale or bool(data)  # also empties a torn line before appending
        whole = data.rfind(b"\n") + 1  # a write cut short by a crash has no newline yet
        lines = data[:whole].splitlines()
        by_name = {c.name: c for c in self._chunks}
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
                seq = int(rec["seq"])
                if seq <= self._seq:
                    continue  # already in the manifest (crash before the journal was emptied)
                first = int(rec["first"])
                while self._chunks and self._chunks[0].number < first:
                    del by_name[self._chunks.pop(0).name]
                for e in rec["put"]:
                    chunk = _Chunk(**e)
                    if chunk.name in by_name:
                        old = by_name[chunk.name]  # updated in place: the list keeps its order
                        for field in attrs.fields(_Chunk):
                            setattr(old, field.name, getattr(chunk, field.name))
                    else:
                        self._chunks.append(chunk)
                        by_name[chunk.name] = chunk
                self._next_id = int(rec["next_id"])
                self._next_chunk = int(rec["next_chunk"])
                self._dropped = int(rec["dropped"])
                self._mark = int(rec["mark"])
                self._seq = seq
            except (ValueError, KeyError, TypeError) as exc:
                raise DataSourceError(
                    f"hard-example journal line {n} is unreadable ({exc}); a crash only cuts the "
                    "last line short, so the file was damaged otherwise; move the directory "
                    "aside to start a new store",
                    path=str(path),
                ) from exc
        self._journal_lines = len(lines)
        self._journal_size = whole
        if whole < len(data):
            log.warning("hard-example journal: dropping a torn last line", bytes=len(data) - whole)

    def _record(self, changed: list[_Chunk]) -> None:
        """Make a change durable: one fsync'd journal line with the counters, the entries of the
        chunks that changed and the oldest chunk still held (older ones are gone)."""
        self._seq += 1
        rec = {
            "seq": self._seq,
            "next_id": self._next_id,
            "next_chunk": self._next_chunk,
            "dropped": self._dropped,
            "mark": self._mark,
            "first": self._chunks[0].number if self._chunks else self._next_chunk,
            "put": [c.entry() for c in changed],
        }
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode("utf-8")
        if changed:
            _fsync_dir(self.root)  # the chunk files just renamed into place, before naming them
        path = self.root / _JOURNAL
        created = self._journal_size == 0 and not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            try:
                written = os.write(fd, line)  # one write: a crash leaves a prefix, never a mix
                if written != len(line):
                    raise OSError(f"short write to {path} ({written} of {len(line)} bytes)")
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):  # no half line for the next one to follow
                    os.ftruncate(fd, self._journal_size)
                raise
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.root)
        self._journal_lines += 1
        self._journal_size += len(line)
        # a compaction writes every chunk: waiting for lines > chunks/2 (chunks grow at most one
        # per line) makes each line pay for at most ~3 entries, however many chunks are held
        if self._journal_lines > max(_COMPACT_AT, len(self._chunks) // 2):
            self._compact()

    def _compact(self) -> None:
        """Fold the journal into a new manifest, then empty the journal."""
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
                "journal_seq": self._seq,
                "chunks": [c.entry() for c in self._chunks],
            },
        )
        _fsync_dir(self.root)  # the new manifest must be durable before the journal goes
        path = self.root / _JOURNAL
        if self._journal_size or path.exists():
            with open(path, "r+b") as fh:
                fh.truncate(0)
                fh.flush()
                os.fsync(fh.fileno())
        self._journal_lines = 0
        self._journal_size = 0

    def _file(self, chunk: _Chunk, part: str) -> Path:
        return self.root / f"{chunk.name}.{part}.npy"

    # -- counters ---------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return self._held

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
            self._record([])

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
            changed: list[_Chunk] = []
            free = self.capacity - self._held
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
                        self._record([])
                        return np.empty(0, dtype=np.int64)
                else:
                    skip = max(0, len(xs) - self.capacity)  # more than fit at all
                    self._dropped += skip
                    xs = xs[skip:]
                    ys = None if ys is None else ys[skip:]
                    changed = self._drop_oldest(len(xs) - free)
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
            self._firsts.append(chunk.first_id)
            self._held += chunk.rows
            self._record([*changed, chunk])
            self._collect()
            return chunk.ids

    def _drop_oldest(self, n: int) -> list[_Chunk]:
        """Drop the ``n`` oldest samples; returns the chunk left partly dropped, if any (the
        emptied ones are gone from the front, which the next journal line records)."""
        while n > 0 and self._chunks:
            c = self._chunks[0]
            take = min(n, c.held)
            c.skip += take
            self._dropped += take
            self._held -= take
            n -= take
            if c.held == 0:
                self._chunks.pop(0)
                self._firsts.pop(0)
                self._doomed.append(c)
            else:
                return [c]
        return []

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
            # only the chunks the ids fall in: a call costs O(ids · log chunks), not O(chunks)
            hit = {bisect.bisect_right(self._firsts, i) - 1 for i in wanted.tolist()}
            changed = []
            for k in sorted(hit - {-1}):
                c = self._chunks[k]
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
                changed.append(c)
            if changed:
                self._record(changed)

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
            self._firsts = []
            self._held = 0
            self._warned_full = False
            self._record([])
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
