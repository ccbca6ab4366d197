"""A local, versioned, content-addressed artifact store.

Layout under ``root``::

    blobs/sha256/ab/abcdef...          every distinct content once, named by its sha256 (read-only)
    artifacts/<name>/.lock             serialises version allocation and deletion (fcntl.flock)
    artifacts/<name>/.seq              the last version number handed out (never reused)
    artifacts/<name>/<version>/<file>  a hard link to the blob, under the artifact's file name
    artifacts/<name>/<version>/meta.json
    tmp/                               uploads in progress (same filesystem, for os.replace)

A version is visible only once its ``meta.json`` exists, and that file is written last
(temp file, fsync, os.replace), so a crash at any point leaves either a complete version or
nothing visible. Hard links keep each version's file under its own name (backends pick the
format from the suffix) while the content is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from sedna_core.artifacts._atomic import (
    copy_hashing,
    fsync_dir,
    sha256_file,
    temp_file,
    write_atomic,
)
from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import ArtifactError, IntegrityError
from sedna_core.log import get_logger

__all__ = ["ArtifactInfo", "ArtifactStore"]

log = get_logger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,31}")
_META = "meta.json"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def check_name(value: object, what: str = "artifact name") -> str:
    """``value`` if it is a safe single path component, else ArtifactError saying why."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ArtifactError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '.', '_' or '-', starting with "
            "a letter or digit, without '..' or path separators"
        )
    return value


def _check_version(version: object) -> str:
    text = str(version) if isinstance(version, int) and not isinstance(version, bool) else version
    if (
        not isinstance(text, str)
        or not text.isdigit()
        or not text.isascii()
        or text.startswith("0")
    ):
        raise ArtifactError(f"invalid version {version!r}: versions are '1', '2', ... (or ints)")
    return text


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays (metrics often are) without importing numpy here
    for attr in ("item", "tolist"):
        if callable(getattr(value, attr, None)):
            return getattr(value, attr)()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


