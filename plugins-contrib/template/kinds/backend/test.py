"""Tests of the {{ algorithm_name }} backend."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_core.errors import BackendError

from {{ package }} import {{ module }}

Algo = {{ module }}.{{ class_name }}
CentroidModel = {{ module }}.CentroidModel


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    return rng.normal(size=(60, 2)) + 5.0 * y[:, None], y


def test_trains_predicts_saves_and_loads(tmp_path) -> None:
    x, y = _data()
    backend = Algo(CentroidModel(n_classes=3))
    assert backend.train((x, y))["accuracy"] > 0.95
    proba = backend.predict_proba(x)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1.0)
    fresh = Algo(CentroidModel(n_classes=3))
    fresh.load(backend.save(tmp_path / "model"))  # a folder: model.npz inside
    assert (fresh.predict(x) == backend.predict(x)).all()


def test_refuses_other_models() -> None:
    with pytest.raises(BackendError, match="wraps a CentroidModel"):
        Algo(estimator=object())
