"""The knowledge-base service: Sedna's REST paths over SQLAlchemy and the artifact store.

=======================================  =====================================================
``POST /knowledgebase/file/upload``      a file (raw body with ``?name=&format=``, or Sedna's
                                         multipart field ``file``) into the artifact store, only
                                         in a format verified by parsing (415 otherwise, with
                                         the accepted list); answers Sedna's string
                                         ``/file/download?files=<sha256>&name=<file>``, the
                                         record in header ``X-Sedna-Artifact``
``GET  /knowledgebase/file/download``    ``?files=<sha256 or artifact name>[&version=]``, resolved
                                         through the database (only committed files); never a
                                         path, so nothing outside the store can be served
``POST /knowledgebase/file/bundle``      ``{"files": [sha256, ...]}``: many committed files in
                                         one tar stream (what edge caches fetch)
``POST /knowledgebase/update``           publish a task index (JSON, validated; every artifact it
                                         names must be in the store) as the next version;
                                         answers the string ``/index?version=N`` (Sedna's shape)
``POST /knowledgebase/update/status``    ``{"tasks": "a,b", "status": 0|1}``: deploy or withdraw
                                         task groups (committed; publishes a new index version);
                                         answers ``/index?version=N``, the details in header
                                         ``X-Sedna-Result``
``POST /knowledgebase/query``            tasks by attributes / task / group / deployment status
``GET  /knowledgebase/index``            a published index (``?version=``; latest by default),
                                         as stored; ``ETag`` / ``If-None-Match`` (304)
``GET  /knowledgebase/index/version``    the latest version number (what edge caches poll)
``GET  /knowledgebase/files``            the uploaded files
=======================================  =====================================================

Database and file work runs in worker threads (one for the database, so SQLite sees one
writer), never in the event loop.

The database is the source of truth: an upload is stored, then committed, then acknowledged;
downloads resolve through committed rows, so a version a crash left uncommitted is never
served, and start-up sweeps such versions away (under an exclusive lock that every upload
shares, so a sweep never races a live upload of another server process on the same data).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from sedna_core.artifacts import ACCEPTED_FORMATS, ArtifactStore
from sedna_core.artifacts import verify_artifact as verify
from sedna_core.clock import Clock
from sedna_core.config.lifelong import KnowledgeBaseConfig
from sedna_core.errors import (
    ArtifactError,
    IndexValidationError,
    IntegrityError,
    KnowledgeBaseError,
    UnsafeArtifactError,
)
from sedna_core.knowledge_base._db import KnowledgeBaseDB, _collector_paused
from sedna_core.knowledge_base._index import artifact_ref, validate_index
from sedna_core.knowledge_base._safety import safe_name
from sedna_core.log import get_logger
from sedna_core.service import ServiceRunner, create_app, json_error, loads_json, read_json

if os.name == "posix":
    import fcntl

__all__ = [
    "ARTIFACT_HEADER",
    "BUNDLE_MAX_FILES",
    "INDEX_VERSION_HEADER",
    "PREFIX",
    "RESULT_HEADER",
    "KnowledgeBaseServer",
    "download_url",
]

log = get_logger(__name__)
T = TypeVar("T")

PREFIX = "/knowledgebase"
#: response headers carrying what Sedna's string answers cannot (our client reads them)
ARTIFACT_HEADER = "X-Sedna-Artifact"
INDEX_VERSION_HEADER = "X-Sedna-Index-Version"
RESULT_HEADER = "X-Sedna-Result"
#: most files one ``/file/bundle`` request may ask for
BUNDLE_MAX_FILES = 1000
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,31}")
_VERSION = re.compile(r"[1-9][0-9]{0,17}")  # fits every database's 64-bit integer
_MIGRATE_HINT = (
    "Sedna's lifelong workers pickle their index and extractor: run them with the sedna-compat "
    "package (it speaks these safe formats) and move existing knowledge with "
    "`sedna kb import-sedna` (docs/migrating-from-sedna.md)"
)


def _version_param(value: str | None) -> str | None:
    """A ``?version=`` value, or a 400 naming the problem."""
    if value is None:
        return None
    if not (value.isascii() and _VERSION.fullmatch(value)):
        raise json_error(
            400,
            "invalid_request",
            f"version {value[:40]!r}: a positive integer of at most 18 digits",
        )
    return value


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise json_error(
        400, "invalid_request", f"{key}: a string (a name), got {type(value).__name__}"
    )


def _abort(
    request: web.Request, response: web.StreamResponse, sha256: str, what: str
) -> web.StreamResponse:
    """End a bundle whose status line is already sent: the connection is closed before the
    archive's end, which the client reads as a failed download (it never sees a short archive
    as complete: it checks that every file it asked for arrived, and each file's digest)."""
    log.error(f"stored file {what}; bundle aborted", sha256=sha256)
    if request.transport is not None:
        request.transport.close()
    return response


