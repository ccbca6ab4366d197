"""The hard-example store's journal: crash safety, old manifests, O(1) work per add.

Crashes are simulated deterministically: a store object is abandoned without any closing step
(what a killed process leaves), or the journal is cut at a chosen byte (a torn append), or the
journal's old bytes are put back after a compaction (a crash between the two writes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna_core.clock import ManualClock
from sedna_core.errors import DataSourceError
from sedna_core.jobs.incremental import HardExampleStore
from sedna_core.jobs.incremental import _hard_examples as he


def _state(store: HardExampleStore) -> dict[str, Any]:
    held = store.load()
    return {
        "ids": held.ids.tolist(),
        "x": held.x.ravel().tolist(),
        "labelled": held.labelled.tolist(),
        "y": None if held.y is None else held.y.ravel().tolist(),
        "stats": store.stats(),
        "total_added": store.total_added,
    }


def _fill(root: Path) -> HardExampleStore:
    store = HardExampleStore(root, capacity=8, clock=ManualClock())
    first = store.add(np.array([[0.0], [1.0]]))
    store.add(np.array([[2.0], [3.0], [4.0]]), np.array([20, 30, 40]))
    store.set_labels(first[[1]], np.array([10]))
    store.mark()
    store.add(np.array([[5.0], [6.0], [7.0], [8.0]]))  # drops the oldest sample
    return store


def test_il_journal_acknowledged_changes_survive_a_crash_before_compaction(tmp_path) -> None:
    store = _fill(tmp_path)
    expected = _state(store)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["chunks"] == []  # everything acknowledged so far lives in the journal only
    assert len((tmp_path / "journal.jsonl").read_bytes().splitlines()) == 5
    del store  # killed: nothing runs between the last fsync'd line and the next open

    again = HardExampleStore(tmp_path, capacity=8)
    assert _state(again) == expected
    assert expected["ids"] == list(range(1, 9)) and expected["stats"]["dropped"] == 1
    assert expected["labelled"] == [True, True, True, True, False, False, False, False]
    # the open folded the journal into the manifest
    assert (tmp_path / "journal.jsonl").read_bytes() == b""
    assert len(json.loads((tmp_path / "manifest.json").read_text())["chunks"]) == 3


class _Killed(BaseException):
    """The process dying: nothing after it runs (no cleanup, no later statement)."""


class _DyingOs:
    """``os`` for the store module whose next ``write`` puts ``keep`` bytes on disk and then
    the process is killed (``keep=-1``: all but the last byte)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: bytes) -> int:
        os.write(fd, data[: self.keep if self.keep >= 0 else len(data) + self.keep])
        raise _Killed

    def ftruncate(self, fd: int, length: int) -> None:  # a killed process cleans nothing up
        raise _Killed


@pytest.mark.parametrize("keep", [0, 1, 17, -1])
def test_il_journal_torn_last_line_loses_only_that_change(tmp_path, monkeypatch, keep) -> None:
    store = _fill(tmp_path)
    before = _state(store)
    monkeypatch.setattr(he, "os", _DyingOs(keep))
    with pytest.raises(_Killed):
        store.add(np.array([[9.0]]), np.array([90]))  # would drop the oldest chunk, c000001
    monkeypatch.undo()
    assert (tmp_path / "c000004.x.npy").exists() and (tmp_path / "c000001.x.npy").exists()
    torn = (tmp_path / "journal.jsonl").read_bytes()
    assert keep == 0 or not torn.endswith(b"\n")
    del store

    again = HardExampleStore(tmp_path, capacity=8)
    assert _state(again) == before  # the earlier entries are all there, the torn one is not
    assert not (tmp_path / "c000004.x.npy").exists()  # its files went with it
    assert (tmp_path / "journal.jsonl").read_bytes() == b""  # no half line to append after
    ids = again.add(np.array([[9.0]]), np.array([90]))
    assert ids.tolist() == [9]
    assert HardExampleStore(tmp_path, capacity=8).load().x.ravel().tolist() == [
        *before["x"][1:],
        9.0,
    ]


def test_il_journal_crash_between_manifest_and_emptying_the_journal(tmp_path) -> None:
    store = _fill(tmp_path)
    expected = _state(store)
    stale = (tmp_path / "journal.jsonl").read_bytes()
    HardExampleStore(tmp_path, capacity=8)  # compacts into the manifest, empties the journal
    (tmp_path / "journal.jsonl").write_bytes(stale)  # ...as if the crash came before that
    again = HardExampleStore(tmp_path, capacity=8)
    assert _state(again) == expected  # nothing replayed twice, nothing resurrected
    again.add(np.array([[9.0]]))
    assert HardExampleStore(tmp_path, capacity=8).total_added == expected["total_added"] + 1


