"""sedna-plugin-torch: training loop, safetensors round trips, weights, FedProx, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sedna_plugin_torch import hooks
from sedna_plugin_torch.backend import TorchBackend
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import train_test_split

from sedna_core.datasources import BaseDataSource
from sedna_core.errors import BackendError
from sedna_core.plugins import resolve_algorithm
from sedna_core.testing import parametrize_with_checks


@parametrize_with_checks([TorchBackend])
def test_conformance(algorithm, check):
    check(algorithm)


class DigitsNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(64, 32),
            torch.nn.BatchNorm1d(32),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.1),
        )
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype(np.float32), y, test_size=0.3, random_state=0)


@pytest.fixture(scope="module")
def trained(digits):
    xtr, xte, ytr, yte = digits
    be = TorchBackend(DigitsNet, epochs=5, batch_size=32, learning_rate=0.01, seed=0, device="cpu")
    history = be.train(BaseDataSource(xtr, ytr), valid_data=(xte, yte))
    return be, history


def test_digits_train_and_evaluate(trained, digits):
    be, history = trained
    _, xte, _, yte = digits
    assert len(history["loss"]) == 5 and history["loss"][-1] < history["loss"][0]
    assert len(history["val_loss"]) == 5
    scores = be.evaluate((xte, yte), ["accuracy", "f1_macro", "log_loss"])
    assert scores["accuracy"] > 0.85
    proba = be.predict_proba(xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert be.predict(xte).shape == (len(xte), 10)


def test_save_load_gives_identical_predictions(trained, digits, tmp_path):
    be, _ = trained
    xte = digits[1]
    written = be.save(tmp_path)
    assert written.endswith("model.safetensors")
    fresh = TorchBackend(DigitsNet)
    fresh.load(written)
    np.testing.assert_array_equal(fresh.predict(xte), be.predict(xte))
    with pytest.raises(BackendError, match="needs the model"):
        TorchBackend().load(written)
    with pytest.raises(BackendError, match="cannot load"):
        TorchBackend(lambda: torch.nn.Linear(3, 3)).load(written)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(BackendError, match="cannot load"):
        TorchBackend(DigitsNet).load(tmp_path / "bad.safetensors")


def test_weights_copied_into_a_fresh_instance(trained, digits):
    be, _ = trained
    xte = digits[1]
    weights = be.get_weights()
    assert all(isinstance(w, np.ndarray) for w in weights)
    assert len(weights) == len(be.model.state_dict())  # batch-norm buffers included
    fresh = TorchBackend(DigitsNet())
    fresh.set_weights(weights)
    np.testing.assert_array_equal(fresh.predict(xte), be.predict(xte))
    with pytest.raises(BackendError, match="expected shape"):
        fresh.set_weights([np.zeros(1)] * len(weights))
    with pytest.raises(BackendError, match="tensors"):
        fresh.set_weights(weights[:2])


def _after_train(start, data, **train_kwargs):
    be = TorchBackend(
        DigitsNet, seed=7, epochs=2, learning_rate=0.05, optimizer="sgd", device="cpu"
    )
    be.set_weights(start)
    be.train(data, **train_kwargs)
    return be.get_weights()


def test_fedprox_proximal_term(trained, digits):
    start = trained[0].get_weights()
    data = (digits[0][:300], digits[2][:300])
    plain = _after_train(start, data)
    zero = _after_train(start, data, proximal_mu=0.0)
    prox = _after_train(start, data, proximal_mu=5.0)
    for a, b in zip(plain, zero, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(plain, prox, strict=True))

    def drift(ws):
        return sum(
            float(((w - s) ** 2).sum())
            for w, s in zip(ws, start, strict=True)
            if w.dtype.kind == "f"
        )

    assert drift(prox) < drift(plain)  # the proximal term pulls towards the start
    with pytest.raises(BackendError, match="proximal_mu"):
        _after_train(start, data, proximal_mu=-1.0)


def test_regression_losses_and_optimizers():
    x, _ = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    be = TorchBackend(
        lambda: torch.nn.Linear(3, 1),
        loss="mse",
        optimizer=lambda params: torch.optim.SGD(params, lr=0.01),
        epochs=20,
        seed=0,
    )
    history = be.train((x[:, :3], x[:, 3]))
    assert history["loss"][-1] < history["loss"][0]
    assert be.evaluate((x[:, :3], x[:, 3]))["r2"] > 0.5  # task inferred from float targets
    for bad in (
        TorchBackend(torch.nn.Linear(3, 1), loss="nope"),
        TorchBackend(torch.nn.Linear(3, 1), optimizer="nope"),
    ):
        with pytest.raises(BackendError, match="unknown"):
            bad.train((x[:, :3], x[:, 3]))
    with pytest.raises(BackendError, match="task"):
        TorchBackend(task="clustering")
    with pytest.raises(BackendError, match=r"torch\.nn\.Module"):
        TorchBackend(estimator=object())
    with pytest.raises(BackendError, match="no y"):
        TorchBackend(torch.nn.Linear(3, 1)).train(x[:, :3])


def test_devices(monkeypatch):
    monkeypatch.setenv("DEVICE_CATEGORY", "CPU")
    assert TorchBackend(torch.nn.Linear(2, 2)).model.weight.device.type == "cpu"
    if torch.cuda.is_available():
        monkeypatch.setenv("DEVICE_CATEGORY", "GPU")
        assert TorchBackend(torch.nn.Linear(2, 2)).model.weight.device.type == "cuda"
        return
    monkeypatch.delenv("DEVICE_CATEGORY")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # GPU asked for, none here: CPU
    assert TorchBackend(torch.nn.Linear(2, 2)).model.weight.device.type == "cpu"
    with pytest.raises(BackendError, match="not available"):
        _ = TorchBackend(torch.nn.Linear(2, 2), device="cuda").model


def test_detection(sedna_pm):
    sedna_pm.register(hooks)
    assert resolve_algorithm("backend", "TORCH", plugin_manager=sedna_pm) is TorchBackend
    assert hooks.sedna_detect_backend(DigitsNet()) == "torch"
    assert hooks.sedna_detect_backend(DigitsNet) == "torch"
    assert hooks.sedna_detect_backend(lambda: DigitsNet()) is None  # a function: name it
    assert hooks.sedna_detect_backend(np.zeros(2)) is None
