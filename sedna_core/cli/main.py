"""Entry point of the ``sedna`` command.

Each command group lives in its own module with a ``register(subparsers)`` function, imported
only when the parser is built; modules keep their heavy imports inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: top-level command modules: ``sedna_core.cli.<name>``
COMMANDS = ("plugins", "kb", "k8s", "incremental")
#: ``sedna serve <name>``: ``sedna_core.cli.serve_<name>``
SERVERS = ("inference", "aggregation", "kb")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sedna", description="sedna-core: edge-cloud collaborative AI."
    )
    parser.add_argument(
        "--version", action="store_true", help="print the core's and each plugin's version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run a sedna server")
    serve_sub = serve.add_subparsers(dest="server", metavar="SERVER", required=True)
    for name in SERVERS:
        _register(f"sedna_core.cli.serve_{name}", serve_sub)
    for name in COMMANDS:
        _register(f"sedna_core.cli.{name}", sub)
    return parser


def _register(module_name: str, subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    importlib.import_module(module_name).register(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from sedna_core.cli.plugins import print_versions

        return print_versions()
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
