"""What the compat paradigms share: Sedna's miner selection and named post-process callbacks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["callback", "hem_from_config", "hem_spec"]


def hem_from_config(**param: Any) -> dict[str, Any]:
    """Sedna's ``get_hem_algorithm_from_config``: ``HEM_NAME``/``HEM_PARAMETERS`` + overrides."""
    from sedna.common.config import Context

    return Context.get_algorithm_from_api("HEM", **param)


def hem_spec(hard_example_mining: Any) -> Any:
    """The miner spec a sedna-core job gets, by Sedna's rules.

    Given nothing (or ``{}``), the CRD's ``HEM_NAME`` decides; a mapping without ``method`` means
    IBT; a ``ClassFactory`` alias becomes its (wrapped) class. None means no miner.
    """
    from sedna import _adapters
    from sedna.common.class_factory import ClassType

    spec = hard_example_mining if hard_example_mining else hem_from_config()
    if not spec:
        return None
    if isinstance(spec, Mapping) and not (spec.get("method") or spec.get("name")):
        spec = {**spec, "method": "IBT"}
    return _adapters.resolve_spec(ClassType.HEM, spec)


def callback(post_process: Any) -> Callable[..., Any] | None:
    """A callable, or the class registered under that name as ``ClassType.CALLBACK`` (Sedna
    calls the registered class itself with the result)."""
    if isinstance(post_process, str):
        from sedna.common.class_factory import ClassFactory, ClassType

        return ClassFactory.get_cls(ClassType.CALLBACK, post_process)  # type: ignore[no-any-return]
    return post_process  # type: ignore[no-any-return]
