"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: xgboost is imported inside the backend's methods, when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sedna_core.algorithms.backend import BaseBackend
from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_backends() -> Sequence[type[BaseBackend]]:
    from sedna_plugin_xgboost.backend import XGBoostBackend

    return [XGBoostBackend]


@hookimpl(tryfirst=True)  # XGBoost models are also scikit-learn estimators
def sedna_detect_backend(estimator: Any) -> str | None:
    from sedna_plugin_xgboost.backend import XGBoostBackend

    return XGBoostBackend.name if XGBoostBackend.accepts(estimator) else None
