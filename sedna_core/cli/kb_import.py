"""``sedna kb import-sedna SRC DEST``: the command-line face of :mod:`sedna_core.migration`.

``sedna_core/cli/kb.py`` adds it to the ``kb`` group; the importer itself is imported only when
the command runs, so building the parser stays light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register_import_command"]


def register_import_command(kb_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``import-sedna`` to the ``sedna kb`` subcommands; returns its parser."""
    parser = kb_subparsers.add_parser(
        "import-sedna",
        help="convert a trusted local Sedna knowledge base (index.pkl + models)",
        description="Convert KubeEdge Sedna's knowledge base (its pickled index.pkl and model "
        "files, local only) into sedna-core's task index (JSON) and artifact store. "
        "It UNPICKLES index.pkl with a restricted reader: use it only on files you trust.",
    )
    parser.add_argument("source", type=Path, metavar="SRC", help="index.pkl or its folder")
    parser.add_argument("dest", type=Path, metavar="DEST", help="folder to write (OUTPUT_URL)")
    parser.add_argument(
        "--trusted",
        action="store_true",
        help="confirm that SRC comes from a source you trust (required: it is unpickled)",
    )
    parser.add_argument(
        "--attribute",
        action="append",
        metavar="COLUMN",
        help="an attribute column of attribute-defined tasks, in order (repeat for each)",
    )
    parser.add_argument("--model-format", help="format of the model files (default: extension)")
    parser.add_argument("--backend", help="backend of the models (xgboost, sklearn, keras...)")
    parser.add_argument("--job", help="job name recorded in the index")
    parser.set_defaults(func=_run)
    return parser


def _run(args: argparse.Namespace) -> int:
    from sedna_core.errors import MigrationError
    from sedna_core.migration import UNPICKLE_WARNING, import_sedna_kb

    sys.stderr.write(f"\n{'!' * 78}\n{UNPICKLE_WARNING}\n{'!' * 78}\n\n")
    if not args.trusted:
        sys.stderr.write("refusing without --trusted: confirm that you trust SRC, then rerun\n")
        return 2
    try:
        report = import_sedna_kb(
            args.source,
            args.dest,
            attribute=args.attribute,
            model_format=args.model_format,
            backend=args.backend,
            job=args.job,
        )
    except MigrationError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(
        f"wrote {report.index_file}: {report.groups} task group(s), {report.tasks} task(s), "
        f"{report.models} model(s)\n"
    )
    for warning in report.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if report.opaque:
        sys.stderr.write(f"not imported (kept opaque): {', '.join(report.opaque)}\n")
    return 0
