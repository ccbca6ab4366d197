"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: keras (and TensorFlow) are imported inside the backend's methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sedna_core.algorithms.backend import BaseBackend
from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_backends() -> Sequence[type[BaseBackend]]:
    from sedna_plugin_keras.backend import KerasBackend

    return [KerasBackend]


@hookimpl
def sedna_detect_backend(estimator: Any) -> str | None:
    from sedna_plugin_keras.backend import KerasBackend

    return KerasBackend.name if KerasBackend.accepts(estimator) else None
