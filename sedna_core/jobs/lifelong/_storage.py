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
from sedna_core.log import get_logger

__all__ = ["DEPLOY_INDEX", "KBStorage", "LocalStorage", "Storage", "index_file_for"]

#: where, under ``OUTPUT_URL``, Sedna's controller points inference pods (``MODEL_URLS``
#: names ``<OUTPUT_URL>/deploy/index.pkl``; the JSON index is read beside it)
DEPLOY_INDEX = "deploy/index.json"

log = get_logger(__name__)


def index_file_for(url: str) -> Path:
    """The JSON index a ``MODEL_URLS``/``CLOUD_KB_INDEX`` value means.

    ``.../index.json`` as it is; Sedna's ``.../index.pkl`` (the controller's default) means the
    ``index.json`` beside it, never the pickle; a folder means its ``index.json``.
    """
    first = url.split(";")[0].strip()
    if first.startswith("file://"):
        first = first[len("file://") :]
    path = Path(first)
    if path.suffix == ".json":
        return path
    if path.suffix == ".pkl":
        log.info(
            "MODEL_URLS names Sedna's pickled index: reading the JSON index beside it",
            given=first,
            index=str(path.with_name("index.json")),
        )
        return path.with_name("index.json")
    return path / "index.json"


def _read_json_index(path: Path) -> Any:
    """The index at ``path``, refusing anything that is not JSON (a Sedna pickle above all)."""
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise KnowledgeBaseError(
            f"{path} is not a JSON task index (a pickled Sedna index is never read: convert "
            "a trusted one with `sedna kb import-sedna`)"
        ) from exc


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
    """An artifact store and ``index.json`` in a local directory (Sedna's ``OUTPUT_URL``).

    Every published index is also written to ``deploy/index.json``: Sedna's controller points
    inference pods at ``<OUTPUT_URL>/deploy/index.pkl`` (``MODEL_URLS``), and a job given that
    path reads the JSON index beside it (:func:`index_file_for`). Nothing is pickled.

    ``index_file``: the index to read (default ``root/index.json``); artifacts live under
    ``root/artifacts`` either way.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        index_file: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.root = Path(root)
        self.store = ArtifactStore(self.root / "artifacts", clock=clock)
        self.index_file = Path(index_file) if index_file is not None else self.root / "index.json"
        self.deploy_file = self.root / DEPLOY_INDEX
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
        targets = [self.root / f"index-{doc['version']}.json", self.index_file, self.deploy_file]
        for target in dict.fromkeys(targets):  # the index file may be the deploy one
            target.parent.mkdir(parents=True, exist_ok=True)
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
            doc = validate_index(_read_json_index(self.index_file))
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
