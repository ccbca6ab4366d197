"""The lifelong-learning knowledge base: service, database, client and edge cache.

* :class:`KnowledgeBaseServer` — ``sedna serve kb``: Sedna's ``/knowledgebase/...`` REST paths
  over SQLAlchemy 2 (SQLite file by default, any SQLAlchemy URL) and the artifact store.
* :class:`KnowledgeBaseClient` — the blocking client jobs use (``KB_SERVER``).
* :class:`EdgeKnowledgeCache` — the edge's copy of the latest index and models; inference keeps
  working from it while the knowledge base is unreachable.
* :class:`KnowledgeBaseDB` — the database layer (schema versions and upgrades included).
* :func:`validate_index` / :func:`index_schema` — the task index's JSON Schema;
  :func:`artifact_ref` — the index's reference to a stored file.

See ``docs/knowledge-base.md``.
"""

from sedna_core.errors import IndexValidationError
from sedna_core.knowledge_base._cache import EdgeKnowledgeCache
from sedna_core.knowledge_base._client import KnowledgeBaseClient
from sedna_core.knowledge_base._db import KnowledgeBaseDB, normalise_db_url
from sedna_core.knowledge_base._index import (
    INDEX_SCHEMA_NAME,
    INDEX_SCHEMA_VERSION,
    artifact_ref,
    index_schema,
    iter_artifacts,
    validate_index,
)
from sedna_core.knowledge_base._models import SCHEMA_VERSION
from sedna_core.knowledge_base._server import KnowledgeBaseServer, download_url

__all__ = [
    "INDEX_SCHEMA_NAME",
    "INDEX_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "EdgeKnowledgeCache",
    "IndexValidationError",
    "KnowledgeBaseClient",
    "KnowledgeBaseDB",
    "KnowledgeBaseServer",
    "artifact_ref",
    "download_url",
    "index_schema",
    "iter_artifacts",
    "normalise_db_url",
    "validate_index",
]
