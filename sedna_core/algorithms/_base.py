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
    def conformance_examples(cls) -> list[dict[str, Any]]:
        """Keyword-argument sets the conformance kit builds instances from (a hook to override).

        Returns
        -------
        list of dict
            One ``cls(**kwargs)`` per item; the default ``[{}]`` uses the constructor defaults.
            A backend returns a tiny estimator here, e.g. ``[{"estimator": make_tiny_model}]``.
        """
        return [{}]

    @classmethod
    def conformance_inputs(cls) -> Any:
        """Small kind-specific inputs for the conformance kit (a hook to override).

        Returns
        -------
        Any
            None (the default) for the kit's own inputs; else, by kind: a list of batches
            (hard-example mining), a list of rounds ``(global_weights, [(update, num_samples),
            ...])`` (aggregation), ``(x, y)`` (backend), a list of model deltas (lists of arrays;
            update transforms), or a list of calls ``(method_name,
            args)`` run in order on one instance (lifelong-learning kinds, which have no
            default).
        """
        return None

    @classmethod
    def param_types(cls) -> dict[str, Any]:
        """Constructor parameter name -> its annotated type.

        Returns
        -------
        dict
            One entry per explicit ``__init__`` parameter, ``Any`` where it has no annotation
            (or the annotations cannot be resolved).
        """
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
        """The constructor parameters of this instance.

        Returns
        -------
        dict
            Parameter name -> the same-name attribute's value (None where it is missing).
        """
        return {p: getattr(self, p, None) for p in self.param_types()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
