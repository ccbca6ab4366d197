"""The plugin manager: stevedore discovers and loads, pluggy registers and dispatches.

Every plugin gets a :class:`PluginInfo` with a status:

``ok``
    loaded and registered.
``unavailable``
    a declared requirement of its distribution is not installed (checked from its metadata
    before anything is imported), or importing it failed on a missing module.
``error``
    importing it, or one of its registration hooks, raised.
``incompatible``
    it implements hooks this sedna-core does not declare, or its ``sedna-core`` requirement
    excludes this core's version.
``disabled``
    named in ``SEDNA_DISABLE_PLUGINS``.

A failure is one warning in the log and never breaks the other plugins; with
``SEDNA_STRICT_PLUGINS=1`` it raises :class:`~sedna_core.errors.PluginLoadError` instead.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import inspect
import os
import shlex
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from sedna_core._version import __version__ as CORE_VERSION
from sedna_core.errors import PluginError, PluginLoadError
from sedna_core.log import get_logger
from sedna_core.plugins import _hookspecs
from sedna_core.plugins._markers import ENTRY_POINT_GROUP, PROJECT_NAME

__all__ = [
    "DISABLED",
    "ERROR",
    "INCOMPATIBLE",
    "OK",
    "UNAVAILABLE",
    "AlgorithmEntry",
    "PluginInfo",
    "SednaPluginManager",
    "get_plugin_manager",
    "reset_plugin_manager",
]


def _log() -> Any:
    # looked up per call: sedna_core.log's loggers bind the structlog configuration current
    # when they are created, and configure_logging() may run after this module is imported
    return get_logger(__name__)


OK = "ok"
UNAVAILABLE = "unavailable"
ERROR = "error"
INCOMPATIBLE = "incompatible"
DISABLED = "disabled"

STRICT_ENV = "SEDNA_STRICT_PLUGINS"
DISABLE_ENV = "SEDNA_DISABLE_PLUGINS"
_CORE = canonicalize_name("sedna-core")


@dataclass
class PluginInfo:
    """What is known about one plugin (one entry point, or one object registered by hand)."""

    #: distribution name (the registration name for objects registered by hand)
    name: str
    version: str | None
    #: ``"hem = sedna_plugin_hem.hooks"``; None for objects registered by hand
    entry_point: str | None
    status: str
    error: str | None = None
    #: hooks the plugin implements
    hooks: list[str] = field(default_factory=list)
    #: kind -> algorithm names it registered (filled as the kinds' tables are built)
    algorithms: dict[str, list[str]] = field(default_factory=dict)
    #: problems that did not stop it loading (e.g. a registered class without a ``name``, an
    #: algorithm name another distribution registers too)
    problems: list[str] = field(default_factory=list)
    #: the distribution's declared requirements (markers for extras left out)
    requirements: list[str] = field(default_factory=list)
    #: requirements that are not installed, or not in the declared range (``unavailable``);
    #: ``pip install`` each to make the plugin load
    missing: list[str] = field(default_factory=list)
    #: the registered module or object (None when it did not load)
    plugin: object | None = field(default=None, repr=False, compare=False)
    #: names a user may write before ``:`` to qualify an algorithm name (canonicalized)
    aliases: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """Whether it should have loaded but did not (``disabled`` is not a failure)."""
        return self.status not in (OK, DISABLED)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``sedna plugins list --json``.

        Returns
        -------
        dict
            ``name``, ``version``, ``entry_point``, ``status``, ``error`` (for ``unavailable``
            it ends with the ``pip install`` command), ``algorithms`` (kind -> sorted names),
            ``hooks`` and ``problems``: a stable set of keys (``sedna plugins show --json``
            adds ``requirements`` and ``missing``).
        """
        return {
            "name": self.name,
            "version": self.version,
            "entry_point": self.entry_point,
            "status": self.status,
            "error": self.error,
            "algorithms": {k: sorted(v) for k, v in sorted(self.algorithms.items())},
            "hooks": sorted(self.hooks),
            "problems": list(self.problems),
        }

    def add_problem(self, message: str) -> None:
        """Record ``message`` in :attr:`problems` once (tables are rebuilt; no duplicates).

        Parameters
        ----------
        message
            One line saying what is wrong and what to do.
        """
        if message not in self.problems:
            self.problems.append(message)


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm class and the plugin (distribution) that gave it."""

    kind: str
    name: str
    cls: type
    plugin: str


class SednaPluginManager:
    """A pluggy ``PluginManager`` for project ``sedna`` plus discovery and algorithm tables.

    A new manager has no plugins: call :meth:`load_entry_points` to discover installed ones
    (:func:`get_plugin_manager` does), or :meth:`register` objects by hand (tests).

    Parameters
    ----------
    strict
        Raise :class:`~sedna_core.errors.PluginLoadError` on the first plugin failure;
        None reads ``SEDNA_STRICT_PLUGINS`` when discovery runs.
    disabled
        Distribution or entry-point names to skip; None reads ``SEDNA_DISABLE_PLUGINS``
        (comma-separated) when discovery runs.
    """

    def __init__(self, *, strict: bool | None = None, disabled: Iterable[str] | None = None):
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(_hookspecs)
        self._strict = strict
        self._disabled = None if disabled is None else frozenset(disabled)
        self._infos: dict[str, PluginInfo] = {}  # pluggy registration name -> info
        self._unloaded: list[PluginInfo] = []  # failed or disabled: never registered
        self._tables: dict[str, dict[str, list[AlgorithmEntry]]] = {}
        self._lock = threading.RLock()
        self._discovered = False

    # -- pluggy passthrough ---------------------------------------------------------------

    @property
    def hook(self) -> pluggy.HookRelay:
        """pluggy's hook relay: ``pm.hook.sedna_detect_backend(estimator=est)``."""
        return self._pm.hook

    @property
    def pluggy_manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for tracing and other pluggy features)."""
        return self._pm

    def register(
        self, plugin: object, name: str | None = None, *, entry_point: str | None = None
    ) -> str:
        """Register a plugin object (a module or an instance with ``@hookimpl`` functions).

        Its algorithms may then be qualified by the registration name (``"name:Algo"``), as an
        installed distribution's are by its distribution name.

        Parameters
        ----------
        plugin
            A module or object whose ``@hookimpl``-marked functions implement hooks.
        name
            The registration name, e.g. the distribution name ``"sedna-plugin-margin"``
            (pluggy's default: the module's name).
        entry_point
            A second name that qualifies its algorithms, as an entry-point name does
            (``"margin"`` makes ``"margin:Algo"`` resolve too).

        Returns
        -------
        str
            The registration name.

        Raises
        ------
        PluginLoadError
            It implements hooks this core does not declare (a near-miss of a declared hook
            name is named in the message), or a hook with arguments its specification lacks.
        """
        with self._lock:
            try:
                reg = self._pm.register(plugin, name)
            except pluggy.PluginValidationError as exc:
                raise PluginLoadError(str(exc), plugin=name) from exc
            except ValueError as exc:  # name or object already registered
                raise PluginLoadError(str(exc), plugin=name) from exc
            if reg is None:
                raise PluginLoadError(f"plugin name {name!r} is blocked", plugin=name)
            unknown = self._unknown_hooks(plugin)
            if unknown:
                self._pm.unregister(plugin)
                _, message = _unknown_hooks_message(unknown)
                raise PluginLoadError(f"plugin {reg!r} {message}", plugin=reg, hook=unknown[0])
            names = {reg, *([entry_point] if entry_point else [])}
            info = PluginInfo(
                name=reg,
                version=None,
                entry_point=None,
                status=OK,
                hooks=self._hook_names(plugin),
                plugin=plugin,
                aliases=frozenset(canonicalize_name(n) for n in names),
            )
            for message in _unmarked_hooks(plugin):
                info.add_problem(message)
            self._infos[reg] = info
            self._tables.clear()
            return reg

    def unregister(self, plugin: object | None = None, name: str | None = None) -> None:
        """Remove a registered plugin (by object or registration name)."""
        with self._lock:
            removed = self._pm.unregister(plugin, name)
            if removed is not None:
                reg = name or next((n for n, i in self._infos.items() if i.plugin is removed), None)
                self._infos.pop(reg or "", None)
            self._tables.clear()

    # -- discovery ------------------------------------------------------------------------

    def load_entry_points(
        self, entry_points: Iterable[md.EntryPoint] | None = None
    ) -> list[PluginInfo]:
        """Discover and load plugins of the entry-point group ``sedna.plugins``.

        ``entry_points`` defaults to a fresh scan of the installed distributions (tests may
        pass their own). Returns the info of every plugin seen, including failed ones.
        """
        with self._lock:
            strict = self._is_strict()
            disabled = self._disabled
            if disabled is None:
                disabled = frozenset(
                    s.strip() for s in os.environ.get(DISABLE_ENV, "").split(",") if s.strip()
                )
            disabled = frozenset(canonicalize_name(d) for d in disabled)

            eps = _fresh_entry_points() if entry_points is None else list(entry_points)
            seen: list[PluginInfo] = []
            pending: dict[tuple[str, str, str], PluginInfo] = {}
            to_load: list[md.EntryPoint] = []
            for ep in eps:
                info = _info_for(ep)
                key = (info.name, ep.name, ep.value)
                if key in pending or any(
                    i.name == info.name and i.entry_point == info.entry_point for i in seen
                ):
                    continue  # the same distribution found twice on sys.path
                seen.append(info)
                if info.aliases & disabled:
                    info.status = DISABLED
                    self._unloaded.append(info)
                    _log().info("plugin disabled", plugin=info.name, env=DISABLE_ENV)
                    continue
                dist = getattr(ep, "dist", None)
                problem = None
                if dist is not None:
                    info.requirements = _declared_requirements(dist)
                    problem = _check_requirements(dist)
                if problem is not None:
                    status, message, info.missing = problem
                    self._fail(info, status, message, strict=strict)
                    continue
                pending[key] = info
                to_load.append(ep)

            def on_failure(_manager: Any, ep: md.EntryPoint, err: BaseException) -> None:
                info = pending[(_dist_name(ep), ep.name, ep.value)]
                if isinstance(err, ModuleNotFoundError) and not _is_own_module(err, ep):
                    status = UNAVAILABLE
                    msg = f"cannot import {ep.value}: {err} (a dependency is not installed)"
                else:
                    status = ERROR
                    cause = err.__cause__ if isinstance(err, _ImportAborted) else err
                    msg = f"importing {ep.value} raised {type(cause).__name__}: {cause}"
                    err = cause or err
                self._fail(info, status, msg, strict=strict, exc=err)

            for ep, module in _load_with_stevedore(to_load, on_failure):
                info = pending[(_dist_name(ep), ep.name, ep.value)]
                self._register_loaded(info, ep, module, strict=strict)
            self._discovered = True
            self._tables.clear()
            return seen

    def _register_loaded(
        self, info: PluginInfo, ep: md.EntryPoint, module: object, *, strict: bool
    ) -> None:
        reg = info.name if not self._pm.has_plugin(info.name) else f"{info.name}:{ep.name}"
        try:
            self._pm.register(module, reg)
        except pluggy.PluginValidationError as exc:
            info.hooks = self._hook_names(module)
            self._fail(info, INCOMPATIBLE, str(exc), strict=strict, exc=exc)
            return
        except ValueError as exc:  # the same module behind two entry points
            self._fail(info, ERROR, str(exc), strict=strict, exc=exc)
            return
        info.hooks = self._hook_names(module)
        unknown = self._unknown_hooks(module)
        if unknown:
            self._pm.unregister(module)
            status, message = _unknown_hooks_message(unknown)
            self._fail(info, status, message, strict=strict)
            return
        for message in _unmarked_hooks(module):
            info.add_problem(message)
        info.plugin = module
        info.status = OK
        self._infos[reg] = info

    def _fail(
        self,
        info: PluginInfo,
        status: str,
        message: str,
        *,
        strict: bool,
        exc: BaseException | None = None,
    ) -> None:
        info.status = status
        info.error = message
        self._unloaded.append(info)
        if strict:
            raise PluginLoadError(
                f"plugin {info.name} ({info.entry_point}) is {status}: {message}",
                plugin=info.name,
            ) from exc
        _log().warning(
            "plugin not loaded",
            plugin=info.name,
            entry_point=info.entry_point,
            status=status,
            error=message,
            hint="`sedna plugins list` shows every plugin's status",
        )
        if exc is not None:
            _log().debug("plugin load traceback", plugin=info.name, exc_info=exc)

    def _is_strict(self) -> bool:
        if self._strict is not None:
            return self._strict
        raw = os.environ.get(STRICT_ENV, "").strip()
        return bool(raw) and _env_bool(raw)

    def _hook_names(self, plugin: object) -> list[str]:
        names = []
        for attr in dir(plugin):
            opts = self._pm.parse_hookimpl_opts(plugin, attr)
            if opts is not None:
                names.append(opts.get("specname") or attr)
        return sorted(names)

    def _unknown_hooks(self, plugin: object) -> list[str]:
        unknown = []
        for caller in self._pm.get_hookcallers(plugin) or ():
            if caller.has_spec():
                continue
            if any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls()):
                unknown.append(caller.name)
        return sorted(unknown)

    # -- what is there --------------------------------------------------------------------

    def list_plugins(self, *, with_algorithms: bool = True) -> list[PluginInfo]:
        """Every plugin seen (loaded, failed, disabled, registered by hand), by name.

        With ``with_algorithms`` every kind's algorithm table is built first (calling the
        registration hooks) so that each info's ``algorithms`` is complete.
        """
        from sedna_core.algorithms import KINDS

        with self._lock:
            if with_algorithms:
                for kind in KINDS:
                    self._table(kind)
            infos = {id(i): i for i in [*self._infos.values(), *self._unloaded]}
            return sorted(infos.values(), key=lambda i: (i.name, i.entry_point or ""))

    def failed_plugins(self) -> list[PluginInfo]:
        """Plugins that did not load (``unavailable``, ``error``, ``incompatible``)."""
        with self._lock:
            return [i for i in self._unloaded if i.failed]

    def plugin_info(self, name: str) -> PluginInfo | None:
        """The info of a plugin by distribution, entry-point or registration name."""
        key = canonicalize_name(name)
        with self._lock:
            for info in [*self._infos.values(), *self._unloaded]:
                if key in info.aliases:
                    return info
        return None

    def refresh(self) -> None:
        """Rebuild the algorithm tables on next use (after a plugin object changed what its
        registration hooks return, e.g. a registry filled by imports made later)."""
        with self._lock:
            self._tables.clear()

    def algorithms(self, kind: str) -> dict[str, type]:
        """Name -> class of every algorithm of ``kind``.

        A name given by several distributions appears only qualified, as
        ``"distribution:Name"`` for each of them.
        """
        out: dict[str, type] = {}
        for name, entries in self.algorithm_entries(kind).items():
            if len(entries) == 1:
                out[name] = entries[0].cls
            else:
                for e in entries:
                    out[f"{e.plugin}:{name}"] = e.cls
        return out

    def algorithm_entries(self, kind: str) -> dict[str, list[AlgorithmEntry]]:
        """Name -> every registration of that name for ``kind`` (more than one is a conflict)."""
        with self._lock:
            return {n: list(es) for n, es in self._table(kind).items()}

    def provider_of(self, cls: type) -> str | None:
        """The plugin (distribution) that registered ``cls``, if any did."""
        kind = getattr(cls, "kind", "")
        with self._lock:
            for entries in self._table(kind).values() if kind else ():
                for e in entries:
                    if e.cls is cls:
                        return e.plugin
        return None

    def _table(self, kind: str) -> dict[str, list[AlgorithmEntry]]:
        from sedna_core.algorithms import KINDS

        if kind not in KINDS:
            raise PluginError(
                f"unknown algorithm kind {kind!r}; kinds are: {', '.join(sorted(KINDS))}",
                kind=kind,
            )
        table = self._tables.get(kind)
        if table is not None:
            return table
        base, hook_name = KINDS[kind]
        for info in self._infos.values():
            info.algorithms.pop(kind, None)
        table = {}
        providers: dict[str, PluginInfo] = {}
        caller = getattr(self._pm.hook, hook_name)
        # pluggy calls the last registered first; keep that order, one call per plugin so
        # that one plugin raising cannot hide the others' algorithms
        for impl in reversed(caller.get_hookimpls()):
            if impl.wrapper or impl.hookwrapper:
                continue
            info = self._infos.get(impl.plugin_name)
            provider = info.name if info is not None else impl.plugin_name
            if info is not None:
                providers[provider] = info
            try:
                result = impl.function()
            except Exception as exc:
                self._problem(info, provider, hook_name, kind, f"{hook_name} raised {exc!r}", exc)
                continue
            for cls in _as_list(result):
                problem = _class_problem(cls, base, kind)
                if problem is not None:
                    self._problem(info, provider, hook_name, kind, problem, None)
                    continue
                entries = table.setdefault(cls.name, [])
                if any(e.cls is cls for e in entries):
                    continue  # the same class registered twice is not a conflict
                entries.append(AlgorithmEntry(kind, cls.name, cls, provider))
                if info is not None:
                    info.algorithms.setdefault(kind, []).append(cls.name)
        for name, entries in table.items():
            if len(entries) > 1:  # a conflict: visible in the listing, not only at use
                for e in entries:
                    if e.plugin in providers:
                        providers[e.plugin].add_problem(_conflict_problem(kind, name, entries, e))
        self._tables[kind] = table
        return table

    def _problem(
        self,
        info: PluginInfo | None,
        provider: str,
        hook_name: str,
        kind: str,
        message: str,
        exc: BaseException | None,
    ) -> None:
        if self._is_strict():
            raise PluginLoadError(
                f"plugin {provider}: {message}", plugin=provider, hook=hook_name, kind=kind
            ) from exc
        if info is not None:
            info.add_problem(message)
            if exc is not None:  # its registration hook is broken: the plugin is not ok
                info.status = ERROR
                info.error = message
        _log().warning("plugin problem", plugin=provider, hook=hook_name, kind=kind, error=message)


# -- helpers ----------------------------------------------------------------------------------


def _conflict_problem(
    kind: str, name: str, entries: Sequence[AlgorithmEntry], this: AlgorithmEntry
) -> str:
    others = sorted(e.plugin for e in entries if e is not this)
    choices = " or ".join(f"'{p}:{name}'" for p in sorted(e.plugin for e in entries))
    return (
        f"{kind} algorithm {name!r} is also registered by {', '.join(others)}: the bare name "
        f"{name!r} is ambiguous. Write {choices}, or disable one with "
        f"SEDNA_DISABLE_PLUGINS={others[0]}"
    )


def _env_bool(raw: str) -> bool:
    from sedna_core.config import to_bool
    from sedna_core.errors import ConfigError

    try:
        return to_bool(raw)
    except ValueError as exc:
        raise ConfigError(STRICT_ENV, raw, to_bool.accepted) from exc  # type: ignore[attr-defined]


def _fresh_entry_points() -> list[md.EntryPoint]:
    """Entry points of the group, read from the installed metadata now.

    stevedore keeps an on-disk entry-point cache (``~/.cache/python-entrypoints``) and a
    per-process one, and its cached entry points carry no distribution; we scan with
    :mod:`importlib.metadata` ourselves (a few milliseconds) so that a plugin installed or
    removed a moment ago is seen, and hand stevedore only the entry points to load.
    """
    return list(md.entry_points(group=ENTRY_POINT_GROUP))


def _load_with_stevedore(
    eps: Sequence[md.EntryPoint], on_failure: Any
) -> list[tuple[md.EntryPoint, object]]:
    if not eps:
        return []
    from stevedore import ExtensionManager

    class _GivenEntryPoints(ExtensionManager):  # type: ignore[type-arg]
        # bypasses stevedore's entry-point caches (see _fresh_entry_points)
        def list_entry_points(self) -> list[md.EntryPoint]:
            return list(eps)

        # stevedore re-raises AssertionError (and never catches SystemExit), which would
        # stop every later plugin from loading: hand them to the failure callback instead
        def _load_one_plugin(self, ep: md.EntryPoint, *args: Any) -> Any:
            try:
                return super()._load_one_plugin(ep, *args)
            except (AssertionError, SystemExit) as exc:
                raise _ImportAborted(f"{type(exc).__name__}: {exc}") from exc

    manager = _GivenEntryPoints(
        namespace=ENTRY_POINT_GROUP, invoke_on_load=False, on_load_failure_callback=on_failure
    )
    return [(ext.entry_point, ext.plugin) for ext in manager.extensions]


class _ImportAborted(Exception):
    """An import that raised AssertionError or SystemExit, carried past stevedore."""


def _dist_name(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.name


def _info_for(ep: md.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    name = _dist_name(ep)
    aliases = {canonicalize_name(name), canonicalize_name(ep.name)}
    return PluginInfo(
        name=name,
        version=dist.version if dist is not None else None,
        entry_point=f"{ep.name} = {ep.value}",
        status=OK,
        aliases=frozenset(aliases),
    )


def _is_own_module(err: ModuleNotFoundError, ep: md.EntryPoint) -> bool:
    """Whether the missing module is the plugin's own package (broken packaging, not a dep)."""
    missing = (err.name or "").split(".")[0]
    return bool(missing) and missing == ep.module.split(".")[0]


