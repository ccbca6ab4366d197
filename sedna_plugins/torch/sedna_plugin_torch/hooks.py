"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: torch is imported inside the backend's methods, when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sedna_core.algorithms.backend import BaseBackend
from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_backends() -> Sequence[type[BaseBackend]]:
    from sedna_plugin_torch.backend import TorchBackend

    return [TorchBackend]


@hookimpl
def sedna_detect_backend(estimator: Any) -> str | None:
    from sedna_plugin_torch.backend import TorchBackend

    return TorchBackend.name if TorchBackend.accepts(estimator) else None
