"""Sedna's rules for where a job's model file is (``JobBase.model_path``)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping

from sedna_core.artifacts._remote import is_remote, local_path
from sedna_core.config import JobConfig
from sedna_core.errors import ConfigError

__all__ = ["resolve_model_path"]


def resolve_model_path(
    config: JobConfig, default_name: str, *, environ: Mapping[str, str] | None = None
) -> str:
    """Where the job's model file is, following Sedna's rules.

    1. ``MODEL_LOAD_MODE`` other than ``file`` (``hf``, ``http``, ...): ``MODEL_URL`` as is.
    2. ``MODEL_URL`` names an existing local file (plain path or file://): that file
       (``MODEL_NAME`` is then ignored, as in Sedna).
    3. ``MODEL_PATH`` (or Sedna's lower-case ``model_path``) is set: that explicit file.
    4. Otherwise ``MODEL_URL`` is a folder: ``MODEL_URL/<MODEL_NAME or default_name>``.
       A remote URL (http(s)://, s3://) is a folder only when it ends with ``/`` or
       ``MODEL_NAME`` is set; otherwise it names the file itself (Sedna cannot stat remote
       URLs and would append the name to a file URL; we do not).

    ``default_name`` is the backend's file name (e.g. ``model_finetune_keras.keras``). The
    result is a local path (file:// URLs are converted) or the remote URL. Raises
    ConfigError when nothing says where the model is or a name is unsafe.
    """
    env = os.environ if environ is None else environ
    url = (config.model_url or "").strip()
    override = getattr(config, "model_path", None) or env.get("MODEL_PATH") or env.get("model_path")
    name = config.model_name or default_name
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        source = "MODEL_NAME" if config.model_name else "default_name"
        raise ConfigError(source, name, "a plain file name without path separators")

    if not url:
        if override:
            return str(override)
        raise ConfigError("MODEL_URL", config.model_url, "a model file or folder (path or URL)")
    if config.model_load_mode != "file":
        return url
    if is_remote(url):
        if url.endswith("/"):
            return url + name
        return url + "/" + name if config.model_name else url
    path = local_path(url)
    if path.is_file():
        return str(path)
    if override:
        return str(override)
    return posixpath.join(str(path), name) if os.sep == "/" else str(path / name)
