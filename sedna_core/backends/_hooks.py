"""The core's own backend registration: the generic adapter, as backend ``"custom"``.

Registered by the plugin manager like any plugin module, so ``sedna plugins list`` shows it and
``"custom"`` resolves like every other backend name.
"""

from __future__ import annotations

from collections.abc import Sequence

from sedna_core.algorithms.backend import BaseBackend
from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_backends() -> Sequence[type[BaseBackend]]:
    from sedna_core.backends._generic import GenericBackend

    return [GenericBackend]
