"""Remote files through fsspec: local paths, file://, http(s):// and s3://.

S3 settings come from Sedna's variables, read when a call is made (never at import):
``S3_ENDPOINT_URL`` (an endpoint without a scheme means https, as in Sedna), ``ACCESS_KEY_ID``
and ``SECRET_ACCESS_KEY``. Filesystems are not cached between calls, so credentials do not
linger in a process-wide singleton.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from sedna_core.artifacts._atomic import fsync_dir, temp_file
from sedna_core.errors import ArtifactError
from sedna_core.log import get_logger

__all__ = ["fetch", "is_remote", "open_url", "s3_storage_options", "upload"]

log = get_logger(__name__)

REMOTE_SCHEMES = ("http", "https", "s3")
DEFAULT_TIMEOUT = 60.0


def _scheme(url: str) -> str:
    if "::" in url:
        raise ArtifactError(f"chained URLs are not supported: {url!r}")
    scheme = urlsplit(url).scheme.lower()
    # a one-letter scheme is a Windows drive ("C:\\models")
    return "" if len(scheme) == 1 else scheme


def is_remote(url: str | os.PathLike[str]) -> bool:
    """True for http(s):// and s3:// URLs; False for local paths and file:// URLs."""
    scheme = _scheme(os.fspath(url))
    if scheme in ("", "file"):
        return False
    if scheme in REMOTE_SCHEMES:
        return True
    raise ArtifactError(
        f"unsupported URL scheme {scheme!r} in {os.fspath(url)!r}: use a local path, file://, "
        "http(s):// or s3://"
    )


def local_path(url: str | os.PathLike[str]) -> Path:
    """The local path named by a plain path or a file:// URL."""
    text = os.fspath(url)
    if _scheme(text) == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ArtifactError(f"file:// URL with a remote host is not supported: {text!r}")
        from urllib.request import url2pathname

        return Path(url2pathname(parts.path))
    return Path(text)


def s3_storage_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """s3fs options from Sedna's variables (``os.environ`` read now, unless given)."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    endpoint = env.get("S3_ENDPOINT_URL", "").strip()
    if endpoint:
        if "://" not in endpoint:
            endpoint = "https://" + endpoint  # Sedna: TLS unless the endpoint says http
        options["endpoint_url"] = endpoint
    key, secret = env.get("ACCESS_KEY_ID", ""), env.get("SECRET_ACCESS_KEY", "")
    if key or secret:
        options["key"], options["secret"] = key, secret
    return options


def _filesystem(url: str, timeout: float, storage_options: Mapping[str, Any] | None) -> Any:
    import fsspec

    scheme = _scheme(url)
    options: dict[str, Any] = {"skip_instance_cache": True}
    if scheme == "s3":
        options.update(s3_storage_options())
        options["config_kwargs"] = {"connect_timeout": timeout, "read_timeout": timeout}
    elif scheme in ("http", "https"):
        import aiohttp

        options["client_kwargs"] = {
            "timeout": aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout)
        }
    options.update(storage_options or {})
    try:
        return fsspec.filesystem(scheme, **options)
    except ImportError as exc:
        raise ArtifactError(
            f"{scheme}:// needs an extra package: {exc} (pip install s3fs)"
        ) from exc


def _fail(action: str, url: str, exc: BaseException) -> ArtifactError:
    if isinstance(exc, FileNotFoundError):
        return ArtifactError(f"cannot {action} {url}: not found")
    return ArtifactError(f"cannot {action} {url}: {type(exc).__name__}: {exc}")


def fetch(
    url: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """Copy ``url`` (a local path, file://, http(s):// or s3:// URL) to the local ``dest``.

    When ``dest`` is an existing directory the file keeps its base name inside it. An s3://
    prefix (a "folder") is mirrored under ``dest``. Files appear atomically: a failed
    download never leaves a partial file at the destination.

    Returns the local path written. Raises ArtifactError (not found, refused, timed out).
    """
    src = os.fspath(url)
    target = Path(dest)
    remote = is_remote(src)
    base = posixpath.basename(urlsplit(src).path.rstrip("/")) if remote else local_path(src).name
    if target.is_dir():
        if not base:
            raise ArtifactError(f"cannot name a file for {src!r} inside {target}; give a file path")
        target = target / base
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not remote:
            source = local_path(src)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
                return target
            with open(source, "rb") as fh_src:
                _write_from(fh_src, target)
            return target
        fs = _filesystem(src, timeout, storage_options)
        if _scheme(src) == "s3" and fs.isdir(src):
            fs.get(src.rstrip("/") + "/", str(target), recursive=True)
            return target
        with temp_file(target.parent, f".{target.name}.part-") as (fh, tmp):
            fh.close()
            fs.get_file(src, str(tmp))  # streamed to disk by fsspec
            with open(tmp, "rb+") as done:
                os.fsync(done.fileno())
            os.replace(tmp, target)
        fsync_dir(target.parent)
    except ArtifactError:
        raise
    except Exception as exc:  # fsspec/aiohttp/botocore raise many types; callers get one
        raise _fail("fetch", src, exc) from exc
    log.debug("fetched", url=src, dest=str(target))
    return target


def _write_from(src: IO[bytes], target: Path) -> None:
    with temp_file(target.parent, f".{target.name}.part-") as (fh, tmp):
        shutil.copyfileobj(src, fh, 1 << 20)
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(tmp, target)
    fsync_dir(target.parent)


def upload(
    path: str | os.PathLike[str],
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Copy the local file ``path`` to ``url`` and return the URL written.

    A ``url`` ending in ``/`` (or an existing local directory) receives the file under its
    base name. Local and file:// destinations are written atomically; s3:// uses a single
    PUT or a multipart upload (S3 makes either visible only when complete); http(s) uses
    an HTTP PUT.
    """
    source = Path(path)
    if not source.is_file():
        raise ArtifactError(f"cannot upload {source}: not a file (directories: archive first)")
    remote = is_remote(url)
    if url.endswith("/") or (not remote and local_path(url).is_dir()):
        url = url.rstrip("/") + "/" + source.name
    try:
        if not remote:
            target = local_path(url)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as fh:
                _write_from(fh, target)
            return url
        fs = _filesystem(url, timeout, storage_options)
        if _scheme(url) in ("http", "https"):
            fs.put_file(str(source), url, method="put")
        else:
            fs.put_file(str(source), url)
    except ArtifactError:
        raise
    except Exception as exc:
        raise _fail("upload to", url, exc) from exc
    log.debug("uploaded", path=str(source), url=url)
    return url


@contextlib.contextmanager
def open_url(
    url: str | os.PathLike[str],
    mode: str = "rb",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[IO[Any]]:
    """Open a local path or remote URL as a file object (``"rb"`` or ``"wb"``, text modes too)."""
    text = os.fspath(url)
    try:
        if is_remote(text):
            fh = _filesystem(text, timeout, storage_options).open(text, mode)
        else:
            fh = open(local_path(text), mode)  # noqa: SIM115 - closed below
    except ArtifactError:
        raise
    except Exception as exc:
        raise _fail("open", text, exc) from exc
    with fh:
        yield fh
