"""A blocking client of the knowledge-base service (timeouts and bounded retries included)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sedna_core.clock import Clock
from sedna_core.errors import IntegrityError, KnowledgeBaseError, RemoteError
from sedna_core.knowledge_base._index import validate_index
from sedna_core.knowledge_base._server import (
    ARTIFACT_HEADER,
    BUNDLE_MAX_FILES,
    INDEX_VERSION_HEADER,
    PREFIX,
    RESULT_HEADER,
)
from sedna_core.service import HttpClient, SyncClient

__all__ = ["KnowledgeBaseClient"]


class KnowledgeBaseClient:
    """Talks to ``sedna serve kb`` at ``base_url`` (Sedna's ``KB_SERVER``).

    Parameters
    ----------
    base_url
        ``http(s)://host:port`` (a trailing ``/knowledgebase`` is accepted).
    token, ca_file
        Bearer token and CA bundle for a protected service.
    timeout, retries
        Seconds of silence before a call fails, and extra attempts on retryable failures.
    clock
        Time source for retry back-off.

    Errors: :class:`~sedna_core.errors.ServiceUnavailableError` when the service cannot be
    reached, :class:`~sedna_core.errors.RemoteError` when it refuses a request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        clock: Clock | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        base = base.removesuffix(PREFIX)
        self.base_url = base
        self._http = SyncClient(
            HttpClient(
                base,
                token=token,
                ca_file=ca_file,
                connect_timeout=min(5.0, timeout),
                read_timeout=timeout,
                retries=retries,
                clock=clock,
            )
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KnowledgeBaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, relative: str) -> str:
        """An absolute URL for a KB-relative one (``/knowledgebase/...``)."""
        return self._http.client.url(relative)

    @staticmethod
    def _header(response: Any, name: str) -> str:
        value = response.headers.get(name)
        if value is None:
            raise KnowledgeBaseError(
                f"the knowledge base at this URL sent no {name} header: is it sedna-core's "
                "`sedna serve kb` (of this version or later)?"
            )
        return str(value)

    @classmethod
    def _header_json(cls, response: Any, name: str) -> dict[str, Any]:
        try:
            doc = json.loads(cls._header(response, name))
        except ValueError as exc:
            raise KnowledgeBaseError(f"the knowledge base sent a malformed {name}: {exc}") from None
        if not isinstance(doc, dict):
            raise KnowledgeBaseError(f"the knowledge base sent a malformed {name}")
        return doc

    # -- files -------------------------------------------------------------------------------

    def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        name: str | None = None,
        format: str | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Store a file; returns its record (``name``, ``version``, ``sha256``, ``size``,
        ``format``, ``filename``, ``url``). The digest answered is checked against ours."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        else:
            path = Path(source)
            data = path.read_bytes()
            filename = filename or path.name
        params = {
            k: v for k, v in (("name", name), ("format", format), ("filename", filename)) if v
        }
        response = self._http.post(
            f"{PREFIX}/file/upload",
            data=data,
            params=params,
            headers={"Content-Type": "application/octet-stream"},
        )
        # the body is Sedna's answer (a download URL string); the record travels in a header
        record = self._header_json(response, ARTIFACT_HEADER)
        if record.get("sha256") != hashlib.sha256(data).hexdigest():
            raise IntegrityError(
                f"the knowledge base stored {record.get('sha256')} for a file whose sha256 is "
                f"{hashlib.sha256(data).hexdigest()}"
            )
        return record

    def download_file(self, ref: str | Mapping[str, Any], dest: str | os.PathLike[str]) -> Path:
        """Fetch a stored file (a sha256, an artifact name or an artifact reference) to
        ``dest``, atomically, verified against the expected sha256."""
        expected = None
        if isinstance(ref, Mapping):
            expected = ref["sha256"]
            key = expected
        else:
            key = ref
            if len(ref) == 64:
                expected = ref
        body = self._http.get(f"{PREFIX}/file/download", params={"files": key}).body
        digest = hashlib.sha256(body).hexdigest()
        if expected is not None and digest != expected:
            raise IntegrityError(f"downloaded {key}: sha256 {digest}, expected {expected}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        tmp.write_bytes(body)
        os.replace(tmp, dest)
        return dest

    def download_many(
        self,
        wanted: Sequence[tuple[Mapping[str, Any], str | os.PathLike[str]]],
        *,
        concurrency: int = 4,
        batch_files: int = 256,
        batch_bytes: int = 16 << 20,
    ) -> None:
        """Fetch many artifact references, each to its destination, verified and atomic.

        Files travel in ``/file/bundle`` batches (at most ``batch_files`` files, and about
        ``batch_bytes`` by the references' ``size``), ``concurrency`` batches in flight; a
        knowledge base without that path (an older one) is asked file by file, still
        ``concurrency`` at a time."""
        if concurrency < 1 or batch_files < 1:
            raise ValueError("concurrency and batch_files must be at least 1")
        targets: dict[str, list[Path]] = {}
        sizes: dict[str, int] = {}
        for ref, dest in wanted:
            targets.setdefault(ref["sha256"], []).append(Path(dest))
            sizes[ref["sha256"]] = int(ref.get("size") or 0)
        batches: list[list[str]] = [[]]
        size = 0
        for digest in targets:
            if batches[-1] and (
                len(batches[-1]) >= min(batch_files, BUNDLE_MAX_FILES)
                or size + sizes[digest] > batch_bytes
            ):
                batches.append([])
                size = 0
            batches[-1].append(digest)
            size += sizes[digest]
        if targets:
            self._http.run(self._fetch_batches(batches, targets, concurrency))

    async def _fetch_batches(
        self, batches: list[list[str]], targets: dict[str, list[Path]], concurrency: int
    ) -> None:
        gate = asyncio.Semaphore(concurrency)
        bundles = True  # until the knowledge base says it has no bundle path

        async def one_file(digest: str) -> None:
            async with gate:
                response = await self._http.client.get(
                    f"{PREFIX}/file/download", params={"files": digest}
                )
            await asyncio.to_thread(_place, {digest: response.body}, targets)

        async def batch(digests: list[str]) -> None:
            nonlocal bundles
            if bundles:
                try:
                    async with gate:
                        response = await self._http.client.post(
                            f"{PREFIX}/file/bundle", json={"files": digests}
                        )
                except RemoteError as exc:
                    if exc.status not in (404, 405) or exc.error_type == "missing_artifact":
                        raise
                    bundles = False
                else:
                    await asyncio.to_thread(_unbundle, response.body, digests, targets)
                    return
            await asyncio.gather(*(one_file(d) for d in digests))

        await asyncio.gather(*(batch(b) for b in batches))

    # -- index -------------------------------------------------------------------------------

    def update_index(self, index: Mapping[str, Any]) -> int:
        """Publish ``index`` (validated here first); returns the version the KB gave it."""
        doc = validate_index(index)
        response = self._http.post(f"{PREFIX}/update", json=doc)
        return int(self._header(response, INDEX_VERSION_HEADER))

    def latest_version(self) -> int | None:
        """The latest published index version (None before the first)."""
        version = self._http.get(f"{PREFIX}/index/version").json()["version"]
        return None if version is None else int(version)

    def get_index(self, version: int | None = None) -> dict[str, Any]:
        """A published index (the latest by default), validated."""
        params = {"version": str(version)} if version is not None else None
        try:
            doc = self._http.get(f"{PREFIX}/index", params=params).json()
        except RemoteError as exc:
            if exc.status == 404:
                raise KnowledgeBaseError("the knowledge base has no task index yet") from exc
            raise
        return validate_index(doc)

    def update_status(
        self, tasks: str | Sequence[str], status: int | bool, *, reason: str = ""
    ) -> dict[str, Any]:
        """Deploy (1) or withdraw (0) task groups; returns ``{"version", "updated", "unknown"}``."""
        names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
        response = self._http.post(
            f"{PREFIX}/update/status",
            json={"tasks": names, "status": int(bool(status)), "reason": reason},
        )
        return self._header_json(response, RESULT_HEADER)

    def query(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        task: str | None = None,
        group: str | None = None,
        deployed: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks whose attributes include ``attributes``, with group, status and current model."""
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        for key, value in (("task", task), ("group", group), ("deployed", deployed)):
            if value is not None:
                body[key] = value
        return self._http.post(f"{PREFIX}/query", json=body).json()["tasks"]

    def files(self) -> list[dict[str, Any]]:
        return self._http.get(f"{PREFIX}/files").json()["files"]


def _place(blobs: Mapping[str, bytes], targets: Mapping[str, list[Path]]) -> None:
    """Verify each blob against its digest and write it, atomically, to its destinations."""
    for digest, body in blobs.items():
        got = hashlib.sha256(body).hexdigest()
        if got != digest:
            raise IntegrityError(f"downloaded {digest}: sha256 {got}, expected {digest}")
        for dest in targets[digest]:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
            tmp.write_bytes(body)
            os.replace(tmp, dest)


def _unbundle(body: bytes, digests: Sequence[str], targets: Mapping[str, list[Path]]) -> None:
    """Write the members of a ``/file/bundle`` answer; every digest asked for must be there.
    Members are read as bytes by their names only (never extracted to a path they name)."""
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as archive:
            for member in archive:
                if member.name in targets and member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        blobs[member.name] = handle.read()
    except tarfile.TarError as exc:
        raise KnowledgeBaseError(f"the knowledge base sent a malformed bundle: {exc}") from None
    missing = [d for d in digests if d not in blobs]
    if missing:
        raise KnowledgeBaseError(
            f"the knowledge base's file bundle lacks {len(missing)} file(s), e.g. {missing[0]}"
        )
    _place({d: blobs[d] for d in digests}, targets)
