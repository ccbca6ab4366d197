"""``LifelongLearning``: per-task models behind task allocation and unseen-task detection, kept
in a knowledge base."""

from __future__ import annotations

import operator as op
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms import BaseBackend
from sedna_core.algorithms.mtl import (
    UNSEEN,
    BaseInferenceIntegrate,
    BaseTaskAllocation,
    BaseTaskDefinition,
    BaseTaskRelationDiscover,
    BaseTaskRemodeling,
    BaseTaskUpdateDecision,
    BaseUnseenTaskDetector,
    DetectionData,
    TaskResult,
    n_rows,
    take_rows,
)
from sedna_core.backends import compute_metrics, infer_task
from sedna_core.clock import Clock
from sedna_core.config.lifelong import LifelongConfig
from sedna_core.errors import ConfigError, JobError, KnowledgeBaseError
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.lifelong._estimators import (
    format_of,
    new_backend,
    save_model,
    scratch_dir,
    train_backend,
)
from sedna_core.jobs.lifelong._state import (
    Group,
    Knowledge,
    save_samples,
)
from sedna_core.jobs.lifelong._storage import KBStorage, LocalStorage, Storage
from sedna_core.jobs.lifelong._update import update_knowledge
from sedna_core.knowledge_base import EdgeKnowledgeCache, KnowledgeBaseClient
from sedna_core.knowledge_base._safety import safe_name
from sedna_core.plugins import create_algorithm

__all__ = ["LifelongLearning"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    "<": op.lt,
    "=": op.eq,
    ">=": op.ge,
    "<=": op.le,
}

Spec = Any  # "Name", {"method": ..., "param": ...}, an algorithm class or instance


def _unpack(data: Any) -> tuple[Any, Any]:
    """``(x, y)`` of a datasource, an ``(x, y)`` tuple, or bare samples."""
    if isinstance(data, tuple) and len(data) == 2:
        return data
    if hasattr(data, "x") and not isinstance(data, np.ndarray | Mapping):
        x, columns = data.x, getattr(data, "columns", None)
        if columns and isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == len(columns):
            # CSVDataParse keeps names apart from its 2-D table: attribute tasks need them
            x = {name: x[:, i] for i, name in enumerate(columns)}
        return x, getattr(data, "y", None)
    return data, None