def _declared_requirements(dist: md.Distribution) -> list[str]:
    """The distribution's requirements that apply without extras, as written in its metadata."""
    out = []
    for raw in dist.requires or ():
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            out.append(raw)
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(str(req))
    return out


def _check_requirements(dist: md.Distribution) -> tuple[str, str, list[str]] | None:
    """``(status, message, requirements to install)`` if the declared requirements are not met.

    Reads only metadata: nothing is imported. Requirements behind extras are ignored.
    """
    missing: list[str] = []
    why: list[str] = []
    for raw in dist.requires or ():
        try:
            req = Requirement(raw)
        except InvalidRequirement as exc:
            return ERROR, f"its metadata has an invalid requirement {raw!r}: {exc}", []
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if canonicalize_name(req.name) == _CORE:
            if not req.specifier.contains(CORE_VERSION, prereleases=True):
                return (
                    INCOMPATIBLE,
                    f"requires sedna-core{req.specifier}, but this is sedna-core {CORE_VERSION}",
                    [],
                )
            continue
        plain = f"{req.name}{req.specifier}"  # without the marker: what pip is given
        try:
            installed = md.version(req.name)
        except md.PackageNotFoundError:
            missing.append(plain)
            why.append(f"{plain} (not installed)")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            missing.append(plain)
            why.append(f"{plain} ({installed} is installed)")
    if missing:
        fix = "pip install " + " ".join(shlex.quote(m) for m in missing)
        return UNAVAILABLE, f"requires {'; '.join(why)}; install with: {fix}", missing
    return None


