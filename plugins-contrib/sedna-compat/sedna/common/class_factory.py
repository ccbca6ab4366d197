"""Sedna's ``ClassFactory``: register classes by type and alias, and let sedna-core find them.

Sedna programs register their own algorithms with a decorator::

    @ClassFactory.register(ClassType.HEM, alias="MyFilter")
    class MyFilter(BaseFilter):
        def __init__(self, threshold=0.5, **kwargs): ...
        def __call__(self, infer_result=None) -> bool: ...

Here the registration also reaches sedna-core's algorithm registry: hard-example miners
(``ClassType.HEM``) and aggregations (``ClassType.FL_AGG``) written against Sedna's interfaces are
wrapped into sedna-core's base classes (see :mod:`sedna._adapters`); a class that already
subclasses a sedna-core base class is registered as it is, whatever its ``ClassType``. The
``sedna-compat`` distribution's entry point (``sedna.hooks``) hands these classes to the
registration hooks, so ``HEM_NAME=MyFilter`` and ``{"method": "MyFilter"}`` resolve in every
job. Other types (callbacks, optical flow...) are kept for :meth:`ClassFactory.get_cls` only.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from sedna_core.log import get_logger

__all__ = ["ClassFactory", "ClassType"]

T = TypeVar("T")
log = get_logger(__name__)


class ClassType:
    """Sedna's registry types (the values are Sedna's strings, typos included)."""

    GENERAL = "general"
    HEM = "hard_example_mining"
    FL_AGG = "aggregation"
    MTL = "multi_task_learening"
    UTD = "unseen_task_detect"
    OF = "optical_flow"
    ALGORITHM = "algorithm"
    DATA_PROCESS = "data_process"
    CALLBACK = "post_process_callback"
    UTP = "unseen_task_processing"
    KM = "knowledge_management"
    STP = "seen_task_processing"


class ClassFactory:
    """A registry of classes by ``(type, alias)``, bridged into sedna-core's plugin registry."""

    __registry__: dict[str, dict[str, Any]] = {}
    _lock = threading.RLock()

    @classmethod
    def register(
        cls, type_name: str = ClassType.GENERAL, alias: str | None = None
    ) -> Callable[[T], T]:
        """Decorator registering a class under ``type_name`` and ``alias`` (its name)."""

        def wrapper(t_cls: T) -> T:
            return cls.register_cls(t_cls, type_name=type_name, alias=alias)

        return wrapper

    @classmethod
    def register_cls(
        cls, t_cls: T, type_name: str = ClassType.GENERAL, alias: str | None = None
    ) -> T:
        """Register ``t_cls``; returns it unchanged (usable as a decorator's result)."""
        name = alias or getattr(t_cls, "__name__", None)
        if not name:
            raise ValueError(f"cannot register {t_cls!r} without an alias")
        with cls._lock:
            table = cls.__registry__.setdefault(type_name, {})
            previous = table.get(name)
            if previous is not None and previous is not t_cls:
                log.warning(
                    "ClassFactory alias registered again; the later class wins (as in Sedna)",
                    type=type_name,
                    alias=name,
                    previous=_qualname(previous),
                    new=_qualname(t_cls),
                )
            table[name] = t_cls
        from sedna import _adapters

        _adapters.forget(type_name, name)
        _adapters.refresh_registry()
        return t_cls

    @classmethod
    def register_from_package(cls, package: ModuleType, type_name: str = ClassType.GENERAL) -> None:
        """Register every class defined in module ``package`` under its own name."""
        for name, obj in vars(package).items():
            if (
                inspect.isclass(obj)
                and obj.__module__ == package.__name__
                and not name.startswith("_")
            ):
                cls.register_cls(obj, type_name=type_name)

    @classmethod
    def is_exists(cls, type_name: str, cls_name: str | None = None) -> bool:
        """Whether ``type_name`` (and ``cls_name`` under it) is registered."""
        with cls._lock:
            table = cls.__registry__.get(type_name)
            return table is not None and (cls_name is None or cls_name in table)

    @classmethod
    def get_cls(cls, type_name: str, t_cls_name: str | None = None) -> Any:
        """The class registered as ``t_cls_name`` under ``type_name`` (the class, not an instance).

        Names registered only in sedna-core (``"IBT"``, ``"FedAvg"``...) are found there for the
        types that map onto a sedna-core kind. Unknown names raise ``ValueError`` as in Sedna.
        """
        with cls._lock:
            table = cls.__registry__.get(type_name, {})
            if t_cls_name in table:
                return table[t_cls_name]
        from sedna import _adapters

        kind = _adapters.KIND_OF_TYPE.get(type_name)
        if kind is not None and t_cls_name:
            from sedna_core.errors import PluginError
            from sedna_core.plugins import resolve_algorithm

            try:
                return resolve_algorithm(kind, t_cls_name)
            except PluginError as exc:
                raise ValueError(
                    f"can't find class type {type_name} class name {t_cls_name}: {exc}"
                ) from exc
        raise ValueError(
            f"can't find class type {type_name} class name {t_cls_name} in ClassFactory"
        )

    @classmethod
    def registered(cls) -> dict[str, dict[str, Any]]:
        """A copy of the registry (type -> alias -> class)."""
        with cls._lock:
            return {t: dict(table) for t, table in cls.__registry__.items()}

    @classmethod
    def unregister(cls, type_name: str, alias: str) -> None:
        """Remove one registration (tests; Sedna has no such call)."""
        with cls._lock:
            cls.__registry__.get(type_name, {}).pop(alias, None)
        from sedna import _adapters

        _adapters.forget(type_name, alias)
        _adapters.refresh_registry()


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
