"""Artifacts: the versioned content-addressed store, remote files and model-path rules.

``ArtifactStore(root)`` keeps versions of named files (models, indexes, samples) with their
metadata; :func:`fetch`, :func:`upload` and :func:`open_url` move files between local paths,
``http(s)://`` and ``s3://`` (fsspec); :func:`resolve_model_path` applies Sedna's
``MODEL_URL`` / ``MODEL_NAME`` rules; :func:`verify_artifact` accepts a file only when it parses
as one of :data:`ACCEPTED_FORMATS` without running code. See ``docs/runtime.md`` and
``docs/knowledge-base.md``.
"""

from __future__ import annotations

from sedna_core.artifacts._formats import ACCEPTED_FORMATS
from sedna_core.artifacts._formats import verify as verify_artifact
from sedna_core.artifacts._model_path import resolve_model_path
from sedna_core.artifacts._remote import fetch, is_remote, open_url, s3_storage_options, upload
from sedna_core.artifacts._store import ArtifactInfo, ArtifactStore

__all__ = [
    "ACCEPTED_FORMATS",
    "ArtifactInfo",
    "ArtifactStore",
    "fetch",
    "is_remote",
    "open_url",
    "resolve_model_path",
    "s3_storage_options",
    "upload",
    "verify_artifact",
]
