"""The artifact store: versions, content addressing, metadata, integrity, atomicity, concurrency."""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from sedna_core.artifacts import ArtifactInfo, ArtifactStore
from sedna_core.artifacts import _store as store_module
from sedna_core.clock import ManualClock
from sedna_core.errors import ArtifactError, IntegrityError


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", clock=ManualClock(epoch=1_000.0))


def test_put_get_round_trip_and_metadata(store: ArtifactStore, tmp_path: Path) -> None:
    info = store.put("model", b"weights-1", format="pth", metrics={"acc": np.float32(0.5)})
    assert isinstance(info, ArtifactInfo)
    assert (info.name, info.version, info.size, info.format) == ("model", "1", 9, "pth")
    assert info.created == 1_000.0 and info.metrics == {"acc": 0.5} and info.metadata == {}
    assert info.filename == "model.pth" and info.path.read_bytes() == b"weights-1"
    assert store.get("model") == info == store.get("model", "1") == store.get("model", 1)
    meta = json.loads((info.path.parent / "meta.json").read_text())
    assert meta == {**info.to_dict(), "metrics": {"acc": 0.5}}
    assert set(meta) == {
        "name",
        "version",
        "created",
        "metrics",
        "format",
        "sha256",
        "size",
        "metadata",
        "filename",
    }

    src = tmp_path / "net.keras"
    src.write_bytes(b"x" * (3 << 20))  # several copy blocks
    second = store.put("model", src, format="keras", metadata={"round": 3})
    assert (
        second.version == "2" and second.filename == "net.keras" and second.metadata == {"round": 3}
    )
    assert store.path("model") == second.path and store.read_bytes("model") == src.read_bytes()
    assert store.read_bytes("model", "1") == b"weights-1"
    assert [v.version for v in store.versions("model")] == ["1", "2"]
    assert store.latest("model") == second and store.latest("other") is None
    assert store.names() == ["model"]
    assert (
        store.put("model", str(src), format="keras", filename="custom.keras").path.name
        == "custom.keras"
    )


def test_content_addressed_layout(store: ArtifactStore) -> None:
    a = store.put("a", b"same bytes", format="bin")
    b = store.put("b", b"same bytes", format="bin")
    blob = store.root / "blobs" / "sha256" / a.sha256[:2] / a.sha256
    assert blob == store.blob_path(a.sha256) and blob.read_bytes() == b"same bytes"
    assert a.sha256 == b.sha256 == hashlib.sha256(b"same bytes").hexdigest()
    # stored once: both versions are hard links to the one blob, which is read-only
    assert (
        blob.stat().st_nlink == 3
        and os.path.samefile(blob, a.path)
        and os.path.samefile(blob, b.path)
    )
    assert not os.access(blob, os.W_OK) or os.geteuid() == 0
    assert list((store.root / "tmp").iterdir()) == []


def test_delete_never_reuses_versions_and_collects_blobs(store: ArtifactStore) -> None:
    for i in range(3):
        store.put("m", f"v{i}".encode(), format="bin")
    v3 = store.get("m", "3")
    assert store.delete("m", "3") == ["3"]
    assert not store.blob_path(v3.sha256).exists()
    assert store.put("m", b"again", format="bin").version == "4"
    with pytest.raises(ArtifactError, match="version 3"):
        store.get("m", "3")
    assert store.delete("m") == ["1", "2", "4"]
    assert store.names() == [] and store.latest("m") is None
    assert store.put("m", b"later", format="bin").version == "5"
    with pytest.raises(ArtifactError):
        store.delete("missing")


def test_shared_blob_survives_deleting_one_user(store: ArtifactStore) -> None:
    a = store.put("a", b"shared", format="bin")
    store.put("b", b"shared", format="bin")
    store.delete("a")
    assert store.blob_path(a.sha256).exists() and store.read_bytes("b") == b"shared"


@pytest.mark.parametrize(
    "name", ["", "..", "a/b", "../x", "a\\b", ".hidden", "a..b", "x" * 129, "über", "a b", 3, None]
)
def test_unsafe_names_refused(store: ArtifactStore, name: object) -> None:
    with pytest.raises(ArtifactError, match="invalid artifact name"):
        store.put(name, b"x", format="bin")  # type: ignore[arg-type]
    with pytest.raises(ArtifactError):
        store.get(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "a/b"}, "invalid format"),
        ({"format": "bin", "filename": "../evil"}, "invalid file name"),
        ({"format": "bin", "filename": "meta.json"}, "reserved"),
        ({"format": "bin", "metrics": {"x": object()}}, "JSON-serialisable"),
        ({"format": "bin", "metadata": [1]}, "mapping"),
    ],
)
def test_bad_arguments_refused(store: ArtifactStore, kwargs: dict, match: str) -> None:
    with pytest.raises(ArtifactError, match=match):
        store.put("m", b"x", **kwargs)
    assert store.names() == []


