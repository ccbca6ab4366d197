"""Classes registered through Sedna's ``ClassFactory``, made into sedna-core algorithms.

* A class that already subclasses a sedna-core base class is used as it is (under its alias).
* A Sedna-style hard-example filter (``__call__(infer_result) -> bool``) becomes a
  :class:`~sedna_core.algorithms.BaseHardExampleMiner` whose ``mine`` calls it per sample.
* A Sedna-style aggregation (``aggregate(clients) -> weights``, ``clients`` being
  :class:`~sedna.algorithms.aggregation.AggClient` records) becomes an all-at-once
  :class:`~sedna_core.algorithms.BaseAggregation`.

The wrapper's constructor declares the Sedna class's parameters (an unannotated parameter
takes the type of its default, so ``"0.9"`` from ``HEM_PARAMETERS`` arrives as ``0.9``), stores
them under their names and builds the Sedna object with them.
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sedna_core.algorithms import KINDS, Algorithm, BaseAggregation, BaseHardExampleMiner
from sedna_core.algorithms.aggregation import UpdateSource

__all__ = ["KIND_OF_TYPE", "adapted", "algorithms", "forget", "refresh_registry", "resolve_spec"]

#: Sedna ClassType values whose Sedna-style classes are wrapped into a sedna-core kind
KIND_OF_TYPE = {"hard_example_mining": "hard_example_mining", "aggregation": "aggregation"}

_cache: dict[tuple[str, str], type[Algorithm] | None] = {}
_lock = threading.Lock()


def forget(type_name: str, alias: str) -> None:
    """Drop the cached wrapper of a registration (it was replaced or removed)."""
    with _lock:
        _cache.pop((type_name, alias), None)


def adapted(type_name: str, alias: str, cls: Any) -> type[Algorithm] | None:
    """The sedna-core algorithm class for a ClassFactory entry, or None if it has none."""
    key = (type_name, alias)
    with _lock:
        if key in _cache:
            return _cache[key]
    result = _adapt(type_name, alias, cls)
    with _lock:
        return _cache.setdefault(key, result)


def algorithms(kind: str) -> list[type[Algorithm]]:
    """Every ClassFactory registration usable as an algorithm of ``kind``."""
    from sedna.common.class_factory import ClassFactory

    out = []
    for type_name, table in ClassFactory.registered().items():
        for alias, cls in table.items():
            algo = adapted(type_name, alias, cls)
            if algo is not None and algo.kind == kind and algo not in out:
                out.append(algo)
    return out


def resolve_spec(type_name: str, spec: Any) -> Any:
    """``spec`` with a ClassFactory alias replaced by its algorithm class (jobs take classes).

    Names not in the ClassFactory are left for sedna-core's registry to resolve.
    """
    from sedna.common.class_factory import ClassFactory

    if isinstance(spec, str):
        method, rest = spec, None
    elif isinstance(spec, Mapping):
        method = spec.get("method") or spec.get("name")
        rest = spec
    else:
        return spec
    if not isinstance(method, str) or not ClassFactory.is_exists(type_name, method):
        return spec
    algo = adapted(type_name, method, ClassFactory.get_cls(type_name, method))
    if algo is None:
        return spec
    if rest is None:
        return algo
    params = rest.get("param", rest.get("params", rest.get("parameters", {})))
    return {"method": algo, "param": params if params is not None else {}}


def refresh_registry() -> None:
    """Make the process-wide plugin manager rebuild its algorithm tables.

    A registration made later (a module imported after a job ran) becomes visible this way.
    Nothing happens before the process-wide manager exists (its discovery will ask the hooks
    anyway): asking for it here would start discovery early, or wait on it when a plugin
    registers while being loaded.
    """
    from sedna_core.plugins import current_plugin_manager

    pm = current_plugin_manager()
    if pm is not None:
        pm.refresh()


# -- wrapping ---------------------------------------------------------------------------------


def _adapt(type_name: str, alias: str, cls: Any) -> type[Algorithm] | None:
    if not inspect.isclass(cls):
        return None
    if issubclass(cls, Algorithm):
        if cls.kind not in KINDS or inspect.isabstract(cls):
            return None
        if cls.name == alias:
            return cls
        return type(cls.__name__, (cls,), {"name": alias, "__module__": cls.__module__})
    kind = KIND_OF_TYPE.get(type_name)
    if kind == "hard_example_mining":
        return _miner(alias, cls)
    if kind == "aggregation":
        return _aggregation(alias, cls)
    return None


def _parameters(cls: type) -> list[inspect.Parameter]:
    """The Sedna class's constructor parameters, annotated for sedna-core's conversion."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return []
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: infer from defaults instead
        hints = {}
    out = []
    for p in list(sig.parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            out.append(p.replace(annotation=Any))
            continue
        annotation = hints.get(p.name, _from_default(p.default))
        out.append(p.replace(kind=p.KEYWORD_ONLY, annotation=annotation))
    return out


def _from_default(default: Any) -> Any:
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int | float  # Sedna code often gives float values to int-looking defaults
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    return Any


def _constructor(sedna_cls: type, attribute: str) -> Any:
    params = _parameters(sedna_cls)
    named = [p for p in params if p.kind is p.KEYWORD_ONLY]
    sink = any(p.kind is p.VAR_KEYWORD for p in params)

    def __init__(self: Any, **kwargs: Any) -> None:
        values = {}
        for p in named:
            if p.name in kwargs:
                values[p.name] = kwargs.pop(p.name)
            elif p.default is p.empty:
                raise TypeError(f"{sedna_cls.__name__}() missing parameter {p.name!r}")
            else:
                values[p.name] = p.default
        if kwargs and not sink:
            raise TypeError(f"{sedna_cls.__name__}() got unexpected parameters {sorted(kwargs)}")
        for key, value in values.items():
            setattr(self, key, value)
        setattr(self, attribute, sedna_cls(**values, **kwargs))

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = inspect.Signature([self_param, *params])  # type: ignore[attr-defined]
    __init__.__annotations__ = {p.name: p.annotation for p in named}
    return __init__


def _miner(alias: str, sedna_cls: type) -> type[BaseHardExampleMiner]:
    def __call__(self: Any, infer_result: Any = None) -> bool:
        return bool(self.sedna_filter(infer_result))

    def mine(self: Any, results: Sequence[Any] | np.ndarray) -> np.ndarray:
        return np.array([bool(self.sedna_filter(r)) for r in results], dtype=bool)

    namespace = {
        "__doc__": f"Sedna hard-example filter {sedna_cls.__qualname__}, registered as {alias!r}.",
        "__module__": sedna_cls.__module__,
        "name": alias,
        "sedna_class": sedna_cls,
        "__init__": _constructor(sedna_cls, "sedna_filter"),
        "__call__": __call__,
        "mine": mine,
    }
    return type(f"{sedna_cls.__name__}Miner", (BaseHardExampleMiner,), namespace)


class _SednaAggregationAdapter(BaseAggregation):
    """Collects a round's updates and hands them to a Sedna ``aggregate(clients)`` at finish."""

    needs_all_updates = True
    sedna_aggregation: Any

    def begin_round(self, global_weights: Sequence[np.ndarray]) -> None:
        self._global = [np.asarray(w) for w in global_weights]
        self._updates: list[tuple[list[np.ndarray], int]] = []

    def accumulate(self, update: Sequence[np.ndarray], num_samples: int) -> None:
        self._updates.append(([np.array(u, copy=True) for u in update], int(num_samples)))

    def add_update(self, source: UpdateSource) -> None:
        arrays = [
            np.array(source.read(i, 0, g.size), copy=True).reshape(g.shape)
            for i, g in enumerate(self._global)
        ]
        self._updates.append((arrays, int(source.num_samples)))

    @property
    def num_updates(self) -> int:
        return len(getattr(self, "_updates", ()))

    def finish(self) -> list[np.ndarray]:
        from sedna.algorithms.aggregation import AggClient

        updates, self._updates = self._updates, []
        if not updates:
            return [g.copy() for g in self._global]
        clients = [AggClient(num_samples=n, weights=w) for w, n in updates]
        result = self.sedna_aggregation.aggregate(clients)
        return [
            np.asarray(r, dtype=g.dtype).reshape(g.shape)
            for r, g in zip(result, self._global, strict=True)
        ]


def _aggregation(alias: str, sedna_cls: type) -> type[BaseAggregation]:
    namespace = {
        "__doc__": f"Sedna aggregation {sedna_cls.__qualname__}, registered as {alias!r}.",
        "__module__": sedna_cls.__module__,
        "name": alias,
        "sedna_class": sedna_cls,
        "__init__": _constructor(sedna_cls, "sedna_aggregation"),
    }
    return type(f"{sedna_cls.__name__}Aggregation", (_SednaAggregationAdapter,), namespace)
