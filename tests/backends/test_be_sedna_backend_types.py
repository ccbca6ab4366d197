"""``BACKEND_TYPE`` as Sedna's programs set it: a user's own estimator class keeps its methods
(the backend type only sets up the framework), and an XGBoost model gets its native backend
whichever of ``SKLEARN``/``XGBOOST`` names it, early stopping included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from sedna_core.backends import GenericBackend, set_backend


class ServingOnly:
    """Sedna's examples' cloud model: the user's class wraps the framework (load/predict)."""

    def __init__(self) -> None:
        self.bias = 0.0

    def load(self, model_url: str) -> None:
        self.bias = json.loads(Path(model_url).read_text())["bias"]

    def predict(self, data: np.ndarray) -> np.ndarray:
        return np.asarray(data) + self.bias


class KerasWrapper(ServingOnly):
    """A class that saves through Keras 3 (which refuses a path without ``.keras``)."""

    def train(self, train_data, valid_data=None, **kwargs):
        return {"loss": 0.0}

    def save(self, model_path: str) -> None:
        if not model_path.endswith(".keras"):
            raise ValueError(f"Invalid filepath extension for saving: {model_path}")
        Path(model_path).write_text(json.dumps({"bias": self.bias}))


@pytest.mark.parametrize("backend_type", ["TENSORFLOW", "KERAS"])
def test_users_own_class_keeps_its_methods(tmp_path: Path, backend_type: str) -> None:
    pytest.importorskip("sedna_plugin_keras")
    from sedna_plugin_keras.backend import KerasBackend

    model = tmp_path / "model.json"
    model.write_text(json.dumps({"bias": 2.0}))
    backend = set_backend(ServingOnly, backend_type)  # a class, as Sedna's examples pass it
    assert type(backend) is GenericBackend and backend.context is KerasBackend
    backend.load(model)
    assert backend.predict(np.zeros(3)).tolist() == [2.0, 2.0, 2.0]


def test_a_path_without_extension_gets_the_frameworks(tmp_path: Path) -> None:
    pytest.importorskip("sedna_plugin_keras")
    backend = set_backend(KerasWrapper(), "KERAS")
    written = backend.save(tmp_path / "models" / "surface-defect")  # MODEL_URL/MODEL_NAME
    assert written == str(tmp_path / "models" / "surface-defect.keras")
    fresh = set_backend(KerasWrapper(), "KERAS")
    fresh.load(tmp_path / "models" / "surface-defect")  # found with the same rule
    assert fresh.model.bias == 0.0 and Path(written).is_file()


def test_without_the_named_plugin_the_class_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from sedna_core.errors import UnknownAlgorithmError
    from sedna_core.plugins import _registry

    real = _registry.resolve_algorithm

    def no_torch(kind, name, **kw):
        if name == "torch":
            raise UnknownAlgorithmError("no torch", kind=kind, name=name, available=[])
        return real(kind, name, **kw)

    monkeypatch.setattr(_registry, "resolve_algorithm", no_torch)
    backend = set_backend(ServingOnly(), "PYTORCH")
    assert type(backend) is GenericBackend and backend.context is None
    with pytest.raises(UnknownAlgorithmError):
        set_backend(object(), "PYTORCH")  # nothing to call: the name must resolve


@pytest.mark.parametrize("backend_type", ["SKLEARN", "XGBOOST", None])
def test_xgboost_gets_its_native_backend(backend_type: str | None) -> None:
    xgboost = pytest.importorskip("xgboost")
    pytest.importorskip("sedna_plugin_xgboost")
    from sedna_plugin_xgboost.backend import XGBoostBackend

    assert type(set_backend(xgboost.XGBClassifier(), backend_type)) is XGBoostBackend


def _xy(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int) + (x[:, 1] > 1)


def test_early_stopping_without_validation_data_carves_a_seeded_split() -> None:
    xgboost = pytest.importorskip("xgboost")
    pytest.importorskip("sedna_plugin_xgboost")
    x, y = _xy()
    curves = []
    for _ in range(2):
        backend = set_backend(xgboost.XGBClassifier(n_estimators=200, n_jobs=1), "SKLEARN")
        with capture_logs() as logs:
            history = backend.train((x, y), metric_name="mlogloss", early_stopping_rounds=5)
        curves.append(history["val_mlogloss"])
        (said,) = [e for e in logs if e["event"].startswith("early stopping without validation")]
        assert said["seed"] == 0 and said["fraction"] == 0.1 and said["validation_rows"] >= 27
        assert backend.model.best_iteration < 199  # it did stop early
    assert curves[0] == curves[1]  # the same rows held out each time


def test_too_few_rows_to_hold_out_is_a_clear_error() -> None:
    xgboost = pytest.importorskip("xgboost")
    pytest.importorskip("sedna_plugin_xgboost")
    from sedna_core.errors import BackendError

    backend = set_backend(xgboost.XGBClassifier(n_estimators=5), "XGBOOST")
    with pytest.raises(BackendError, match="pass valid_data"):
        backend.train((np.zeros((4, 2)), np.array([0, 1, 0, 1])), early_stopping_rounds=2)