def test_il_journal_failed_append_leaves_no_half_line(tmp_path, monkeypatch) -> None:
    store = _fill(tmp_path)
    expected = _state(store)

    class HalfWrite:
        """``os`` whose next write stops halfway and fails, like a full disk."""

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def write(self, fd: int, data: bytes) -> int:
            os.write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(he, "os", HalfWrite())
    with pytest.raises(OSError, match="No space"):
        store.add(np.array([[9.0]]))
    monkeypatch.undo()
    assert (tmp_path / "journal.jsonl").read_bytes().endswith(b"\n")
    assert _state(HardExampleStore(tmp_path, capacity=8)) == expected


def test_il_journal_damaged_middle_line_is_a_clear_error(tmp_path) -> None:
    _fill(tmp_path)
    lines = (tmp_path / "journal.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = b"{not json\n"
    (tmp_path / "journal.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(DataSourceError, match=r"journal line 2 is unreadable.*move the directory"):
        HardExampleStore(tmp_path, capacity=8)


def test_il_store_loads_a_format_1_manifest(tmp_path) -> None:
    """A store written before the journal: manifest.json alone, as that version wrote it."""
    np.save(tmp_path / "c000002.x.npy", np.array([[1.0], [2.0], [3.0]]), allow_pickle=False)
    np.save(tmp_path / "c000002.y.npy", np.array([0, 5, 0]), allow_pickle=False)
    np.save(tmp_path / "c000002.m.npy", np.array([False, True, False]), allow_pickle=False)
    np.save(tmp_path / "c000003.x.npy", np.array([[4.0]]), allow_pickle=False)
    chunk: dict[str, Any] = {"labels": "none", "model_version": None, "source": "hard"}
    old = {
        "format": 1,
        "capacity": 10,
        "when_full": "drop_oldest",
        "next_id": 6,
        "next_chunk": 4,
        "dropped": 2,
        "mark": 2,
        "chunks": [
            {**chunk, "name": "c000002", "first_id": 2, "rows": 3, "skip": 1, "labels": "some"},
            {**chunk, "name": "c000003", "first_id": 5, "rows": 1, "skip": 0, "time": 7.5},
        ],
    }
    old["chunks"][0]["time"] = 1.0
    (tmp_path / "manifest.json").write_text(json.dumps(old, indent=1, sort_keys=True))

    store = HardExampleStore(tmp_path, capacity=10)
    assert _state(store) == {
        "ids": [3, 4, 5],
        "x": [2.0, 3.0, 4.0],
        "labelled": [True, False, False],
        "y": [5, 0, 0],
        "stats": {"held": 3, "labelled": 1, "new": 3, "dropped": 2, "capacity": 10},
        "total_added": 6,
    }
    migrated = json.loads((tmp_path / "manifest.json").read_text())
    assert migrated["format"] == 2 and migrated["chunks"] == old["chunks"]
    store.add(np.array([[8.0]]))
    assert HardExampleStore(tmp_path, capacity=10).load().ids.tolist() == [3, 4, 5, 6]


def test_il_store_metadata_work_per_add_does_not_grow_with_chunks(tmp_path, monkeypatch) -> None:
    """Count what an add writes besides its samples (journal lines, manifests) and how many chunk
    entries it serialises: the same per add at 60 chunks and at 480, compactions included."""
    monkeypatch.setattr(he, "_COMPACT_AT", 4)  # compact often, so the amortised cost shows
    entries = 0
    real_entry = he._Chunk.entry

    def counting_entry(chunk: Any) -> dict[str, Any]:
        nonlocal entries
        entries += 1
        return real_entry(chunk)

    metadata_bytes = 0
    real_write_json = he._write_json

    def counting_write_json(path: Path, doc: Any) -> None:
        nonlocal metadata_bytes
        metadata_bytes += len(json.dumps(doc, indent=1, sort_keys=True).encode())
        real_write_json(path, doc)

    monkeypatch.setattr(he._Chunk, "entry", counting_entry)
    monkeypatch.setattr(he, "_write_json", counting_write_json)
    store = HardExampleStore(tmp_path, capacity=100_000, clock=ManualClock())
    journal = tmp_path / "journal.jsonl"
    seen: dict[int, tuple[int, int]] = {}
    appended = 0
    for n in range(1, 481):
        size = journal.stat().st_size if journal.exists() else 0
        store.add(np.zeros((1, 1)))
        after = journal.stat().st_size
        appended += after - size if after >= size else after  # a compaction emptied it
        seen[n] = (entries, metadata_bytes + appended)
    per_add_60 = [v / 60 for v in seen[60]]
    per_add_480 = [v / 480 for v in seen[480]]
    # rewriting the manifest per add would serialise n/2 entries per add on average: 30 vs 240
    assert per_add_60[0] <= 4 and per_add_480[0] <= 4
    assert per_add_480[1] <= 1.5 * per_add_60[1]
    # one add just after a compaction: one entry and one short line, whatever the chunk count
    store._compact()
    before = entries
    size = journal.stat().st_size
    store.add(np.zeros((1, 1)))
    assert entries - before == 1
    assert 0 < journal.stat().st_size - size < 300
