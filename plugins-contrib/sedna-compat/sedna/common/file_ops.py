"""Sedna's ``FileOps``: copy files between local paths, ``http(s)://`` and ``s3://``.

The transfers go through :func:`sedna_core.artifacts.fetch` / :func:`~sedna_core.artifacts.upload`
(timeouts, atomic writes, ``S3_ENDPOINT_URL``/``ACCESS_KEY_ID``/``SECRET_ACCESS_KEY``). What
differs from Sedna, on purpose:

* a missing source is an error (:class:`~sedna_core.errors.ArtifactError`), not an empty file;
* ``upload`` keeps its local source unless ``clean=True`` is asked for explicitly;
* ``dump``/``load`` (pickles) are refused: unpickling downloaded files runs their code. Use the
  artifact store and a safe format instead.
* tar archives are extracted only when every member stays inside the target folder.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sedna_core.errors import ArtifactError

__all__ = ["FileOps"]

_PICKLE = (
    "FileOps.{name} unpickles files, which runs any code they hold; sedna-core does not. "
    "Store models in a safe format (.keras, safetensors, XGBoost JSON, skops) and data as "
    "CSV/JSON/npz; for a trusted local Sedna knowledge base use `sedna kb import-sedna`."
)


class FileOps:
    """Sedna's file helpers (class methods)."""

    _GCS_PREFIX = "gs://"
    _S3_PREFIX = "s3://"
    _LOCAL_PREFIX = "file://"
    _URI_RE = "https?://(.+)/(.+)"
    _HTTP_PREFIX = "http(s)://"
    _HEADERS_SUFFIX = "-headers"

    @classmethod
    def is_local(cls, src: str) -> bool:
        return not cls.is_remote(src)

    @classmethod
    def is_remote(cls, src: str) -> bool:
        from sedna_core.artifacts import is_remote

        return src.startswith(cls._GCS_PREFIX) or is_remote(src)

    @classmethod
    def exists(cls, folder: str) -> bool:
        """Whether a local path exists (remote URLs: whether they can be listed)."""
        if not cls.is_remote(folder):
            return os.path.exists(_local(folder))
        try:
            from sedna_core.artifacts import open_url

            with open_url(folder):
                return True
        except ArtifactError:
            return False

    @classmethod
    def join_path(cls, *args: str) -> str:
        """Join paths or URL parts; later parts lose their leading separators (Sedna's rule)."""
        if not args:
            return ""
        first, rest = args[0], [a.lstrip("/\\") for a in args[1:] if a]
        if cls.is_remote(first) or first.startswith(cls._LOCAL_PREFIX):
            return posixpath.join(first, *rest)
        return os.path.join(first, *rest)

    @classmethod
    def remove_path_prefix(cls, org_str: str, prefix: str) -> str:
        """``org_str`` without ``prefix`` (as reported to Sedna's local controller)."""
        if prefix and org_str.startswith(prefix):
            return org_str[len(prefix) :] or "/"
        return org_str

    @classmethod
    def make_dir(cls, *args: str) -> str:
        path = cls.join_path(*args)
        os.makedirs(_local(path), exist_ok=True)
        return path

    @classmethod
    def clean_folder(cls, target: Iterable[str], clean: bool = True) -> None:
        """Create each folder; with ``clean`` empty it first."""
        for folder in target:
            path = _local(folder)
            if clean and os.path.isdir(path):
                shutil.rmtree(path)
            os.makedirs(path, exist_ok=True)

    @classmethod
    def delete(cls, path: str) -> None:
        """Remove a local file or folder (errors are ignored, as in Sedna)."""
        local = _local(path)
        try:
            if os.path.isdir(local):
                shutil.rmtree(local)
            elif os.path.exists(local):
                os.remove(local)
        except OSError:
            pass

    @classmethod
    def copy_file(cls, src: str, dst: str) -> str:
        return cls.download(src, dst)

    @classmethod
    def copy_folder(cls, src: str, dst: str) -> str:
        shutil.copytree(_local(src), _local(dst), dirs_exist_ok=True)
        return dst

    @classmethod
    def download(cls, src: str, dst: str | None = None, unzip: bool = False) -> str:
        """Copy ``src`` to ``dst`` (a new temporary file when None); returns ``dst``.

        ``unzip`` extracts a ``.tar.gz`` next to the download (members are checked).
        """
        from sedna_core.artifacts import fetch

        if dst is None:
            fd, dst = tempfile.mkstemp(prefix="sedna-")
            os.close(fd)
        if src.startswith(cls._GCS_PREFIX):
            raise ArtifactError(
                f"cannot download {src}: gs:// is not supported (use s3:// or http)"
            )
        written = str(fetch(src, _local(dst)))
        if unzip and written.endswith((".tar.gz", ".tgz")):
            _untar(written, os.path.dirname(written))
        return written if os.path.isdir(_local(dst)) else dst

    @classmethod
    def upload(cls, src: str, dst: str, tar: bool = False, clean: bool = False) -> str:
        """Copy the local ``src`` (a folder: archived when ``tar``) to ``dst``; returns ``dst``."""
        from sedna_core.artifacts import upload

        source = _local(src)
        if os.path.isdir(source):
            if not tar:
                if cls.is_remote(dst):
                    raise ArtifactError(f"cannot upload folder {src} to {dst}: pass tar=True")
                cls.copy_folder(src, dst)
                return dst
            archive = source.rstrip("/") + ".tar.gz"
            with tarfile.open(archive, "w:gz") as tf:
                tf.add(source, arcname=os.path.basename(source.rstrip("/")))
            source = archive
        written = upload(source, dst)
        if clean and os.path.abspath(source) != os.path.abspath(_local(dst)):
            cls.delete(source)
        return written

    @classmethod
    def get_file_hash(cls, filename: str) -> str:
        """MD5 of a local file (Sedna's value; not a security check)."""
        digest = hashlib.md5(usedforsecurity=False)
        with open(_local(filename), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @classmethod
    def dump(cls, obj: Any, dst: str | None = None) -> str:
        raise ArtifactError(_PICKLE.format(name="dump"))

    @classmethod
    def load(cls, src: str) -> Any:
        raise ArtifactError(_PICKLE.format(name="load"))

    @classmethod
    def load_pickle(cls, src: str) -> Any:
        raise ArtifactError(_PICKLE.format(name="load_pickle"))


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def _untar(archive: str, target: str) -> None:
    root = Path(target).resolve()
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            dest = (root / member.name).resolve()
            if not dest.is_relative_to(root) or member.issym() or member.islnk():
                raise ArtifactError(
                    f"refusing to extract {archive}: member {member.name!r} escapes"
                )
        tf.extractall(root, filter="data")
