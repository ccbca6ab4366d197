"""The backend kind: one framework's model behind one interface."""

from __future__ import annotations

import abc
import contextlib
import functools
import inspect
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from sedna_core.algorithms._base import Algorithm
from sedna_core.errors import BackendError

__all__ = ["BaseBackend", "LinearDecision", "is_factory", "mro_names"]


def is_factory(obj: Any) -> bool:
    """Whether ``obj`` is a class or a function to call for the model, not a model itself.

    Only classes, functions, methods and ``functools.partial`` count: a Keras model or a torch
    module is callable too, and calling it would run inference (Sedna's bug).
    """
    return (
        isinstance(obj, type)
        or inspect.isfunction(obj)
        or inspect.ismethod(obj)
        or inspect.isbuiltin(obj)
        or isinstance(obj, functools.partial)
    )


def mro_names(obj: Any) -> set[str]:
    """The ``module.Class`` names of every class ``obj`` is (or, for a class, inherits from).

    Lets detection hooks recognise a framework's types without importing the framework.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    return {f"{c.__module__}.{c.__qualname__}" for c in getattr(cls, "__mro__", (cls,))}


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class LinearDecision:
    """How a linear classifier decides, as a backend declares it (``linear_decision``).

    The contract: for every dense 2-D numpy array ``x`` of finite numbers that float64 holds
    exactly (float64, or integers below 2**53) with ``coef.shape[1]`` columns, the backend's
    ``predict(x)`` equals, in values and dtype, ``classes[argmax(x @ coef.T + intercept, axis=1)]``
    (``rule="argmax"``, the first largest score on ties) or, with one ``coef`` row and two
    classes, ``classes[(x @ coef[0] + intercept > 0).astype(int)]`` (``rule="sign"``), each
    score computed in float64 in any summation order. A caller may then score many such models
    in one vectorised pass; it leaves rows near a tie (within the rounding bound of float64
    arithmetic) to ``predict``, so the answers are the same.

    ``coef``, ``intercept`` and ``classes`` are the model's own arrays, not copies: their values
    are read again on every pass, so values changed in place are scored as they are now.
    ``watch`` lists ``(owner, attribute, value)`` triples: the decision holds while
    ``getattr(owner, attribute) is value`` for each (e.g. the backend's model and the model's
    coefficient arrays); when one is replaced, the caller asks the backend again.
    """

    #: ``(k, n_features)`` real floats of at most 64 bits (scored as float64)
    coef: np.ndarray
    #: one value, or ``k`` values (a scalar or array; at most 64-bit numbers)
    intercept: Any
    #: the labels ``predict`` answers, indexed by the decided class
    classes: np.ndarray
    rule: Literal["argmax", "sign"] = "argmax"
    watch: tuple[tuple[Any, str, Any], ...] = ()

    def __post_init__(self) -> None:
        coef, classes = self.coef, self.classes
        intercept = np.asarray(self.intercept)
        if not isinstance(coef, np.ndarray) or coef.ndim != 2 or coef.dtype.kind != "f":
            raise BackendError("LinearDecision.coef must be a 2-D numpy array of floats")
        if coef.dtype.itemsize > 8 or intercept.dtype.kind not in "iuf" or intercept.itemsize > 8:
            raise BackendError("LinearDecision needs coef/intercept of at most 64-bit numbers")
        if intercept.size not in (1, coef.shape[0]):
            raise BackendError(
                f"LinearDecision.intercept has {intercept.size} values; give 1 or "
                f"{coef.shape[0]} (one per coef row)"
            )
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise BackendError("LinearDecision.classes must be a 1-D numpy array")
        if self.rule == "sign":
            if coef.shape[0] != 1 or len(classes) != 2:
                raise BackendError("rule='sign' needs one coef row and two classes")
        elif self.rule == "argmax":
            if coef.shape[0] != len(classes) or len(classes) < 2:
                raise BackendError("rule='argmax' needs two or more classes, one coef row each")
        else:
            raise BackendError(f"LinearDecision.rule is 'argmax' or 'sign', not {self.rule!r}")

    def current(self) -> bool:
        """Whether every watched attribute still holds the object it held when this was made."""
        return all(getattr(owner, name, None) is value for owner, name, value in self.watch)


class BaseBackend(Algorithm, abc.ABC):
    """Adapts one framework's estimator to sedna-core's estimator interface.

    ``estimator`` may be an instance, or a class/factory called lazily on first use (as in
    Sedna). Data given to ``train``/``evaluate`` is a
    :class:`~sedna_core.datasources.BaseDataSource` (with ``x`` and ``y``) or an ``(x, y)``
    tuple; ``predict`` takes ``x``.

    Subclasses take ``estimator`` as their first constructor parameter, call
    ``super().__init__(estimator)``, and implement ``_check_model`` to reject objects of
    the wrong framework. :attr:`model` materialises a factory on first access.
    """

    kind: ClassVar[str] = "backend"
    #: the framework's name as shown in listings (``"torch"``, ``"keras"``...)
    framework: ClassVar[str] = ""
    #: file suffix of the safe format this backend saves to (used when ``save`` gets a folder)
    model_suffix: ClassVar[str] = ""
    #: whether ``train`` honours ``proximal_mu`` (FedProx's proximal term)
    supports_proximal_term: ClassVar[bool] = False
    #: whether the framework picks its file format by the suffix and refuses files without
    #: :attr:`model_suffix` (Keras 3, XGBoost): a user's own class saving through it then gets
    #: a path with that suffix when the job's path has none
    suffix_required: ClassVar[bool] = False

    def __init__(self, estimator: Any = None) -> None:
        if estimator is not None and not is_factory(estimator):
            self._check_model(estimator)  # a wrong instance fails now, not at first use
        self.estimator = estimator
        self._model: Any = None

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        """Whether this backend can wrap ``estimator`` (used by backend detection)."""
        return False

    @property
    def model(self) -> Any:
        """The wrapped framework model (instantiated on first access if a factory was given)."""
        if self._model is None:
            if self.estimator is None:
                raise BackendError(
                    f"{type(self).__name__} has no estimator: pass estimator= (a model, "
                    "or a class/function that builds one)"
                )
            model = self.estimator() if is_factory(self.estimator) else self.estimator
            self._check_model(model)
            self._model = self._prepare_model(model)
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._check_model(value)
        self._model = self._prepare_model(value)

    @property
    def has_model(self) -> bool:
        """Whether a model exists already (given as an instance, built, or loaded)."""
        return self._model is not None

    def _check_model(self, model: Any) -> None:
        """Raise :class:`BackendError` if ``model`` is not something this backend wraps."""

    def _prepare_model(self, model: Any) -> Any:
        """Adjust a checked model before first use (e.g. move it to the device)."""
        return model

    # -- the interface ----------------------------------------------------------------------

    @abc.abstractmethod
    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> Any:
        """Fit the model on ``train_data`` (validating on ``valid_data`` where supported).

        ``train_data`` and ``valid_data`` are :class:`~sedna_core.datasources.BaseDataSource`
        objects (with ``x`` and ``y``) or ``(x, y)`` tuples; ``kwargs`` are the framework's
        training options (epochs, batch size...). Returns what the framework reports: a history
        dict where it has one.

        Backends that support FedProx (:attr:`supports_proximal_term`) accept
        ``proximal_mu: float = 0.0``; the others raise :class:`BackendError` for ``mu > 0``.
        """

    @abc.abstractmethod
    def predict(self, data: Any, **kwargs: Any) -> Any:
        """The model's predictions for ``data``: one per sample.

        Parameters
        ----------
        data
            ``x``, or a datasource whose ``x`` is used.
        **kwargs
            Framework options.
        """

    def predict_proba(self, data: Any, **kwargs: Any) -> np.ndarray:
        """The class probabilities of ``data``'s samples, where the framework has them.

        Parameters
        ----------
        data
            ``x``, or a datasource whose ``x`` is used.
        **kwargs
            Framework options.

        Returns
        -------
        numpy.ndarray
            One row of class probabilities per sample.

        Raises
        ------
        BackendError
            The framework has no probabilities (the default).
        """
        raise BackendError(f"{type(self).__name__} ({self.framework}) has no predict_proba")

    @abc.abstractmethod
    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, float]:
        """The model's scores on ``data``.

        Parameters
        ----------
        data
            A datasource or an ``(x, y)`` tuple.
        metrics
            scikit-learn metric names or callables (a list, or a name -> metric mapping); the
            backend's defaults when None.
        **kwargs
            Framework options.

        Returns
        -------
        dict
            Metric name -> value.
        """

    @abc.abstractmethod
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the model to ``path`` (a file, or a folder) in a safe format (never a pickle).

        Returns
        -------
        str
            The file written (``path``, or ``path/<default_model_file>`` for a folder).
        """

    @abc.abstractmethod
    def load(self, path: str | os.PathLike[str]) -> None:
        """Read a model written by :meth:`save` (``path`` a file, or the folder given to save)."""

    @abc.abstractmethod
    def get_weights(self) -> list[np.ndarray]:
        """The model's parameters as a list of numpy arrays (federated learning)."""

    @abc.abstractmethod
    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the model's parameters with ``weights`` (same order as :meth:`get_weights`)."""

    # -- optional capabilities ----------------------------------------------------------------

    def linear_decision(self, n_features: int) -> LinearDecision | None:
        """The model's decision rule when ``predict`` is a linear classifier's, else ``None``.

        A backend returns a :class:`LinearDecision` only when its ``predict`` on
        ``n_features``-column inputs meets that class's contract exactly (same labels and
        dtype, see there); the lifelong job then answers many small task groups of such models
        in one vectorised pass instead of one ``predict`` call per group. ``None`` (the
        default) keeps every call on ``predict``. Backends need not subclass
        :class:`BaseBackend` for this: the job looks the method up by name. A ``None`` answer
        is remembered while the backend holds the same ``model`` object.
        """
        return None

    # -- federated learning (a client calls these; the defaults suit fixed-shape networks) ---

    def federated_labels(self, train_data: Any) -> list[Any] | None:
        """The labels this client announces when it joins a federated job, or ``None``.

        Models whose output layout depends on the labels seen (scikit-learn classifiers) return
        the distinct labels of ``train_data``; the server fixes the union before round 1 so
        that every client's weights mean the same classes.
        """
        return None

    def prepare_federated(self, train_data: Any, classes: Sequence[Any] | None = None) -> None:
        """Get ready for a federated job, before it joins and whenever the job's classes come.

        Raises :class:`BackendError`, naming what works, when the model cannot continue local
        training from global weights (then rounds would not learn). ``train_data`` is the
        client's local data; ``classes`` is the job's label set (declared by the user or fixed
        by the server), ``None`` when not known yet.
        """

    # -- helpers for subclasses -------------------------------------------------------------

    @property
    def default_model_file(self) -> str:
        """The file name used when ``save``/``load`` get a folder."""
        return f"model{self.model_suffix}"

    def _model_file(self, path: str | os.PathLike[str]) -> Path:
        """``path`` itself, or ``path/<default_model_file>`` when it names a folder.

        A folder is an existing directory, a path ending in ``/``, or a path whose last part
        has no suffix (``MODEL_URL=/models/helmet`` as Sedna's controllers set it).
        """
        p = Path(path)
        if p.is_dir() or str(path).endswith((os.sep, "/")) or not p.suffix:
            return p / self.default_model_file
        return p

    def _existing_model_file(self, path: str | os.PathLike[str]) -> Path:
        p = self._model_file(path)
        if not p.is_file():
            raise BackendError(f"{type(self).__name__}: no model file at {str(p)!r}")
        return p

    @contextlib.contextmanager
    def _atomic_target(self, target: Path) -> Iterator[Path]:
        """A temporary path beside ``target`` that replaces it once written completely.

        A reader (hot reload, another worker) never sees half a model file.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=target.suffix or ".tmp", dir=target.parent
        )
        os.close(fd)
        os.unlink(tmp)  # some frameworks refuse to overwrite; they create it themselves
        try:
            yield Path(tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @classmethod
    def framework_context(cls) -> contextlib.AbstractContextManager[None]:
        """What ``BACKEND_TYPE`` naming this backend sets up around a user's own estimator
        class (one that drives the framework itself, as every Sedna example does): the
        device scope, for instance. Nothing by default."""
        return contextlib.nullcontext()

    def _reject_proximal(self, proximal_mu: float) -> None:
        if proximal_mu:
            raise BackendError(
                f"{type(self).__name__} ({self.framework}) does not support FedProx's proximal "
                f"term (proximal_mu={proximal_mu}); use a gradient-trained backend "
                "(torch, keras) or proximal_mu=0"
            )
