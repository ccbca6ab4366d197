"""The lifelong-learning job's knowledge at hand: where it is stored (knowledge base or local
store), the in-memory copy swapped for a newer published index, task models loaded on first
use, and the task-probability function detectors read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms import BaseBackend
from sedna_core.algorithms.mtl import take_rows
from sedna_core.errors import JobError
from sedna_core.jobs.lifelong._estimators import new_backend
from sedna_core.jobs.lifelong._state import Group, Knowledge
from sedna_core.jobs.lifelong._storage import (
    DEPLOY_INDEX,
    KBStorage,
    LocalStorage,
    Storage,
    index_file_for,
)
from sedna_core.knowledge_base import EdgeKnowledgeCache, KnowledgeBaseClient
from sedna_core.knowledge_base._safety import safe_name

__all__ = ["KnowledgeAccess"]


class KnowledgeAccess:
    """Storage, the current knowledge and its task models.

    Part of :class:`~sedna_core.jobs.lifelong.LifelongLearning` (``_job.py``), which builds
    the algorithms and holds the state these methods use.
    """

    # -- storage -----------------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        """The job's output folder: ``OUTPUT_URL``, else ``sedna-lifelong/<JOB_NAME>`` under
        the working directory (one folder per job, so unrelated programs never share
        knowledge)."""
        if self.config.output_url:
            return Path(self.config.output_url)
        return Path("sedna-lifelong") / safe_name(self.config.job_name)

    @property
    def storage(self) -> Storage:
        """The knowledge storage, made on first use: the knowledge base at ``KB_SERVER``
        (with an edge cache under ``edge_output_url``, else :attr:`output_dir`), or local
        files under :attr:`output_dir` without one."""
        if self._storage is None:
            cfg = self.config
            if cfg.kb_server:
                client = KnowledgeBaseClient(
                    cfg.kb_server,
                    token=cfg.token,
                    ca_file=cfg.tls_ca,
                    timeout=cfg.request_timeout,
                    retries=max(0, cfg.kb_retries),
                    clock=self.clock,
                )
                cache_dir = cfg.edge_output_url or str(self.output_dir / "edge-kb")
                cache = EdgeKnowledgeCache(
                    cache_dir, client, poll_period=cfg.kb_poll_period, clock=self.clock
                )
                self._storage = KBStorage(client, cache)
            else:
                self._storage = self._local_storage()
        return self._storage

    def _local_storage(self) -> LocalStorage:
        """No knowledge base: the index and artifacts under ``OUTPUT_URL``; the index read is
        the one ``MODEL_URLS`` (or ``CLOUD_KB_INDEX``) names, as Sedna's controller sets them:
        the trained index for evaluation, ``<OUTPUT_URL>/deploy/index.pkl`` for inference
        (whose JSON twin training writes, see :class:`LocalStorage`), with the artifacts
        stored beside it."""
        cfg = self.config
        named = cfg.model_urls or cfg.cloud_kb_index
        if not named:
            self.log.info("knowledge stored locally", path=str(self.output_dir.absolute()))
            return LocalStorage(self.output_dir, clock=self.clock)
        index = index_file_for(named)
        # the knowledge stays with its index (the trainer's output, not this pod's OUTPUT_URL)
        root = index.parent
        if index.parent.name == Path(DEPLOY_INDEX).parent.name:
            root = index.parent.parent  # <output>/deploy/index.json: artifacts in <output>
        return LocalStorage(root, index_file=index, clock=self.clock)

    def _knowledge_now(self, *, refresh: bool = True) -> Knowledge:
        """The current knowledge: in memory, refreshed when the store publishes a newer one.

        A refresh builds a new :class:`Knowledge` and swaps it in whole, so a call already
        running keeps the models it started with (Sedna's hot reload raced with inference).
        """
        with self._lock:
            return self._refresh_knowledge(refresh)

    def _refresh_knowledge(self, refresh: bool) -> Knowledge:
        doc = self.storage.latest(refresh=refresh)
        known = self._knowledge
        if doc is None:
            if known is None:
                why = getattr(getattr(self.storage, "cache", None), "last_error", None)
                where = getattr(self.storage, "index_file", None)
                raise JobError(
                    "nothing learned yet: train first, or point KB_SERVER / MODEL_URLS at a "
                    "knowledge base that has a task index"
                    + (f" (the knowledge base could not be read: {why})" if why else "")
                    + (f" (no task index at {where})" if where is not None else "")
                )
            return known
        if known is None or doc.get("version") != known.version:
            fresh = Knowledge.from_index(doc, self.plugin_manager)
            if known is not None:  # keep models whose file did not change
                loaded = {g.model["sha256"]: g.backend for g in known.groups if g.model}
                for g in fresh.groups:
                    if g.model and loaded.get(g.model["sha256"]) is not None:
                        g.backend = loaded[g.model["sha256"]]
                if known.global_model and fresh.global_model == known.global_model:
                    fresh.global_backend = known.global_backend
                self.log.info("knowledge updated", version=fresh.version)
                self.announce(
                    "sedna_model_deployed",
                    job_name=self.config.job_name,
                    version=str(fresh.version),
                    metrics={},
                )
                self.report("deploy", "completed")
            self._knowledge = fresh
        return self._knowledge  # type: ignore[return-value]

    def _backend_of(self, know: Knowledge, group: Group) -> BaseBackend:
        if group.backend is not None:
            return group.backend
        with self._lock:
            return self._load_group(group)

    def _load_group(self, group: Group) -> BaseBackend:
        if group.backend is None:
            if group.model is None:
                raise JobError(f"task group {group.entry!r} has no model")
            backend = new_backend(
                self.base_estimator, self.backend_type, self.config, self.plugin_manager
            )
            backend.load(str(self.storage.local_path(group.model)))
            group.backend = backend
        return group.backend

    def _global_backend(self, know: Knowledge) -> BaseBackend | None:
        if know.global_model is None:
            return None
        if know.global_backend is None:
            backend = new_backend(
                self.base_estimator, self.backend_type, self.config, self.plugin_manager
            )
            backend.load(str(self.storage.local_path(know.global_model)))
            know.global_backend = backend
        return know.global_backend

    def _proba_fn(self, know: Knowledge, model_x: Any) -> Callable[[int, np.ndarray], np.ndarray]:
        group_of: dict[int, int] = {}  # built on first use: most detectors never ask

        def proba(task_id: int, rows: np.ndarray) -> np.ndarray:
            if not group_of:
                group_of.update(know.group_of())
            backend = self._backend_of(know, know.groups[group_of[int(task_id)]])
            return np.asarray(backend.predict_proba(take_rows(model_x, rows)))

        return proba
