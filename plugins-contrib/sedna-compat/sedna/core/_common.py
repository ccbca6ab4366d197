"""What the compat paradigms share: Sedna's miner selection and named post-process callbacks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["callback", "hem_from_config", "hem_spec", "inference_only"]


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


def _no_train(self: Any, *args: Any, **kwargs: Any) -> Any:
    from sedna_core.errors import JobError

    raise JobError(f"{type(self).__name__} has no train(): it serves inference only")


def inference_only(estimator: Any) -> Any:
    """Sedna accepted estimators with only ``load``/``predict`` for inference workers (its
    helmet example's); sedna-core's generic backend wants ``train`` or ``fit`` as well, so such
    an estimator gets a ``train`` that raises."""
    if estimator is None or not callable(getattr(estimator, "predict", None)):
        return estimator
    if callable(getattr(estimator, "train", None)) or callable(getattr(estimator, "fit", None)):
        return estimator
    if isinstance(estimator, type):
        return type(estimator.__name__, (estimator,), {"train": _no_train})
    return _InferenceOnly(estimator)


class _InferenceOnly:
    """Delegates to an estimator instance and adds a ``train`` that raises."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def __getattr__(self, name: str) -> Any:
        return getattr(self.estimator, name)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        return _no_train(self.estimator)
