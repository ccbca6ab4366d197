"""The scikit-learn backend: any estimator, stored with skops under an explicit trust policy."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.backends import BaseBackend, compute_metrics, infer_task, mro_names
from sedna_core.datasources import as_x, as_xy
from sedna_core.errors import BackendError

__all__ = ["TRUSTED_PREFIXES", "SklearnBackend"]

#: type-name prefixes trusted when loading a ``.skops`` file, on top of skops' own defaults
#: (builtins, numpy arrays and ufuncs, scipy sparse matrices and the sklearn types skops lists)
TRUSTED_PREFIXES = ("sklearn.",)


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
    """

    name: ClassVar[str] = "sklearn"
    framework: ClassVar[str] = "scikit-learn"
    model_suffix: ClassVar[str] = ".skops"

    def __init__(self, estimator: Any = None, *, trusted: list[str] | None = None) -> None:
        super().__init__(estimator)
        self.trusted = trusted

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
        if y is None:
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
        """Set ``coef_``/``intercept_``; an unfitted classifier gets classes ``0..k-1``."""
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
        if is_classifier(model) and not hasattr(model, "classes_"):
            model.classes_ = np.arange(max(2, coef.shape[0]) if coef.ndim == 2 else 2)


def _is_linear(model: Any) -> bool:
    """An unfitted model whose fitted form has ``coef_``/``intercept_``."""
    cls = type(model)
    return cls.__module__.startswith("sklearn.linear_model") or cls.__name__ in (
        "LinearSVC",
        "LinearSVR",
    )
