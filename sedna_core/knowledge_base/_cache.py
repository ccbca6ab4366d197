"""The edge side's copy of the knowledge base: the latest index and the files it names.

Layout of ``cache_dir``::

    index.json                 the cached index (written last, atomically)
    artifacts/<sha256>/<file>  every file the index names, verified against its digest

A refresh downloads a newer index's files before it replaces ``index.json``, so a failure
half-way leaves the previous complete copy in use. Only files the cache lacks are fetched, many
per request (``/file/bundle``), a few requests at a time. While the knowledge base is unreachable,
the cache keeps serving what it has.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import KnowledgeBaseError, ServiceError
from sedna_core.knowledge_base._client import KnowledgeBaseClient
from sedna_core.knowledge_base._index import iter_artifacts, validate_index
from sedna_core.knowledge_base._safety import safe_name
from sedna_core.log import get_logger

__all__ = ["EdgeKnowledgeCache"]

log = get_logger(__name__)


class EdgeKnowledgeCache:
    """A local, self-consistent copy of the knowledge base's latest index and its files.

    Parameters
    ----------
    cache_dir
        Where the copy lives (created if missing).
    client
        The knowledge base to refresh from; None serves the local copy only.
    poll_period
        Seconds between version checks made by :meth:`maybe_refresh`.
    clock
        Time source for the poll period.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        client: KnowledgeBaseClient | None = None,
        *,
        poll_period: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.root = Path(cache_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.client = client
        self.poll_period = poll_period
        self.clock = clock or SystemClock()
        self._last_check: float | None = None
        self._index: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._load()

    # -- reading -----------------------------------------------------------------------------

    @property
    def index(self) -> dict[str, Any] | None:
        """The cached index, or None before the first successful refresh."""
        return self._index

    @property
    def version(self) -> int | None:
        return None if self._index is None else self._index.get("version")

    def path(self, ref: Mapping[str, Any]) -> Path:
        """The local file of an artifact reference of the cached index."""
        path = self._artifact_path(ref)
        if not path.is_file():
            raise KnowledgeBaseError(
                f"{ref['sha256']} is not in the edge cache {self.root}; refresh it from the KB"
            )
        return path

    def _artifact_path(self, ref: Mapping[str, Any]) -> Path:
        filename = safe_name(ref.get("filename") or ref.get("name"), "artifact")
        return self.root / "artifacts" / ref["sha256"] / filename

    def _load(self) -> None:
        file = self.root / "index.json"
        if not file.is_file():
            return
        try:
            self._index = validate_index(json.loads(file.read_text(encoding="utf-8")))
        except (ValueError, KnowledgeBaseError) as exc:
            log.warning("cached index unreadable; ignored", path=str(file), error=str(exc))
            self._index = None

    # -- refreshing --------------------------------------------------------------------------

    def maybe_refresh(self) -> bool:
        """:meth:`refresh` if ``poll_period`` passed since the last check (or never checked)."""
        now = self.clock.monotonic()
        if self._last_check is not None and now - self._last_check < self.poll_period:
            return False
        return self.refresh()

    def refresh(self) -> bool:
        """Fetch the knowledge base's latest index and files if newer than the cached ones.

        Returns whether the cache changed. An unreachable or failing knowledge base is logged
        (``last_error``) and the cached copy stays in use.
        """
        self._last_check = self.clock.monotonic()
        if self.client is None:
            return False
        try:
            latest = self.client.latest_version()
            if latest is None or (self.version is not None and latest <= self.version):
                self.last_error = None
                return False
            doc = self.client.get_index(latest)  # validated by the client
            wanted = [
                (ref, target)
                for _, ref in iter_artifacts(doc)
                if not (target := self._artifact_path(ref)).is_file()
            ]
            # only the files this cache lacks, many per request, a few requests in flight
            self.client.download_many(wanted)
        except (ServiceError, KnowledgeBaseError, OSError) as exc:
            self.last_error = str(exc)
            log.warning(
                "knowledge base unreachable; serving the cached index",
                cached_version=self.version,
                error=str(exc),
            )
            return False
        self._install(doc)
        self.last_error = None
        return True

    def install(self, doc: Mapping[str, Any]) -> None:
        """Make ``doc`` the cached index (its files must be in the cache already) and drop
        files no longer referenced."""
        self._install(validate_index(doc))

    def _install(self, doc: dict[str, Any]) -> None:
        for _, ref in iter_artifacts(doc):
            self.path(ref)  # raises if one is missing
        tmp = self.root / f".index.json.part-{os.getpid()}"
        tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.root / "index.json")
        self._index = doc
        keep = {ref["sha256"] for _, ref in iter_artifacts(doc)}
        artifacts = self.root / "artifacts"
        if artifacts.is_dir():
            for d in artifacts.iterdir():
                if d.is_dir() and d.name not in keep:
                    shutil.rmtree(d, ignore_errors=True)
        log.info("edge cache updated", version=doc.get("version"))

    def add_local(self, ref: Mapping[str, Any], source: str | os.PathLike[str]) -> Path:
        """Copy a local file into the cache under ``ref`` (used when the trainer is the edge)."""
        target = self._artifact_path(ref)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file():
            tmp = target.with_name(f".{target.name}.part")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        return target
