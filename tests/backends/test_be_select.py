"""set_backend: explicit names, BACKEND_TYPE, detection, the generic fallback; devices; metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sedna_core.algorithms import BaseBackend
from sedna_core.backends import (
    GenericBackend,
    backend_name,
    compute_metrics,
    device_from_env,
    infer_task,
    set_backend,
)
from sedna_core.backends import _hooks as core_hooks
from sedna_core.config import JobConfig
from sedna_core.errors import BackendError, ConfigError, UnknownAlgorithmError
from sedna_core.plugins import hookimpl
from sedna_core.testing.doubles import InMemoryEstimator


class FakeTorchModule:
    """Looks like a torch.nn.Module to detection (by name), without importing torch."""


FakeTorchModule.__module__ = "torch.nn.modules.module"
FakeTorchModule.__qualname__ = "Module"


class Net(FakeTorchModule):
    pass


class DummyBackend(BaseBackend):
    name = "dummy"
    framework = "dummy"

    def __init__(self, estimator=None) -> None:
        super().__init__(estimator)

    @classmethod
    def accepts(cls, estimator):
        return isinstance(estimator, Net) or estimator is Net

    def train(self, train_data, valid_data=None, **kwargs):
        return {}

    def predict(self, data, **kwargs):
        return data

    def evaluate(self, data, metrics=None, **kwargs):
        return {}

    def save(self, path):
        return str(path)

    def load(self, path):
        return None

    def get_weights(self):
        return []

    def set_weights(self, weights):
        return None


class DummyPlugin:
    @hookimpl
    def sedna_register_backends(self):
        return [DummyBackend]

    @hookimpl
    def sedna_detect_backend(self, estimator):
        return "dummy" if DummyBackend.accepts(estimator) else None


@pytest.fixture
def pm(sedna_pm, monkeypatch):
    monkeypatch.delenv("BACKEND_TYPE", raising=False)
    sedna_pm.register(DummyPlugin())
    return sedna_pm


def test_instances_and_none_pass_through(pm):
    be = GenericBackend(InMemoryEstimator())
    assert set_backend(be) is be
    assert set_backend(None) is None
    with pytest.raises(BackendError, match="backend class"):
        set_backend(GenericBackend)


def test_detection_then_generic_fallback(pm):
    assert type(set_backend(Net())) is DummyBackend
    assert type(set_backend(Net)) is DummyBackend  # a class is detected without building it
    assert type(set_backend(InMemoryEstimator)) is GenericBackend
    with pytest.raises(BackendError, match=r"no backend recognises builtins\.object"):
        set_backend(object())


def test_backend_type_from_env_and_config(pm, monkeypatch):
    monkeypatch.setenv("BACKEND_TYPE", "DUMMY")
    assert type(set_backend(Net())) is DummyBackend
    monkeypatch.setenv("BACKEND_TYPE", "custom")
    # BACKEND_TYPE overrides detection: a duck-typed Net would be wrapped generically
    assert type(set_backend(InMemoryEstimator())) is GenericBackend
    cfg = JobConfig.from_env({"BACKEND_TYPE": "dummy"})
    assert type(set_backend(Net(), config=cfg)) is DummyBackend  # config, not os.environ
    with pytest.raises(BackendError, match="has no predict"):
        set_backend(Net(), "CUSTOM", config=cfg)  # the explicit name wins, and cannot wrap it


def test_explicit_name_beats_backend_type(pm, monkeypatch):
    monkeypatch.setenv("BACKEND_TYPE", "dummy")
    assert type(set_backend(InMemoryEstimator(), "custom")) is GenericBackend


def test_unknown_backend_names_what_exists(pm):
    with pytest.raises(UnknownAlgorithmError, match="dummy"):
        set_backend(Net(), "MINDSPORE")
    with pytest.raises(UnknownAlgorithmError, match="'TENSORFLOW' selects the 'keras' backend"):
        set_backend(Net(), "TENSORFLOW")  # the keras plugin is not registered here


def test_named_backend_falls_back_to_generic_for_customize_estimators(pm):
    # Sedna's TF/torch backends wrapped user classes with their own train/predict
    assert type(set_backend(InMemoryEstimator(), "dummy")) is GenericBackend


def test_custom_registered_through_core_hooks(sedna_pm):
    sedna_pm.register(core_hooks)
    assert "custom" in sedna_pm.algorithms("backend")
    assert type(set_backend(InMemoryEstimator(), "CUSTOM")) is GenericBackend


def test_backend_names():
    assert backend_name("TENSORFLOW") == "keras"
    assert backend_name("PyTorch") == "torch"
    assert backend_name("SKLEARN") == "sklearn"
    assert backend_name("sedna-plugin-torch:TORCH") == "sedna-plugin-torch:torch"
    assert backend_name("MyBackend") == "MyBackend"


@pytest.mark.parametrize(
    ("env", "device"),
    [
        ({}, "cpu"),
        ({"DEVICE_CATEGORY": "GPU"}, "cuda"),
        ({"CUDA_VISIBLE_DEVICES": "0"}, "cuda"),
        ({"CUDA_VISIBLE_DEVICES": ""}, "cpu"),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, "cpu"),
        ({"DEVICE_CATEGORY": "cpu", "CUDA_VISIBLE_DEVICES": "0"}, "cpu"),
    ],
)
def test_device_from_env(env, device):
    assert device_from_env(env) == device


def test_device_category_must_be_known():
    with pytest.raises(ConfigError, match="DEVICE_CATEGORY"):
        device_from_env({"DEVICE_CATEGORY": "NPU"})


def test_metrics():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2]])
    scores = compute_metrics(
        y,
        proba=proba,
        metrics={
            "acc": "accuracy",
            "f1": "f1",
            "ll": "neg_log_loss",
            "mine": lambda t, p: float((t == p).sum()),
        },
    )
    assert scores["acc"] == 0.75 and scores["ll"] < 0 and 0 < scores["f1"] < 1
    assert scores["mine"] == 3.0
    onehot = np.eye(3)[y]
    assert compute_metrics(onehot, proba.argmax(1), metrics="accuracy") == {"accuracy": 0.75}
    reg = compute_metrics([1.0, 2.0], [[1.0], [3.0]], task="regression")
    assert reg == {"mean_squared_error": 0.5, "r2": -1.0}
    assert compute_metrics([1.0, 2.0], [1.0, 3.0], metrics=["rmse", "mae"], task="regression")
    with pytest.raises(BackendError, match="unknown metric"):
        compute_metrics(y, y, metrics=["nonsense"])
    with pytest.raises(BackendError, match="probabilities"):
        compute_metrics(y, y, metrics=["roc_auc"])
    with pytest.raises(BackendError, match="no y"):
        compute_metrics(None, y)
    assert infer_task(np.array([1.5])) == "regression"
    assert infer_task(np.array(["a"])) == "classification"
    assert infer_task(np.eye(2, dtype=float)) == "classification"


def test_detection_hooks_do_not_import_frameworks():
    script = textwrap.dedent(
        """
        import json, sys
        from sedna_core.plugins import SednaPluginManager
        from sedna_core.backends import set_backend
        import sedna_plugin_keras.hooks, sedna_plugin_torch.hooks
        import sedna_plugin_xgboost.hooks, sedna_plugin_sklearn.hooks

        class Module: pass
        Module.__module__ = "torch.nn.modules.module"
        class Net(Module): pass
        class Model: pass
        Model.__module__ = "keras.src.models.model"
        class XGBModel: pass
        XGBModel.__module__ = "xgboost.sklearn"
        class BaseEstimator: pass
        BaseEstimator.__module__ = "sklearn.base"
        class XGBClassifier(XGBModel, BaseEstimator): pass

        pm = SednaPluginManager()
        for mod in (sedna_plugin_keras.hooks, sedna_plugin_torch.hooks,
                    sedna_plugin_sklearn.hooks, sedna_plugin_xgboost.hooks):
            pm.register(mod)
        found = [pm.hook.sedna_detect_backend(estimator=e)
                 for e in (Net(), Net, Model(), XGBClassifier(), BaseEstimator(), object())]
        heavy = [m for m in ("torch", "tensorflow", "keras", "xgboost", "sklearn")
                 if m in sys.modules]
        print(json.dumps({"found": found, "heavy": heavy,
                          "names": sorted(pm.algorithms("backend"))}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["found"] == ["torch", "torch", "keras", "xgboost", "sklearn", None]
    assert result["heavy"] == []
    assert result["names"] == ["keras", "sklearn", "torch", "xgboost"]
