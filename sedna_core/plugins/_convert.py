"""Algorithm parameters given as strings (environment variables, CRDs) -> their declared types.

Conversion follows the ``__init__`` annotation of the parameter:

======================  ===========================================================
annotation              accepted string
======================  ===========================================================
``str``                 anything
``int`` / ``float``     ``"3"`` / ``"0.5"``, ``"1e-3"``, ``"inf"``
``bool``                true/false, 1/0, yes/no, on/off
``X | None``            ``"none"``, ``"null"`` or ``""`` for None, else as ``X``
``A | B``               tried in order, ``str`` last
``Literal[...]``        one of the literal values, written as ``str(value)``
an ``Enum``             a member's name (any case) or its value
``list[X]``, ``tuple``  a JSON array, or comma-separated values; items converted as ``X``
``dict[K, V]``          a JSON object; keys and values converted
``pathlib.Path``        a path
other / unannotated     left as given
======================  ===========================================================

Values that are not strings are checked for the simple types (``int``, ``float``, ``bool``,
``str``) and containers are converted item by item; anything else is passed through.
"""

from __future__ import annotations

import collections.abc as cabc
import enum
import inspect
import json
import numbers
import pathlib
import types
import typing
from typing import Any, Literal, Union

__all__ = ["convert_value", "describe_type", "param_to_string"]

_NONE_WORDS = {"none", "null", ""}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    cabc.Sequence,
    cabc.MutableSequence,
    cabc.Set,
    cabc.MutableSet,
    cabc.Iterable,
    cabc.Collection,
)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def describe_type(tp: Any) -> str:
    """A short readable name for an annotation (``"float"``, ``"list[int]"``, ``"int | None"``)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return "any"
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def convert_value(value: Any, tp: Any) -> Any:
    """Convert ``value`` to the annotation ``tp``; ``ValueError``/``TypeError`` if impossible."""
    tp = _unwrap(tp)
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, args, tp)
    if origin is Literal:
        return _convert_literal(value, args)
    if tp is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        raise ValueError(f"expected None, got {value!r}")
    if tp is bool:
        return _convert_bool(value)
    if tp is int:
        return _convert_int(value)
    if tp is float:
        return _convert_float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _convert_enum(value, tp)
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
        if isinstance(value, str | pathlib.PurePath):
            return tp(value)
        raise TypeError(f"expected a path, got {type(value).__name__} {value!r}")
    container = origin if origin is not None else tp
    if container in _MAPPINGS:
        return _convert_mapping(value, args)
    if container in _SEQUENCES:
        return _convert_sequence(value, container, args)
    return value  # a class we do not know how to build from text: the algorithm decides


def param_to_string(value: Any) -> str:
    """The string form of a parameter value that :func:`convert_value` turns back into it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, cabc.Mapping | list | tuple | set | frozenset):
        return json.dumps(_jsonable(value))
    return str(value)


# -- helpers -------------------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _convert_union(value: Any, args: tuple[Any, ...], tp: Any) -> Any:
    none_ok = type(None) in args
    if value is None:
        if none_ok:
            return None
        raise TypeError(f"None is not {describe_type(tp)}")
    if none_ok and isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
        return None
    options = sorted((a for a in args if a is not type(None)), key=lambda a: _unwrap(a) is str)
    errors = []
    for option in options:
        try:
            return convert_value(value, option)
        except (TypeError, ValueError) as exc:
            errors.append(str(exc))
    raise ValueError(f"expected {describe_type(tp)}: " + "; ".join(errors))


def _convert_literal(value: Any, args: tuple[Any, ...]) -> Any:
    for a in args:
        if value == a and type(value) is type(a):
            return a
    if isinstance(value, str):
        text = value.strip()
        for a in args:
            if isinstance(a, bool):
                if text.lower() == str(a).lower():
                    return a
            elif str(a) == text:
                return a
    raise ValueError(f"expected one of {', '.join(repr(a) for a in args)}, got {value!r}")


def _convert_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected true/false, 1/0, yes/no or on/off, got {value!r}")
    raise TypeError(f"expected a bool, got {type(value).__name__} {value!r}")


def _convert_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")


def _convert_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got bool {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _convert_enum(value: Any, tp: type[enum.Enum]) -> enum.Enum:
    if isinstance(value, tp):
        return value
    if isinstance(value, str):
        text = value.strip()
        for member in tp:
            if member.name.lower() == text.lower() or str(member.value) == text:
                return member
    else:
        try:
            return tp(value)
        except ValueError:
            pass
    names = ", ".join(m.name for m in tp)
    raise ValueError(f"expected one of {names}, got {value!r}")


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected {what} as JSON, got {text!r} ({exc.msg})") from None


def _convert_sequence(value: Any, container: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = _parse_json(text, "a list")
        else:
            value = [part.strip() for part in text.split(",")] if text else []
    if isinstance(value, str | bytes | cabc.Mapping) or not isinstance(value, cabc.Iterable):
        raise TypeError(f"expected a list, got {type(value).__name__} {value!r}")
    items = list(value)
    if container is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert_value(x, args[0]) for x in items)
        if args:
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} items, got {len(items)}: {items!r}")
            return tuple(convert_value(x, a) for x, a in zip(items, args, strict=True))
        return tuple(items)
    elem = args[0] if args else Any
    converted = [convert_value(x, elem) for x in items]
    if container in (set, cabc.Set, cabc.MutableSet):
        return set(converted)
    if container is frozenset:
        return frozenset(converted)
    return converted


def _convert_mapping(value: Any, args: tuple[Any, ...]) -> dict[Any, Any]:
    if isinstance(value, str):
        value = _parse_json(value.strip(), "an object")
    if not isinstance(value, cabc.Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__} {value!r}")
    key_t, val_t = args if len(args) == 2 else (Any, Any)
    return {convert_value(k, key_t): convert_value(v, val_t) for k, v in value.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, cabc.Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value