class LifelongLearning(JobBase):
    """Lifelong learning: a model per task, chosen per sample, with unseen tasks detected.

    Both of Sedna's signatures work: the README's
    (``LifelongLearning(estimator=..., task_definition="TaskDefinitionByDataAttr", ...)``) and
    the current one (``seen_estimator``, ``unseen_estimator``, ``task_definition``,
    ``task_relationship_discovery``, ``task_allocation``, ``task_remodeling``,
    ``inference_integrate``, ``task_update_decision``, ``unseen_task_allocation``,
    ``unseen_sample_recognition``, ``unseen_sample_re_recognition``). Each algorithm is a
    name, ``{"method": name, "param": {...}}``, a class or an instance.

    Parameters
    ----------
    estimator
        The base model (instance, class or factory); every task trains its own copy.
    unseen_estimator
        Optional model or function for samples of unseen tasks; without one they are
        predicted by their nearest task's model (or the global model) and flagged.
    task_definition
        How training samples split into tasks (default ``TaskDefinitionByDataAttr``).
    task_relationship_discovery
        How tasks group; each group gets one model (default: one group per task).
    task_allocation
        How inference samples find their task; default: the allocator the task definition
        fitted (attribute lookup, nearest cluster...).
    task_remodeling, inference_integrate
        Splitting a batch by task and merging results back in order.
    task_update_decision
        How :meth:`update` treats new data (default ``UpdateStrategyDefault``).
    unseen_task_allocation
        Allocation among unseen tasks (Sedna's ``UnseenTaskAllocationDefault``; one unseen
        estimator means one unseen task).
    unseen_sample_recognition
        Unseen-task detector(s), a spec or a list; default ``TaskAttrFilter`` for
        attribute-defined tasks, ``MahalanobisFilter`` otherwise.
    unseen_sample_re_recognition
        Detector(s) separating new tasks from known ones in :meth:`update`'s data; default:
        the task definition's attributes when present, else the fitted detectors.
    seen_estimator, task_mining, unseen_task_detect
        Sedna's other spellings of ``estimator``, ``task_allocation`` and
        ``unseen_sample_recognition``.
    config
        Settings; built from the environment when None (``KB_SERVER``, ``OUTPUT_URL``,
        ``MIN_TRAIN_SAMPLE``, ``operator``, ``model_threshold``...), with ``kb_server`` and
        ``output_url`` as explicit overrides.
    backend, plugin_manager, clock
        As for every job.
    """

    job_kind = "lifelonglearningjob"

    def __init__(
        self,
        estimator: Any = None,
        unseen_estimator: Any = None,
        task_definition: Spec = None,
        task_relationship_discovery: Spec = None,
        task_allocation: Spec = None,
        task_remodeling: Spec = None,
        inference_integrate: Spec = None,
        task_update_decision: Spec = None,
        unseen_task_allocation: Spec = None,
        unseen_sample_recognition: Spec | Sequence[Spec] = None,
        unseen_sample_re_recognition: Spec | Sequence[Spec] = None,
        *,
        seen_estimator: Any = None,
        task_mining: Spec = None,
        unseen_task_detect: Spec = None,
        config: LifelongConfig | None = None,
        kb_server: str | None = None,
        output_url: str | None = None,
        backend: str | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if estimator is not None and seen_estimator is not None:
            raise ConfigError(
                "seen_estimator", seen_estimator, "only one of estimator/seen_estimator"
            )
        estimator = estimator if estimator is not None else seen_estimator
        if estimator is None:
            raise JobError("LifelongLearning needs an estimator (the base model of every task)")
        for name, alias, value in (
            ("task_allocation", "task_mining", task_mining),
            ("unseen_sample_recognition", "unseen_task_detect", unseen_task_detect),
        ):
            if value is not None and locals()[name] is not None:
                raise ConfigError(alias, value, f"only one of {name}/{alias}")
        task_allocation = task_allocation if task_allocation is not None else task_mining
        if unseen_sample_recognition is None:
            unseen_sample_recognition = unseen_task_detect
        config = config or LifelongConfig.from_env(kb_server=kb_server, output_url=output_url)
        super().__init__(
            None, config=config, backend=backend, plugin_manager=plugin_manager, clock=clock
        )
        self.config: LifelongConfig = config
        self.base_estimator = estimator
        self.backend_type = backend
        self.unseen_estimator = unseen_estimator
        pm = plugin_manager

        def make(kind: str, spec: Spec, default: str) -> Any:
            return create_algorithm(kind, spec if spec is not None else default, plugin_manager=pm)

        self.task_definition: BaseTaskDefinition = make(
            "task_definition", task_definition, "TaskDefinitionByDataAttr"
        )
        self.task_relationship_discovery: BaseTaskRelationDiscover = make(
            "task_relation_discovery", task_relationship_discovery, "DefaultTaskRelationDiscover"
        )
        self.task_allocation_spec = task_allocation
        if task_allocation is not None:  # resolve now: a wrong name fails here, not in train
            make("task_allocation", task_allocation, "")
        self.task_remodeling: BaseTaskRemodeling = make(
            "task_remodeling", task_remodeling, "DefaultTaskRemodeling"
        )
        self.inference_integrate: BaseInferenceIntegrate = make(
            "inference_integrate", inference_integrate, "DefaultInferenceIntegrate"
        )
        self.task_update_decision: BaseTaskUpdateDecision = make(
            "task_update_decision", task_update_decision, "UpdateStrategyDefault"
        )
        self.unseen_task_allocation: BaseTaskAllocation = make(
            "task_allocation", unseen_task_allocation, "TaskAllocationDefault"
        )
        self.detector_specs = self._spec_list(unseen_sample_recognition)
        self.re_detector_specs = self._spec_list(unseen_sample_re_recognition)
        for spec in [*self.detector_specs, *self.re_detector_specs]:
            make("unseen_task_detection", spec, "")
        self._probe = new_backend(estimator, backend, config, pm)  # fails now if unwrappable
        self._unseen_backend: BaseBackend | None = None
        self._knowledge: Knowledge | None = None
        self._storage: Storage | None = None
        self._lock = threading.RLock()

    @staticmethod
    def _spec_list(spec: Spec | Sequence[Spec]) -> list[Spec]:
        if spec is None:
            return []
        if isinstance(spec, list | tuple):
            return list(spec)
        return [spec]

    # -- storage -----------------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        """``OUTPUT_URL``, else a folder for this job under the system temp directory."""
        if self.config.output_url:
            return Path(self.config.output_url)
        return Path(tempfile.gettempdir()) / "sedna-lifelong" / safe_name(self.config.job_name)

    @property
    def storage(self) -> Storage:
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
                index = cfg.model_urls or cfg.cloud_kb_index
                root = Path(index).parent if index and index.endswith(".json") else self.output_dir
                self._storage = LocalStorage(root, clock=self.clock)
        return self._storage

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()
        super().close()

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
                raise JobError(
                    "nothing learned yet: train first, or point KB_SERVER / MODEL_URLS at a "
                    "knowledge base that has a task index"
                    + (f" (the knowledge base could not be read: {why})" if why else "")
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

    # -- training ----------------------------------------------------------------------------

    def _split(self, task_ids: np.ndarray) -> np.ndarray:
        """Validation mask: ``validation_fraction`` of each task's rows (tasks of 5+ rows)."""
        rng = np.random.default_rng(self.config.random_state)
        valid = np.zeros(len(task_ids), dtype=bool)
        frac = self.config.validation_fraction
        if frac <= 0:
            return valid
        for k in np.unique(task_ids[task_ids != UNSEEN]):
            rows = np.flatnonzero(task_ids == k)
            n_valid = int(len(rows) * frac)
            if len(rows) >= 5 and n_valid >= 1:
                valid[rng.permutation(rows)[:n_valid]] = True
        return valid

    def _train_group(
        self,
        model_x: Any,
        y: Any,
        train_rows: np.ndarray,
        valid_rows: np.ndarray,
        kwargs: Mapping[str, Any],
        start: BaseBackend | None = None,
    ) -> tuple[BaseBackend, dict[str, Any]]:
        backend = start or new_backend(
            self.base_estimator, self.backend_type, self.config, self.plugin_manager
        )
        ys = None if y is None else np.asarray(y)
        train = (take_rows(model_x, train_rows), None if ys is None else ys[train_rows])
        valid = (
            (take_rows(model_x, valid_rows), None if ys is None else ys[valid_rows])
            if len(valid_rows)
            else None
        )
        result = train_backend(backend, train, valid, **kwargs)
        return backend, _metrics_doc(result)

    def _store_model(
        self, backend: BaseBackend, stem: str, tmp: Path, metrics: Mapping[str, Any]
    ) -> dict[str, Any]:
        path = save_model(backend, tmp, safe_name(stem, "model"))
        ref = self.storage.put(safe_name(stem, "model"), path, format_of(path))
        ref["metrics"] = dict(metrics)
        ref["backend"] = backend.name
        return ref

    def _store_samples(
        self, know: Knowledge, tmp: Path, per_task: Mapping[int, tuple[Any, Any, Any]]
    ) -> None:
        for task in know.tasks:
            if task.task_id not in per_task:
                continue
            feats, ys, valid = per_task[task.task_id]
            if feats is None:
                continue
            stem = safe_name(f"{self.config.job_name}.{task.entry}.samples", "samples")
            path = save_samples(tmp / f"{stem}.npz", feats, ys, valid)
            know.samples[task.task_id] = self.storage.put(stem, path, "npz")

    def train(
        self,
        train_data: Any,
        valid_data: Any = None,
        post_process: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Define tasks, train a model per task group, fit allocation and unseen detection,
        and publish the task index to the knowledge base.

        ``kwargs`` reach each task's base model (e.g. XGBoost's ``early_stopping_rounds``,
        Sedna's ``metric_name``). Returns ``{group: training metrics}``, or the evaluation of
        ``valid_data`` when given (as Sedna), through ``post_process`` when given. With
        ``HAS_COMPLETED_INITIAL_TRAINING=true`` this is :meth:`update`.
        """
        if self.config.has_completed_initial_training:
            return self.update(train_data, valid_data, post_process, **kwargs)
        x, y = _unpack(train_data)
        self.announce(
            "sedna_job_started",
            job_kind=self.job_kind,
            job_name=self.config.job_name,
            info={"phase": "train", "samples": n_rows(x)},
        )
        try:
            feedback = self._train(x, y, valid_data, kwargs)
        except Exception:
            self.report("train", "failed")
            raise
        if valid_data is not None:
            feedback = self.evaluate(valid_data, update_status=False)
        return post_process(feedback) if post_process is not None else feedback

    def _train(self, x: Any, y: Any, valid_data: Any, kwargs: Mapping[str, Any]) -> Any:
        result = self.task_definition.fit(x, y)
        know = Knowledge(
            groups=[],
            definition=self.task_definition,
            definition_allocator=result.allocator,
            allocator=result.allocator,
            detectors=[],
            attribute_columns=tuple(result.attribute_columns),
            feature_columns=_feature_columns(x, result.attribute_columns),
            backend_name=self._probe.name,
        )
        features = know.features(x)
        model_x = know.model_input(x, features)
        task_ids = np.asarray(result.task_ids, dtype=np.int64)
        valid = self._split(task_ids)
        tasks = result.tasks
        for t in tasks:
            t.rows = np.flatnonzero(task_ids == t.task_id)
            t.sample_num = len(t.rows)
        groups = self.task_relationship_discovery.discover(tasks)
        with scratch_dir() as tmpdir:
            tmp = Path(tmpdir)
            rare = []
            for g in groups:
                rows = np.concatenate([t.rows for t in g.tasks])  # type: ignore[misc]
                group = Group(entry=g.entry, tasks=list(g.tasks), sample_num=len(rows))
                know.groups.append(group)
                if len(rows) < self.config.min_train_sample:
                    rare.append(group)
                    continue
                backend, metrics = self._train_group(
                    model_x, y, rows[~valid[rows]], rows[valid[rows]], kwargs
                )
                group.backend, group.metrics = backend, metrics
                group.model = self._store_model(
                    backend, f"{self.config.job_name}.{g.entry}", tmp, metrics
                )
            if rare:  # Sedna's rule: groups with too few samples share a global model
                everything = np.flatnonzero(~valid)
                backend, metrics = self._train_group(
                    model_x, y, everything, np.flatnonzero(valid), kwargs
                )
                know.global_backend = backend
                know.global_model = self._store_model(
                    backend, f"{self.config.job_name}.global", tmp, metrics
                )
                for group in rare:
                    group.backend, group.model = backend, know.global_model
            self._fit_routing(know, x, y, features, task_ids, valid, valid_data)
            ys = None if y is None else np.asarray(y)
            self._store_samples(
                know,
                tmp,
                {
                    t.task_id: (
                        None if features is None else features[t.rows],
                        None if ys is None else ys[t.rows],
                        valid[t.rows],
                    )
                    for t in know.tasks
                },
            )
            return self._publish(know, "train")

    def _fit_routing(
        self,
        know: Knowledge,
        x: Any,
        y: Any,
        features: np.ndarray | None,
        task_ids: np.ndarray,
        valid: np.ndarray,
        valid_data: Any = None,
    ) -> None:
        """Fit the inference allocator and the unseen-task detectors (thresholds on the
        validation rows, or on ``valid_data`` when given)."""
        tasks = know.tasks
        train_rows = np.flatnonzero(~valid & (task_ids != UNSEEN))
        if self.task_allocation_spec is not None:
            alloc = create_algorithm(
                "task_allocation", self.task_allocation_spec, plugin_manager=self.plugin_manager
            )
            source = know.allocator_input(alloc, x, features)
            know.allocator = alloc.fit(take_rows(source, train_rows), task_ids[train_rows], tasks)
        specs = self.detector_specs or [
            "TaskAttrFilter" if know.attribute_columns else "MahalanobisFilter"
        ]
        detectors = [
            create_algorithm("unseen_task_detection", s, plugin_manager=self.plugin_manager)
            for s in specs
        ]
        ys = None if y is None else np.asarray(y)
        know.detectors = self._fit_detectors(
            know, detectors, x, ys, features, task_ids, valid, valid_data
        )

    def _fit_detectors(
        self,
        know: Knowledge,
        detectors: list[BaseUnseenTaskDetector],
        x: Any,
        y: np.ndarray | None,
        features: np.ndarray | None,
        task_ids: np.ndarray,
        valid: np.ndarray,
        valid_data: Any = None,
    ) -> list[BaseUnseenTaskDetector]:
        train_rows = np.flatnonzero(~valid & (task_ids != UNSEEN))
        valid_rows = np.flatnonzero(valid & (task_ids != UNSEEN))
        if valid_data is not None:
            vx, vy = _unpack(valid_data)
            vfeat = know.features(vx)
            vids = know.definition_allocator.allocate(
                know.allocator_input(know.definition_allocator, vx, vfeat)
            )
            keep = np.flatnonzero(vids != UNSEEN)
            calib = self._detection(know, vx, vfeat, vids, vy, keep)
        else:
            if len(valid_rows) == 0:
                self.log.warning("no validation rows: detector thresholds set on training rows")
                valid_rows = train_rows
            calib = self._detection(know, x, features, task_ids, y, valid_rows)
        fit_data = self._detection(know, x, features, task_ids, y, train_rows)
        out = []
        for det in detectors:
            if "features" in det.requires and features is None:
                raise JobError(
                    f"{det.name} needs numeric features; these samples have none (use "
                    "TaskAttrFilter or ModelProbeFilter)"
                )
            det.fit(fit_data, know.tasks)
            det.calibrate(calib)
            out.append(det)
        return out

    def _detection(
        self,
        know: Knowledge,
        x: Any,
        features: np.ndarray | None,
        task_ids: np.ndarray,
        y: Any,
        rows: np.ndarray,
    ) -> DetectionData:
        """Detector input for ``rows`` of ``x`` (``task_ids``/``y`` indexed like ``x``)."""
        sub_x = take_rows(x, rows)
        sub_f = None if features is None else features[rows]
        sub_model_x = know.model_input(sub_x, sub_f)
        return DetectionData(
            x=sub_x,
            features=np.empty((len(rows), 0)) if sub_f is None else sub_f,
            task_ids=np.asarray(task_ids)[rows],
            y=None if y is None else np.asarray(y)[rows],
            proba=self._proba_fn(know, sub_model_x),
        )

    def _proba_fn(self, know: Knowledge, model_x: Any) -> Callable[[int, np.ndarray], np.ndarray]:
        group_of = know.group_of()

        def proba(task_id: int, rows: np.ndarray) -> np.ndarray:
            backend = self._backend_of(know, know.groups[group_of[int(task_id)]])
            return np.asarray(backend.predict_proba(take_rows(model_x, rows)))

        return proba

    def _publish(self, know: Knowledge, kind: str) -> dict[str, Any]:
        doc = know.to_index(job=self.config.job_name, create_time=self.clock.time())
        know.version = self.storage.publish(doc)
        self._knowledge = know
        feedback = {g.entry: g.metrics for g in know.groups}
        self.report(
            "train",
            "completed",
            results=[{"format": "json", "url": self.storage.index_url, "metrics": feedback}],
        )
        self.log.info(
            "knowledge published",
            phase=kind,
            version=know.version,
            tasks=len(know.tasks),
            groups=len(know.groups),
        )
        return feedback

    # -- inference ---------------------------------------------------------------------------

    def inference(
        self,
        data: Any,
        post_process: Callable[..., Any] | None = None,
        unseen_sample_postprocess: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, Any, list[TaskResult]]:
        """Predict with each sample's task model.

        Returns ``(result, is_unseen_task, tasks)``: one result per sample in input order;
        for a batch, ``is_unseen_task`` is a boolean array with one entry per sample (a bool
        for a single sample); ``tasks`` lists each task group's rows and results. Samples of
        unseen tasks go to ``unseen_estimator`` when there is one, else to their nearest
        task's model (or the global model), and are flagged either way;
        ``unseen_sample_postprocess(samples, rows)`` sees them.

        The knowledge is refreshed from the knowledge base when it publishes a newer index
        (checked every ``MODEL_POLL_PERIOD_SECONDS``); while it is unreachable, the edge
        cache serves.
        """
        know = self._knowledge_now()
        x, _ = _unpack(data)
        result, unseen, tasks = self._predict(know, x, detect=True)
        if unseen.any():
            rows = np.flatnonzero(unseen)
            if unseen_sample_postprocess is not None:
                unseen_sample_postprocess(take_rows(x, rows), rows)
            elif self.config.unseen_save_url:
                self._save_unseen(know, x, rows)
        if post_process is not None:
            result = post_process(result)
        flags: Any = bool(unseen[0]) if len(unseen) == 1 else unseen
        return result, flags, tasks

    def _predict(
        self, know: Knowledge, x: Any, *, detect: bool
    ) -> tuple[np.ndarray, np.ndarray, list[TaskResult]]:
        n = n_rows(x)
        if n == 0:
            return np.empty(0), np.zeros(0, dtype=bool), []
        features = know.features(x)
        model_x = know.model_input(x, features)
        alloc = np.asarray(
            know.allocator.allocate(know.allocator_input(know.allocator, x, features)),
            dtype=np.int64,
        )
        group_of = know.group_of()
        ids = np.array(sorted(group_of), dtype=np.int64)
        deployed = np.array(
            [tid for tid, gi in group_of.items() if know.groups[gi].deployed], dtype=np.int64
        )
        unseen = ~np.isin(alloc, ids)
        if detect:
            data = DetectionData(
                x=x,
                features=np.empty((n, 0)) if features is None else features,
                task_ids=alloc,
                proba=self._proba_fn(know, model_x),
            )
            for det in know.detectors:
                if "features" in det.requires and features is None:
                    continue
                unseen |= det.detect(data)
            unseen |= ~np.isin(alloc, deployed)  # withdrawn task: its model is not trusted
        # every row gets a group: seen rows their own; the others their nearest / fallback
        target = np.full(n, -1, dtype=np.int64)
        known = np.isin(alloc, ids)
        lookup = np.zeros(int(ids.max()) + 1 if ids.size else 1, dtype=np.int64)
        for tid, gi in group_of.items():
            lookup[tid] = gi
        target[known] = lookup[alloc[known]]
        results: list[TaskResult] = []
        unseen_rows = np.flatnonzero(unseen)
        if self.unseen_estimator is not None and unseen_rows.size:
            results.append(
                TaskResult(
                    "unseen",
                    UNSEEN,
                    unseen_rows,
                    self._predict_unseen(take_rows(model_x, unseen_rows)),
                    is_unseen=True,
                )
            )
            target[unseen_rows] = -2  # handled
        missing = np.flatnonzero(target == -1)
        if missing.size:
            fallback = self._global_backend(know)
            if fallback is not None:
                results.append(
                    TaskResult(
                        "global",
                        UNSEEN,
                        missing,
                        fallback.predict(take_rows(model_x, missing)),
                        is_unseen=True,
                    )
                )
                target[missing] = -2
            else:
                target[missing] = _largest_group(know)
        for gi, rows in self.task_remodeling.remodel(np.where(target >= 0, target, -1)):
            if gi < 0:
                continue
            group = know.groups[gi]
            backend = self._backend_of(know, group)
            results.append(
                TaskResult(
                    group.entry,
                    gi,
                    rows,
                    backend.predict(take_rows(model_x, rows)),
                    is_unseen=bool(unseen[rows].all()),
                )
            )
        return self.inference_integrate.integrate(results, n), unseen, results

    def _save_unseen(self, know: Knowledge, x: Any, rows: np.ndarray) -> None:
        """Keep unseen samples for labelling (Sedna's ``unseen_save_url``): numeric features
        as ``.npz`` (no pickles), one file per inference call; failures are logged."""
        from sedna_core.artifacts import upload

        features = know.features(take_rows(x, rows))
        if features is None:
            self.log.warning("unseen samples are not numeric; not saved", count=len(rows))
            return
        target = self.config.unseen_save_url or ""
        name = f"unseen-{self.clock.time():.6f}-{len(rows)}.npz"
        try:
            with scratch_dir() as tmp:
                path = save_samples(Path(tmp) / name, features, None, np.zeros(len(rows), bool))
                upload(str(path), target.rstrip("/") + "/")  # local dir, file://, s3://, http(s)
        except Exception as exc:  # saving for later labelling must not fail inference
            self.log.warning("could not save unseen samples", target=target, error=str(exc))

    def unseen_scores(self, data: Any) -> dict[str, np.ndarray]:
        """Each detector's score per sample (higher: more likely an unseen task), e.g. to
        measure detection quality (AUROC) or to pick a different threshold."""
        know = self._knowledge_now()
        x, _ = _unpack(data)
        features = know.features(x)
        alloc = know.allocator.allocate(know.allocator_input(know.allocator, x, features))
        detection = DetectionData(
            x=x,
            features=np.empty((n_rows(x), 0)) if features is None else features,
            task_ids=np.asarray(alloc),
            proba=self._proba_fn(know, know.model_input(x, features)),
        )
        return {
            d.name: np.asarray(d.score(detection), dtype=float)
            for d in know.detectors
            if not ("features" in d.requires and features is None)
        }

    def _predict_unseen(self, x: Any) -> Any:
        est = self.unseen_estimator
        if callable(est) and not hasattr(est, "predict"):
            return est(x)
        if self._unseen_backend is None:
            from sedna_core.backends import set_backend

            self._unseen_backend = set_backend(
                est, self.backend_type, config=self.config, plugin_manager=self.plugin_manager
            )
        return self._unseen_backend.predict(x)

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(
        self,
        data: Any,
        metrics: Any = None,
        post_process: Callable[..., Any] | None = None,
        *,
        operator: str | None = None,
        model_threshold: float | None = None,
        update_status: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Score every task's model on its samples of ``data``, and the whole.

        Returns ``{"scores": overall, "task_scores": {group: scores}, "dropped_tasks": [...]}``.
        Sedna's deploy gate: a group whose score satisfies ``score <operator> threshold``
        for any metric is withdrawn in the knowledge base (``operator``/``model_threshold``,
        from the config by default: ``<`` and 0, which withdraw nothing).
        """
        know = self._knowledge_now()
        x, y = _unpack(data)
        if y is None:
            raise JobError("evaluation needs labels: pass (x, y) or a datasource with y")
        y = np.asarray(y)
        pred, _, _ = self._predict(know, x, detect=False)
        task = infer_task(y)
        overall = compute_metrics(y, pred, metrics=metrics, task=task)
        features = know.features(x)
        alloc = know.allocator.allocate(know.allocator_input(know.allocator, x, features))
        per_task: dict[str, dict[str, float]] = {}
        for group in know.groups:
            rows = np.flatnonzero(np.isin(alloc, [t.task_id for t in group.tasks]))
            if len(rows):  # only samples allocated to the group, never fallback ones
                per_task[group.entry] = compute_metrics(
                    y[rows], np.asarray(pred)[rows], metrics=metrics, task=task
                )
        opname = operator or self.config.operator
        if opname not in _OPERATORS:
            raise ConfigError("operator", opname, "one of >, <, =, >=, <=")
        threshold = self.config.model_threshold if model_threshold is None else model_threshold
        compare = _OPERATORS[opname]
        dropped = sorted(
            entry
            for entry, scores in per_task.items()
            if any(compare(float(v), float(threshold)) for v in scores.values())
        )
        if dropped and update_status:
            self.storage.set_deployed(
                dropped, False, reason=f"evaluation: score {opname} {threshold}"
            )
            self._knowledge_now(refresh=False)
        report = {"scores": overall, "task_scores": per_task, "dropped_tasks": dropped}
        self.report(
            "eval",
            "completed",
            results=[{"format": "json", "url": self.storage.index_url, "metrics": overall}],
        )
        return post_process(report) if post_process is not None else report

    # -- update ------------------------------------------------------------------------------

    def update(
        self,
        train_data: Any,
        valid_data: Any = None,
        post_process: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Learn from new data: samples of known tasks update those tasks (retrained on their
        stored and new samples, or fine-tuned, as the update decision says); samples of new
        tasks become new tasks. Allocation and detectors are refitted and a new index version
        is published. Returns ``{group: training metrics}`` for the groups trained."""
        know = self._knowledge_now()
        x, y = _unpack(train_data)
        self.announce(
            "sedna_job_started",
            job_kind=self.job_kind,
            job_name=self.config.job_name,
            info={"phase": "update", "samples": n_rows(x)},
        )
        try:
            feedback = update_knowledge(self, know, x, y, valid_data, kwargs)
        except Exception:
            self.report("train", "failed")
            raise
        return post_process(feedback) if post_process is not None else feedback

    # -- Sedna-compatible conveniences ---------------------------------------------------------

    @property
    def knowledge(self) -> Knowledge:
        """The current knowledge (tasks, groups, allocator, detectors)."""
        return self._knowledge_now(refresh=False)

    def task_index(self) -> dict[str, Any]:
        """The latest published task index (JSON)."""
        doc = self.storage.latest()
        if doc is None:
            raise KnowledgeBaseError("no task index published yet")
        return doc


def _feature_columns(x: Any, attributes: Sequence[Any]) -> list[Any] | None:
    if isinstance(x, Mapping):
        return [c for c in x if c not in attributes]
    if hasattr(x, "iloc") and hasattr(x, "columns"):
        return [c for c in x.columns if c not in attributes]
    return None


def _largest_group(know: Knowledge) -> int:
    sizes = [(g.sample_num if g.deployed else -1, i) for i, g in enumerate(know.groups)]
    return max(sizes)[1] if sizes else 0


def _metrics_doc(result: Any) -> dict[str, Any]:
    """Training output as JSON-friendly metrics (last value of each curve)."""
    if not isinstance(result, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, list | tuple) and value:
            value = value[-1]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, int | float | str | bool):
            out[str(key)] = value
    return out
