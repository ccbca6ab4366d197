"""The strategies' parameter checks: one message shape for every refused value."""

from __future__ import annotations

from sedna_core.algorithms import Algorithm
from sedna_core.errors import InvalidParameterError

__all__ = ["require"]


def require(owner: Algorithm, ok: bool, name: str, rule: str, value: object) -> None:
    """Refuse ``value`` for ``owner``'s parameter ``name`` unless ``ok`` (``rule``: what fits)."""
    if not ok:
        raise InvalidParameterError(
            f"{type(owner).__name__}: {name} must be {rule}, got {value}", kind=owner.kind
        )
