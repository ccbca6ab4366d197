"""sedna-plugin-keras: README model, .keras round trips, weights, FedProx, KERAS_BACKEND=torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sedna_plugin_keras import hooks  # noqa: E402
from sedna_plugin_keras.backend import KerasBackend  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from sedna_core.backends import GenericBackend, set_backend  # noqa: E402
from sedna_core.errors import BackendError  # noqa: E402
from sedna_core.testing import parametrize_with_checks  # noqa: E402


@parametrize_with_checks([KerasBackend])
def test_conformance(algorithm, check):
    check(algorithm)


def readme_model():
    """The Keras model of Sedna's README (helmet detection, incremental learning)."""
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input((128, 128, 3)),
            layers.Conv2D(64, (3, 3), strides=(2, 2), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dropout(0.4),
            layers.Dense(64, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def digits_model():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype(np.float32), y, test_size=0.3, random_state=0)


@pytest.fixture(scope="module")
def trained(digits):
    xtr, _, ytr, _ = digits
    be = KerasBackend(digits_model, epochs=4, learning_rate=0.01, seed=0, device="cpu")
    history = be.train((xtr, ytr))
    return be, history


def test_readme_model_trains_saves_loads_predicts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((8, 128, 128, 3), dtype=np.float32)
    y = keras.utils.to_categorical(np.arange(8) % 2, 2)  # one-hot, as the README's compile wants
    be = KerasBackend(readme_model, batch_size=4)  # a factory, called on first use (as in Sedna)
    history = be.train((x, y), epochs=1)
    assert len(history["loss"]) == 1 and "accuracy" in history
    before = be.predict(x)
    assert before.shape == (8, 2)
    assert set(be.evaluate((x, y))) == {"accuracy"}  # one-hot labels are decoded
    written = be.save(tmp_path / "helmet.keras")
    fresh = KerasBackend()  # the .keras file holds the architecture
    fresh.load(written)
    np.testing.assert_allclose(fresh.predict(x), before, rtol=1e-6, atol=1e-7)


def test_digits_evaluate_save_load_and_weights(trained, digits, tmp_path):
    be, history = trained
    _, xte, _, yte = digits
    assert history["loss"][-1] < history["loss"][0]
    assert be.evaluate((xte, yte), ["accuracy", "f1_macro"])["accuracy"] > 0.85
    pred = be.predict(xte)
    fresh = KerasBackend()
    fresh.load(be.save(tmp_path))  # a folder: model.keras
    np.testing.assert_array_equal(fresh.predict(xte), pred)
    copy = KerasBackend(digits_model())
    copy.set_weights(be.get_weights())
    np.testing.assert_array_equal(copy.predict(xte), pred)
    with pytest.raises(BackendError, match="do not fit"):
        copy.set_weights(be.get_weights()[:1])
    with pytest.raises(BackendError, match=r"\.keras files"):
        be.save(tmp_path / "model.h5")
    (tmp_path / "bad.keras").write_bytes(b"nope")
    with pytest.raises(BackendError, match="cannot load"):
        KerasBackend().load(tmp_path / "bad.keras")


def _after_train(start, data, **kwargs):
    be = KerasBackend(digits_model, seed=3, epochs=2, optimizer="sgd", learning_rate=0.1)
    be.set_weights(start)
    be.train(data, **kwargs)
    return be.get_weights()


def test_fedprox_proximal_term(trained, digits):
    start = trained[0].get_weights()
    data = (digits[0][:256], digits[2][:256])
    plain = _after_train(start, data)
    zero = _after_train(start, data, proximal_mu=0.0)
    prox = _after_train(start, data, proximal_mu=5.0)
    for a, b in zip(plain, zero, strict=True):
        np.testing.assert_array_equal(a, b)

    def drift(ws):
        return sum(float(((w - s) ** 2).sum()) for w, s in zip(ws, start, strict=True))

    assert drift(prox) < drift(plain)


def test_fedprox_restores_the_users_compile(digits):
    model = digits_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    be = KerasBackend(model)
    be.train((digits[0][:64], digits[2][:64]), proximal_mu=0.5)
    assert model.loss == "sparse_categorical_crossentropy"


class SednaStyleEstimator:
    """A Sedna "Customize" estimator that drives its framework itself."""

    def train(self, train_data, valid_data=None, **kwargs):
        return {}

    def predict(self, data, **kwargs):
        return np.zeros(len(data))


def test_backend_type_tensorflow(sedna_pm, monkeypatch):
    monkeypatch.delenv("BACKEND_TYPE", raising=False)
    sedna_pm.register(hooks)
    assert type(set_backend(digits_model(), "TENSORFLOW")) is KerasBackend
    assert type(set_backend(digits_model, backend="KERAS")) is KerasBackend
    assert type(set_backend(digits_model())) is KerasBackend  # detected
    assert type(set_backend(SednaStyleEstimator(), "TENSORFLOW")) is GenericBackend
    with pytest.raises(BackendError, match="TF1 graphs and sessions"):
        set_backend(object(), "TENSORFLOW")


def test_detection():
    assert hooks.sedna_detect_backend(digits_model()) == "keras"
    assert hooks.sedna_detect_backend(keras.Sequential) == "keras"
    assert hooks.sedna_detect_backend(digits_model) is None


_TORCH_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    import numpy as np
    import keras
    from sedna_plugin_keras.backend import KerasBackend

    assert keras.backend.backend() == "torch"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(2, activation="softmax")])
    be = KerasBackend(model, epochs=3, learning_rate=0.05, seed=0, device="cpu")
    be.train((x, y))
    start = be.get_weights()
    be.train((x, y), proximal_mu=1.0)
    moved = any(not np.array_equal(a, b) for a, b in zip(start, be.get_weights()))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = KerasBackend()
        fresh.load(be.save(tmp))
        same = bool(np.allclose(fresh.predict(x), be.predict(x)))
    print(json.dumps({"moved": moved, "same": same,
                      "accuracy": be.evaluate((x, y))["accuracy"],
                      "tensorflow": "tensorflow" in sys.modules}))
    """
)


@pytest.mark.slow
def test_works_with_keras_backend_torch():
    env = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", _TORCH_SCRIPT], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["moved"] and result["same"] and result["accuracy"] > 0.7
