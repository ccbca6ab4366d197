"""``LifelongLearning.update``: new data into known tasks and new tasks, routing refitted."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sedna_core.algorithms.mtl import UNSEEN, DetectionData, Task, n_rows, take_rows
from sedna_core.errors import JobError
from sedna_core.jobs.lifelong._estimators import scratch_dir
from sedna_core.jobs.lifelong._state import (
    Group,
    Knowledge,
    algorithm_doc,
    load_samples,
    stack_samples,
)
from sedna_core.plugins import create_algorithm

if TYPE_CHECKING:
    from sedna_core.jobs.lifelong._job import LifelongLearning

__all__ = ["recognise", "stored_samples", "update_knowledge"]


def recognise(
    job: LifelongLearning, know: Knowledge, x: Any, y: Any, features: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Allocation and unseen mask of update data."""
    if know.has_attributes(x):
        alloc = know.definition_allocator.allocate(
            know.allocator_input(know.definition_allocator, x, features)
        )
    else:
        alloc = know.allocator.allocate(know.allocator_input(know.allocator, x, features))
    alloc = np.asarray(alloc, dtype=np.int64)
    unseen = alloc == UNSEEN
    if job.re_detector_specs:
        stored = stored_samples(job, know)
        dets = [
            create_algorithm("unseen_task_detection", s, plugin_manager=job.plugin_manager)
            for s in job.re_detector_specs
        ]
        feats, ys, valid, ids = stored
        dets = job._fit_detectors(know, dets, feats, ys, feats, ids, valid)
        detectors = dets
    elif not know.has_attributes(x):
        detectors = know.detectors
    else:
        detectors = []
    if detectors:
        data = DetectionData(
            x=x,
            features=np.empty((len(alloc), 0)) if features is None else features,
            task_ids=alloc,
            y=None if y is None else np.asarray(y),
            proba=job._proba_fn(know, know.model_input(x, features)),
        )
        for det in detectors:
            if "features" in det.requires and features is None:
                continue
            unseen |= det.detect(data)
    return alloc, unseen


