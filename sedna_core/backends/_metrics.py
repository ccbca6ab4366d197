"""Scores from predictions: scikit-learn metric names or callables, shared by every backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sedna_core.errors import BackendError

if TYPE_CHECKING:
    from sedna_core.algorithms.backend import BaseBackend

__all__ = [
    "Task",
    "compute_metrics",
    "evaluate_by_task",
    "infer_task",
    "logits_to_proba",
    "proba_to_labels",
]

Task = Literal["classification", "regression"]
MetricsSpec = Sequence[str | Callable[..., Any]] | Mapping[str, str | Callable[..., Any]] | str

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy",),
    "regression": ("mean_squared_error", "r2"),
}
_ALIASES = {
    "acc": "accuracy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "rmse": "root_mean_squared_error",
    "auc": "roc_auc",
}
#: metrics computed from probabilities rather than labels
_PROBA = {"log_loss", "roc_auc", "brier_score_loss", "top_k_accuracy", "average_precision"}
#: probability metrics that take the positive class's column in the binary case
_POSITIVE_CLASS = {"roc_auc_score", "average_precision_score", "brier_score_loss"}
#: metrics that need an ``average`` for more than two classes
_AVERAGED = {"f1", "precision", "recall", "jaccard"}


def infer_task(y: Any) -> Task:
    """Classification for integer, boolean, string or one-hot labels; regression for floats."""
    arr = np.asarray(y)
    if arr.dtype.kind in "biuUSO":
        return "classification"
    if arr.ndim == 2 and arr.shape[1] > 1 and np.isin(arr, (0, 1)).all():
        return "classification"
    return "regression"


def proba_to_labels(proba: np.ndarray) -> np.ndarray:
    """Class indices from probabilities: argmax over columns, or ``p >= 0.5`` for one column."""
    p = np.asarray(proba)
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    return (p.reshape(len(p)) >= 0.5).astype(np.int64)


def logits_to_proba(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits: softmax over the columns, or a sigmoid for one output."""
    out = np.asarray(logits)
    if out.ndim == 2 and out.shape[1] > 1:
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-out))


def evaluate_by_task(
    backend: BaseBackend,
    x: Any,
    y: Any,
    *,
    task: Task,
    metrics: MetricsSpec | None = None,
) -> dict[str, float]:
    """Scores of ``backend`` on ``(x, y)`` for ``task``.

    Classification scores ``predict_proba`` (labels by :func:`proba_to_labels`); regression
    scores ``predict``.
    """
    if task == "classification":
        proba = backend.predict_proba(x)
        return compute_metrics(
            y, proba_to_labels(proba), proba=proba, metrics=metrics, task="classification"
        )
    return compute_metrics(y, backend.predict(x), metrics=metrics, task="regression")


def _true_labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] > 1:  # one-hot
        return arr.argmax(axis=1)
    return arr.reshape(len(arr)) if arr.ndim == 2 else arr


def _did_you_mean(base: str, skm: Any) -> str:
    """`` (did you mean 'accuracy'?)`` for a misspelt metric, else nothing."""
    import difflib

    known = {n.removesuffix("_score") for n in dir(skm) if not n.startswith("_")} | set(_ALIASES)
    close = difflib.get_close_matches(base, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve(name: str) -> tuple[str, Callable[..., Any], dict[str, Any], float, bool]:
    """(display name, function, extra kwargs, sign, needs probabilities) for a metric name."""
    import sklearn.metrics as skm

    text = name.strip()
    sign = 1.0
    base = text
    if base.startswith("neg_"):
        sign, base = -1.0, base[4:]
    base = _ALIASES.get(base, base)
    kwargs: dict[str, Any] = {}
    for avg in ("macro", "micro", "weighted", "samples"):
        if base.endswith(f"_{avg}"):
            base, kwargs["average"] = base[: -len(avg) - 1], avg
    if base.endswith("_score"):
        base = base[: -len("_score")]
    fn = getattr(skm, f"{base}_score", None) or getattr(skm, base, None)
    if not callable(fn) or base.startswith("_") or isinstance(fn, type):
        raise BackendError(
            f"unknown metric {name!r}{_did_you_mean(base, skm)}: use a scikit-learn metric name "
            "(accuracy, f1_macro, roc_auc, log_loss, mean_squared_error, r2, ...) or a "
            "callable(y_true, y_pred)"
        )
    return text, fn, kwargs, sign, base in _PROBA


def compute_metrics(
    y_true: Any,
    y_pred: Any = None,
    *,
    proba: Any = None,
    metrics: MetricsSpec | None = None,
    task: Task = "classification",
) -> dict[str, float]:
    """Score predictions against ``y_true``.

    Parameters
    ----------
    y_pred:
        Predicted labels (classification) or values (regression); for classification they
        are derived from ``proba`` when not given.
    proba:
        Class probabilities, needed by ``log_loss``, ``roc_auc``, ``brier_score_loss``...,
        or a function returning them (called only if a metric needs them).
    metrics:
        Names as scikit-learn spells them (``"accuracy"``, ``"f1_macro"``, ``"roc_auc"``,
        ``"neg_log_loss"``, ``"mean_squared_error"`` or ``"mse"``...), callables
        ``f(y_true, y_pred)``, or a mapping of result names to either. Default: accuracy for
        classification; mean squared error and r2 for regression. ``f1``/``precision``/
        ``recall`` average ``"macro"`` when there are more than two classes.
    """
    if y_true is None:
        raise BackendError("evaluation needs labels: the data has no y")
    if metrics is None:
        metrics = DEFAULT_METRICS[task]
    if isinstance(metrics, str):
        metrics = [metrics]
    items = list(metrics.items()) if isinstance(metrics, Mapping) else [(None, m) for m in metrics]
    yt = _true_labels(y_true) if task == "classification" else np.asarray(y_true)
    cached: list[Any] = []

    def probabilities() -> Any:
        if not cached:
            cached.append(proba() if callable(proba) else proba)
        return cached[0]

    if y_pred is None:
        if proba is None:
            raise BackendError("nothing to score: no predictions and no probabilities")
        y_pred = proba_to_labels(probabilities())
    yp = np.asarray(y_pred)
    if task == "regression":
        yt, yp = yt.reshape(len(yt), -1).squeeze(-1), yp.reshape(len(yp), -1).squeeze(-1)
    elif yp.ndim == 2 and yp.shape[1] == 1:
        yp = yp.reshape(len(yp))
    n_classes = len(np.unique(yt)) if task == "classification" else 0
    out: dict[str, float] = {}
    for key, metric in items:
        if callable(metric):
            label = key or getattr(metric, "__name__", "metric")
            out[label] = float(metric(yt, yp))
            continue
        label, fn, kwargs, sign, needs_proba = _resolve(str(metric))
        label = key or label
        if needs_proba:
            if proba is None:
                raise BackendError(
                    f"metric {label!r} needs class probabilities; this model gives none"
                )
            p = np.asarray(probabilities())
            if p.ndim == 2 and p.shape[1] == 2 and fn.__name__ in _POSITIVE_CLASS:
                p = p[:, 1]
            elif p.ndim == 2 and p.shape[1] == 1:
                p = p[:, 0]
            if fn.__name__ == "roc_auc_score" and p.ndim == 2:
                kwargs.setdefault("multi_class", "ovr")
            value = fn(yt, p, **kwargs)
        else:
            base = fn.__name__.removesuffix("_score")
            if base in _AVERAGED and n_classes > 2:
                kwargs.setdefault("average", "macro")
            value = fn(yt, yp, **kwargs)
        out[label] = sign * float(value)
    return out
