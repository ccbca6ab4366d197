"""``sedna plugins list|show|install|uninstall`` and the plugin part of ``sedna --version``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedna_core.plugins import PluginInfo, SednaPluginManager

__all__ = ["print_versions", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from sedna_core.algorithms import KINDS  # light: numpy and the base classes only

    parser = subparsers.add_parser("plugins", help="inspect, install and remove sedna plugins")
    sub = parser.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser(
        "list",
        help="list plugins: version, status, entry point, algorithms by kind",
        description=(
            "List the plugins of the entry-point group 'sedna.plugins' with their status "
            "(ok, unavailable, error, incompatible, disabled), the algorithms they register "
            "and their problems (name conflicts, misspelt hooks, missing requirements)."
        ),
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list instead")
    listing.add_argument(
        "--kind",
        choices=sorted(KINDS),
        help="only plugins registering algorithms of this kind (and only those algorithms)",
    )
    listing.set_defaults(func=_list)

    show = sub.add_parser(
        "show",
        help="one plugin or algorithm: parameters, types, defaults, requirements, problems",
        description=(
            "Show a plugin (distribution or entry-point name) or an algorithm (its name, or "
            "'dist:Name'): each algorithm's parameters with types, defaults and descriptions, "
            "the entry point, requirements, status and problems."
        ),
    )
    show.add_argument("name", help="a distribution, entry-point or algorithm name")
    show.add_argument("--kind", choices=sorted(KINDS), help="only algorithms of this kind")
    show.add_argument("--json", action="store_true", help="print JSON instead")
    show.set_defaults(func=_show)

    install = sub.add_parser(
        "install",
        help="pip-install plugins into the environment of this sedna, then list them",
        description=(
            "Install plugin distributions with pip into the same Python environment as the "
            "running 'sedna' (as 'llm install' does), then show their listing entries."
        ),
    )
    install.add_argument("specs", nargs="+", metavar="SPEC", help="pip requirement or path")
    install.add_argument("-U", "--upgrade", action="store_true", help="pip install --upgrade")
    install.add_argument(
        "-e", "--editable", action="store_true", help="install the SPEC paths in editable mode"
    )
    install.add_argument("--no-deps", action="store_true", help="pip install --no-deps")
    install.add_argument(
        "--no-build-isolation", action="store_true", help="pip install --no-build-isolation"
    )
    install.add_argument("--json", action="store_true", help="print the new entries as JSON")
    install.set_defaults(func=_install)

    uninstall = sub.add_parser(
        "uninstall",
        help="pip-uninstall plugin distributions from the environment of this sedna",
    )
    uninstall.add_argument("names", nargs="+", metavar="NAME", help="distribution names")
    uninstall.set_defaults(func=_uninstall)


def _manager(*, fresh: bool = False) -> SednaPluginManager:
    from sedna_core.log import configure_logging

    configure_logging()  # warnings about broken plugins go to stderr, never into the listing
    from sedna_core.plugins import SednaPluginManager, get_plugin_manager

    if not fresh:
        return get_plugin_manager()
    pm = SednaPluginManager()
    pm.load_entry_points()
    return pm


def _load() -> list[Any]:
    return _manager().list_plugins()


def _only_kind(infos: list[PluginInfo], kind: str | None) -> list[PluginInfo]:
    if kind is None:
        return infos
    from dataclasses import replace

    out = []
    for info in infos:
        if kind in info.algorithms:
            out.append(replace(info, algorithms={kind: info.algorithms[kind]}))
    return out


def _list(args: argparse.Namespace) -> int:
    from sedna_core.errors import PluginLoadError

    try:
        infos = _only_kind(_load(), args.kind)
    except PluginLoadError as exc:  # SEDNA_STRICT_PLUGINS=1
        print(f"sedna: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        what = f"registering {args.kind} algorithms " if args.kind else ""
        print(f"no sedna plugins {what}installed (entry-point group 'sedna.plugins')")
        return 0
    _print_table(infos)
    return 0


def _print_table(infos: list[PluginInfo]) -> None:
    rows = [("PLUGIN", "VERSION", "STATUS", "ENTRY POINT", "ALGORITHMS")]
    for info in infos:
        kinds = [f"{k}: {', '.join(sorted(v))}" for k, v in sorted(info.algorithms.items())]
        lines = kinds or ["-"]
        ep = info.entry_point or "-"
        rows.append((info.name, info.version or "-", info.status, ep, lines[0]))
        rows.extend(("", "", "", "", line) for line in lines[1:])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    problems = [i for i in infos if i.error or i.problems]
    if problems:
        print()
        for info in problems:
            for text in [info.error, *info.problems] if info.error else info.problems:
                if text:
                    print(f"{info.name} ({info.status}): {text}")


# -- show ------------------------------------------------------------------------------------


def show_document(pm: SednaPluginManager, name: str, kind: str | None = None) -> dict[str, Any]:
    """What ``sedna plugins show NAME --json`` prints.

    Parameters
    ----------
    pm
        The plugin manager to look in.
    name
        A distribution or entry-point name, an algorithm name, or ``"dist:Name"``.
    kind
        Only algorithms of this kind.

    Returns
    -------
    dict
        ``{"query": name, "plugins": [...]}``: one entry per matching plugin, its listing
        entry plus ``requirements``, ``missing`` and ``algorithms_detail`` (one
        :func:`~sedna_core.plugins.describe_algorithm` per matching algorithm, with
        ``spec``: what to write to get exactly that one). Empty ``plugins`` when nothing
        matches.
    """
    from packaging.utils import canonicalize_name

    from sedna_core.algorithms import KINDS
    from sedna_core.plugins import describe_algorithm

    infos = pm.list_plugins()
    kinds = [kind] if kind else list(KINDS)
    owner = pm.plugin_info(name)
    qualifier, _, bare = name.rpartition(":")
    wanted: dict[str, list[tuple[str, type]]] = {}  # plugin name -> (kind, class)
    if owner is not None and not qualifier:
        for k in kinds:
            for entries in pm.algorithm_entries(k).values():
                wanted.setdefault(owner.name, []).extend(
                    (k, e.cls) for e in entries if e.plugin == owner.name
                )
        wanted.setdefault(owner.name, [])
    else:
        qual = canonicalize_name(qualifier) if qualifier else None
        for k in kinds:
            for algo, entries in pm.algorithm_entries(k).items():
                if algo.casefold() != bare.strip().casefold():
                    continue
                for e in entries:
                    info = pm.plugin_info(e.plugin)
                    if qual is not None and (info is None or qual not in info.aliases):
                        continue
                    wanted.setdefault(e.plugin, []).append((k, e.cls))
    plugins = []
    for info in infos:
        if info.name not in wanted:
            continue
        doc = info.to_dict()
        doc["requirements"] = list(info.requirements)
        doc["missing"] = list(info.missing)
        details = []
        for k, cls in wanted[info.name]:
            entries = pm.algorithm_entries(k)[cls.name]  # type: ignore[attr-defined]
            detail = describe_algorithm(cls)
            unique = len(entries) == 1
            detail["spec"] = cls.name if unique else f"{info.name}:{cls.name}"  # type: ignore[attr-defined]
            details.append(detail)
        doc["algorithms_detail"] = details
        plugins.append(doc)
    return {"query": name, "plugins": plugins}


def _show(args: argparse.Namespace) -> int:
    from sedna_core.errors import PluginLoadError

    try:
        pm = _manager()
        doc = show_document(pm, args.name, args.kind)
    except PluginLoadError as exc:
        print(f"sedna: {exc}", file=sys.stderr)
        return 1
    if not doc["plugins"]:
        print(
            f"sedna: no plugin or algorithm named {args.name!r}"
            + _suggest(pm, args.name)
            + "; `sedna plugins list` shows what is installed",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for n, plugin in enumerate(doc["plugins"]):
        if n:
            print()
        _print_plugin(plugin)
    return 0


def _suggest(pm: SednaPluginManager, name: str) -> str:
    import difflib

    from sedna_core.algorithms import KINDS

    names = {i.name for i in pm.list_plugins(with_algorithms=False)}
    for kind in KINDS:
        names.update(pm.algorithm_entries(kind))
    by_fold = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(name.rpartition(":")[2].casefold(), list(by_fold), n=1)
    return f" (did you mean {by_fold[close[0]]!r}?)" if close else ""


def _print_plugin(plugin: dict[str, Any]) -> None:
    print(f"{plugin['name']} {plugin['version'] or '-'}  status: {plugin['status']}")
    print(f"  entry point:  {plugin['entry_point'] or '- (registered by hand)'}")
    print(f"  requirements: {', '.join(plugin['requirements']) or '-'}")
    if plugin["missing"]:
        print(f"  missing:      {', '.join(plugin['missing'])}")
    if plugin["error"]:
        print(f"  error:        {plugin['error']}")
    for problem in plugin["problems"]:
        print(f"  problem:      {problem}")
    for algo in plugin["algorithms_detail"]:
        print()
        print(f"  {algo['kind']}: {algo['name']}  ({algo['class']}; write {algo['spec']!r})")
        if algo["description"]:
            print(f"    {algo['description']}")
        for p in algo["parameters"]:
            default = "required" if p["required"] else f"= {p['default']}"
            line = f"    {p['name']}: {p['type']} {default}"
            print(line + (f"  -- {p['description']}" if p["description"] else ""))
        if not algo["parameters"]:
            print("    (no parameters)")


# -- install / uninstall ---------------------------------------------------------------------


def _pip(args: list[str]) -> int:
    # the interpreter running this sedna: plugins land where this sedna finds them; pip's
    # progress goes to stderr so that stdout holds only the result (--json stays parseable)
    sys.stdout.flush()
    return subprocess.call([sys.executable, "-m", "pip", *args], stdout=sys.stderr)


def _installed() -> dict[str, str]:
    import importlib.metadata as md

    return {d.metadata["Name"]: d.version for d in md.distributions() if d.metadata["Name"]}


def _install(args: argparse.Namespace) -> int:
    import importlib

    before = _installed()
    pip_args = ["install"]
    pip_args += ["--upgrade"] if args.upgrade else []
    pip_args += ["--no-deps"] if args.no_deps else []
    pip_args += ["--no-build-isolation"] if args.no_build_isolation else []
    for spec in args.specs:
        pip_args += ["-e", spec] if args.editable else [spec]
    code = _pip(pip_args)
    if code:
        print(f"sedna: pip install failed (exit {code}); nothing else was changed", file=sys.stderr)
        return code
    importlib.invalidate_caches()
    after = _installed()
    changed = {n for n, v in after.items() if before.get(n) != v}
    infos = [i for i in _manager(fresh=True).list_plugins() if i.name in changed]
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        print("installed, but no new sedna plugin (entry-point group 'sedna.plugins') appeared")
        return 0
    _print_table(infos)
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    pm = _manager(fresh=True)
    names = []
    for name in args.names:  # entry-point names map to their distribution
        info = pm.plugin_info(name)
        names.append(info.name if info is not None and info.entry_point else name)
    code = _pip(["uninstall", "--yes", *names])
    if code:
        print(f"sedna: pip uninstall failed (exit {code})", file=sys.stderr)
    return code


def print_versions() -> int:
    """``sedna --version``: the core's version, then each plugin's version and status.

    Returns
    -------
    int
        The exit status: 0, or 1 when ``SEDNA_STRICT_PLUGINS`` turned a failure into an error.
    """
    from sedna_core import __version__
    from sedna_core.errors import PluginLoadError
    from sedna_core.log import configure_logging

    print(f"sedna-core {__version__}")
    configure_logging()
    from sedna_core.plugins import get_plugin_manager

    try:
        infos = get_plugin_manager().list_plugins(with_algorithms=False)
    except PluginLoadError as exc:
        print(f"sedna: {exc}", file=sys.stderr)
        return 1
    for info in infos:
        print(f"  {info.name} {info.version or '-'} ({info.status})")
    return 0
