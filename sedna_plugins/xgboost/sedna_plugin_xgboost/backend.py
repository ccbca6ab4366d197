"""The XGBoost backend: scikit-learn-API models, stored in XGBoost's own JSON/UBJ format."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sedna_core.backends import (
    BaseBackend,
    compute_metrics,
    device_from_env,
    mro_names,
    training_xy,
)
from sedna_core.datasources import as_x, as_xy
from sedna_core.errors import BackendError
from sedna_core.log import get_logger

__all__ = ["FEDERATED_REFUSAL", "XGBoostBackend"]

log = get_logger(__name__)

_FORMATS = ("ubj", "json")

#: why a federated client refuses XGBoost at start (docs/federated-learning.md, "Backends")
FEDERATED_REFUSAL = (
    "XGBoost cannot take part in a federated job: trees have no weights to average (averaging "
    "model bytes means nothing) and sedna-core has no tree-bagging aggregation. Train XGBoost "
    "centrally, or federate a model with weights: a scikit-learn linear model, torch, keras, "
    "or a custom estimator with get_weights/set_weights"
)


class XGBoostBackend(BaseBackend):
    """An XGBoost ``XGBClassifier``/``XGBRegressor``/``XGBRanker`` behind sedna-core's interface.

    Parameters
    ----------
    estimator:
        An ``xgboost.XGBModel`` (scikit-learn API), or a class/function that builds one. May be
        None when the first thing done is :meth:`load` (the file says classifier or regressor).
    model_format:
        ``"ubj"`` (binary, default) or ``"json"``: the format of files written to a folder; a
        file name ending in ``.json`` or ``.ubj`` chooses for itself. Both are XGBoost's own
        data formats (no code, safe to load).
    device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``; None: from ``DEVICE_CATEGORY``/``CUDA_VISIBLE_DEVICES``
        (only a GPU request overrides the estimator's own ``device``).

    ``get_weights`` returns the whole model as one uint8 array (its UBJ bytes) and
    ``set_weights`` loads such an array: enough to ship or copy a model, but averaging those
    arrays (FedAvg) is meaningless for trees, so federated jobs refuse XGBoost at start
    (:data:`FEDERATED_REFUSAL`).
    """

    name: ClassVar[str] = "xgboost"
    framework: ClassVar[str] = "xgboost"
    model_suffix: ClassVar[str] = ".ubj"
    suffix_required: ClassVar[bool] = True  # the suffix chooses JSON or UBJ

    def __init__(
        self, estimator: Any = None, *, model_format: str = "ubj", device: str | None = None
    ) -> None:
        super().__init__(estimator)
        if model_format not in _FORMATS:
            raise BackendError(f"model_format must be 'ubj' or 'json', not {model_format!r}")
        self.model_format = model_format
        self.device = device

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        import functools

        import xgboost

        tiny = functools.partial(xgboost.XGBClassifier, n_estimators=3, max_depth=2)
        return [{"estimator": tiny}, {"estimator": tiny, "model_format": "json", "device": "cpu"}]

    @classmethod
    def accepts(cls, estimator: Any) -> bool:
        return "xgboost.sklearn.XGBModel" in mro_names(estimator)

    @property
    def default_model_file(self) -> str:
        return f"model.{self.model_format}"

    def _check_model(self, model: Any) -> None:
        import xgboost

        if not isinstance(model, xgboost.XGBModel):
            hint = (
                " (wrap a Booster: XGBClassifier().load_model(...) or save it and load it here)"
                if isinstance(model, xgboost.Booster)
                else ""
            )
            raise BackendError(
                "the xgboost backend wraps scikit-learn-API models (XGBClassifier, "
                f"XGBRegressor, XGBRanker); got {type(model).__qualname__}{hint}"
            )

    def _prepare_model(self, model: Any) -> Any:
        device = self._device()
        if device is not None:
            model.set_params(device=device)
        return model

    def _device(self) -> str | None:
        if self.device is not None:
            return self.device
        if device_from_env() != "cuda":
            return None  # keep the estimator's own choice
        import xgboost

        if not xgboost.build_info().get("USE_CUDA"):
            log.warning("GPU requested by the environment, but xgboost has no CUDA: using CPU")
            return None
        return "cuda"

    def _fitted(self) -> Any:
        model = self.model
        try:
            model.get_booster()
        except Exception as exc:  # xgboost raises NotFittedError from sklearn
            raise BackendError("the xgboost model is not trained: train or load it first") from exc
        return model

    # -- interface --------------------------------------------------------------------------

    def train(
        self,
        train_data: Any,
        valid_data: Any = None,
        *,
        sample_weight: Any = None,
        proximal_mu: float = 0.0,
        early_stopping_rounds: int | None = None,
        metric_name: str | None = None,
        eval_metric: str | None = None,
        validation_fraction: float = 0.1,
        random_state: int = 0,
    ) -> dict[str, list[float]]:
        """``fit``; with ``valid_data`` it is the eval set and its curves are returned as
        ``val_<metric>``.

        ``early_stopping_rounds`` and ``eval_metric`` (Sedna's examples say ``metric_name``)
        are set on the model. Early stopping needs a validation set: without ``valid_data``,
        ``validation_fraction`` of the rows (per class for a classifier) are held out, chosen
        with ``random_state``, and the log says so.
        """
        self._reject_proximal(proximal_mu)
        x, y = training_xy(train_data, framework="xgboost")
        params: dict[str, Any] = {}
        if early_stopping_rounds is not None:
            params["early_stopping_rounds"] = int(early_stopping_rounds)
        if eval_metric or metric_name:
            params["eval_metric"] = eval_metric or metric_name
        if params:
            self.model.set_params(**params)
        kwargs: dict[str, Any] = {"verbose": False}
        if valid_data is None and self.model.get_params().get("early_stopping_rounds"):
            x, y, valid, rows = self._carve(x, y, validation_fraction, random_state)
            valid_data = valid
            if sample_weight is not None:
                sample_weight = np.asarray(sample_weight)[rows]
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        if valid_data is not None:
            kwargs["eval_set"] = [as_xy(valid_data)]
        self.model.fit(x, y, **kwargs)
        if valid_data is None:
            return {}
        curves = self.model.evals_result().get("validation_0", {})
        return {f"val_{k}": [float(v) for v in vals] for k, vals in curves.items()}

    def _carve(
        self, x: Any, y: Any, fraction: float, seed: int
    ) -> tuple[Any, Any, tuple[Any, Any], np.ndarray]:
        """Hold out a seeded validation split for early stopping: ``(x, y, (vx, vy), kept)``."""
        from sklearn.base import is_classifier

        from sedna_core.algorithms.mtl import take_rows

        if not 0.0 < fraction < 1.0:
            raise BackendError(f"validation_fraction must be in (0, 1), not {fraction!r}")
        labels = np.asarray(y)
        n = len(labels)
        rng = np.random.default_rng(seed)
        groups = (
            [np.flatnonzero(labels == c) for c in np.unique(labels)]
            if is_classifier(self.model)
            else [np.arange(n)]
        )
        held: list[np.ndarray] = []
        for rows in groups:  # per class, so that every class stays in the training rows
            k = int(len(rows) * fraction)
            if k >= 1 and len(rows) - k >= 1:
                held.append(rng.permutation(rows)[:k])
        valid_rows = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.intp)
        if valid_rows.size == 0:
            raise BackendError(
                f"early stopping needs validation data, and {n} training rows are too few to "
                f"hold out {fraction:.0%}: pass valid_data, or train without early_stopping_rounds"
            )
        keep = np.setdiff1d(np.arange(n), valid_rows)
        log.info(
            "early stopping without validation data: holding out a seeded validation split",
            fraction=fraction,
            seed=seed,
            validation_rows=int(valid_rows.size),
            training_rows=int(keep.size),
        )
        valid = (take_rows(x, valid_rows), labels[valid_rows])
        return take_rows(x, keep), labels[keep], valid, keep

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(self._fitted().predict(as_x(data)))

    def predict_proba(self, data: Any) -> np.ndarray:
        model = self._fitted()
        if not hasattr(model, "predict_proba"):
            return super().predict_proba(data)
        return np.asarray(model.predict_proba(as_x(data)))

    def evaluate(
        self, data: Any, metrics: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        from sklearn.base import is_classifier

        x, y = as_xy(data)
        classifier = is_classifier(self._fitted())
        proba = (lambda: self.predict_proba(x)) if classifier else None
        return compute_metrics(
            y,
            self.predict(x),
            proba=proba,
            metrics=metrics,
            task="classification" if classifier else "regression",
        )

    def save(self, path: str | os.PathLike[str]) -> str:
        model = self._fitted()
        target = self._model_file(path)
        if target.suffix not in (".json", ".ubj"):
            raise BackendError(f"XGBoost model files end in .json or .ubj; got {str(target)!r}")
        with self._atomic_target(target) as tmp:
            model.save_model(str(tmp))
        return str(target)

    def load(self, path: str | os.PathLike[str]) -> None:
        import xgboost

        file = self._existing_model_file(path)
        model = self._model if self._model is not None else self._blank_for(file)
        try:
            model.load_model(str(file))
        except xgboost.core.XGBoostError as exc:
            raise BackendError(f"{str(file)!r} is not an XGBoost model: {exc}") from exc
        self.model = model

    def _blank_for(self, file: Path) -> Any:
        """An unfitted model of the estimator's type, or the type the file records."""
        import xgboost

        if self.estimator is not None:
            return self.model
        booster = xgboost.Booster()
        try:
            booster.load_model(str(file))
        except xgboost.core.XGBoostError as exc:
            raise BackendError(f"{str(file)!r} is not an XGBoost model: {exc}") from exc
        kind = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type")
        classes = {
            "classifier": xgboost.XGBClassifier,
            "regressor": xgboost.XGBRegressor,
            "ranker": xgboost.XGBRanker,
        }
        if kind not in classes:
            raise BackendError(
                f"{str(file)!r} does not say which XGBoost model it holds: pass estimator="
                "XGBClassifier (or XGBRegressor) to load it into"
            )
        return classes[kind]()

    def prepare_federated(self, train_data: Any, classes: Sequence[Any] | None = None) -> None:
        """Refused: see :data:`FEDERATED_REFUSAL`."""
        raise BackendError(FEDERATED_REFUSAL)

    def get_weights(self) -> list[np.ndarray]:
        raw = self._fitted().get_booster().save_raw(raw_format="ubj")
        return [np.frombuffer(bytes(raw), dtype=np.uint8).copy()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        import xgboost

        if len(weights) != 1:
            raise BackendError(f"expected one uint8 array (the model bytes), got {len(weights)}")
        blob = np.asarray(weights[0])
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise BackendError(f"expected a 1-D uint8 array, got {blob.dtype} {blob.shape}")
        model = self.model if self.estimator is not None or self._model is not None else None
        if model is None:
            raise BackendError("set_weights needs an estimator (XGBClassifier, ...) to load into")
        try:
            model.load_model(bytearray(blob.tobytes()))
        except xgboost.core.XGBoostError as exc:
            raise BackendError(f"the weights are not an XGBoost model: {exc}") from exc
