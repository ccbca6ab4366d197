"""The scikit-learn backend: any estimator, stored with skops under an explicit trust policy."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.backends import (
    BaseBackend,
    LinearDecision,
    compute_metrics,
    infer_task,
    mro_names,
)
from sedna_core.datasources import as_x, as_xy
from sedna_core.errors import BackendError
from sedna_core.log import get_logger

__all__ = ["FEDERATED_ESTIMATORS", "TRUSTED_PREFIXES", "SklearnBackend"]

log = get_logger(__name__)

#: type-name prefixes trusted when loading a ``.skops`` file, on top of skops' own defaults
#: (builtins, numpy arrays and ufuncs, scipy sparse matrices and the sklearn types skops lists)
TRUSTED_PREFIXES = ("sklearn.",)

#: what a federated job can train: linear models that continue from the global coefficients
FEDERATED_ESTIMATORS = (
    "SGDClassifier, SGDRegressor, Perceptron, PassiveAggressiveClassifier/Regressor "
    "(partial_fit: one pass per round) or LogisticRegression, ElasticNet, Lasso "
    "(warm start; give them a per-round budget such as max_iter=1 with solver='saga')"
)

#: ``max_iter`` from which a warm-started model trains to convergence in every round
_CONVERGES = 50


class SklearnBackend(BaseBackend):
    """A scikit-learn estimator (or pipeline) behind sedna-core's interface.

    Parameters
    ----------
    estimator:
        A scikit-learn estimator, or a class/function that builds one (called on first use).
    trusted:
        Extra fully-qualified type names to trust when loading (e.g. your own transformer
        ``"mypkg.features.Scaler"``). Review a file's types with ``skops.io.get_untrusted_types``.

    Models are saved with skops (``.skops``), which rebuilds objects without unpickling. On
    load, a type is trusted if skops trusts it by default, if its name starts with
    ``sklearn.`` (scikit-learn's own classes, including Cython ones such as
    ``sklearn.tree._tree.Tree``), or if it is listed in ``trusted``; any other type in the file
    is refused with an error that names it.

    ``get_weights``/``set_weights`` cover linear models: ``[coef_, intercept_]``.

    In a federated job (after :meth:`prepare_federated`) ``train`` continues from the weights
    last set: ``partial_fit`` (one pass) where the estimator has it, else ``fit`` with
    ``warm_start``; a classifier keeps the job's classes even when its own data lacks some of
    them (they get no samples, so ``coef_`` rows stay aligned across clients).
    """

    name: ClassVar[str] = "sklearn"
    framework: ClassVar[str] = "scikit-learn"
    model_suffix: ClassVar[str] = ".skops"

    def __init__(self, estimator: Any = None, *, trusted: list[str] | None = None) -> None:
        super().__init__(estimator)
        self.trusted = trusted
        #: the federated job's label set (classifiers), fixed by :meth:`prepare_federated`
        self._classes: np.ndarray | None = None
        self._federated = False

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        from sklearn.linear_model import LogisticRegression

        return [{"estimator": LogisticRegression}, {"estimator": LogisticRegression, "trusted": []}]

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        names = mro_names(estimator)
        return "sklearn.base.BaseEstimator" in names and not any(
            n.startswith("xgboost.") for n in names
        )

    def _check_model(self, model: Any) -> None:
        from sklearn.base import BaseEstimator

        if not isinstance(model, BaseEstimator):
            raise BackendError(
                f"the sklearn backend wraps scikit-learn estimators; got "
                f"{type(model).__module__}.{type(model).__qualname__}"
            )

    # -- interface --------------------------------------------------------------------------

    def train(
        self,
        train_data: Any,
        valid_data: Any = None,
        *,
        sample_weight: Any = None,
        proximal_mu: float = 0.0,
    ) -> dict[str, list[float]]:
        """``fit`` on ``train_data`` (``y`` None: unsupervised); with ``valid_data``, the
        history holds its default scores as ``val_<metric>``."""
        self._reject_proximal(proximal_mu)
        x, y = as_xy(train_data)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        if self._federated and hasattr(self.model, "coef_") and y is not None:
            self._continue(x, y, sample_weight)
        elif y is None:
            self.model.fit(x, **kwargs)
        else:
            self.model.fit(x, y, **kwargs)
        if valid_data is None:
            return {}
        return {f"val_{k}": [v] for k, v in self.evaluate(valid_data).items()}

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(self.model.predict(as_x(data)))

    def predict_proba(self, data: Any) -> np.ndarray:
        if not hasattr(self.model, "predict_proba"):
            return super().predict_proba(data)
        return np.asarray(self.model.predict_proba(as_x(data)))

    def linear_decision(self, n_features: int) -> LinearDecision | None:
        """The fitted coefficients when ``predict`` is scikit-learn's linear-classifier rule.

        That is ``LinearClassifierMixin``'s ``predict`` and ``decision_function``
        (LogisticRegression, SGDClassifier, LinearSVC, Perceptron, PassiveAggressiveClassifier;
        not RidgeClassifier's multilabel case or a subclass with its own rule), on dense
        coefficients of at most 64 bits fitted on ``n_features`` unnamed features (with names,
        scikit-learn warns on arrays). Else ``None``: then ``predict`` answers.
        """
        if type(self).predict is not SklearnBackend.predict:
            return None  # a subclass with its own predict: the contract is about that one
        # scikit-learn's linear models not imported: this model is no linear classifier
        linear = sys.modules.get("sklearn.linear_model._base")
        if linear is None:
            return None
        model = self.model
        mixin = linear.LinearClassifierMixin
        cls = type(model)
        if getattr(cls, "predict", None) is not mixin.predict:
            return None
        if getattr(cls, "decision_function", None) is not mixin.decision_function:
            return None
        coef = getattr(model, "coef_", None)
        classes = getattr(model, "classes_", None)
        if (
            not isinstance(coef, np.ndarray)
            or coef.ndim != 2
            or not isinstance(classes, np.ndarray)
        ):
            return None  # unfitted, sparsified (a scipy matrix) or unusual
        if hasattr(model, "feature_names_in_") or coef.shape[1] != n_features:
            return None  # scikit-learn warns or raises there: let it
        if coef.dtype.kind != "f" or coef.dtype.itemsize > 8 or classes.ndim != 1:
            return None  # long double: scored beyond float64
        n_classes = len(classes)
        two = coef.shape[0] == 1 and n_classes == 2
        if not two and coef.shape[0] != n_classes:
            return None
        intercept = getattr(model, "intercept_", 0.0)
        found = np.asarray(intercept)
        if found.dtype.kind not in "iuf" or found.dtype.itemsize > 8:
            return None
        if found.size not in (1, coef.shape[0]):
            return None
        return LinearDecision(
            coef,
            intercept,
            classes,
            rule="sign" if two else "argmax",
            # ``model`` is a property: the decision holds while these objects stay in place
            watch=(
                (self, "model", model),
                (model, "coef_", coef),
                (model, "intercept_", getattr(model, "intercept_", None)),
                (model, "classes_", classes),
            ),
        )

    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        from sklearn.base import is_classifier, is_regressor

        x, y = as_xy(data)
        model = self.model
        if is_classifier(model):
            task = "classification"
        elif is_regressor(model) or y is None:
            task = "regression"
        else:
            task = infer_task(y)
        proba = (lambda: self.predict_proba(x)) if hasattr(model, "predict_proba") else None
        return compute_metrics(y, self.predict(x), proba=proba, metrics=metrics, task=task)

    def save(self, path: str | os.PathLike[str]) -> str:
        import skops.io as sio

        target = self._model_file(path)
        with self._atomic_target(target) as tmp:
            sio.dump(self.model, tmp)
        return str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        import skops.io as sio

        file = self._existing_model_file(path)
        try:
            found = sio.get_untrusted_types(file=file)
        except Exception as exc:
            raise BackendError(f"{str(file)!r} is not a skops file: {exc}") from exc
        refused = [t for t in found if not self._trusts(t)]
        if refused:
            raise BackendError(
                f"refusing to load {str(file)!r}: it contains types that are not trusted: "
                f"{', '.join(refused)}. Review them and pass trusted=[...] to trust them"
            )
        self.model = sio.load(file, trusted=found)

    def _trusts(self, type_name: str) -> bool:
        return type_name.startswith(TRUSTED_PREFIXES) or type_name in (self.trusted or ())

    def get_weights(self) -> list[np.ndarray]:
        model = self.model
        if not hasattr(model, "coef_"):
            raise BackendError(
                f"get_weights needs a fitted linear model (coef_/intercept_); "
                f"{type(model).__qualname__} has none. Use save/load to move other models"
            )
        intercept = np.atleast_1d(np.asarray(getattr(model, "intercept_", 0.0), dtype=float))
        return [np.array(model.coef_, dtype=float), intercept]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set ``coef_``/``intercept_``; an unfitted classifier gets the federated job's
        classes, else classes ``0..k-1``."""
        from sklearn.base import is_classifier

        model = self.model
        if len(weights) != 2:
            raise BackendError(f"expected [coef_, intercept_], got {len(weights)} arrays")
        coef, intercept = (np.asarray(w, dtype=float) for w in weights)
        if hasattr(model, "coef_"):
            old = np.asarray(model.coef_)
            if old.shape != coef.shape:
                raise BackendError(f"coef_ has shape {old.shape}, the weights {coef.shape}")
        elif not _is_linear(model):
            raise BackendError(
                f"set_weights sets coef_/intercept_ of linear models; "
                f"{type(model).__qualname__} is not one"
            )
        model.coef_ = coef.copy()
        model.intercept_ = intercept.copy()
        model.n_features_in_ = coef.shape[-1]
        if is_classifier(model) and self._classes is not None:
            model.classes_ = self._classes.copy()
        elif is_classifier(model) and not hasattr(model, "classes_"):
            model.classes_ = np.arange(max(2, coef.shape[0]) if coef.ndim == 2 else 2)

    # -- federated learning -------------------------------------------------------------------

    def federated_labels(self, train_data: Any) -> list[Any] | None:
        """A classifier's distinct labels in ``train_data`` (JSON types), else ``None``."""
        from sklearn.base import is_classifier

        if not is_classifier(self.model):
            return None
        _, y = as_xy(train_data)
        return None if y is None else _json_labels(np.unique(np.asarray(y)))

    def prepare_federated(self, train_data: Any, classes: Sequence[Any] | None = None) -> None:
        """Refuse estimators that cannot continue from global weights; fix the job's classes.

        An unfitted model gets zero coefficients (so it can send the initial model); a fitted
        classifier whose classes are a subset of the job's gets zero rows for the others.
        """
        from sklearn.base import is_classifier

        model = self.model
        self._check_federated(model)
        x, y = as_xy(train_data)
        n_features = int(np.shape(x)[1])
        if is_classifier(model):
            if classes is not None:
                job = np.unique(np.asarray(list(classes)))
            elif self._classes is not None:
                job = self._classes
            else:
                job = np.unique(np.asarray(y)) if y is not None else None
            if job is None or job.size < 2:
                raise BackendError(
                    "a federated classifier needs the job's classes: train on labelled data or "
                    "declare classes=[...] (every label of the job) on each client"
                )
            if y is not None:
                outside = np.setdiff1d(np.unique(np.asarray(y)), job)
                if outside.size:
                    raise BackendError(
                        f"the local data has labels {outside.tolist()} outside the job's classes "
                        f"{job.tolist()}: declare classes=[...] with every label of the job on "
                        "each client"
                    )
            self._align(model, job, n_features)
            self._classes = job
        elif not hasattr(model, "coef_"):
            n_targets = 1 if y is None or np.ndim(y) == 1 else int(np.shape(y)[1])
            shape = (n_features,) if n_targets == 1 else (n_targets, n_features)
            model.coef_ = np.zeros(shape)
            model.intercept_ = np.zeros(n_targets)
            model.n_features_in_ = n_features
        if not self._federated:
            self._federated = True
            max_iter = getattr(model, "max_iter", None)
            converges = isinstance(max_iter, int) and max_iter >= _CONVERGES
            if converges and not hasattr(model, "partial_fit"):
                log.warning(
                    f"{type(model).__name__}(max_iter={max_iter}) trains to convergence in "
                    "every round, so rounds add little on non-IID data: give it a "
                    "per-round budget, e.g. max_iter=1 with solver='saga' (one local epoch)"
                )

    def _check_federated(self, model: Any) -> None:
        name = type(model).__name__
        if not (hasattr(model, "coef_") or _is_linear(model)):
            raise BackendError(
                f"{name} has no weights to average, so it cannot take part in a federated job: "
                f"use {FEDERATED_ESTIMATORS}, or a torch/keras model"
            )
        if hasattr(model, "partial_fit"):
            if getattr(model, "average", False):
                raise BackendError(
                    f"{name}(average={model.average!r}) keeps averaged coefficients that "
                    "given weights cannot set: use average=False in a federated job"
                )
            return
        if "warm_start" not in model.get_params():
            raise BackendError(
                f"{name} cannot continue training from the global weights, so federated "
                f"rounds would not learn: use {FEDERATED_ESTIMATORS}, or a torch/keras model"
            )

    def _align(self, model: Any, job: np.ndarray, n_features: int) -> None:
        """``coef_``/``intercept_``/``classes_`` laid out for the job's classes ``job``."""
        rows = 1 if job.size == 2 else job.size
        old = getattr(model, "classes_", None)
        if hasattr(model, "coef_") and old is not None:
            old = np.asarray(old)
            if np.array_equal(old, job):
                return
            missing = np.setdiff1d(old, job)
            if missing.size:
                raise BackendError(
                    f"the model was fitted on classes {missing.tolist()} outside the job's "
                    f"classes {job.tolist()}"
                )
            coef_old = np.atleast_2d(np.asarray(model.coef_, dtype=float))
            icpt_old = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
            if coef_old.shape[0] == 1 and old.size == 2:  # binary: one row scores class 1
                coef_old = np.vstack([-coef_old / 2, coef_old / 2])
                icpt_old = np.concatenate([-icpt_old / 2, icpt_old / 2])
            coef = np.zeros((job.size, coef_old.shape[1]))
            icpt = np.zeros(job.size)
            at = np.searchsorted(job, old)
            coef[at], icpt[at] = coef_old, icpt_old
            if rows == 1:
                coef, icpt = coef[1:] - coef[:1], icpt[1:] - icpt[:1]
        else:
            coef, icpt = np.zeros((rows, n_features)), np.zeros(rows)
        model.coef_, model.intercept_, model.classes_ = coef, icpt, job.copy()
        model.n_features_in_ = coef.shape[1]

    def _continue(self, x: Any, y: Any, sample_weight: Any) -> None:
        """One federated round of local training, from the coefficients set last."""
        from sklearn.base import is_classifier
        from sklearn.exceptions import ConvergenceWarning

        model = self.model
        classifier = is_classifier(model) and self._classes is not None
        with warnings.catch_warnings():
            # a per-round budget (max_iter=1) is the point here, not a failure to converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            if hasattr(model, "partial_fit"):
                kwargs: dict[str, Any] = {}
                if sample_weight is not None:
                    kwargs["sample_weight"] = sample_weight
                if classifier:
                    kwargs["classes"] = self._classes
                model.partial_fit(x, y, **kwargs)
                return
            absent = np.setdiff1d(self._classes, y) if classifier else np.array([])
            weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
            if absent.size:  # one row per absent class, weighing nothing: classes_ stays whole
                x, y, weights = _with_absent(x, y, weights, absent)
            kwargs = {} if sample_weight is None and not absent.size else {"sample_weight": weights}
            warm = model.get_params()["warm_start"]
            model.set_params(warm_start=True)
            try:
                model.fit(x, y, **kwargs)
            finally:
                model.set_params(warm_start=warm)


def _with_absent(x: Any, y: Any, weights: np.ndarray, absent: np.ndarray) -> tuple[Any, Any, Any]:
    import scipy.sparse as sp

    pad = (sp.csr_matrix if sp.issparse(x) else np.zeros)((absent.size, np.shape(x)[1]))
    xs = sp.vstack([x, pad]) if sp.issparse(x) else np.vstack([np.asarray(x), pad])
    ys = np.concatenate([np.asarray(y), absent.astype(np.asarray(y).dtype)])
    return xs, ys, np.concatenate([weights, np.zeros(absent.size)])


def _json_labels(labels: np.ndarray) -> list[Any]:
    """Labels as JSON values (numpy integers and strings become Python ones)."""
    if labels.dtype.kind in "iub":
        return [int(v) for v in labels]
    if labels.dtype.kind in "UO" and all(isinstance(v, str) for v in labels):
        return [str(v) for v in labels]
    raise BackendError(
        f"federated classifiers need integer or string labels, not {labels.dtype}: "
        "encode the labels as integers"
    )


def _is_linear(model: Any) -> bool:
    """An unfitted model whose fitted form has ``coef_``/``intercept_``."""
    cls = type(model)
    return cls.__module__.startswith("sklearn.linear_model") or cls.__name__ in (
        "LinearSVC",
        "LinearSVR",
    )
