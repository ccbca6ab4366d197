"""Inference and evaluation of a lifelong-learning job: each sample's task found, unseen
tasks detected, per-task models applied and merged back in input order; per-task scores and
Sedna's deploy gate."""

from __future__ import annotations

import operator as op
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.algorithms.mtl import UNSEEN, DetectionData, TaskResult, n_rows, take_rows
from sedna_core.backends import compute_metrics, infer_task
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs.lifelong._estimators import scratch_dir
from sedna_core.jobs.lifelong._inputs import unpack
from sedna_core.jobs.lifelong._stacked import LARGE_GROUP, finite_matrix, score_small_groups
from sedna_core.jobs.lifelong._state import Knowledge, save_samples

__all__ = ["Inference"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    "<": op.lt,
    "=": op.eq,
    ">=": op.ge,
    "<=": op.le,
}


class Inference:
    """``inference``, ``unseen_scores`` and ``evaluate``.

    Part of :class:`~sedna_core.jobs.lifelong.LifelongLearning` (``_job.py``), which builds
    the algorithms and holds the state these methods use.
    """

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

        Parameters
        ----------
        data
            The samples: an array or column table, an ``(x, y)`` pair (``y`` is ignored), or a
            datasource (its ``x``).
        post_process
            Applied to the whole ``result`` (None: as it is).
        unseen_sample_postprocess
            Called as ``unseen_sample_postprocess(samples, rows)`` with the unseen-task samples
            and their row indices (None: they are saved under ``unseen_save_url`` when set).
        """
        know = self._knowledge_now()
        x, _ = unpack(data)
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
        # task id -> group position, and whether that group is deployed, as lookup tables: one
        # vectorised gather per row instead of sorting-based set tests against every task id
        group_of = know.group_of()
        tids = np.fromiter(group_of.keys(), dtype=np.int64, count=len(group_of))
        gis = np.fromiter(group_of.values(), dtype=np.int64, count=len(group_of))
        size = int(tids.max()) + 1 if tids.size else 1
        lookup = np.full(size, -1, dtype=np.int64)
        lookup[tids] = gis
        live = np.fromiter((g.deployed for g in know.groups), dtype=bool, count=len(know.groups))
        inside = (alloc >= 0) & (alloc < size)
        target = np.full(n, -1, dtype=np.int64)  # every row's group: seen rows their own
        target[inside] = lookup[alloc[inside]]
        known = target >= 0
        unseen = ~known
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
            unseen[known] |= ~live[target[known]]  # withdrawn task: its model is not trusted
        # the other rows get their nearest / fallback group below
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
        groups = [
            (int(gi), rows)
            for gi, rows in self.task_remodeling.remodel(np.where(target >= 0, target, -1))
            if gi >= 0
        ]
        answers = self._answer_groups(know, model_x, groups)
        if groups:
            sizes = np.fromiter((len(r) for _, r in groups), dtype=np.intp, count=len(groups))
            flags = unseen[np.concatenate([r for _, r in groups])]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            all_unseen = np.logical_and.reduceat(flags, starts) if flags.size else sizes == 0
            for (gi, rows), answer, flag in zip(groups, answers, all_unseen.tolist(), strict=True):
                results.append(TaskResult(know.groups[gi].entry, gi, rows, answer, is_unseen=flag))
        return self.inference_integrate.integrate(results, n), unseen, results

    def _answer_groups(
        self, know: Knowledge, model_x: Any, groups: list[tuple[int, np.ndarray]]
    ) -> list[Any]:
        """Each group's model output on its rows, in the order of ``groups``.

        Small groups whose backend declares a linear decision (the optional
        ``linear_decision`` capability) are scored together in one vectorised pass
        (``_stacked.py``: the same predictions as their own ``predict``); every other group is
        one ``predict`` call of its backend on its rows.
        """
        backends = [
            g.backend if g.backend is not None else self._backend_of(know, g)
            for g in (know.groups[gi] for gi, _ in groups)
        ]
        answers: list[Any] = [None] * len(groups)
        x = finite_matrix(model_x) if len(groups) > 1 else None
        if x is not None:
            member = know.stacks.member
            members = [
                member(gi, backend, x.shape[1]) if len(rows) < LARGE_GROUP else None
                for (gi, rows), backend in zip(groups, backends, strict=True)
            ]
            indices, decided = score_small_groups(x, groups, members)
            for i, (member, idx) in enumerate(zip(members, indices, strict=True)):
                if member is not None and idx is not None and decided[i]:
                    answers[i] = member.classes.take(idx)
        for i, ((_, rows), backend) in enumerate(zip(groups, backends, strict=True)):
            if answers[i] is None:
                answers[i] = backend.predict(take_rows(model_x, rows))
        return answers

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
        measure detection quality (AUROC) or to pick a different threshold.

        Parameters
        ----------
        data
            The samples, as :meth:`inference` takes them.

        Returns
        -------
        dict[str, numpy.ndarray]
            Each detector's name and its float scores, one per sample (detectors that need
            features are left out when the task definition gives none).
        """
        know = self._knowledge_now()
        x, _ = unpack(data)
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

        Parameters
        ----------
        data
            Labelled samples: an ``(x, y)`` pair or a datasource with ``y``.
        metrics
            The metrics to compute (names or callables, as ``compute_metrics`` takes them;
            None: the task's defaults).
        post_process
            Applied to the returned report (None: as it is).
        operator, model_threshold
            The deploy gate's comparison and threshold (None: from the config).
        update_status
            Whether groups that fail the gate are withdrawn in the knowledge base (False only
            reports them in ``dropped_tasks``).
        """
        know = self._knowledge_now()
        x, y = unpack(data)
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


def _largest_group(know: Knowledge) -> int:
    sizes = [(g.sample_num if g.deployed else -1, i) for i, g in enumerate(know.groups)]
    return max(sizes)[1] if sizes else 0