def _declared_hooks() -> list[str]:
    return sorted(n for n in dir(_hookspecs) if n.startswith("sedna_"))


def _unknown_hooks_message(unknown: Sequence[str]) -> tuple[str, str]:
    """``(status, message)`` for hook implementations without a specification.

    A near-miss of a declared name (``sedna_register_hard_example_miner``) is a typo in the
    plugin (``error``, with the name it meant); anything else is a hook of a newer core
    (``incompatible``).
    """
    declared = _declared_hooks()
    typos = []
    for name in unknown:
        close = difflib.get_close_matches(name, declared, n=1, cutoff=0.85)
        if close:
            typos.append(f"`{name}`: did you mean `{close[0]}`?")
    if typos:
        return ERROR, (
            "implements hooks sedna-core does not declare, with names close to declared ones: "
            + "; ".join(typos)
            + " Rename the function (pluggy matches hooks by exact name)."
        )
    return INCOMPATIBLE, (
        f"implements hooks sedna-core {CORE_VERSION} does not declare: "
        f"{', '.join(unknown)} (it may need a newer sedna-core)"
    )


def _unmarked_hooks(plugin: object) -> list[str]:
    """Problems for functions named like a declared hook but not marked ``@hookimpl``."""
    declared = set(_declared_hooks())
    out = []
    for attr in dir(plugin):
        if attr not in declared:
            continue
        value = getattr(plugin, attr, None)
        if callable(value) and not hasattr(value, f"{PROJECT_NAME}_impl"):
            out.append(
                f"`{attr}` is not marked with @hookimpl, so it is never called; decorate it "
                "with `sedna_core.plugins.hookimpl`"
            )
    return out


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, type):
        return [result]
    try:
        return list(result)
    except TypeError:
        return [result]


