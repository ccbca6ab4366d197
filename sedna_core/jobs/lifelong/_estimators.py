"""Per-task models: independent copies of the user's estimator, training keyword routing,
files in and out.

Sedna trained every task with *one* estimator instance and relied on save/load to keep the
models apart; here each task gets its own copy, so nothing is shared by accident.
"""

from __future__ import annotations

import copy
import inspect
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sedna_core.algorithms import BaseBackend
from sedna_core.backends import is_factory, set_backend
from sedna_core.config import JobConfig
from sedna_core.datasources import BaseDataSource
from sedna_core.errors import BackendError, JobError
from sedna_core.log import get_logger

__all__ = ["clone_estimator", "new_backend", "save_model", "train_backend"]

log = get_logger(__name__)

#: Sedna/XGBoost spellings of training options that are model parameters in current releases
_PARAM_ALIASES = {"metric_name": "eval_metric"}


def clone_estimator(estimator: Any) -> Any:
    """An independent, untrained copy of ``estimator`` (a class or factory is returned as is:
    each backend calls it for its own model)."""
    if estimator is None or is_factory(estimator):
        return estimator
    if isinstance(estimator, BaseBackend):
        return copy.deepcopy(estimator)
    if hasattr(estimator, "get_params") and hasattr(estimator, "set_params"):
        try:
            from sklearn.base import clone

            return clone(estimator)
        except Exception:  # not a real scikit-learn estimator: fall back to a deep copy
            pass
    try:
        return copy.deepcopy(estimator)
    except Exception as exc:
        raise JobError(
            f"cannot copy the {type(estimator).__qualname__} estimator for each task ({exc}); "
            "pass its class or a function that builds one instead"
        ) from exc


def new_backend(
    estimator: Any, backend: str | None, config: JobConfig, plugin_manager: Any
) -> BaseBackend:
    """A backend around a fresh copy of ``estimator``."""
    return set_backend(
        clone_estimator(estimator), backend, config=config, plugin_manager=plugin_manager
    )


def train_backend(
    backend: BaseBackend, train: tuple[Any, Any], valid: tuple[Any, Any] | None, **kwargs: Any
) -> Any:
    """Train ``backend`` on ``train``, passing each keyword where it fits.

    A keyword the backend's ``train`` takes goes there; one that is a parameter of the
    model (``early_stopping_rounds``; Sedna's ``metric_name`` -> ``eval_metric``) is set on this
    task's copy with ``set_params``; others are dropped with a warning, as Sedna dropped them.
    ``valid`` is given to the backend only when it has samples.
    """
    signature = inspect.signature(backend.train)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    direct = {k: v for k, v in kwargs.items() if accepts_any or k in signature.parameters}
    rest = {k: v for k, v in kwargs.items() if k not in direct}
    if rest:
        model = backend.model
        params = model.get_params() if hasattr(model, "get_params") else {}
        settable = {}
        for key, value in rest.items():
            name = key if key in params else _PARAM_ALIASES.get(key)
            if name is not None and name in params:
                settable[name] = value
        if settable:
            model.set_params(**settable)
        dropped = sorted(
            k for k in rest if k not in settable and _PARAM_ALIASES.get(k) not in settable
        )
        if dropped:
            log.warning(
                "training options not understood by the backend or model; ignored",
                options=dropped,
                backend=backend.name,
            )
    use_valid = valid is not None and valid[0] is not None and _length(valid[0]) > 0
    # Datasources, as Sedna hands them to estimators (every backend also reads them).
    train_ds = BaseDataSource(train[0], train[1])
    try:
        if use_valid:
            return backend.train(train_ds, BaseDataSource(valid[0], valid[1]), **direct)
        return backend.train(train_ds, **direct)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"training a task model failed: {exc}") from exc


def save_model(backend: BaseBackend, directory: Path, stem: str) -> Path:
    """Save ``backend``'s model under ``directory`` as ``stem<suffix>``; the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = Path(backend.save(str(directory / f"{stem}{backend.model_suffix}")))
    if written.is_dir():
        raise JobError(
            f"the {backend.name} backend saved a directory ({written}); the knowledge base "
            "stores single files: use a backend that saves one file"
        )
    return written


def format_of(path: Path) -> str:
    suffix = path.suffix.lstrip(".")
    return suffix[:32] if suffix else "bin"


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="sedna-ll-")


def _length(x: Any) -> int:
    if isinstance(x, Mapping):
        return len(next(iter(x.values()))) if x else 0
    return len(x)
