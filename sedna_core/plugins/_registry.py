"""Algorithm resolution: Sedna's ``"IBT"`` / ``{"method": "IBT", "param": {...}}`` -> an instance.

Names resolve against the tables the plugin manager builds from the registration hooks:

1. ``"IBT"``: the algorithm of that kind named ``IBT`` (exact, else the unique case-insensitive
   match). Two distributions registering it is a conflict: qualify it.
2. ``"sedna-plugin-hem:IBT"`` or ``"hem:IBT"``: the one registered by that distribution (or
   entry point).
3. An algorithm class or instance is used as is.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name

from sedna_core.algorithms._base import Algorithm
from sedna_core.errors import (
    AlgorithmConflictError,
    AlgorithmUnavailableError,
    InvalidParameterError,
    PluginError,
    UnknownAlgorithmError,
)
from sedna_core.plugins._convert import convert_value, describe_type
from sedna_core.plugins._manager import (
    AlgorithmEntry,
    PluginInfo,
    SednaPluginManager,
    get_plugin_manager,
)

__all__ = [
    "AlgorithmSpec",
    "create_algorithm",
    "describe_algorithm",
    "parse_spec",
    "resolve_algorithm",
]

#: what :func:`create_algorithm` accepts
AlgorithmSpec = str | Mapping[str, Any] | Algorithm | type[Algorithm]

_METHOD_KEYS = ("method", "name")
_PARAM_KEYS = ("param", "params", "parameters")


def create_algorithm(
    kind: str, spec: AlgorithmSpec, *, plugin_manager: SednaPluginManager | None = None
) -> Algorithm:
    """An algorithm instance of ``kind`` from any of Sedna's spellings.

    Parameters
    ----------
    kind
        An algorithm kind (a key of :data:`sedna_core.algorithms.KINDS`).
    spec
        ``"IBT"``, ``"dist:IBT"``, ``{"method": "IBT", "param": {"threshold_img": "0.9"}}``
        (``param`` may be a JSON string or Sedna's CRD list ``[{"key": k, "value": v}]``;
        string values are converted by the ``__init__`` annotations), a JSON string of that
        mapping, an algorithm class (instantiated) or an instance (returned as is).
    plugin_manager
        Where names are looked up; the process-wide manager by default.

    Raises
    ------
    UnknownAlgorithmError, AlgorithmConflictError, AlgorithmUnavailableError
        The name does not resolve to exactly one loaded algorithm.
    InvalidParameterError
        A parameter is unknown, missing or of the wrong type, or the spec is malformed.
    """
    base = _base(kind)
    if isinstance(spec, Algorithm):
        if not isinstance(spec, base):
            raise InvalidParameterError(
                f"{type(spec).__name__} is not a {kind} algorithm (not a {base.__name__})",
                kind=kind,
            )
        return spec
    method, params = parse_spec(spec, kind=kind)
    cls = resolve_algorithm(kind, method, plugin_manager=plugin_manager)
    kwargs = convert_params(cls, params, kind=kind)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        provider = _provider(plugin_manager, cls)
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise InvalidParameterError(
            f"{kind} algorithm {cls.name!r} rejected its parameters ({shown}): {exc}",
            plugin=provider,
            kind=kind,
        ) from exc


def resolve_algorithm(
    kind: str,
    name: str | type[Algorithm],
    *,
    plugin_manager: SednaPluginManager | None = None,
) -> type[Algorithm]:
    """The algorithm class of ``kind`` called ``name`` (``"IBT"`` or ``"distribution:IBT"``)."""
    base = _base(kind)
    if isinstance(name, type):
        if not issubclass(name, base):
            raise InvalidParameterError(
                f"{name.__qualname__} is not a {kind} algorithm (not a {base.__name__})",
                kind=kind,
            )
        return name
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(
            f"a {kind} algorithm name must be a non-empty string, got {name!r}", kind=kind
        )
    pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
    text = name.strip()
    qualifier, _, bare = text.rpartition(":")
    qualifier, bare = qualifier.strip(), bare.strip()
    table = pm.algorithm_entries(kind)
    entries = table.get(bare)
    if entries is None:
        folded = [n for n in table if n.casefold() == bare.casefold()]
        if len(folded) == 1:
            bare = folded[0]
            entries = table[bare]

    if qualifier:
        wanted = canonicalize_name(qualifier)
        chosen = [e for e in entries or () if wanted in _aliases(pm, e)]
        if chosen:
            return chosen[0].cls  # type: ignore[return-value]
        owner = pm.plugin_info(qualifier)
        if owner is not None and owner.status != "ok":
            raise _unavailable(kind, text, owner)
        providers = sorted({e.plugin for e in entries or ()})
        where = (
            f"{bare!r} is registered by {', '.join(providers)}"
            if providers
            else f"no plugin registers {bare!r}"
        )
        if owner is None:
            msg = f"no plugin named {qualifier!r} is loaded; {where}."
        else:
            msg = f"plugin {owner.name} does not register a {kind} algorithm {bare!r}; {where}."
        raise UnknownAlgorithmError(
            f"{kind} algorithm {text!r} not found: {msg}" + _failed_note(pm),
            kind=kind,
            name=text,
            available=sorted(pm.algorithms(kind)),
        )

    if entries:
        if len(entries) == 1:
            return entries[0].cls  # type: ignore[return-value]
        raise _conflict(kind, bare, entries)

    owner = _failed_owner(pm, bare)
    if owner is not None:
        raise _unavailable(kind, text, owner)
    available = sorted(pm.algorithms(kind))
    # suggest among the bare names: a conflicting name is listed only qualified, and
    # "GeoMedain" must still find "GeoMedian" when two plugins register it
    by_fold = {n.casefold(): n for n in table}
    close = difflib.get_close_matches(bare.casefold(), list(by_fold), n=1, cutoff=0.6)
    suggestion = by_fold[close[0]] if close else None
    msg = f"no {kind} algorithm named {text!r}. Available: {', '.join(available) or 'none'}."
    if suggestion:
        owners = table[suggestion]
        if len(owners) > 1:
            choices = " or ".join(f"'{p}:{suggestion}'" for p in sorted(e.plugin for e in owners))
            msg += f" Did you mean {suggestion!r}? It is registered by several plugins: {choices}."
        else:
            msg += f" Did you mean {suggestion!r}?"
    raise UnknownAlgorithmError(
        msg + _failed_note(pm), kind=kind, name=text, available=available, suggestion=suggestion
    )


def parse_spec(spec: Any, *, kind: str = "") -> tuple[str | type[Algorithm], dict[str, Any]]:
    """Split a spec into ``(name or class, raw parameters)``; parameters are not converted."""
    if isinstance(spec, type):
        return spec, {}
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidParameterError(
                    f"{kind} spec {spec!r} looks like JSON but does not parse: {exc.msg}",
                    kind=kind,
                ) from None
            return parse_spec(decoded, kind=kind)
        return text, {}
    if isinstance(spec, Mapping):
        unknown = set(spec) - set(_METHOD_KEYS) - set(_PARAM_KEYS)
        if unknown:
            raise InvalidParameterError(
                f"{kind} spec has unknown key(s) {sorted(unknown)}; write "
                '{"method": NAME, "param": {...}}',
                kind=kind,
            )
        method = next((spec[k] for k in _METHOD_KEYS if spec.get(k) is not None), None)
        if not isinstance(method, str | type) or (isinstance(method, str) and not method.strip()):
            raise InvalidParameterError(
                f"{kind} spec {dict(spec)!r} needs a 'method' naming the algorithm", kind=kind
            )
        raw = next((spec[k] for k in _PARAM_KEYS if k in spec), None)
        return (method.strip() if isinstance(method, str) else method), _parse_params(raw, kind)
    raise InvalidParameterError(
        f'cannot make a {kind} algorithm from {spec!r}: give a name ("IBT"), '
        '{"method": "IBT", "param": {...}}, an algorithm class or an instance',
        kind=kind,
    )


def convert_params(cls: type[Algorithm], params: Mapping[str, Any], *, kind: str) -> dict[str, Any]:
    """Check ``params`` against ``cls.__init__`` and convert string values to declared types."""
    sig = inspect.signature(cls.__init__)
    declared = [
        p
        for p in list(sig.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    sink = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    types = cls.param_types()
    names = {p.name for p in declared}
    accepted = _accepted(declared, types)
    unknown = sorted(set(params) - names)
    if unknown and not sink:
        raise InvalidParameterError(
            f"{kind} algorithm {cls.name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it accepts: {accepted}",
            kind=kind,
        )
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in names:
            out[key] = value
            continue
        param = sig.parameters[key]
        if value is None and param.default is None:
            out[key] = None
            continue
        try:
            out[key] = convert_value(value, types.get(key, Any))
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"{kind} algorithm {cls.name!r}: parameter {key}={value!r} is not "
                f"{describe_type(types.get(key, Any))} ({exc}); it accepts: {accepted}",
                kind=kind,
            ) from None
    missing = [p.name for p in declared if p.default is p.empty and p.name not in out]
    if missing:
        raise InvalidParameterError(
            f"{kind} algorithm {cls.name!r} needs parameter(s) {', '.join(missing)}; "
            f"it accepts: {accepted}",
            kind=kind,
        )
    return out


# -- helpers -------------------------------------------------------------------------------


def _base(kind: str) -> type[Algorithm]:
    from sedna_core.algorithms import KINDS

    if kind not in KINDS:
        raise PluginError(
            f"unknown algorithm kind {kind!r}; kinds are: {', '.join(sorted(KINDS))}", kind=kind
        )
    return KINDS[kind][0]


def _parse_params(raw: Any, kind: str) -> dict[str, Any]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidParameterError(
                f"{kind} parameters {raw!r} are not valid JSON: {exc.msg}", kind=kind
            ) from None
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, list):  # Sedna's CRD form: [{"key": "threshold_img", "value": "0.9"}]
        out = {}
        for item in raw:
            if not (isinstance(item, Mapping) and "key" in item and "value" in item):
                raise InvalidParameterError(
                    f"{kind} parameter list items must be {{'key': ..., 'value': ...}}, "
                    f"got {item!r}",
                    kind=kind,
                )
            out[str(item["key"])] = item["value"]
        return out
    raise InvalidParameterError(
        f"{kind} parameters must be a mapping, a JSON object or a key/value list, got {raw!r}",
        kind=kind,
    )


def _accepted(declared: list[inspect.Parameter], types: Mapping[str, Any]) -> str:
    parts = []
    for p in declared:
        text = f"{p.name}: {describe_type(types.get(p.name, Any))}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return ", ".join(parts) or "no parameters"


def describe_algorithm(cls: type[Algorithm]) -> dict[str, Any]:
    """What a user needs to know to name and configure an algorithm class.

    Parameters
    ----------
    cls
        A registered algorithm class.

    Returns
    -------
    dict
        ``kind``, ``name``, ``class`` (``module.Qualname``), ``description`` (the first line
        of its docstring) and ``parameters``: one ``{"name", "type", "default", "required",
        "description"}`` per constructor parameter (``default`` as its ``repr``; the
        description from the docstring's ``Parameters`` section when it has one).
    """
    sig = inspect.signature(cls.__init__)
    declared = [
        p
        for p in list(sig.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    types = cls.param_types()
    docs = {**_param_docs(cls.__init__.__doc__), **_param_docs(cls.__doc__)}
    return {
        "kind": cls.kind,
        "name": cls.name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "description": _first_line(cls.__doc__),
        "parameters": [
            {
                "name": p.name,
                "type": describe_type(types.get(p.name, Any)),
                "default": None if p.default is p.empty else repr(p.default),
                "required": p.default is p.empty,
                "description": docs.get(p.name, ""),
            }
            for p in declared
        ],
    }


def _first_line(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "")
    return text.split("\n\n", 1)[0].replace("\n", " ").strip()


def _param_docs(doc: str | None) -> dict[str, str]:
    """``name -> first sentence`` from a numpydoc ``Parameters`` section."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, str] = {}
    try:
        start = next(
            i
            for i, line in enumerate(lines[:-1])
            if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}
        )
    except StopIteration:
        return out
    current = None
    for line in lines[start + 2 :]:
        if line and not line.startswith(" "):
            if line.strip() and set(line.strip()) == {"-"}:
                break  # the next section's underline
            current = line.split(":", 1)[0].strip()
            out[current] = ""
        elif current is not None and line.strip():
            out[current] = (out[current] + " " + line.strip()).strip()
    expanded = {}
    for names, text in out.items():  # "beta_1, beta_2" documents both
        for name in (n.strip() for n in names.split(",")):
            if name.isidentifier():
                expanded[name] = text.split(". ")[0].rstrip(".")
    return expanded