def _class_problem(cls: Any, base: type, kind: str) -> str | None:
    if not isinstance(cls, type) or not issubclass(cls, base):
        return f"registered {cls!r} as {kind}, but it is not a subclass of {base.__name__}"
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name.strip():
        return f"registered {cls.__qualname__} as {kind}, but it has no `name`"
    if ":" in name:
        return f"{cls.__qualname__}.name {name!r} contains ':' (reserved for 'distribution:Name')"
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        return f"registered {cls.__qualname__} as {kind}, but it is abstract (missing: {missing})"
    return None


# -- the process-wide manager --------------------------------------------------------------

_current: SednaPluginManager | None = None
_current_lock = threading.Lock()


def get_plugin_manager() -> SednaPluginManager:
    """The process-wide plugin manager; installed plugins are discovered on the first call."""
    global _current
    pm = _current
    if pm is None:
        with _current_lock:
            if _current is None:
                fresh = SednaPluginManager()
                fresh.load_entry_points()
                _current = fresh
            pm = _current
    return pm


def current_plugin_manager() -> SednaPluginManager | None:
    """The process-wide manager if it exists yet, without starting discovery."""
    return _current


def reset_plugin_manager() -> None:
    """Forget the process-wide manager; the next :func:`get_plugin_manager` discovers again."""
    global _current
    with _current_lock:
        _current = None


def _swap_plugin_manager(pm: SednaPluginManager | None) -> SednaPluginManager | None:
    """Install ``pm`` as the process-wide manager and return the previous one (tests)."""
    global _current
    with _current_lock:
        previous, _current = _current, pm
    return previous
