"""What every algorithm class has: a public ``name``, a ``kind`` and explicit parameters."""

from __future__ import annotations

import inspect
import typing
from typing import Any, ClassVar

__all__ = ["Algorithm"]


class Algorithm:
    """Base of every pluggable algorithm (backends, miners, aggregators, task algorithms...).

    Subclasses set ``name`` (what users write, e.g. ``"IBT"``) and take only explicit keyword
    parameters in ``__init__`` (no ``**kwargs``), stored as attributes of the same name, in
    the manner of scikit-learn. :meth:`get_params` and the registry's string conversion rely on
    that convention; :func:`sedna_core.testing.check_algorithm` verifies it.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    @classmethod
    def param_types(cls) -> dict[str, Any]:
        """Constructor parameter name -> its annotated type (``Any`` where none)."""
        sig = inspect.signature(cls.__init__)
        try:
            hints = typing.get_type_hints(cls.__init__)
        except Exception:  # unresolvable forward references: fall back to no conversion
            hints = {}
        return {
            p.name: hints.get(p.name, Any)
            for p in list(sig.parameters.values())[1:]
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters of this instance."""
        return {p: getattr(self, p, None) for p in self.param_types()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
