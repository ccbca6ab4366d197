"""The knowledge-base service: Sedna's REST paths over SQLAlchemy and the artifact store.

=======================================  =====================================================
``POST /knowledgebase/file/upload``      a file (raw body with ``?name=&format=``, or Sedna's
                                         multipart field ``file``) into the artifact store;
                                         pickles refused (415); the server picks the stored name
``GET  /knowledgebase/file/download``    ``?files=<sha256 or artifact name>[&version=]``; never a
                                         path, so nothing outside the store can be served
``POST /knowledgebase/update``           publish a task index (JSON, validated; every artifact it
                                         names must be in the store) as the next version
``POST /knowledgebase/update/status``    ``{"tasks": "a,b", "status": 0|1}``: deploy or withdraw
                                         task groups (committed; publishes a new index version)
``POST /knowledgebase/query``            tasks by attributes / task / group / deployment status
``GET  /knowledgebase/index``            a published index (``?version=``; latest by default)
``GET  /knowledgebase/index/version``    the latest version number (what edge caches poll)
``GET  /knowledgebase/files``            the uploaded files
=======================================  =====================================================

Database and file work runs in worker threads (one for the database, so SQLite sees one
writer), never in the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from sedna_core.artifacts import ArtifactStore
from sedna_core.clock import Clock
from sedna_core.config.lifelong import KnowledgeBaseConfig
from sedna_core.errors import (
    ArtifactError,
    IndexValidationError,
    IntegrityError,
    KnowledgeBaseError,
)
from sedna_core.knowledge_base._db import KnowledgeBaseDB
from sedna_core.knowledge_base._index import artifact_ref, validate_index
from sedna_core.knowledge_base._safety import pickle_reason, safe_name
from sedna_core.log import get_logger
from sedna_core.service import ServiceRunner, create_app, json_error

__all__ = ["PREFIX", "KnowledgeBaseServer", "download_url"]

log = get_logger(__name__)
T = TypeVar("T")

PREFIX = "/knowledgebase"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,31}")


def download_url(sha256: str, filename: str) -> str:
    """The KB-relative download URL of a stored file (Sedna's shape)."""
    return f"{PREFIX}/file/download?files={sha256}&name={filename}"


class KnowledgeBaseServer:
    """The knowledge base: ``sedna serve kb`` runs one.

    Parameters
    ----------
    config
        Bind address, token/TLS, data directory and database URL; from the environment when
        None (``KnowledgeBaseServer``, ``KnowledgeBasePath``, ``KB_URL``...).
    clock
        Time source for timestamps and the service base.
    **overrides
        Explicit settings when ``config`` is None (``data_dir=..., port=0``...).

    The database schema is created or upgraded when the server is built.
    """

    def __init__(
        self,
        config: KnowledgeBaseConfig | None = None,
        *,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> None:
        self.config = config or KnowledgeBaseConfig.from_env(**overrides)
        data_dir = Path(self.config.data_dir).expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.store = ArtifactStore(data_dir / "artifacts", clock=clock)
        self.db = KnowledgeBaseDB(self.config.database_url, clock=clock)
        before, after = self.db.upgrade()
        if before != after:
            log.info("knowledge-base schema ready", before=before, after=after)
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="sedna-kb-db")
        self._io_pool = ThreadPoolExecutor(4, thread_name_prefix="sedna-kb-io")
        self.app = create_app(name="knowledgebase", config=self.config, clock=clock)
        self._routes(self.app)
        self.app.on_cleanup.append(self._cleanup)
        self.runner = ServiceRunner(self.app, self.config)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.runner.url

    @property
    def port(self) -> int:
        return self.runner.port

    async def start(self) -> None:
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()

    def start_in_background(self) -> None:
        self.runner.start_in_background()

    def stop_background(self) -> None:
        self.runner.stop_background()

    def run_forever(self) -> None:
        self.runner.run_forever()

    async def _cleanup(self, app: web.Application) -> None:
        self._db_pool.shutdown(wait=True)
        self._io_pool.shutdown(wait=True)
        self.db.close()

    def __enter__(self) -> KnowledgeBaseServer:
        self.start_in_background()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_background()

    # -- plumbing ----------------------------------------------------------------------------

    async def _in_db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    async def _in_io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io_pool, functools.partial(fn, *args, **kwargs))

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post(f"{PREFIX}/file/upload", self.upload)
        r.add_get(f"{PREFIX}/file/download", self.download)
        r.add_post(f"{PREFIX}/update", self.update)
        r.add_post(f"{PREFIX}/update/status", self.update_status)
        r.add_post(f"{PREFIX}/query", self.query)
        r.add_get(f"{PREFIX}/query", self.query)
        r.add_get(f"{PREFIX}/index", self.index)
        r.add_get(f"{PREFIX}/index/version", self.index_version)
        r.add_get(f"{PREFIX}/files", self.files)

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise json_error(400, "invalid_json", f"the body is not JSON: {exc}") from None

    # -- files -------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename") or request.query.get("name") or ""
        name = request.query.get("name") or ""
        fmt = request.query.get("format") or ""
        data: bytes | None = None
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "file":
                    filename = part.filename or filename  # type: ignore[union-attr]
                    data = bytes(await part.read())  # type: ignore[union-attr]
                elif part.name in ("name", "format"):
                    value = (await part.text()).strip()  # type: ignore[union-attr]
                    name, fmt = (value, fmt) if part.name == "name" else (name, value)
        else:
            data = await request.read()
        if data is None:
            raise json_error(400, "missing_file", "send the file as the body, or as field 'file'")
        stored_name = safe_name(name or filename)
        file_name = safe_name(filename or stored_name)
        fmt = fmt or (file_name.rsplit(".", 1)[-1] if "." in file_name else "bin")
        if not _FORMAT.fullmatch(fmt):
            raise json_error(400, "invalid_format", f"format {fmt!r}: use a short word like 'json'")
        reason = pickle_reason(data, filename, fmt)
        if reason:
            raise json_error(
                415,
                "pickle_refused",
                f"pickled payloads are refused ({reason}); save models in a safe format "
                "(safetensors, .keras, XGBoost JSON, skops, npz without objects)",
            )
        try:
            info = await self._in_io(
                self.store.put, stored_name, data, format=fmt, filename=file_name
            )
        except ArtifactError as exc:
            raise json_error(400, "invalid_artifact", str(exc)) from None
        await self._in_db(
            self.db.record_file,
            name=info.name,
            version=info.version,
            sha256=info.sha256,
            size=info.size,
            fmt=info.format,
        )
        return web.json_response(artifact_ref(info, url=download_url(info.sha256, info.filename)))

    def _locate(self, ref: str, version: str | None) -> tuple[Path, str, str]:
        """``(path, sha256, file name)`` of a stored file, verified; ArtifactError if none."""
        if _SHA256.fullmatch(ref):
            blob = self.store.blob_path(ref)
            if not blob.is_file():
                raise ArtifactError(f"no stored file has sha256 {ref}")
            digest = hashlib.sha256()
            with open(blob, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != ref:
                raise IntegrityError(f"stored file {ref} is damaged (its digest changed)")
            return blob, ref, ref
        info = self.store.get(ref, version)
        return info.path, info.sha256, info.filename

    async def download(self, request: web.Request) -> web.StreamResponse:
        ref = request.query.get("files") or request.query.get("sha256") or ""
        if not ref:
            raise json_error(400, "missing_parameter", "give ?files=<sha256 or artifact name>")
        try:
            path, digest, filename = await self._in_io(
                self._locate, ref, request.query.get("version")
            )
        except IntegrityError as exc:
            raise json_error(500, "integrity_error", str(exc)) from None
        except ArtifactError:
            raise json_error(
                404, "not_found", f"no stored file {ref!r}; give a sha256 or an artifact name"
            ) from None
        shown = safe_name(request.query.get("name") or filename)
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{shown}"',
                "X-Sedna-SHA256": digest,
            },
        )

    async def files(self, request: web.Request) -> web.Response:
        return web.json_response({"files": await self._in_db(self.db.files)})

    # -- index -------------------------------------------------------------------------------

    async def update(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            raw = b""
            reader = await request.multipart()
            async for part in reader:
                if part.name in ("task", "index", "file"):
                    raw = bytes(await part.read())  # type: ignore[union-attr]
            reason = pickle_reason(raw)
            if reason:
                raise json_error(
                    415,
                    "pickle_refused",
                    f"the task index must be JSON, not a pickle ({reason})",
                )
            try:
                doc = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise json_error(400, "invalid_json", f"the index is not JSON: {exc}") from None
        else:
            doc = await self._json_body(request)
        try:
            doc = validate_index(doc)
        except IndexValidationError as exc:
            raise json_error(400, "invalid_index", str(exc)) from None
        missing = await self._in_io(self._missing_artifacts, doc)
        if missing:
            path, digest = missing[0]
            raise json_error(
                400,
                "missing_artifact",
                f"the index refers to {digest} at {path}, which is not in the knowledge base; "
                f"upload it first ({len(missing)} missing)",
            )
        try:
            published = await self._in_db(self.db.publish, doc)
        except KnowledgeBaseError as exc:
            raise json_error(400, "invalid_index", str(exc)) from None
        version = published["version"]
        log.info("task index published", version=version, job=published.get("job"))
        return web.json_response({"version": version, "url": f"{PREFIX}/index?version={version}"})

    def _missing_artifacts(self, doc: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            (path, digest)
            for path, digest in self.db.referenced_digests(doc)
            if not self.store.blob_path(digest).is_file()
        ]

    async def update_status(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict) or "tasks" not in body or "status" not in body:
            raise json_error(400, "invalid_request", 'send {"tasks": "a,b", "status": 0 or 1}')
        tasks = body["tasks"]
        names = tasks.split(",") if isinstance(tasks, str) else tasks
        status = body["status"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise json_error(400, "invalid_request", "tasks: a comma-separated string or a list")
        if isinstance(status, str) and status.strip() in ("0", "1"):
            status = int(status)
        if status not in (0, 1, True, False):
            raise json_error(400, "invalid_request", "status: 0 (withdraw) or 1 (deploy)")
        try:
            result = await self._in_db(
                self.db.set_deploy, names, bool(status), reason=str(body.get("reason", ""))
            )
        except KnowledgeBaseError as exc:
            raise json_error(409, "no_index", str(exc)) from None
        if not result["updated"] and result["unknown"]:
            raise json_error(404, "unknown_task", f"no task group named {result['unknown']}")
        return web.json_response(result)

    async def query(self, request: web.Request) -> web.Response:
        if request.method == "POST" and request.can_read_body:
            body = await self._json_body(request)
            if not isinstance(body, dict):
                raise json_error(400, "invalid_request", "send a JSON object")
        else:
            body = {
                "attributes": {k[5:]: v for k, v in request.query.items() if k.startswith("attr.")},
                **{
                    k: request.query[k] for k in ("task", "group", "deployed") if k in request.query
                },
            }
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise json_error(400, "invalid_request", "attributes: an object of name -> value")
        deployed = body.get("deployed")
        if isinstance(deployed, str):
            deployed = deployed.strip().lower() in ("1", "true", "yes")
        rows = await self._in_db(
            self.db.query,
            attributes,
            task=body.get("task"),
            group=body.get("group"),
            deployed=deployed,
        )
        return web.json_response({"tasks": rows})

    async def index(self, request: web.Request) -> web.Response:
        version = request.query.get("version")
        if version is not None and not version.isdigit():
            raise json_error(400, "invalid_request", "version: a positive integer")
        doc = await self._in_db(self.db.get_index, int(version) if version else None)
        if doc is None:
            raise json_error(
                404,
                "not_found",
                "no task index published" + (f" with version {version}" if version else ""),
            )
        return web.json_response(doc)

    async def index_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": await self._in_db(self.db.latest_version)})
