"""The Keras 3 backend (TensorFlow or torch under Keras); models stored as ``.keras`` files."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sedna_core.backends import (
    TF1_NOTE,
    BaseBackend,
    check_training_options,
    device_from_env,
    evaluate_by_task,
    infer_task,
    logits_to_proba,
    mro_names,
    training_xy,
)
from sedna_core.datasources import as_x, as_xy
from sedna_core.errors import BackendError
from sedna_core.log import get_logger

__all__ = ["KerasBackend"]

log = get_logger(__name__)

#: inputs up to this many rows are predicted by calling the model directly
DIRECT_ROWS = 256

_MODEL_BASE = "keras.src.models.model.Model"


class KerasBackend(BaseBackend):
    """A Keras 3 model behind sedna-core's interface (``BACKEND_TYPE=KERAS`` or ``TENSORFLOW``).

    Works on any Keras backend that trains with gradients through ``model.fit`` (TensorFlow,
    torch; ``KERAS_BACKEND`` picks, before keras is first imported).

    Parameters
    ----------
    estimator:
        A ``keras.Model``, or a class/function that builds one (Sedna's examples build and
        compile the model in a function). May be None when the first thing done is
        :meth:`load` (a ``.keras`` file holds the architecture).
    loss, optimizer, learning_rate:
        Used to compile a model that is not compiled yet: ``loss`` None picks
        sparse/categorical cross-entropy for class labels, MSE for real targets.
    epochs, batch_size, verbose:
        Defaults for :meth:`train`'s ``model.fit``.
    device:
        ``"cpu"``, ``"cuda"``/``"gpu"``, ``"gpu:1"``; None: from ``DEVICE_CATEGORY``/
        ``CUDA_VISIBLE_DEVICES`` (CPU, with a warning, when no GPU is visible).
    seed:
        ``keras.utils.set_random_seed(seed)`` at the start of each train call (note: this
        seeds Python's, numpy's and the Keras backend's global generators).
    task:
        ``"classification"``, ``"regression"`` or ``"auto"`` (from the labels).
    from_logits:
        The model outputs logits: :meth:`predict_proba` applies softmax/sigmoid, and the
        default loss is built with ``from_logits=True``. Default False (softmax output layer).
    """

    name: ClassVar[str] = "keras"
    framework: ClassVar[str] = "keras"
    model_suffix: ClassVar[str] = ".keras"
    suffix_required: ClassVar[bool] = True  # Keras 3 saves nothing but .keras (and weights)
    supports_proximal_term: ClassVar[bool] = True

    def __init__(
        self,
        estimator: Any = None,
        *,
        loss: str | None = None,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        epochs: int = 1,
        batch_size: int = 32,
        verbose: int = 0,
        device: str | None = None,
        seed: int | None = None,
        task: str = "auto",
        from_logits: bool = False,
    ) -> None:
        super().__init__(estimator)
        check_training_options(task=task, epochs=epochs, batch_size=batch_size)
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.device = device
        self.seed = seed
        self.task = task
        self.from_logits = from_logits
        self._device_name: str | None = None

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{"estimator": _tiny_model, "seed": 0, "device": "cpu"}]

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        return _MODEL_BASE in mro_names(estimator)

    def _check_model(self, model: Any) -> None:
        import keras

        if not isinstance(model, keras.Model):
            raise BackendError(
                "the keras backend wraps keras.Model (Keras 3); got "
                f"{type(model).__module__}.{type(model).__qualname__}. {TF1_NOTE}"
            )

    # -- device -----------------------------------------------------------------------------

    def _keras_device(self) -> str:
        if self._device_name is None:
            wanted = (self.device or device_from_env()).lower().replace("cuda", "gpu")
            if wanted.startswith("gpu") and not _gpu_visible():
                if self.device is not None:
                    raise BackendError(f"device {self.device!r} is not visible to Keras")
                log.warning("GPU requested by the environment, but Keras sees none: using CPU")
                wanted = "cpu"
            self._device_name = wanted if ":" in wanted else f"{wanted}:0"
        return self._device_name

    @contextlib.contextmanager
    def _on_device(self) -> Iterator[None]:
        import keras

        with keras.device(self._keras_device()):
            yield

    @classmethod
    @contextlib.contextmanager
    def framework_context(cls) -> Iterator[None]:  # type: ignore[override]
        """``BACKEND_TYPE=KERAS``/``TENSORFLOW`` around a user's own class: Keras on the
        device ``DEVICE_CATEGORY``/``CUDA_VISIBLE_DEVICES`` ask for (CPU when none is seen).

        A class that has not imported Keras or TensorFlow (yet) does not run on them: nothing
        to set up, and importing them here would only cost seconds.
        """
        if not any(m in sys.modules for m in ("keras", "tensorflow")):
            yield
            return
        with cls()._on_device():
            yield

    # -- compile ----------------------------------------------------------------------------

    def _compile_if_needed(self, y: Any) -> None:
        import keras

        model = self.model
        if model.compiled:
            return
        loss: Any = self.loss
        if loss is None:
            task = self.task if self.task != "auto" else infer_task(y)
            if task == "regression":
                loss = "mse"
            elif np.asarray(y).ndim == 2 and np.asarray(y).shape[1] > 1:
                loss = keras.losses.CategoricalCrossentropy(from_logits=self.from_logits)
            else:
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        opt = keras.optimizers.get(
            {"class_name": self.optimizer, "config": {"learning_rate": self.learning_rate}}
        )
        model.compile(optimizer=opt, loss=loss)

    @contextlib.contextmanager
    def _proximal(self, mu: float) -> Iterator[None]:
        """Compile with ``loss + mu/2 * ||w - w_start||^2``; restore the loss afterwards."""
        import keras
        from keras import ops

        model = self.model
        original = model.loss
        base = keras.losses.get(original) if isinstance(original, str) else original
        if not callable(base):
            raise BackendError(
                "proximal_mu needs a model compiled with a single loss; "
                f"this one has {type(original).__name__}"
            )
        weights = list(model.trainable_weights)
        start = [ops.convert_to_tensor(w.numpy()) for w in weights]
        metrics = model.get_compile_config().get("metrics") if _has_config(model) else None

        def proximal_loss(y_true: Any, y_pred: Any) -> Any:
            term = sum(ops.sum(ops.square(w - s)) for w, s in zip(weights, start, strict=True))
            return base(y_true, y_pred) + (mu / 2.0) * term

        model.compile(optimizer=model.optimizer, loss=proximal_loss)
        try:
            yield
        finally:
            model.compile(optimizer=model.optimizer, loss=original, metrics=metrics)

    # -- interface --------------------------------------------------------------------------

    def train(
        self,
        train_data: Any,
        valid_data: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        proximal_mu: float = 0.0,
    ) -> dict[str, list[float]]:
        """``model.fit``; returns its history (``{"loss": [...], "val_loss": [...]}``).

        ``proximal_mu`` > 0 adds FedProx's term ``mu/2 * ||w - w_start||^2`` to the loss
        (``w_start``: the trainable weights when this call began); 0 trains exactly as
        without it.
        """
        import keras

        x, y = training_xy(train_data, framework="keras", proximal_mu=proximal_mu)
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        self._compile_if_needed(y)
        validation = as_xy(valid_data) if valid_data is not None else None
        prox = self._proximal(proximal_mu) if proximal_mu else contextlib.nullcontext()
        with self._on_device(), prox:
            history = self.model.fit(
                x,
                y,
                epochs=epochs or self.epochs,
                batch_size=batch_size or self.batch_size,
                validation_data=validation,
                verbose=self.verbose,
                shuffle=True,
            )
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def predict(self, data: Any, *, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs as numpy (probabilities for a softmax output layer).

        Up to :data:`DIRECT_ROWS` rows (a serving batch) the model is called directly, as
        Keras advises for small inputs: ``model.predict`` builds a dataset and may retrace a
        function on every call, about half a second each on a small CPU.
        """
        import keras

        x = as_x(data)
        with self._on_device():
            if isinstance(x, np.ndarray) and 0 < len(x) <= DIRECT_ROWS:
                return np.asarray(keras.ops.convert_to_numpy(self.model(x, training=False)))
            out = self.model.predict(x, batch_size=batch_size or self.batch_size, verbose=0)
        return np.asarray(out)

    def predict_proba(self, data: Any, *, batch_size: int | None = None) -> np.ndarray:
        out = self.predict(data, batch_size=batch_size)
        return logits_to_proba(out) if self.from_logits else out

    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        x, y = as_xy(data)
        task = self.task if self.task != "auto" else infer_task(y)
        return evaluate_by_task(self, x, y, task=task, metrics=metrics)

    def save(self, path: str | os.PathLike[str]) -> str:
        """A ``.keras`` file (architecture as JSON config, weights as HDF5; no code)."""
        target = self._model_file(path)
        if target.suffix != ".keras":
            raise BackendError(f"Keras 3 saves .keras files (the safe format); got {str(target)!r}")
        with self._atomic_target(target) as tmp:
            self.model.save(str(tmp))
        if target != Path(path):  # a folder or a name without extension was given
            log.info("model saved", path=str(target), given=os.fspath(path))
        return str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load a ``.keras`` file with ``safe_mode=True`` (no lambda bytecode is run)."""
        import keras

        file = self._existing_model_file(path)
        try:
            model = keras.saving.load_model(str(file), safe_mode=True)
        except Exception as exc:  # keras raises ValueError/TypeError/OSError variously
            raise BackendError(f"cannot load {str(file)!r} as a Keras model: {exc}") from exc
        self.model = model

    def get_weights(self) -> list[np.ndarray]:
        return [np.asarray(w) for w in self.model.get_weights()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        try:
            self.model.set_weights([np.asarray(w) for w in weights])
        except ValueError as exc:
            raise BackendError(f"weights do not fit the model: {exc}") from exc


def _has_config(model: Any) -> bool:
    try:
        return model.get_compile_config() is not None
    except Exception:  # not serialisable (e.g. a custom loss object)
        return False


def _gpu_visible() -> bool:
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if name == "torch":
        import torch

        return bool(torch.cuda.is_available())
    if name == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def _tiny_model() -> Any:
    """A 4-input, 2-class softmax MLP for the conformance checks."""
    import keras

    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
