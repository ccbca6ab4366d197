"""Sedna's trigger conditions: ``"num_of_samples > 500"``, ``"precision_delta > 0.1"``.

A condition is one or more comparisons ``<name> <op> <number>`` joined by ``and`` / ``or``
(``and`` binds tighter), or Sedna's CRD form ``{"metric": ..., "operator": ..., "threshold": ...}``.
It is evaluated against a mapping of values; a name the mapping lacks is an error that lists
the names it has, so a misspelt metric never silently passes or fails.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from sedna_core.errors import ConfigError

__all__ = ["Comparison", "Condition", "parse_condition"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}
_COMPARISON = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|==|!=|>|<|=)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_ACCEPTED = (
    "comparisons '<name> <op> <number>' (op one of > >= < <= == !=) joined by 'and'/'or', "
    "e.g. 'num_of_samples > 500' or 'accuracy_delta > 0.01 and paired_z > 2', "
    "or {'metric': ..., 'operator': ..., 'threshold': ...}"
)


@attrs.frozen
class Comparison:
    """One ``name op threshold`` test."""

    name: str
    op: str
    threshold: float

    def evaluate(self, values: Mapping[str, float]) -> bool:
        if self.name not in values:
            raise KeyError(self.name)
        value = float(values[self.name])
        if math.isnan(value):
            return False
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.threshold:g}"


@attrs.frozen
class Condition:
    """A parsed condition: ``any(all(group) for group in groups)``.

    Build it with :func:`parse_condition`; call :meth:`evaluate` with the current values.
    """

    groups: tuple[tuple[Comparison, ...], ...]
    text: str

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the condition reads, in order of appearance, without repeats."""
        seen: dict[str, None] = {}
        for group in self.groups:
            for c in group:
                seen.setdefault(c.name, None)
        return tuple(seen)

    def evaluate(self, values: Mapping[str, float]) -> bool:
        """Whether the condition holds for ``values``.

        Raises
        ------
        ConfigError
            The condition names something ``values`` does not have.
        """
        try:
            return any(all(c.evaluate(values) for c in group) for group in self.groups)
        except KeyError as exc:
            import difflib

            close = difflib.get_close_matches(str(exc.args[0]), sorted(values), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                "condition",
                self.text,
                f"names among {sorted(values)} ({exc.args[0]!r} is not one of them{hint})",
            ) from None

    def __str__(self) -> str:
        return self.text


def parse_condition(
    spec: str | Mapping[str, Any] | Condition, *, what: str = "condition"
) -> Condition:
    """A :class:`Condition` from Sedna's text or CRD form (a Condition is returned as is).

    ``what`` names the setting in error messages (e.g. ``"SEDNA_IL_DEPLOY_RULE"``).

    Parameters
    ----------
    spec
        Sedna's text (``"precision_delta > 0.1 and recall > 0.8"``, ``or`` between groups),
        its CRD form (``{"metric": ..., "operator": ..., "threshold": ...}``), or a Condition.
    what
        The setting's name, for error messages.

    Returns
    -------
    Condition
        The parsed condition (``spec`` itself when it is one).

    Raises
    ------
    ConfigError
        ``spec`` is empty or not in one of these forms.
    """
    if isinstance(spec, Condition):
        return spec
    if isinstance(spec, Mapping):
        try:
            name, op, value = spec["metric"], spec.get("operator", ">"), spec["threshold"]
        except KeyError:
            raise ConfigError(what, dict(spec), _ACCEPTED) from None
        spec = f"{name} {op} {value}"
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(what, spec, _ACCEPTED)
    groups = []
    for alternative in re.split(r"\s+or\s+", spec.strip(), flags=re.IGNORECASE):
        group = []
        for part in re.split(r"\s+and\s+", alternative, flags=re.IGNORECASE):
            m = _COMPARISON.match(part)
            if m is None:
                raise ConfigError(what, spec, _ACCEPTED)
            group.append(Comparison(m["name"], m["op"], float(m["value"])))
        groups.append(tuple(group))
    return Condition(tuple(groups), " ".join(spec.split()))