def _aliases(pm: SednaPluginManager, entry: AlgorithmEntry) -> frozenset[str]:
    info = pm.plugin_info(entry.plugin)
    own = canonicalize_name(entry.plugin)
    return info.aliases | {own} if info is not None else frozenset({own})


def _provider(pm: SednaPluginManager | None, cls: type) -> str | None:
    from sedna_core.plugins import _manager

    pm = pm if pm is not None else _manager._current  # never discover just for a message
    try:
        return pm.provider_of(cls) if pm is not None else None
    except PluginError:
        return None


def _failed_owner(pm: SednaPluginManager, name: str) -> PluginInfo | None:
    """A failed or disabled plugin that, by its name, most likely provides ``name``.

    A plugin that did not load never told us its algorithm names, so this matches the
    distribution or entry-point name (``"torch"`` -> ``sedna-plugin-torch``).
    """
    keys = {canonicalize_name(name), canonicalize_name(f"sedna-plugin-{name}")}
    for info in pm.list_plugins(with_algorithms=False):
        if info.status != "ok" and info.aliases & keys:
            return info
    return None


def _failed_note(pm: SednaPluginManager) -> str:
    failed = pm.failed_plugins()
    if not failed:
        return ""
    listed = "; ".join(f"{i.name} ({i.status}: {i.error})" for i in failed)
    return (
        f" Plugins that failed to load (one may provide it): {listed}."
        " Run `sedna plugins list` for details."
    )


def _unavailable(kind: str, text: str, owner: PluginInfo) -> AlgorithmUnavailableError:
    if owner.status == "disabled":
        why = "is disabled by SEDNA_DISABLE_PLUGINS"
    else:
        why = f"did not load ({owner.status}: {owner.error})"
    return AlgorithmUnavailableError(
        f"{kind} algorithm {text!r} comes from plugin {owner.name}, which {why}."
        " Run `sedna plugins list` for details.",
        plugin=owner.name,
        kind=kind,
    )


def _conflict(kind: str, name: str, entries: list[AlgorithmEntry]) -> AlgorithmConflictError:
    plugins = [e.plugin for e in entries]
    choices = " or ".join(f"'{p}:{name}'" for p in plugins)
    return AlgorithmConflictError(
        f"{kind} algorithm {name!r} is registered by {len(plugins)} plugins: "
        f"{', '.join(plugins)}. Write {choices} to choose one, or disable one with "
        "SEDNA_DISABLE_PLUGINS.",
        kind=kind,
        name=name,
        plugins=plugins,
    )