def _etag_matches(header: str | None, digest: str) -> bool:
    """Whether an ``If-None-Match`` header names this entity tag (or is ``*``)."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or f'"{digest}"' in tags


def _string_answer(text: str, headers: dict[str, str]) -> web.Response:
    # Sedna's server answers a JSON string here, and Sedna's client calls string methods on it
    return web.json_response(text, headers=headers)


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
        self._writers_lock = data_dir / ".writers.lock"
        self._sweep()
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
        r.add_post(f"{PREFIX}/file/bundle", self.bundle)
        r.add_post(f"{PREFIX}/update", self.update)
        r.add_post(f"{PREFIX}/update/status", self.update_status)
        r.add_post(f"{PREFIX}/query", self.query)
        r.add_get(f"{PREFIX}/query", self.query)
        r.add_get(f"{PREFIX}/index", self.index)
        r.add_get(f"{PREFIX}/index/version", self.index_version)
        r.add_get(f"{PREFIX}/files", self.files)

    # -- crash consistency -------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, exclusive: bool = False) -> Iterator[None]:
        """Uploads share this lock; the start-up sweep takes it alone (across processes)."""
        if os.name != "posix":  # pragma: no cover - one process per data directory there
            yield
            return
        with open(self._writers_lock, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _sweep(self) -> None:
        """Remove stored versions the database never committed (a crash between storing and
        committing), half-written versions and temporary files; say how many."""
        with self._writing(exclusive=True):
            committed = self.db.file_versions()
            counts = self.store.sweep(lambda name, version: (name, version) in committed)
        log.info(
            "knowledge-base store swept",
            orphan_versions=counts["versions"],
            incomplete_versions=counts["incomplete"],
            temporary_files=counts["temporary"],
            committed_files=len(committed),
        )

    # -- request parsing -----------------------------------------------------------------------

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        return await read_json(request)

    async def _read_part(self, part: Any, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(1 << 16):
            size += len(chunk)
            if size > limit:
                raise json_error(
                    413,
                    "request_too_large",
                    f"the uploaded file exceeds the limit of {limit} bytes; raise "
                    "max_request_size (SEDNA_MAX_REQUEST_SIZE)",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _form(self, request: web.Request, fields: tuple[str, ...]) -> dict[str, Any]:
        """The named parts of a multipart body: ``{name: (bytes, filename)}``, bounded."""
        limit = self.config.max_request_size
        out: dict[str, Any] = {}
        try:
            reader = await request.multipart()
            async for part in reader:
                if part.name in fields:
                    data = await self._read_part(part, limit)
                    out[part.name] = (data, getattr(part, "filename", None))
                else:
                    await self._read_part(part, limit)  # skip it, still bounded
        except (ValueError, AssertionError, LookupError, UnicodeDecodeError) as exc:
            raise json_error(
                400, "invalid_multipart", f"the multipart body cannot be parsed: {exc}"
            ) from None
        return out

    # -- files -------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename") or request.query.get("name") or ""
        name = request.query.get("name") or ""
        fmt = request.query.get("format") or ""
        data: bytes | None
        if request.content_type.startswith("multipart/"):
            form = await self._form(request, ("file", "name", "format"))
            data, sent_name = form.get("file", (None, None))
            filename = sent_name or filename
            for key in ("name", "format"):
                if key in form:
                    try:
                        value = form[key][0].decode("utf-8").strip()
                    except UnicodeDecodeError:
                        raise json_error(400, "invalid_request", f"{key}: not UTF-8") from None
                    name, fmt = (value, fmt) if key == "name" else (name, value)
        else:
            data = await request.read()
        if data is None:
            raise json_error(400, "missing_file", "send the file as the body, or as field 'file'")
        if not data:
            raise json_error(
                400,
                "empty_file",
                "the file is empty (a retried upload whose file handle was already read?): "
                "send the file's content",
            )
        stored_name = safe_name(name or filename)
        file_name = safe_name(filename or stored_name)
        fmt = fmt or (file_name.rsplit(".", 1)[-1] if "." in file_name else "bin")
        if not _FORMAT.fullmatch(fmt):
            raise json_error(400, "invalid_format", f"format {fmt!r}: use a short word like 'json'")
        try:
            verified = await self._in_io(verify, data, fmt, filename)
        except UnsafeArtifactError as exc:
            raise self._refused(str(exc), exc.accepted, data) from None
        with self._writing():
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
        record = artifact_ref(info, url=download_url(info.sha256, info.filename))
        record["verified_as"] = verified
        return _string_answer(
            f"/file/download?files={info.sha256}&name={info.filename}",
            {ARTIFACT_HEADER: json.dumps(record, separators=(",", ":"))},
        )

    @staticmethod
    def _refused(message: str, accepted: tuple[str, ...], data: bytes) -> web.HTTPException:
        """415 with the accepted formats; pickles get the migration hint (and a log line, the
        only place Sedna's client, which logs just the status, lets an operator read it)."""
        pickled = "pickle" in message
        if pickled:
            message = f"{message}. {_MIGRATE_HINT}"
        log.warning("upload refused", reason=message, size=len(data))
        body = {
            "error": {
                "type": "pickle_refused" if pickled else "unsupported_artifact",
                "message": message,
                "accepted": list(accepted or ACCEPTED_FORMATS),
            }
        }
        return web.HTTPUnsupportedMediaType(text=json.dumps(body), content_type="application/json")

    def _committed(self, ref: str, version: str | None) -> tuple[str, str | None] | None:
        """What the database committed for a download reference: ``(sha256, None)`` for a
        digest, ``(sha256, version)`` for a name; None when nothing was committed. A version
        the store holds but the database never committed (a crash between the two) does not
        exist."""
        if _SHA256.fullmatch(ref):
            return (ref, None) if self.db.has_digest(ref) else None
        record = self.db.file_record(ref, version)
        return None if record is None else (record["sha256"], record["version"])

    def _open(self, ref: str, sha256: str, version: str | None) -> tuple[Path, str]:
        """``(path, file name)`` of committed content, its digest verified."""
        if version is None:
            blob = self.store.blob_path(sha256)
            if not blob.is_file():
                raise ArtifactError(f"no stored file has sha256 {sha256}")
            digest = hashlib.sha256()
            with open(blob, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != sha256:
                raise IntegrityError(f"stored file {sha256} is damaged (its digest changed)")
            return blob, sha256
        info = self.store.get(ref, version)
        if info.sha256 != sha256:
            raise IntegrityError(f"stored file {ref!r} does not match its database record")
        return info.path, info.filename

    async def download(self, request: web.Request) -> web.StreamResponse:
        ref = request.query.get("files") or request.query.get("sha256") or ""
        if not ref:
            raise json_error(400, "missing_parameter", "give ?files=<sha256 or artifact name>")
        version = _version_param(request.query.get("version"))
        try:
            committed = await self._in_db(self._committed, ref, version)
            if committed is None:
                raise ArtifactError(f"no committed file {ref!r}")
            digest = committed[0]
            path, filename = await self._in_io(self._open, ref, *committed)
        except IntegrityError as exc:
            raise json_error(500, "integrity_error", str(exc)) from None
        except ArtifactError:
            raise json_error(
                404, "not_found", f"no stored file {ref[:200]!r}; give a sha256 or an artifact name"
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

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        """Many committed files in one response: ``{"files": [sha256, ...]}`` (at most
        :data:`BUNDLE_MAX_FILES`) answers a tar stream of members named by their sha256, each
        read and verified one at a time (memory stays one file, whatever the batch). An edge
        cache fetches thousands of small models this way instead of one request each."""
        body = await self._json_body(request)
        wanted = body.get("files") if isinstance(body, dict) else None
        if not (
            isinstance(wanted, list)
            and 0 < len(wanted) <= BUNDLE_MAX_FILES
            and all(isinstance(d, str) and _SHA256.fullmatch(d) for d in wanted)
        ):
            raise json_error(
                400,
                "invalid_request",
                f'send {{"files": [sha256, ...]}}: 1 to {BUNDLE_MAX_FILES} lowercase hex '
                "sha256 digests",
            )
        digests = list(dict.fromkeys(wanted))
        committed = await self._in_db(self.db.committed_digests, digests)
        missing = [d for d in digests if d not in committed]
        if missing:
            raise json_error(
                404,
                "missing_artifact",
                f"{len(missing)} of the files are not in the knowledge base, e.g. {missing[0]}",
            )
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        for digest in digests:
            # a file damaged since it was committed ends the stream early: the client sees a
            # truncated archive (and verifies every member's digest itself)
            try:
                fh = await self._in_io(open, self.store.blob_path(digest), "rb")
            except OSError:
                return _abort(request, response, digest, "missing")
            try:
                size = os.fstat(fh.fileno()).st_size
                member = tarfile.TarInfo(digest)
                member.size, member.mode = size, 0o644
                await response.write(member.tobuf(format=tarfile.USTAR_FORMAT))
                check, sent = hashlib.sha256(), 0
                while sent < size:  # small files are one read; large ones stream in 1 MiB
                    chunk = await self._in_io(fh.read, min(1 << 20, size - sent))
                    if not chunk:
                        break
                    check.update(chunk)
                    sent += len(chunk)
                    await response.write(chunk)
            finally:
                fh.close()
            if sent != size or check.hexdigest() != digest:
                return _abort(request, response, digest, "damaged")
            await response.write(b"\0" * (-size % tarfile.BLOCKSIZE))
        await response.write(b"\0" * (2 * tarfile.BLOCKSIZE))  # the end-of-archive marker
        await response.write_eof()
        return response

    async def files(self, request: web.Request) -> web.Response:
        return web.json_response({"files": await self._in_db(self.db.files)})

    # -- index -------------------------------------------------------------------------------

    async def update(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await self._form(request, ("task", "index", "file"))
            raw = next((form[k][0] for k in ("task", "index", "file") if k in form), b"")
            if not raw:
                raise json_error(400, "empty_file", "send the task index (JSON) as field 'task'")
            try:
                await self._in_io(verify, raw, "json")
            except UnsafeArtifactError as exc:
                raise self._refused(
                    f"the task index must be JSON ({exc})", exc.accepted, raw
                ) from None
            doc = loads_json(raw, what="the task index")
        else:
            doc = await self._json_body(request)
        try:  # off the event loop: a 10k-task index takes 0.1 s to validate
            doc = await self._in_io(validate_index, doc)
        except IndexValidationError as exc:
            raise json_error(400, "invalid_index", str(exc)) from None
        published = await self._in_db(self._publish_stored, doc)
        version = published["version"]
        log.info("task index published", version=version, job=published.get("job"))
        return _string_answer(f"/index?version={version}", {INDEX_VERSION_HEADER: str(version)})

    def _publish_stored(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Publish a validated index whose every artifact is committed and stored, else a 400;
        one database-thread call, the garbage collector paused throughout (the check and the
        write allocate per artifact, see ``_collector_paused``)."""
        with _collector_paused():
            missing = self._missing_artifacts(doc)
            if missing:
                path, digest = missing[0]
                raise json_error(
                    400,
                    "missing_artifact",
                    f"the index refers to {digest} at {path}, which is not in the knowledge "
                    f"base; upload it first ({len(missing)} missing)",
                )
            try:
                return self.db.publish_valid(doc)
            except KnowledgeBaseError as exc:
                raise json_error(400, "invalid_index", str(exc)) from None

    def _missing_artifacts(self, doc: dict[str, Any]) -> list[tuple[str, str]]:
        referenced = self.db.referenced_digests(doc)
        committed = self.db.committed_digests(digest for _, digest in referenced)
        stored = {d for d in committed if os.path.isfile(self.store.blob_path(d))}
        return [(path, digest) for path, digest in referenced if digest not in stored]

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
        if isinstance(status, float) or status not in (0, 1, True, False):
            raise json_error(400, "invalid_request", "status: 0 (withdraw) or 1 (deploy)")
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise json_error(400, "invalid_request", "reason: a string")
        try:
            result = await self._in_db(self.db.set_deploy, names, bool(status), reason=reason)
        except KnowledgeBaseError as exc:
            raise json_error(409, "no_index", str(exc)) from None
        if not result["updated"] and result["unknown"]:
            raise json_error(404, "unknown_task", f"no task group named {result['unknown'][:20]}")
        version = result["version"]
        return _string_answer(
            f"/index?version={version}",
            {
                INDEX_VERSION_HEADER: str(version),
                RESULT_HEADER: json.dumps(result, separators=(",", ":")),
            },
        )

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
        if not isinstance(attributes, dict) or not all(
            v is None or isinstance(v, str | int | float | bool) for v in attributes.values()
        ):
            raise json_error(
                400, "invalid_request", "attributes: an object of name -> text or number"
            )
        deployed = body.get("deployed")
        if isinstance(deployed, str):
            deployed = deployed.strip().lower() in ("1", "true", "yes")
        elif deployed is not None and not isinstance(deployed, bool):
            raise json_error(400, "invalid_request", "deployed: true or false")
        rows = await self._in_db(
            self.db.query,
            attributes,
            task=_optional_text(body, "task"),
            group=_optional_text(body, "group"),
            deployed=deployed,
        )
        return web.json_response({"tasks": rows})

    async def index(self, request: web.Request) -> web.Response:
        version = _version_param(request.query.get("version"))
        found = await self._in_db(self.db.index_body, int(version) if version else None)
        if found is None:
            raise json_error(
                404,
                "not_found",
                "no task index published" + (f" with version {version}" if version else ""),
            )
        number, body, digest = found
        # the body is stored as validated JSON: served as stored, never decoded and re-encoded;
        # its digest is the ETag, so a client holding this version gets a 304 without it
        headers = {"ETag": f'"{digest}"', INDEX_VERSION_HEADER: str(number)}
        if _etag_matches(request.headers.get("If-None-Match"), digest):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=body.encode("utf-8"), content_type="application/json", headers=headers
        )

    async def index_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": await self._in_db(self.db.latest_version)})
