"""Where a lifelong-learning job keeps its knowledge: the knowledge-base service, or a local
artifact store when no ``KB_SERVER`` is set.

Both give the job the same four operations: store a file (returning an artifact reference),
publish an index (returning its version), read the latest index, and find the local file of a
reference. The KB flavour reads through an :class:`~sedna_core.knowledge_base.EdgeKnowledgeCache`,
so inference keeps working from the cache while the knowledge base is unreachable.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sedna_core.artifacts import ArtifactStore
from sedna_core.clock import Clock
from sedna_core.errors import ArtifactError, KnowledgeBaseError
from sedna_core.knowledge_base import (
    EdgeKnowledgeCache,
    KnowledgeBaseClient,
    artifact_ref,
    download_url,
    validate_index,
)

__all__ = ["KBStorage", "LocalStorage", "Storage"]


class Storage(abc.ABC):
    """The job's view of its knowledge base."""

    #: where the latest index can be read (reported to Sedna's local controller)
    index_url: str = ""

    @abc.abstractmethod
    def put(self, name: str, path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
        """Store a file; an artifact reference for the index."""

    @abc.abstractmethod
    def publish(self, index: Mapping[str, Any]) -> int:
        """Make ``index`` the latest; its version."""

    @abc.abstractmethod
    def latest(self, *, refresh: bool = True) -> dict[str, Any] | None:
        """The latest index (None before the first); ``refresh`` may poll the source."""

    @abc.abstractmethod
    def local_path(self, ref: Mapping[str, Any]) -> Path:
        """The local file of an artifact reference of the latest index."""

    @abc.abstractmethod
    def set_deployed(self, groups: Sequence[str], deployed: bool, reason: str) -> int | None:
        """Deploy or withdraw task groups; the new index version (None if nothing changed)."""

    def close(self) -> None:  # noqa: B027 - optional hook: only the KB flavour holds connections
        """Release connections."""


class LocalStorage(Storage):
    """An artifact store and ``index.json`` in a local directory (Sedna's ``OUTPUT_URL``)."""

    def __init__(self, root: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.root = Path(root)
        self.store = ArtifactStore(self.root / "artifacts", clock=clock)
        self.index_file = self.root / "index.json"
        self.index_url = str(self.index_file)
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    def put(self, name: str, path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
        info = self.store.put(name, path, format=fmt)
        return artifact_ref(info, url=str(info.path))

    def publish(self, index: Mapping[str, Any]) -> int:
        doc = json.loads(json.dumps(validate_index(index)))
        previous = self.latest()
        doc["version"] = (previous or {}).get("version", 0) + 1
        text = json.dumps(doc, sort_keys=True)
        for target in (self.root / f"index-{doc['version']}.json", self.index_file):
            tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
        return int(doc["version"])

    def latest(self, *, refresh: bool = True) -> dict[str, Any] | None:
        try:
            stat = self.index_file.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._cached is None or self._cached[0] != key:  # parse and validate once per file
            doc = validate_index(json.loads(self.index_file.read_text(encoding="utf-8")))
            self._cached = (key, doc)
        return self._cached[1]

    def local_path(self, ref: Mapping[str, Any]) -> Path:
        try:
            return self.store.get(ref["name"], ref.get("version")).path
        except ArtifactError:
            blob = self.store.blob_path(ref["sha256"])
            if blob.is_file():
                return blob
            raise

    def set_deployed(self, groups: Sequence[str], deployed: bool, reason: str) -> int | None:
        latest = self.latest()
        if latest is None:
            raise KnowledgeBaseError("no task index yet: train first")
        doc = json.loads(json.dumps(latest))  # a copy: the cached one stays as published
        changed = False
        for group in doc["seen_task"]["task_groups"]:
            if group["entry"] in groups and group.get("deployed", True) != deployed:
                group["deployed"] = deployed
                changed = True
        return self.publish(doc) if changed else None


class KBStorage(Storage):
    """The knowledge-base service, read through an edge cache."""

    def __init__(self, client: KnowledgeBaseClient, cache: EdgeKnowledgeCache) -> None:
        self.client = client
        self.cache = cache
        self.index_url = client.url("/knowledgebase/index")
        self._pending: dict[str, Path] = {}

    def put(self, name: str, path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
        record = self.client.upload_file(path, name=name, format=fmt)
        ref = {
            "name": record["name"],
            "version": record["version"],
            "sha256": record["sha256"],
            "format": record["format"],
            "size": record["size"],
            "filename": record["filename"],
            "url": download_url(record["sha256"], record["filename"]),
        }
        self.cache.add_local(ref, path)  # the trainer's cache need not download its own files
        return ref

    def publish(self, index: Mapping[str, Any]) -> int:
        version = self.client.update_index(index)
        self.cache.refresh()
        return version

    def latest(self, *, refresh: bool = True) -> dict[str, Any] | None:
        if refresh:
            self.cache.maybe_refresh()
        return self.cache.index

    def local_path(self, ref: Mapping[str, Any]) -> Path:
        return self.cache.path(ref)

    def set_deployed(self, groups: Sequence[str], deployed: bool, reason: str) -> int | None:
        result = self.client.update_status(list(groups), deployed, reason=reason)
        self.cache.refresh()
        return int(result["version"]) if result.get("updated") else None

    def close(self) -> None:
        self.client.close()