@attrs.frozen
class ArtifactInfo:
    """One stored version: what ``meta.json`` records plus where its file lives."""

    name: str
    version: str
    sha256: str
    size: int
    format: str
    created: float
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    path: Path
    filename: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored as ``meta.json`` (without the local path)."""
        data = attrs.asdict(self, recurse=False)
        del data["path"]
        return data


class ArtifactStore:
    """Versioned, content-addressed artifacts in a local directory.

    Parameters
    ----------
    root
        The store's directory (created if missing). Several processes may share it.
    clock
        Source of ``created`` timestamps; :class:`~sedna_core.clock.SystemClock` by default.

    Notes
    -----
    Safe for concurrent use by threads and processes on one POSIX host (version allocation
    holds an ``fcntl.flock`` lock; blobs are immutable and renamed into place).
    """

    def __init__(self, root: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.root = Path(root).resolve()
        self._clock = clock or SystemClock()
        self._blobs = self.root / "blobs" / "sha256"
        self._artifacts = self.root / "artifacts"
        self._tmp = self.root / "tmp"
        try:
            for d in (self._blobs, self._artifacts, self._tmp):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactError(f"cannot create the artifact store at {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    # -- writing -------------------------------------------------------------------------

    def put(
        self,
        name: str,
        source: bytes | bytearray | memoryview | str | os.PathLike[str],
        *,
        format: str,
        metrics: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        filename: str | None = None,
    ) -> ArtifactInfo:
        """Store a new version of ``name`` and return its record.

        Parameters
        ----------
        source
            The content as bytes, or the path (str or Path) of a file, streamed in blocks.
            Directories are refused: archive them first.
        format
            What the file is (``"pth"``, ``"keras"``, ``"json"``, ...), recorded and reported.
        metrics, metadata
            JSON-serialisable mappings kept in ``meta.json`` (numpy scalars are converted).
        filename
            The version's file name; default the source file's name, else ``<name>.<format>``.
        """
        check_name(name)
        if not isinstance(format, str) or not _FORMAT.fullmatch(format):
            raise ArtifactError(f"invalid format {format!r}: a short word such as 'pth' or 'json'")
        if isinstance(source, bytes | bytearray | memoryview):
            src: Path | None = None
            default_filename = f"{name}.{format}"
        elif isinstance(source, str | os.PathLike):
            src = Path(source)
            if src.is_dir():
                raise ArtifactError(
                    f"{src} is a directory: the store keeps files; archive it first"
                )
            if not src.is_file():
                raise ArtifactError(f"cannot store {src}: no such file")
            default_filename = src.name
        else:
            raise ArtifactError(f"source must be bytes or a file path, got {type(source).__name__}")
        filename = check_name(filename or default_filename, "file name")
        if filename == _META:
            raise ArtifactError(f"{_META!r} is reserved for the store's metadata")
        doc_extra = self._json_doc(metrics, "metrics"), self._json_doc(metadata, "metadata")

        with (
            open(src, "rb") if src is not None else io.BytesIO(source) as reader,  # type: ignore[arg-type]
            temp_file(self._tmp, ".upload-") as (fh, tmp),
        ):
            digest, size = copy_hashing(reader, fh)
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.chmod(tmp, _READ_ONLY)
            version, vdir = self._allocate(name)
            try:
                target = vdir / filename
                self._place(tmp, digest, target)
                info = ArtifactInfo(
                    name=name,
                    version=version,
                    sha256=digest,
                    size=size,
                    format=format,
                    created=self._clock.time(),
                    metrics=doc_extra[0],
                    metadata=doc_extra[1],
                    path=target,
                    filename=filename,
                )
                # meta.json last: its appearance is what makes the version visible
                write_atomic(vdir / _META, self._dump(info.to_dict()))
            except BaseException:
                shutil.rmtree(vdir, ignore_errors=True)
                raise
        log.info("artifact stored", artifact=name, version=version, sha256=digest, size=size)
        return info

    def delete(self, name: str, version: str | int | None = None) -> list[str]:
        """Remove one version (or every version when ``version`` is None); return which.

        Version numbers are never reused. Blobs no other version links to are removed.
        """
        check_name(name)
        wanted = None if version is None else _check_version(version)
        with self._locked(name):
            doomed = [
                v.version for v in self.versions(name) if wanted is None or v.version == wanted
            ]
            if not doomed:
                raise ArtifactError(
                    f"no artifact {name!r}" + (f" version {wanted}" if wanted else "")
                )
            for v in doomed:
                info = self._read_info(name, v)
                # rename first: the version disappears in one step, then is cleaned up
                grave = self._tmp / f".deleted-{uuid.uuid4().hex}"
                os.replace(self._artifacts / name / v, grave)
                shutil.rmtree(grave, ignore_errors=True)
                self._collect_blob(info.sha256)
            fsync_dir(self._artifacts / name)
        log.info("artifact deleted", artifact=name, versions=doomed)
        return doomed

    def sweep(self, keep: Callable[[str, str], bool]) -> dict[str, int]:
        """Remove what a crash left behind: versions ``keep(name, version)`` rejects (stored but
        never recorded by the caller's source of truth), half-written version folders (no
        ``meta.json``) and abandoned temporary files. Returns counts per kind.

        Call it only while no other writer uses the store (the knowledge base holds an
        exclusive lock that every upload shares).
        """
        counts = {"versions": 0, "incomplete": 0, "temporary": 0}
        for ndir in sorted(self._artifacts.iterdir()):
            if not (ndir.is_dir() and _NAME.fullmatch(ndir.name)):
                continue
            for vdir in sorted(ndir.iterdir()):
                if not vdir.name.isdigit():
                    continue
                if not (vdir / _META).is_file():
                    shutil.rmtree(vdir, ignore_errors=True)
                    counts["incomplete"] += 1
                elif not keep(ndir.name, vdir.name):
                    self.delete(ndir.name, vdir.name)
                    counts["versions"] += 1
        for leftover in self._tmp.iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            counts["temporary"] += 1
        referenced = {info.sha256 for name in self.names() for info in self.versions(name)}
        for blob in self._blobs.glob("*/*"):
            # new content published by an upload that died before linking its version
            if blob.is_file() and blob.name not in referenced:
                blob.unlink(missing_ok=True)
                counts["temporary"] += 1
        return counts

    # -- reading -------------------------------------------------------------------------

    def get(
        self, name: str, version: str | int | None = None, *, verify: bool = True
    ) -> ArtifactInfo:
        """The record of ``version`` (the latest when None), its file's digest verified.

        Raises ArtifactError when missing and IntegrityError when the file's bytes no longer
        match the recorded sha256 (``verify=False`` skips the check: metadata only).
        """
        info = self._resolve(name, version)
        if verify:
            try:
                digest, size = sha256_file(info.path)
            except OSError as exc:
                raise ArtifactError(f"artifact {name!r} version {info.version}: {exc}") from exc
            self._check(info, digest, size)
        return info

    def path(self, name: str, version: str | int | None = None) -> Path:
        """The local file of a version (verified like :meth:`get`); do not modify it."""
        return self.get(name, version).path

    def read_bytes(self, name: str, version: str | int | None = None) -> bytes:
        """The content of a version, verified against its digest (the bytes checked are the
        bytes returned)."""
        info = self._resolve(name, version)
        try:
            data = info.path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"artifact {name!r} version {info.version}: {exc}") from exc
        self._check(info, hashlib.sha256(data).hexdigest(), len(data))
        return data

    def versions(self, name: str) -> list[ArtifactInfo]:
        """Every visible version of ``name``, oldest first (metadata only, not verified)."""
        check_name(name)
        return [self._read_info(name, v) for v in self._version_ids(name)]

    def latest(self, name: str) -> ArtifactInfo | None:
        """The newest visible version's record (metadata only), or None."""
        check_name(name)
        ids = self._version_ids(name)
        return self._read_info(name, ids[-1]) if ids else None

    def names(self) -> list[str]:
        """Names with at least one visible version, sorted."""
        out = []
        for d in sorted(self._artifacts.iterdir()):
            if d.is_dir() and _NAME.fullmatch(d.name) and self._version_ids(d.name):
                out.append(d.name)
        return out

    def blob_path(self, sha256: str) -> Path:
        """Where the content with this digest lives (it may not exist)."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ArtifactError(f"invalid sha256 digest {sha256!r}")
        return self._blobs / sha256[:2] / sha256

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _json_doc(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ArtifactError(f"{what} must be a mapping, got {type(value).__name__}")
        try:
            return json.loads(json.dumps(dict(value), default=_jsonable, allow_nan=True))
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{what} must be JSON-serialisable: {exc}") from exc

    @staticmethod
    def _dump(doc: dict[str, Any]) -> bytes:
        return json.dumps(doc, indent=2, sort_keys=True, default=_jsonable).encode()

    def _place(self, tmp: Path, digest: str, target: Path) -> None:
        """Make ``target`` a hard link to the blob of ``digest``, creating the blob from
        ``tmp`` (the fsynced upload) when it is missing; ``tmp`` is consumed."""
        blob = self.blob_path(digest)
        blob.parent.mkdir(exist_ok=True)
        try:
            while True:
                try:
                    os.link(blob, target)
                    break
                except FileNotFoundError:
                    # new content (or collected by a concurrent delete): publish our upload;
                    # link, not replace, so a concurrent publisher of the same bytes wins cleanly
                    with contextlib.suppress(FileExistsError):
                        os.link(tmp, blob)
                        fsync_dir(blob.parent)
        except OSError as exc:
            if isinstance(exc, FileExistsError):
                raise
            # no hard links on this filesystem: the version keeps a private copy
            log.warning(
                "hard links unsupported; storing a copy", root=str(self.root), error=str(exc)
            )
            if not blob.exists():
                with open(tmp, "rb") as src, temp_file(blob.parent) as (fh, part):
                    copy_hashing(src, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                    os.replace(part, blob)
            os.replace(tmp, target)
        else:
            tmp.unlink()
        fsync_dir(target.parent)

    def _collect_blob(self, digest: str) -> None:
        blob = self.blob_path(digest)
        with contextlib.suppress(FileNotFoundError):
            if blob.stat().st_nlink <= 1:  # no version links to it any more
                blob.unlink()

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        import fcntl  # POSIX only; imported here so the module imports everywhere

        ndir = self._artifacts / name
        ndir.mkdir(exist_ok=True)
        # each acquisition opens its own descriptor, so threads exclude each other as well
        with open(ndir / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield ndir
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _allocate(self, name: str) -> tuple[str, Path]:
        with self._locked(name) as ndir:
            seq_file = ndir / ".seq"
            try:
                last = int(seq_file.read_text() or 0)
            except (FileNotFoundError, ValueError):
                last = 0
            existing = [int(d.name) for d in ndir.iterdir() if d.name.isdigit()]
            number = max([last, *existing]) + 1
            vdir = ndir / str(number)
            vdir.mkdir()
            write_atomic(seq_file, str(number).encode())
        return str(number), vdir

    def _version_ids(self, name: str) -> list[str]:
        ndir = self._artifacts / name
        try:
            entries = list(ndir.iterdir())
        except FileNotFoundError:
            return []
        ids = [d.name for d in entries if d.name.isdigit() and (d / _META).is_file()]
        return sorted(ids, key=int)

    def _resolve(self, name: str, version: str | int | None) -> ArtifactInfo:
        check_name(name)
        if version is None:
            info = self.latest(name)
            if info is None:
                raise ArtifactError(f"no artifact named {name!r} in {self.root}")
            return info
        return self._read_info(name, _check_version(version))

    def _read_info(self, name: str, version: str) -> ArtifactInfo:
        vdir = self._artifacts / name / version
        try:
            doc = json.loads((vdir / _META).read_bytes())
            filename = check_name(doc["filename"], "file name")
            return ArtifactInfo(
                name=name,
                version=version,
                sha256=str(doc["sha256"]),
                size=int(doc["size"]),
                format=str(doc["format"]),
                created=float(doc["created"]),
                metrics=dict(doc.get("metrics") or {}),
                metadata=dict(doc.get("metadata") or {}),
                path=vdir / filename,
                filename=filename,
            )
        except FileNotFoundError:
            raise ArtifactError(f"no artifact {name!r} version {version} in {self.root}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(
                f"artifact {name!r} version {version}: unreadable metadata ({exc})"
            ) from exc

    @staticmethod
    def _check(info: ArtifactInfo, digest: str, size: int) -> None:
        if digest != info.sha256 or size != info.size:
            raise IntegrityError(
                f"artifact {info.name!r} version {info.version} at {info.path} is corrupt: "
                f"sha256 {digest} ({size} bytes), expected {info.sha256} ({info.size} bytes); "
                "delete this version and store it again"
            )
