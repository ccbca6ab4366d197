"""Entry point of the ``sedna`` command.

Each command group lives in its own module with a ``register(subparsers)`` function, imported
only when the parser is built; modules keep their heavy imports inside the command functions.

Every failure a user can cause ends as one line on stderr and an exit code (:data:`EPILOG`),
never a traceback: :func:`main` maps the exceptions commands let through, so commands only
catch what they can say better themselves.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

#: top-level command modules: ``sedna_core.cli.<name>``
COMMANDS = ("plugins", "kb", "k8s", "incremental", "calibrate")
#: ``sedna serve <name>``: ``sedna_core.cli.serve_<name>``
SERVERS = ("inference", "aggregation", "kb")

#: exit codes, the same in every subcommand
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141
EPILOG = """\
exit codes (every command):
  0    success
  1    runtime failure (a server unreachable, a job that failed, a model that did not load)
  2    usage or configuration error (bad option, variable, file, URL or module:attr)
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (e.g. `| head`)

Errors are one line on stderr; logs go to stderr (LOG_LEVEL, SEDNA_LOG_FORMAT), results to
stdout. LOG_LEVEL=DEBUG adds the traceback of an unexpected error."""


class UsageError(Exception):
    """A mistake in the command line that argparse cannot see (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sedna",
        description="sedna-core: edge-cloud collaborative AI.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-V",
        "--version",
        action="store_true",
        help="print the core's and each plugin's version",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run a sedna server",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_sub = serve.add_subparsers(dest="server", metavar="SERVER", required=True)
    for name in SERVERS:
        _register(f"sedna_core.cli.serve_{name}", serve_sub)
    for name in COMMANDS:
        _register(f"sedna_core.cli.{name}", sub)
    return parser


def _register(module_name: str, subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    importlib.import_module(module_name).register(subparsers)


def _command_name(args: argparse.Namespace) -> str:
    parts = ["sedna"]
    for key in ("command", "server"):
        value = getattr(args, key, None)
        if value:
            parts.append(value)
    for key, value in vars(args).items():
        if key.endswith("_command") and isinstance(value, str):
            parts.append(value)
    return " ".join(parts)


def fail(prog: str, exc: BaseException | str) -> None:
    """Write ``prog: message`` as one line on stderr."""
    text = str(exc) if not isinstance(exc, BaseException) else _message(exc)
    sys.stderr.write(f"{prog}: {' '.join(text.split())}\n")
    sys.stderr.flush()


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"no module named {exc.name!r} (looked in the working directory and sys.path)"
    return text or type(exc).__name__


def exit_code(exc: BaseException) -> int:
    """The documented exit code of an exception that reached the command line."""
    from sedna_core.errors import AlgorithmUnavailableError, ConfigError, UnknownAlgorithmError

    usage = (UsageError, ConfigError, UnknownAlgorithmError, AlgorithmUnavailableError)
    if isinstance(exc, (*usage, ImportError)):
        return EXIT_USAGE
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script's ``sys.exit`` value)."""
    prog = "sedna"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        prog = _command_name(args)
        if args.version:
            from sedna_core.cli.plugins import print_versions

            return print_versions()
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return EXIT_USAGE
        return int(func(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader (`| head`) closed the pipe: say nothing, and keep Python's final flush of
        # stdout from raising again at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except SystemExit as exc:  # `raise SystemExit("message")` in a command: a usage error
        if isinstance(exc.code, str):
            fail(prog, exc.code)
            return EXIT_USAGE
        raise
    except Exception as exc:  # the last line of defence: one line, never a traceback
        from sedna_core.errors import SednaError

        known = (UsageError, SednaError, OSError, ImportError, ValueError, LookupError)
        if isinstance(exc, known):
            fail(prog, exc)
            return exit_code(exc)
        from sedna_core.log import get_logger

        get_logger(__name__).debug("unexpected error", exc_info=True)
        fail(
            prog,
            f"unexpected {type(exc).__name__}: {_message(exc)} "
            "(LOG_LEVEL=DEBUG shows the traceback; please report it)",
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
