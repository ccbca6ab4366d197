"""The bounded on-disk hard-example store: bound, restart, labels, safe formats."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sedna_core.errors import ConfigError, DataSourceError
from sedna_core.jobs.incremental import HardExampleStore


@settings(max_examples=25)
@given(
    capacity=st.integers(1, 40),
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=8),
    when_full=st.sampled_from(["drop_oldest", "drop_newest"]),
)
def test_il_store_never_exceeds_its_bound(capacity: int, sizes: list[int], when_full: str):
    with tempfile.TemporaryDirectory() as root:
        store = HardExampleStore(root, capacity=capacity, when_full=when_full)
        offered = 0
        for n in sizes:
            x = np.arange(offered, offered + n, dtype=np.float64).reshape(n, 1)
            store.add(x, (x[:, 0] % 2).astype(np.int64))
            offered += n
            assert len(store) <= capacity
            assert len(store) + store.dropped == offered == store.total_added
        held = store.load()
        values = [int(v) for v in held.x.ravel()]
        if when_full == "drop_oldest":
            assert values == list(range(offered - len(values), offered))  # the newest
        else:
            assert values == list(range(len(values)))  # the first ones
        assert held.ids.tolist() == values
        reopened = HardExampleStore(root, capacity=capacity, when_full=when_full)
        assert reopened.load().ids.tolist() == held.ids.tolist()
        assert reopened.dropped == store.dropped and len(reopened) == len(store)


def test_il_store_survives_restart_with_labels_and_mark(tmp_path: Path) -> None:
    store = HardExampleStore(tmp_path / "he", capacity=10)
    a = store.add(np.ones((3, 2)), model_version="1")
    store.add(np.zeros((2, 2)), np.array([7, 8]), source="random")
    store.set_labels(a[[0, 2]], np.array([1, 3]))
    store.mark()
    store.add(np.full((4, 2), 5.0))
    assert store.count() == 9 and store.count(labelled_only=True) == 4
    assert store.count(since_mark=True) == 4
    again = HardExampleStore(tmp_path / "he", capacity=10)
    held = again.load()
    assert held.ids.tolist() == list(range(9))
    assert held.labelled.tolist() == [True, False, True, True, True] + [False] * 4
    assert held.y[[0, 2, 3, 4]].tolist() == [1, 3, 7, 8]
    assert again.count(since_mark=True) == 4
    only = again.load(labelled_only=True, last=3)
    assert only.ids.tolist() == [2, 3, 4] and only.y.tolist() == [3, 7, 8]
    assert again.stats() == {"held": 9, "labelled": 4, "new": 4, "dropped": 0, "capacity": 10}
    manifest = json.loads((tmp_path / "he" / "manifest.json").read_text())
    assert manifest["chunks"][0]["model_version"] == "1"
    assert manifest["chunks"][1]["source"] == "random"


def test_il_store_drops_oldest_and_deletes_their_files(tmp_path: Path) -> None:
    store = HardExampleStore(tmp_path, capacity=5)
    store.add(np.zeros((3, 1)))
    store.add(np.ones((3, 1)))
    store.add(np.full((3, 1), 2.0))
    assert len(store) == 5 and store.dropped == 4
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == [
        "c000002.x.npy",
        "c000003.x.npy",
    ]
    assert store.load().x[:, 0].tolist() == [1, 1, 2, 2, 2]


def test_il_store_cleans_crash_leftovers_and_shrinks(tmp_path: Path) -> None:
    store = HardExampleStore(tmp_path, capacity=10)
    store.add(np.zeros((6, 1)))
    np.save(tmp_path / "c000099.x.npy", np.zeros((2, 1)), allow_pickle=False)  # no manifest entry
    (tmp_path / ".manifest.json.tmp123").write_text("{")
    smaller = HardExampleStore(tmp_path, capacity=4)
    assert not (tmp_path / "c000099.x.npy").exists()
    assert not (tmp_path / ".manifest.json.tmp123").exists()
    assert len(smaller) == 4 and smaller.dropped == 2


def test_il_store_refuses_unsafe_or_mismatched_data(tmp_path: Path) -> None:
    store = HardExampleStore(tmp_path)
    with pytest.raises(DataSourceError, match="without pickle"):
        store.add(np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataSourceError, match="labels"):
        store.add(np.zeros((2, 1)), np.zeros(3))
    with pytest.raises(ConfigError):
        HardExampleStore(tmp_path, when_full="drop_random")
    with pytest.raises(ConfigError):
        HardExampleStore(tmp_path, capacity=0)
    (tmp_path / "manifest.json").write_text("not json")
    with pytest.raises(DataSourceError, match="unreadable"):
        HardExampleStore(tmp_path)


def test_il_store_keeps_strings(tmp_path: Path) -> None:
    store = HardExampleStore(tmp_path)
    store.add(np.array(["/data/img1.png", "/data/img2.png"]))
    assert store.load().x.tolist() == ["/data/img1.png", "/data/img2.png"]
    store.clear()
    assert len(store) == 0 and not list(tmp_path.glob("*.npy"))
