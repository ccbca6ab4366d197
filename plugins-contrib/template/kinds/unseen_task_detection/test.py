"""Tests of the {{ algorithm_name }} detector."""

from __future__ import annotations

import numpy as np
from sedna_core.algorithms.mtl import DetectionData, Task

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}


def _data(features: np.ndarray, ids: np.ndarray) -> DetectionData:
    return DetectionData(x=features, features=features, task_ids=ids)


def test_far_samples_are_unseen_after_calibration() -> None:
    rng = np.random.default_rng(0)
    ids = np.repeat([0, 1], 50)
    seen = _data(rng.normal(size=(100, 2)) + 6.0 * ids[:, None], ids)
    detector = Algo(target_fpr=0.05).fit(seen, [Task("a", 0), Task("b", 1)])
    detector.calibrate(seen)
    assert detector.detect(seen).mean() <= 0.06  # about target_fpr of the known tasks
    far = _data(np.array([[30.0, -30.0], [0.0, 0.0]]), np.array([-1, 0]))
    assert detector.detect(far).tolist() == [True, False]
    fresh = Algo()
    fresh.set_state(detector.get_state())
    assert fresh.detect(far).tolist() == [True, False]
