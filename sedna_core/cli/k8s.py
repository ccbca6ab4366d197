"""``sedna k8s``: manifests of Sedna's custom resources for a job described in a small YAML file.

::

    sedna k8s example jointinference > job.yaml   # a commented job file to start from
    sedna k8s export job.yaml -o manifests/       # Models, Datasets and the job, schema-checked
    kubectl apply -f manifests/
    sedna k8s validate my-handwritten.yaml        # check any Sedna manifest against its CRD
    sedna k8s schema > sedna-job.schema.json      # the job file's JSON schema, for editors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

_KIND_CHOICES = ("jointinference", "federatedlearning", "incrementallearning", "lifelonglearning")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "k8s",
        help="write and check Kubernetes manifests of Sedna's custom resources",
        description="Manifests for running a sedna-core job under KubeEdge Sedna's controllers.",
    )
    sub = parser.add_subparsers(dest="k8s_command", metavar="ACTION", required=True)

    export = sub.add_parser(
        "export",
        help="write the manifests (job, Models, Datasets) of a job file",
        description="Read JOB (see `sedna k8s example`), write its manifests after checking "
        "each against its CRD schema. Without -o they go to stdout as one YAML stream.",
    )
    export.add_argument("job", type=Path, metavar="JOB.yaml", help="the job file")
    export.add_argument(
        "-o", "--output", type=Path, metavar="DIR", help="write one file per manifest into DIR"
    )
    export.set_defaults(func=_export)

    validate = sub.add_parser(
        "validate",
        help="check Sedna manifests against the CRD schemas",
        description="Check every YAML document in FILE... against the openAPIV3Schema of its "
        "kind. Fields a schema does not declare are errors (the API server would drop them).",
    )
    validate.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help="YAML files of Sedna manifests"
    )
    validate.add_argument(
        "--allow-unknown-fields",
        action="store_true",
        help="accept fields the schema does not declare (Kubernetes prunes them silently)",
    )
    validate.set_defaults(func=_validate)

    example = sub.add_parser("example", help="print an example job file of a kind")
    example.add_argument("kind", choices=_KIND_CHOICES, help="the job kind")
    example.set_defaults(func=_example)

    schema = sub.add_parser("schema", help="print the job file's JSON schema")
    schema.set_defaults(func=_schema)


def _problems(exc: Any) -> int:
    sys.stderr.write(f"error: {exc}\n")
    return 1


def _export(args: argparse.Namespace) -> int:
    from sedna_core.k8s import ManifestError, dump_manifests, export_job_file, write_manifests

    try:
        result = export_job_file(args.job)
    except ManifestError as exc:
        return _problems(exc)
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if args.output is None:
        sys.stdout.write(dump_manifests(result.manifests))
        return 0
    for path in write_manifests(result.manifests, args.output):
        print(path)
    return 0


def _validate(args: argparse.Namespace) -> int:
    import yaml

    from sedna_core.k8s import validation_errors

    failed = 0
    for path in args.files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except (OSError, yaml.YAMLError) as exc:
            sys.stderr.write(f"{path}: cannot read: {exc}\n")
            failed += 1
            continue
        for i, doc in enumerate(docs):
            errors = validation_errors(doc, strict=not args.allow_unknown_fields)
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            label = f"{path}[{i}] {doc.get('kind', '?') if isinstance(doc, dict) else '?'}"
            label += f"/{meta.get('name')}" if isinstance(meta, dict) else ""
            if errors:
                failed += 1
                sys.stderr.write(f"{label}: {len(errors)} problem(s)\n")
                for err in errors:
                    sys.stderr.write(f"  - {err}\n")
            else:
                print(f"{label}: ok")
    return 1 if failed else 0


def _example(args: argparse.Namespace) -> int:
    from sedna_core.k8s import example

    sys.stdout.write(example(args.kind))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from sedna_core.k8s import JOB_FILE_SCHEMA

    print(json.dumps(JOB_FILE_SCHEMA, indent=2, sort_keys=True))
    return 0
