"""The generic adapter: Sedna's duck-typed "Customize" estimator behind the backend interface."""

from __future__ import annotations

import contextlib
import inspect
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.backend import BaseBackend, is_factory
from sedna_core.backends._metrics import compute_metrics, infer_task
from sedna_core.datasources import as_xy
from sedna_core.errors import BackendError
from sedna_core.log import get_logger

__all__ = ["GenericBackend", "call_accepted"]

log = get_logger(__name__)


def _accepted_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` that ``fn`` accepts: all of them if it has ``**kwargs``, else those it names."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature: pass everything
        return dict(kwargs)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def _positional_slots(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 99
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def call_accepted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with ``args`` and the ``kwargs`` its signature accepts (Sedna's parse_kwargs)."""
    if not kwargs:  # nothing to filter: skip the signature inspection (a serving hot path)
        return fn(*args)
    return fn(*args, **_accepted_kwargs(fn, kwargs))


class GenericBackend(BaseBackend):
    """Wraps any object with Sedna's estimator methods (the "Customize" estimator).

    The estimator (an instance, or a class/function called once on first use) provides
    ``train(train_data, valid_data=None, **kw)`` (or ``fit(x, y)``), ``predict(data, **kw)``, and
    optionally ``evaluate(data, **kw)``, ``predict_proba``, ``save(model_path)``,
    ``load(model_url)``, ``get_weights()``/``set_weights(weights)``. Calls receive what the
    job gives, as in Sedna (datasources are passed as they are, not unpacked); keyword
    arguments a method does not declare are dropped unless it takes ``**kwargs``.

    Save and load call the estimator's own methods, so the file format (and whether it is
    safe to load) is the estimator's business.
    """

    name: ClassVar[str] = "custom"
    framework: ClassVar[str] = "custom"
    supports_proximal_term: ClassVar[bool] = True  # when the estimator's train takes it

    def __init__(self, estimator: Any = None, *, context: type[BaseBackend] | None = None) -> None:
        """``context``: the backend ``BACKEND_TYPE`` named for this (user's own) estimator. Its
        framework context (devices) surrounds every call, and where that framework picks its
        format by the file suffix, a model path without one gets it (Sedna's backends wrapped
        user classes the same way: the backend type only set up the framework)."""
        super().__init__(estimator)
        self.context = context
        if context is not None and context.suffix_required:
            self.model_suffix = context.model_suffix  # type: ignore[misc]

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        from sedna_core.testing.doubles import InMemoryEstimator

        return [{"estimator": InMemoryEstimator}]

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        """Objects (or classes) with ``predict``.

        Serving-only estimators (Sedna's cloud models often have just ``load`` and ``predict``)
        are accepted; calling a method they lack is a clear :class:`BackendError`.
        """
        if estimator is None:
            return False
        if is_factory(estimator) and not isinstance(estimator, type):
            return True  # a function: what it builds is checked when it is called
        return callable(getattr(estimator, "predict", None))

    def _check_model(self, model: Any) -> None:
        if not self.accepts(model) or is_factory(model):
            raise BackendError(
                f"the estimator {type(model).__module__}.{type(model).__qualname__} has no "
                "predict(): give it Sedna's estimator methods, or name its "
                "framework's backend (backend='torch', 'keras', 'sklearn', 'xgboost')"
            )

    # -- interface --------------------------------------------------------------------------

    def train(
        self, train_data: Any, valid_data: Any = None, *, proximal_mu: float = 0.0, **kwargs: Any
    ) -> Any:
        """Call the estimator's ``train(train_data, valid_data, **kw)`` with the data as given
        (Sedna's contract); an estimator with only ``fit`` gets ``fit(x, y, **kw)``, the
        scikit-learn convention, with ``x, y`` taken from ``train_data``."""
        model = self.model
        own = getattr(model, "train", None)
        fn = own if callable(own) else getattr(model, "fit", None)
        if not callable(fn):
            raise BackendError(
                f"{type(model).__qualname__} has no train(train_data) or fit(x, y): it can "
                "serve predictions but not be trained"
            )
        if proximal_mu:
            if "proximal_mu" not in _accepted_kwargs(fn, {"proximal_mu": proximal_mu}):
                self._reject_proximal(proximal_mu)
            kwargs["proximal_mu"] = proximal_mu
        if fn is not own:
            x, y = as_xy(train_data)
            with self._framework():
                if y is None:
                    return call_accepted(fn, x, **kwargs)
                return call_accepted(fn, x, y, **kwargs)
        args: list[Any] = [train_data]
        if valid_data is not None:
            if _positional_slots(fn) >= 2:
                args.append(valid_data)
            elif "valid_data" in _accepted_kwargs(fn, {"valid_data": 1}):
                kwargs["valid_data"] = valid_data
            else:
                raise BackendError(
                    f"{type(model).__qualname__}.{fn.__name__} takes no validation data"
                )
        with self._framework():
            return call_accepted(fn, *args, **kwargs)

    def _framework(self) -> contextlib.AbstractContextManager[None]:
        if self.context is None:
            return contextlib.nullcontext()
        return self.context.framework_context()

    def predict(self, data: Any, **kwargs: Any) -> Any:
        if self.context is None:  # the serving hot path: no context to enter
            return call_accepted(self.model.predict, data, **kwargs)
        with self._framework():
            return call_accepted(self.model.predict, data, **kwargs)

    def predict_proba(self, data: Any, **kwargs: Any) -> np.ndarray:
        fn = getattr(self.model, "predict_proba", None)
        if not callable(fn):
            return super().predict_proba(data)
        return np.asarray(call_accepted(fn, data, **kwargs))

    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, float]:
        """The estimator's own ``evaluate`` when it has one (and no metrics were asked for, or
        it takes ``metrics``); otherwise ``metrics`` computed from ``predict`` on ``data``."""
        own = getattr(self.model, "evaluate", None)
        takes_metrics = callable(own) and "metrics" in _accepted_kwargs(own, {"metrics": 1})
        if callable(own) and (metrics is None or takes_metrics):
            if metrics is not None:
                kwargs["metrics"] = metrics
            with self._framework():
                return _as_scores(call_accepted(own, data, **kwargs))
        x, y = as_xy(data)
        task = infer_task(y) if y is not None else "classification"
        proba = None
        if callable(getattr(self.model, "predict_proba", None)):
            proba = lambda: self.predict_proba(x)  # noqa: E731  (only if a metric needs it)
        return compute_metrics(y, self.predict(x), proba=proba, metrics=metrics, task=task)

    def _model_file(self, path: str | os.PathLike[str]) -> Path:
        """The estimator picks its own format, so only a real folder (or ``.../``) is one.

        Under a ``BACKEND_TYPE`` whose framework needs a suffix (Keras 3 refuses to save
        ``MODEL_URL/MODEL_NAME`` without ``.keras``), a file path without one gets it.
        """
        p = Path(path)
        if p.is_dir() or str(path).endswith((os.sep, "/")):
            return p / self.default_model_file
        if self.model_suffix and not p.suffix:
            return p.with_name(p.name + self.model_suffix)
        return p

    def save(self, path: str | os.PathLike[str]) -> str:
        fn = getattr(self.model, "save", None)
        if not callable(fn):
            raise BackendError(f"{type(self.model).__qualname__} has no save(model_path)")
        target = self._model_file(path)
        if target != Path(path):
            log.info("model path has no file name or extension: saving here", path=str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._framework():
            written = fn(str(target))
        # Sedna's estimators may pick their own suffix and say so by returning the path
        return str(written) if isinstance(written, str | os.PathLike) else str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        fn = getattr(self.model, "load", None)
        if not callable(fn):
            raise BackendError(
                f"{type(self.model).__qualname__} has no load(model_url)"
                + _framework_hint(self.model)
            )
        target = self._model_file(path)
        if not target.exists() and Path(path).is_file():
            target = Path(path)  # written without the suffix (before one was chosen)
        if not target.exists():
            raise BackendError(f"{type(self).__name__}: no model file at {str(target)!r}")
        with self._framework():
            if "model_url" in _accepted_kwargs(fn, {"model_url": 1}) and _positional_slots(fn) < 2:
                fn(model_url=str(target))
            else:
                fn(str(target))

    def get_weights(self) -> list[np.ndarray]:
        fn = getattr(self.model, "get_weights", None)
        if not callable(fn):
            raise BackendError(f"{type(self.model).__qualname__} has no get_weights()")
        return [np.asarray(w) for w in fn()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        fn = getattr(self.model, "set_weights", None)
        if not callable(fn):
            raise BackendError(f"{type(self.model).__qualname__} has no set_weights(weights)")
        fn(list(weights))


def _as_scores(result: Any) -> Any:
    """A mapping as a dict, a number as ``{"score": x}``; anything else as the estimator gave it."""
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, numbers.Number | np.generic):
        return {"score": float(result)}  # type: ignore[arg-type]
    return result


def _framework_hint(model: Any) -> str:
    """For a framework model that reached the generic adapter (a factory function cannot be
    recognised before it is called): which backend to name."""
    from sedna_core.backends._select import FRAMEWORK_PLUGINS, _framework_of

    framework = _framework_of(model)
    if framework is None:
        return ""
    plugin = FRAMEWORK_PLUGINS[framework]
    return (
        f": it is a {framework} model built by a factory, which cannot be recognised before it "
        f"is called; name its backend (backend={plugin!r}, --backend {plugin} or "
        f"BACKEND_TYPE={plugin.upper()}), or pass the model itself"
    )