def test_bad_sources_and_versions(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="directory"):
        store.put("m", tmp_path, format="bin")
    with pytest.raises(ArtifactError, match="no such file"):
        store.put("m", tmp_path / "missing", format="bin")
    with pytest.raises(ArtifactError, match="bytes or a file path"):
        store.put("m", 42, format="bin")  # type: ignore[arg-type]
    store.put("m", b"x", format="bin")
    for bad in ("0", "01", "-1", "1.0", "latest", True, 1.5):
        with pytest.raises(ArtifactError, match="invalid version"):
            store.get("m", bad)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="no artifact named"):
        store.get("nothing")


def test_loads_verify_the_digest(store: ArtifactStore) -> None:
    info = store.put("m", b"good content", format="bin")
    os.chmod(info.path, 0o644)
    info.path.write_bytes(b"evil content")  # same size, other bytes
    for load in (store.get, store.path, store.read_bytes):
        with pytest.raises(IntegrityError, match="corrupt"):
            load("m")
    assert store.get("m", verify=False) == info
    info.path.write_bytes(b"short")
    with pytest.raises(IntegrityError):
        store.read_bytes("m")
    info.path.unlink()
    with pytest.raises(ArtifactError):
        store.get("m")


def test_unreadable_metadata_is_an_artifact_error(store: ArtifactStore) -> None:
    info = store.put("m", b"x", format="bin")
    (info.path.parent / "meta.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable metadata"):
        store.get("m")


def test_failed_write_leaves_nothing_visible(store: ArtifactStore, monkeypatch) -> None:
    def boom(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "disk full")

    monkeypatch.setattr(store_module, "write_atomic", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put("m", b"content", format="bin")
    monkeypatch.undo()
    assert store.versions("m") == [] and store.names() == []
    assert list((store.root / "tmp").iterdir()) == []
    assert store.put("m", b"content", format="bin").version == "2"  # numbers are never reused


def _crash_during_put(root: str) -> None:
    store = ArtifactStore(root)

    def die(path: Path, data: bytes) -> None:
        os._exit(3)  # a hard crash: no cleanup code runs

    store_module.write_atomic = die  # type: ignore[assignment]
    store.put("m", b"half written", format="bin")


def test_hard_crash_before_metadata_leaves_nothing_visible(store: ArtifactStore) -> None:
    store.put("m", b"first", format="bin")
    proc = multiprocessing.get_context("fork").Process(
        target=_crash_during_put, args=(str(store.root),)
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 3
    assert [v.version for v in store.versions("m")] == ["1"]
    assert store.read_bytes("m") == b"first"
    assert store.put("m", b"third", format="bin").version == "3"


def test_without_hard_links_versions_keep_copies(store: ArtifactStore, monkeypatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    info = store.put("m", b"copied", format="bin")
    assert (
        store.read_bytes("m") == b"copied"
        and store.blob_path(info.sha256).read_bytes() == b"copied"
    )
    assert list((store.root / "tmp").iterdir()) == []


def test_concurrent_threads_get_distinct_versions(store: ArtifactStore) -> None:
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(5):
                store.put("m", f"thread {t} item {i}".encode(), format="bin")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    versions = store.versions("m")
    assert [v.version for v in versions] == [str(i) for i in range(1, 31)]
    assert len({store.read_bytes("m", v.version) for v in versions}) == 30


def _put_many(root: str, worker: int) -> None:
    store = ArtifactStore(root)
    for i in range(5):
        store.put("shared", f"process {worker} item {i}".encode(), format="bin")
        store.put("same", b"identical content", format="bin")


def test_concurrent_processes_get_distinct_versions(store: ArtifactStore) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_put_many, args=(str(store.root), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    shared = store.versions("shared")
    assert [v.version for v in shared] == [str(i) for i in range(1, 21)]
    contents = {store.read_bytes("shared", v.version) for v in shared}
    assert contents == {f"process {w} item {i}".encode() for w in range(4) for i in range(5)}
    same = store.versions("same")
    assert len(same) == 20 and len({v.sha256 for v in same}) == 1
    assert store.blob_path(same[0].sha256).stat().st_nlink == 21