def stored_samples(
    job: LifelongLearning, know: Knowledge
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    parts = []
    for t in know.tasks:
        ref = know.samples.get(t.task_id)
        if ref is None:
            continue
        path = job.storage.local_path(ref)
        feats, ys, valid = load_samples(path.read_bytes)
        parts.append((feats, ys, valid, t.task_id))
    return stack_samples(parts)


def update_knowledge(
    job: LifelongLearning,
    know: Knowledge,
    x: Any,
    y: Any,
    valid_data: Any,
    kwargs: Mapping[str, Any],
) -> Any:
    features = know.features(x)
    if features is None:
        raise JobError("update needs numeric features to combine old and new samples")
    ys = None if y is None else np.asarray(y)
    alloc, unseen = recognise(job, know, x, ys, features)
    plan = job.task_update_decision.decide(x, ys, know.tasks, alloc, unseen)
    by_entry = {t.entry: t for t in know.tasks}
    new_ids = np.full(n_rows(x), UNSEEN, dtype=np.int64)
    for tid, rows in plan.updates.items():
        new_ids[rows] = tid
    strategies = dict(plan.strategies)
    new_tasks: list[Task] = []
    if len(plan.new_rows):
        sub_y = None if ys is None else ys[plan.new_rows]
        defined = know.definition.fit(take_rows(x, plan.new_rows), sub_y)
        next_id = know.next_task_id()
        by_attributes = bool(defined.attribute_columns)
        for t in defined.tasks:
            rows = plan.new_rows[np.asarray(defined.task_ids) == t.task_id]
            if by_attributes and t.entry in by_entry:  # same attributes: a known task
                tid = by_entry[t.entry].task_id
                new_ids[rows] = tid
                strategies.setdefault(tid, "retrain")
                continue
            base, n = t.entry, 2
            while t.entry in by_entry:  # clusters of new data: new names
                t.entry, n = f"{base}-{n}", n + 1
            by_entry[t.entry] = t
            t.task_id = next_id
            next_id += 1
            new_ids[rows] = t.task_id
            new_tasks.append(t)
    # old samples + new ones, one table of features
    old_f, old_y, old_valid, old_ids = stored_samples(job, know)
    new_valid = job._split(new_ids)
    keep = new_ids != UNSEEN
    all_f = np.concatenate([old_f.reshape(-1, features.shape[1]), features[keep]])
    all_y = (
        None
        if (old_y is None and len(old_f)) or ys is None
        else np.concatenate([old_y if old_y is not None else np.empty(0, dtype=ys.dtype), ys[keep]])
    )
    all_valid = np.concatenate([old_valid, new_valid[keep]])
    all_ids = np.concatenate([old_ids, new_ids[keep]])
    is_new = np.concatenate([np.zeros(len(old_ids), dtype=bool), np.ones(keep.sum(), bool)])
    feedback: dict[str, Any] = {}
    with scratch_dir() as tmpdir:
        tmp = Path(tmpdir)
        group_of = know.group_of()
        changed_groups = {group_of[tid] for tid in strategies if tid in group_of}
        for gi in sorted(changed_groups):
            group = know.groups[gi]
            tids = [t.task_id for t in group.tasks]
            mode = (
                "finetune"
                if all(strategies.get(t) == "finetune" for t in tids if t in strategies)
                else "retrain"
            )
            member = np.isin(all_ids, tids)
            if mode == "finetune" or not np.any(member & ~is_new):
                member &= is_new
            start = None
            if mode == "finetune" and group.model is not None:
                start = job._backend_of(know, group)
            rows = np.flatnonzero(member)
            backend, metrics = job._train_group(
                all_f, all_y, rows[~all_valid[rows]], rows[all_valid[rows]], kwargs, start
            )
            group.backend, group.metrics = backend, metrics
            group.sample_num = int(np.sum(np.isin(all_ids, tids)))
            for t in group.tasks:
                t.sample_num = int(np.sum(all_ids == t.task_id))
            group.model = job._store_model(
                backend, f"{job.config.job_name}.{group.entry}", tmp, metrics
            )
            group.deployed = True
            feedback[group.entry] = metrics
        for t in new_tasks:
            t.rows = np.flatnonzero(all_ids == t.task_id)
            t.sample_num = len(t.rows)
        for g in job.task_relationship_discovery.discover(new_tasks):
            rows = np.flatnonzero(np.isin(all_ids, [t.task_id for t in g.tasks]))
            group = Group(entry=g.entry, tasks=list(g.tasks), sample_num=len(rows))
            backend, metrics = job._train_group(
                all_f, all_y, rows[~all_valid[rows]], rows[all_valid[rows]], kwargs
            )
            group.backend, group.metrics = backend, metrics
            group.model = job._store_model(
                backend, f"{job.config.job_name}.{g.entry}", tmp, metrics
            )
            know.groups.append(group)
            feedback[group.entry] = metrics
        # routing over every task, from the combined samples
        tasks = know.tasks
        train_rows = np.flatnonzero(~all_valid)
        def_alloc = know.definition_allocator
        source = x if getattr(def_alloc, "input", "features") == "table" else all_f
        def_ids = new_ids if source is x else all_ids
        def_rows = np.flatnonzero(def_ids != UNSEEN) if source is x else train_rows
        know.definition_allocator = def_alloc.fit(
            take_rows(source, def_rows), def_ids[def_rows], tasks
        )
        if job.task_allocation_spec is None:
            know.allocator = know.definition_allocator
        else:
            alloc_alg = know.allocator
            if getattr(alloc_alg, "input", "features") == "table":
                know.allocator = alloc_alg.fit(
                    take_rows(x, np.flatnonzero(keep)), new_ids[keep], tasks
                )
            else:
                know.allocator = alloc_alg.fit(all_f[train_rows], all_ids[train_rows], tasks)
        detectors = [
            create_algorithm(
                "unseen_task_detection",
                algorithm_doc(d, state=False),
                plugin_manager=job.plugin_manager,
            )
            for d in know.detectors
        ]
        by_samples = [d for d in detectors if "attributes" not in d.requires]
        job._fit_detectors(know, by_samples, all_f, all_y, all_f, all_ids, all_valid, valid_data)
        for d in detectors:  # attribute detectors learn from the tasks themselves
            if "attributes" in d.requires:
                d.fit(DetectionData(x, features, new_ids, ys), tasks)
                d.calibrate(DetectionData(x, features, new_ids, ys))
        know.detectors = detectors
        job._store_samples(
            know,
            tmp,
            {
                t.task_id: (
                    all_f[all_ids == t.task_id],
                    None if all_y is None else all_y[all_ids == t.task_id],
                    all_valid[all_ids == t.task_id],
                )
                for t in tasks
                if t.task_id in set(all_ids[is_new].tolist())
            },
        )
        job._publish(know, "update")
    return feedback
