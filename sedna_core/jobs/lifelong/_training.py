"""Training and updating a lifelong-learning job: tasks defined, a model per task group
trained and stored, allocation and unseen-task detectors fitted, the task index published
(``update``'s own pipeline is in ``_update``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms import BaseBackend
from sedna_core.algorithms.mtl import (
    UNSEEN,
    BaseUnseenTaskDetector,
    DetectionData,
    n_rows,
    take_rows,
)
from sedna_core.errors import BackendError, JobError
from sedna_core.jobs.lifelong._estimators import (
    format_of,
    new_backend,
    save_model,
    scratch_dir,
    train_backend,
)
from sedna_core.jobs.lifelong._inputs import unpack
from sedna_core.jobs.lifelong._state import Group, Knowledge, save_samples
from sedna_core.jobs.lifelong._update import update_knowledge
from sedna_core.knowledge_base._safety import safe_name
from sedna_core.plugins import create_algorithm

__all__ = ["Training"]


class Training:
    """``train`` and ``update`` and the steps they share.

    Part of :class:`~sedna_core.jobs.lifelong.LifelongLearning` (``_job.py``), which builds
    the algorithms and holds the state these methods use.
    """

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
        try:
            result = train_backend(backend, train, valid, **kwargs)
        except BackendError as exc:
            text = _non_numeric_hint(model_x)
            if text:
                raise BackendError(f"{exc}; {text}") from exc
            raise
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

        Parameters
        ----------
        train_data
            Labelled samples: an ``(x, y)`` pair or a datasource with ``y``.
        valid_data
            Labelled validation samples: they set the unseen-task detectors' thresholds, and
            are evaluated after training (None: held-out rows of ``train_data`` set the
            thresholds).
        post_process
            Applied to the returned feedback (None: as it is).
        """
        if self.config.has_completed_initial_training:
            return self.update(train_data, valid_data, post_process, **kwargs)
        x, y = unpack(train_data)
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
            vx, vy = unpack(valid_data)
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
        is published. Returns ``{group: training metrics}`` for the groups trained.

        Parameters
        ----------
        train_data
            The new labelled samples: an ``(x, y)`` pair or a datasource with ``y``.
        valid_data
            Labelled validation samples for the detectors' thresholds (None: held-out rows).
        post_process
            Applied to the returned feedback (None: as it is).
        **kwargs
            Passed to each trained task's base model.
        """
        know = self._knowledge_now()
        x, y = unpack(train_data)
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


def _feature_columns(x: Any, attributes: Sequence[Any]) -> list[Any] | None:
    if isinstance(x, Mapping):
        return [c for c in x if c not in attributes]
    if hasattr(x, "iloc") and hasattr(x, "columns"):
        return [c for c in x.columns if c not in attributes]
    return None


def _non_numeric_hint(model_x: Any) -> str:
    """Why a column table reached the task models as a table, for a training failure's message.

    Attribute-free tables whose columns are all numeric become a feature matrix; one with a
    non-numeric column (a ``city`` name that is not a task attribute) is handed over as it is,
    which only estimators that read tables accept.
    """
    if not isinstance(model_x, Mapping):
        return ""
    text = [str(c) for c, v in model_x.items() if np.asarray(v).dtype.kind not in "biufc"]
    if not text:
        return ""
    return (
        f"the samples' column(s) {text} are neither task attributes nor numeric, so task models "
        "were given the table rather than a numeric feature matrix: add them to the task "
        "definition's attributes, drop or encode them as numbers, or use an estimator that "
        "reads such tables"
    )


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
