"""``sedna kb ...``: knowledge-base helpers (schema upgrade, status, queries, deploy, and
``import-sedna`` from :mod:`sedna_core.migration`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("kb", help="knowledge-base helpers")
    sub = parser.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    upgrade = sub.add_parser("upgrade", help="create or upgrade a knowledge-base database")
    _database_args(upgrade)
    upgrade.set_defaults(func=cmd_upgrade)

    status = sub.add_parser("status", help="latest index version and tasks of a running KB")
    _service_args(status)
    status.set_defaults(func=cmd_status)

    query = sub.add_parser("query", help="tasks by attributes")
    _service_args(query)
    query.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a task attribute to match (repeatable), e.g. --attr season=winter",
    )
    query.add_argument("--task", help="only this task")
    query.add_argument("--deployed", choices=["yes", "no"], help="only deployed or withdrawn ones")
    query.set_defaults(func=cmd_query)

    deploy = sub.add_parser("deploy", help="deploy (1) or withdraw (0) task groups")
    _service_args(deploy)
    deploy.add_argument("tasks", help="comma-separated task group names")
    deploy.add_argument(
        "--status", type=int, choices=[0, 1], default=1, help="1 deploys (default), 0 withdraws"
    )
    deploy.add_argument("--reason", default="", help="why, kept in the index's history")
    deploy.set_defaults(func=cmd_deploy)

    schema = sub.add_parser("schema", help="print the task index's JSON Schema")
    schema.set_defaults(func=cmd_schema)

    validate = sub.add_parser("validate", help="check a task index file against the schema")
    validate.add_argument("file", help="a task index (index.json)")
    validate.set_defaults(func=cmd_validate)

    from sedna_core.cli.kb_import import register_import_command

    register_import_command(sub)


def _database_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db-url", help="SQLAlchemy URL (default: KB_URL, else the data dir's file)")
    p.add_argument("--data-dir", help="the knowledge base's data directory (KnowledgeBasePath)")


def _service_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="knowledge-base URL (default: KB_SERVER)")
    p.add_argument("--token", help="bearer token (default: SEDNA_TOKEN)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _client(args: argparse.Namespace) -> Any:
    import os

    from sedna_core.cli._checks import quiet_logging
    from sedna_core.knowledge_base import KnowledgeBaseClient

    url = args.url or os.environ.get("KB_SERVER")
    if not url:
        raise SystemExit("give --url or set KB_SERVER")
    quiet_logging()
    return KnowledgeBaseClient(url, token=args.token or os.environ.get("SEDNA_TOKEN"))


def cmd_upgrade(args: argparse.Namespace) -> int:
    from sedna_core.cli._checks import database_errors, writable_dir
    from sedna_core.config.lifelong import KnowledgeBaseConfig
    from sedna_core.knowledge_base import KnowledgeBaseDB

    config = KnowledgeBaseConfig.from_env(db_url=args.db_url, data_dir=args.data_dir)
    if args.db_url is None:
        writable_dir(config.data_dir, "--data-dir")
    with database_errors():
        db = KnowledgeBaseDB(config.database_url)
        try:
            before, after = db.upgrade()
        finally:
            db.close()
    shown = "none (new database)" if before is None else before
    print(f"knowledge-base schema: {shown} -> {after}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        version = client.latest_version()
        tasks = client.query()
    if args.json:
        print(json.dumps({"version": version, "tasks": tasks}, indent=2))
        return 0
    print(f"index version: {version if version is not None else 'none published'}")
    for t in tasks:
        model = t["model"] or {}
        state = "deployed" if t["deployed"] else "withdrawn"
        print(
            f"  {t['task']:<30} group={t['group']:<24} {state:<9} "
            f"model v{model.get('version', '-')} {model.get('format', '')}"
        )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    attributes = {}
    for item in args.attr:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--attr {item!r}: write NAME=VALUE")
        attributes[name] = value
    deployed = None if args.deployed is None else args.deployed == "yes"
    with _client(args) as client:
        tasks = client.query(attributes, task=args.task, deployed=deployed)
    if args.json:
        print(json.dumps(tasks, indent=2))
    else:
        for t in tasks:
            state = "deployed" if t["deployed"] else "withdrawn"
            print(f"{t['task']}\t{json.dumps(t['task_attr'])}\t{state}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.update_status(args.tasks, args.status, reason=args.reason)
    print(json.dumps(result) if args.json else f"index version {result['version']}: {result}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from sedna_core.knowledge_base import index_schema

    print(json.dumps(index_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from sedna_core.knowledge_base import IndexValidationError, validate_index

    try:
        with open(args.file, encoding="utf-8") as fh:
            validate_index(json.load(fh))
    except (OSError, ValueError, IndexValidationError) as exc:
        print(f"sedna kb validate: {args.file}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"{args.file}: a valid task index")
    return 0
