"""Sedna's way of lifelong-learning inference, re-created over the same per-task models.

Sedna allocates each sample on its own (a row-wise ``DataFrame.apply`` over the attribute
extractor), judges each sample's seen/unseen status on its own, and calls each task model per
request. This baseline does the same per-sample loop through *our* fitted allocator, detectors
and task models, so the measured difference is the loop, not the models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sedna_core.algorithms.mtl import UNSEEN, DetectionData


def per_sample_inference(
    knowledge: Any, backend_of: Callable[[Any], Any], features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(predictions, unseen flags)`` computed one sample at a time."""
    group_of = knowledge.group_of()
    preds: list[Any] = []
    flags: list[bool] = []
    for i in range(len(features)):
        row = features[i : i + 1]
        task = int(knowledge.allocator.allocate(row)[0])
        data = DetectionData(x=row, features=row, task_ids=np.array([task]))
        unseen = task == UNSEEN or any(bool(d.detect(data)[0]) for d in knowledge.detectors)
        group = knowledge.groups[group_of.get(task, 0)]
        preds.append(backend_of(group).predict(row)[0])
        flags.append(unseen)
    return np.asarray(preds), np.asarray(flags)
