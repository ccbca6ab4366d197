"""``sedna plugins list [--json]`` and the plugin part of ``sedna --version``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["print_versions", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("plugins", help="inspect installed sedna plugins")
    sub = parser.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser(
        "list",
        help="list plugins: version, status, entry point, algorithms by kind",
        description=(
            "List the plugins of the entry-point group 'sedna.plugins' with their status "
            "(ok, unavailable, error, incompatible, disabled) and the algorithms they register."
        ),
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list instead")
    listing.set_defaults(func=_list)


def _load() -> list[Any]:
    from sedna_core.log import configure_logging

    configure_logging()  # warnings about broken plugins go to stderr, never into the listing
    from sedna_core.plugins import get_plugin_manager

    return get_plugin_manager().list_plugins()


def _list(args: argparse.Namespace) -> int:
    from sedna_core.errors import PluginLoadError

    try:
        infos = _load()
    except PluginLoadError as exc:  # SEDNA_STRICT_PLUGINS=1
        print(f"sedna: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        print("no sedna plugins installed (entry-point group 'sedna.plugins')")
        return 0
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
    return 0


def print_versions() -> int:
    """``sedna --version``: the core's version, then each plugin's version and status."""
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
