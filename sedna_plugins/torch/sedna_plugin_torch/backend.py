"""The PyTorch backend: an ``nn.Module`` trained by a small loop; weights as safetensors."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.backends import (
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

__all__ = ["LOSSES", "TorchBackend"]

log = get_logger(__name__)

#: short loss names -> ``torch.nn`` classes (any ``torch.nn`` loss class name works too)
LOSSES = {
    "cross_entropy": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "mse": "MSELoss",
    "l1": "L1Loss",
    "mae": "L1Loss",
    "smooth_l1": "SmoothL1Loss",
    "huber": "HuberLoss",
    "bce": "BCELoss",
    "bce_with_logits": "BCEWithLogitsLoss",
}
_CLASS_INDEX_LOSSES = ("CrossEntropyLoss", "NLLLoss")


class TorchBackend(BaseBackend):
    """A ``torch.nn.Module`` behind sedna-core's interface.

    Parameters
    ----------
    estimator:
        An ``nn.Module``, or a class/function that builds one (called on first use). Needed
        even to :meth:`load`: a safetensors file holds weights, not the architecture.
    loss:
        A name from :data:`LOSSES` (``"cross_entropy"``, ``"mse"``, ``"bce_with_logits"``...),
        a ``torch.nn`` loss class name, or a callable ``loss(output, target) -> tensor``.
    optimizer:
        A ``torch.optim`` class name (``"adam"``, ``"sgd"``, ``"adamw"``, any case), or a
        callable ``optimizer(parameters) -> torch.optim.Optimizer``. A fresh optimizer is made
        for every :meth:`train` call (so a federated round starts from clean state).
    learning_rate, weight_decay:
        Given to a named optimizer.
    epochs, batch_size:
        Defaults for :meth:`train` (which may override them per call).
    device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None: from ``DEVICE_CATEGORY``/
        ``CUDA_VISIBLE_DEVICES``, falling back to the CPU (with a warning) without a GPU.
    seed:
        Seeds initialisation-independent randomness of training (shuffling, dropout).
    task:
        ``"classification"``, ``"regression"`` or ``"auto"`` (from the training labels).
    from_logits:
        The model outputs logits (default): :meth:`predict_proba` applies softmax (sigmoid for
        one output); False: outputs are already probabilities.
    """

    name: ClassVar[str] = "torch"
    framework: ClassVar[str] = "torch"
    model_suffix: ClassVar[str] = ".safetensors"
    supports_proximal_term: ClassVar[bool] = True

    def __init__(
        self,
        estimator: Any = None,
        *,
        loss: str | Callable[..., Any] = "cross_entropy",
        optimizer: str | Callable[..., Any] = "adam",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 1,
        batch_size: int = 32,
        device: str | None = None,
        seed: int | None = None,
        task: str = "auto",
        from_logits: bool = True,
    ) -> None:
        super().__init__(estimator)
        check_training_options(task=task, epochs=epochs, batch_size=batch_size)
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.task = task
        self.from_logits = from_logits
        self._torch_device: Any = None
        self._trained_task: str | None = None

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [
            {"estimator": _tiny_module, "seed": 0, "epochs": 2, "device": "cpu"},
            {"estimator": _tiny_regressor, "loss": "mse", "optimizer": "sgd", "task": "regression"},
        ]

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        return "torch.nn.modules.module.Module" in mro_names(estimator)

    def _check_model(self, model: Any) -> None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise BackendError(
                "the torch backend wraps torch.nn.Module models; got "
                f"{type(model).__module__}.{type(model).__qualname__}"
            )

    def _prepare_model(self, model: Any) -> Any:
        return model.to(self._resolved_device())

    def _resolved_device(self) -> Any:
        import torch

        if self._torch_device is None:
            wanted = self.device or device_from_env()
            kind = wanted.split(":")[0]
            available = {
                "cpu": True,
                "cuda": torch.cuda.is_available(),
                "mps": torch.backends.mps.is_available(),
            }.get(kind, True)
            if not available:
                if self.device is not None:
                    raise BackendError(f"device {self.device!r} is not available to torch")
                log.warning("GPU requested by the environment, but torch sees none: using CPU")
                wanted = "cpu"
            self._torch_device = torch.device(wanted)
        return self._torch_device

    # -- pieces -----------------------------------------------------------------------------

    def _loss_fn(self) -> Callable[..., Any]:
        import torch

        if callable(self.loss):
            return self.loss
        cls_name = LOSSES.get(str(self.loss).lower(), str(self.loss))
        cls = getattr(torch.nn, cls_name, None)
        if not isinstance(cls, type) or not cls_name.endswith("Loss"):
            raise BackendError(
                f"unknown loss {self.loss!r}: use one of {sorted(LOSSES)}, a torch.nn loss "
                "class name, or a callable"
            )
        return cls()

    def _optimizer_for(self, params: Any) -> Any:
        import torch

        if callable(self.optimizer):
            return self.optimizer(params)
        by_name = {
            n.lower(): getattr(torch.optim, n)
            for n in dir(torch.optim)
            if isinstance(getattr(torch.optim, n), type)
            and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)
        }
        cls = by_name.get(str(self.optimizer).lower())
        if cls is None or cls is torch.optim.Optimizer:
            raise BackendError(
                f"unknown optimizer {self.optimizer!r}: use a torch.optim class name "
                "(adam, sgd, adamw, ...) or a callable(parameters)"
            )
        return cls(params, lr=self.learning_rate, weight_decay=self.weight_decay)

    def _inputs(self, x: Any) -> Any:
        import torch

        if isinstance(x, torch.Tensor):
            return x
        arr = np.asarray(x)
        if arr.dtype.kind == "f":
            return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if arr.dtype.kind in "biu":
            return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64))
        raise BackendError(f"cannot feed {arr.dtype} samples to a torch model")

    def _targets(self, y: Any, loss_fn: Any) -> Any:
        import torch

        arr = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if type(loss_fn).__name__ in _CLASS_INDEX_LOSSES and arr.ndim == 1:
            return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64))
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    @staticmethod
    def _match(out: Any, target: Any) -> Any:
        """A 1-D float target against an (n, 1) output: same shape, so MSE does not broadcast."""
        if target.is_floating_point() and target.ndim == 1 and out.ndim == 2 and out.shape[1] == 1:
            return target.unsqueeze(1)
        return target

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
        """Train for ``epochs``; returns ``{"loss": [...], "val_loss": [...]}`` per epoch.

        ``proximal_mu`` > 0 adds FedProx's term ``mu/2 * ||w - w_start||^2`` to the loss,
        ``w_start`` being the weights when this call began; 0 trains exactly as without it.
        """
        import torch

        x, y = training_xy(train_data, framework="torch", proximal_mu=proximal_mu)
        self._trained_task = self.task if self.task != "auto" else infer_task(y)
        model = self.model
        device = self._resolved_device()
        loss_fn = self._loss_fn()
        xt, yt = self._inputs(x), self._targets(y, loss_fn)
        valid = None
        if valid_data is not None:
            vx, vy = as_xy(valid_data)
            valid = (self._inputs(vx), self._targets(vy, loss_fn))
        generator = torch.Generator()
        if self.seed is not None:
            torch.manual_seed(self.seed)
            generator.manual_seed(self.seed)
        else:
            generator.seed()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = self._optimizer_for(params)
        start = [p.detach().clone() for p in params] if proximal_mu else []
        n, bs = len(xt), batch_size or self.batch_size
        history: dict[str, list[float]] = {"loss": []}
        for _ in range(epochs or self.epochs):
            model.train()
            total = 0.0
            for idx in torch.randperm(n, generator=generator).split(bs):
                xb, yb = xt[idx].to(device), yt[idx].to(device)
                opt.zero_grad()
                out = model(xb)
                loss = loss_fn(out, self._match(out, yb))
                if proximal_mu:
                    prox = sum((p - s).pow(2).sum() for p, s in zip(params, start, strict=True))
                    loss = loss + (proximal_mu / 2.0) * prox
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            history["loss"].append(total / n)
            if valid is not None:
                history.setdefault("val_loss", []).append(self._mean_loss(*valid, loss_fn))
        model.eval()
        return history

    def _mean_loss(self, x: Any, y: Any, loss_fn: Any) -> float:
        import torch

        model, device, total = self.model, self._resolved_device(), 0.0
        model.eval()
        with torch.no_grad():
            for idx in torch.arange(len(x)).split(self.batch_size):
                xb, yb = x[idx].to(device), y[idx].to(device)
                out = model(xb)
                total += float(loss_fn(out, self._match(out, yb))) * len(idx)
        return total / max(len(x), 1)

    def predict(self, data: Any, *, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs (logits, unless the model ends in a softmax) as numpy."""
        import torch

        model, device = self.model, self._resolved_device()
        xt = self._inputs(as_x(data))
        model.eval()
        outs = []
        with torch.no_grad():
            for idx in torch.arange(len(xt)).split(batch_size or self.batch_size):
                outs.append(model(xt[idx].to(device)).detach().float().cpu().numpy())
        if not outs:
            return np.empty((0,))
        return np.concatenate(outs)

    def predict_proba(self, data: Any, *, batch_size: int | None = None) -> np.ndarray:
        out = self.predict(data, batch_size=batch_size)
        return logits_to_proba(out) if self.from_logits else out

    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        x, y = as_xy(data)
        task = self.task if self.task != "auto" else (self._trained_task or infer_task(y))
        return evaluate_by_task(self, x, y, task=task, metrics=metrics)

    def save(self, path: str | os.PathLike[str]) -> str:
        """The state dict as safetensors (weights only: no code, safe to load)."""
        from safetensors.torch import save_model

        target = self._model_file(path)
        with self._atomic_target(target) as tmp:
            save_model(self.model, str(tmp), metadata={"sedna_backend": "torch"})
        return str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        file = self._existing_model_file(path)
        if self.estimator is None and self._model is None:
            raise BackendError(
                "the torch backend needs the model (estimator=MyNet or an instance) to load "
                "weights into: a safetensors file holds weights, not the architecture"
            )
        try:
            load_model(self.model, str(file), strict=True, device=str(self._resolved_device()))
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise BackendError(f"cannot load {str(file)!r} into the model: {exc}") from exc

    def get_weights(self) -> list[np.ndarray]:
        """``state_dict()`` values in order (parameters and buffers such as batch-norm stats)."""
        import torch

        out = []
        for t in self.model.state_dict().values():
            t = t.detach().cpu()
            if t.dtype == torch.bfloat16:  # numpy has no bfloat16
                t = t.float()
            out.append(t.numpy().copy())
        return out

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        import torch

        model = self.model
        state = model.state_dict()
        if len(weights) != len(state):
            raise BackendError(f"the model has {len(state)} tensors, got {len(weights)} arrays")
        new = {}
        for (key, old), w in zip(state.items(), weights, strict=True):
            arr = np.asarray(w)
            if tuple(arr.shape) != tuple(old.shape):
                raise BackendError(f"{key}: expected shape {tuple(old.shape)}, got {arr.shape}")
            new[key] = torch.from_numpy(np.ascontiguousarray(arr)).to(old.dtype)
        model.load_state_dict(new, strict=True)


def _tiny_module() -> Any:
    """A 4-input, 2-output MLP for the conformance checks."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _tiny_regressor() -> Any:
    """A 4-input, 1-output linear model for the conformance checks."""
    import torch

    return torch.nn.Linear(4, 1)
