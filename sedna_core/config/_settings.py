"""The mechanism behind every configuration class: explicit argument, then environment, then
default.

A configuration class is an attrs class whose fields are declared with :func:`setting`::

    @attrs.frozen
    class EdgeConfig(Settings):
        big_model_ip: str = setting("BIG_MODEL_IP", default="127.0.0.1")
        big_model_port: int = setting("BIG_MODEL_PORT", default=5000, convert=to_port)

    cfg = EdgeConfig.from_env(big_model_port=None)  # None = "not given": env, then default
    cfg = EdgeConfig.from_env({"BIG_MODEL_PORT": "5001"})  # explicit environment (tests)

Environment values are strings; ``convert`` turns them into the field's type and a failure becomes
a :class:`~sedna_core.errors.ConfigError` naming the variable and what it accepts. As in Sedna, a
variable is also found under its upper-case name, and an empty value counts as unset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar

import attrs

from sedna_core.errors import ConfigError

__all__ = [
    "Settings",
    "setting",
    "to_bool",
    "to_float",
    "to_int",
    "to_json",
    "to_list",
    "to_optional_str",
    "to_port",
    "to_positive_float",
    "to_positive_int",
]

T = TypeVar("T")
_META = "sedna_setting"


@attrs.frozen
class _SettingMeta:
    env: tuple[str, ...]
    convert: Callable[[str], Any]
    accepted: str


def setting(
    env: str | tuple[str, ...] | None,
    *,
    default: Any = None,
    convert: Callable[[str], Any] = str,
    accepted: str | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare a configuration field read from ``env`` (a name, several names, or None)."""
    names = () if env is None else ((env,) if isinstance(env, str) else tuple(env))
    meta = _SettingMeta(names, convert, accepted or getattr(convert, "accepted", "a string"))
    if factory is not None:
        return attrs.field(factory=factory, metadata={_META: meta}, kw_only=True)
    return attrs.field(default=default, metadata={_META: meta}, kw_only=True)


class Settings:
    """Mixin giving attrs configuration classes their :meth:`from_env` constructor."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **explicit: Any) -> Self:
        """Build the configuration: explicit non-None arguments win, then ``env``, then defaults.

        ``env`` defaults to ``os.environ`` read now (never at import time).
        """
        source = os.environ if env is None else env
        fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
        unknown = set(explicit) - set(fields)
        if unknown:
            raise TypeError(
                f"{cls.__name__} got unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}"
            )
        values: dict[str, Any] = {}
        for name, field in fields.items():
            meta: _SettingMeta | None = field.metadata.get(_META)
            if explicit.get(name) is not None:
                value = explicit[name]
                # Strings (from a CLI, a CRD parameter) go through the same converter as the
                # environment, so "5001" becomes 5001 and a bad value names the argument.
                if isinstance(value, str) and meta is not None and meta.convert is not str:
                    try:
                        value = meta.convert(value)
                    except (ValueError, TypeError) as exc:
                        raise ConfigError(name, value, meta.accepted) from exc
                values[name] = value
                continue
            if meta is None:
                continue
            for var in meta.env:
                raw = source.get(var) or source.get(var.upper()) or source.get(var.lower())
                if raw:
                    try:
                        values[name] = meta.convert(raw)
                    except (ValueError, TypeError) as exc:
                        raise ConfigError(var, raw, meta.accepted) from exc
                    break
        return cls(**values)

    @classmethod
    def env_names(cls) -> dict[str, tuple[str, ...]]:
        """Field name -> the environment variables it reads (for docs and contract tests)."""
        out = {}
        for f in attrs.fields(cls):  # type: ignore[arg-type]
            meta = f.metadata.get(_META)
            if meta is not None and meta.env:
                out[f.name] = meta.env
        return out


def _accepts(text: str) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    def mark(fn: Callable[[str], T]) -> Callable[[str], T]:
        fn.accepted = text  # type: ignore[attr-defined]
        return fn

    return mark


@_accepts("true/false, 1/0, yes/no or on/off")
def to_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


@_accepts("an integer")
def to_int(raw: str) -> int:
    return int(raw.strip())


@_accepts("an integer greater than 0")
def to_positive_int(raw: str) -> int:
    value = int(raw.strip())
    if value <= 0:
        raise ValueError(raw)
    return value


@_accepts("a number")
def to_float(raw: str) -> float:
    return float(raw.strip())


@_accepts("a number greater than 0")
def to_positive_float(raw: str) -> float:
    value = float(raw.strip())
    if not value > 0:
        raise ValueError(raw)
    return value


@_accepts("a TCP port from 0 to 65535 (0 picks a free one)")
def to_port(raw: str) -> int:
    value = int(raw.strip())
    if not 0 <= value <= 65535:
        raise ValueError(raw)
    return value


@_accepts("a comma-separated list")
def to_list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


@_accepts("a JSON document")
def to_json(raw: str) -> Any:
    return json.loads(raw)


@_accepts("a string")
def to_optional_str(raw: str) -> str | None:
    return raw or None
