"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: scikit-learn is imported inside the backend's methods, when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sedna_core.algorithms.backend import BaseBackend
from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_backends() -> Sequence[type[BaseBackend]]:
    from sedna_plugin_sklearn.backend import SklearnBackend

    return [SklearnBackend]


@hookimpl(trylast=True)  # after more specific frameworks built on sklearn's API (xgboost)
def sedna_detect_backend(estimator: Any) -> str | None:
    from sedna_plugin_sklearn.backend import SklearnBackend

    return SklearnBackend.name if SklearnBackend.accepts(estimator) else None
