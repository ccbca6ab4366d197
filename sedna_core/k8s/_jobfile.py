"""The job file: a small YAML document describing one Sedna job for ``sedna k8s export``.

Its JSON schema is :data:`JOB_FILE_SCHEMA` (``sedna k8s schema`` prints it, for editors). The
format is documented in ``docs/deploy.md``; in short::

    kind: JointInferenceService          # or FederatedLearningJob, IncrementalLearningJob,
    name: helmet-detection               #   LifelongLearningJob (short forms: jointinference...)
    image: registry.example/helmet:0.1   # default image of every worker
    security: {tokenSecret: {name: sedna-token, key: token}}
    models:   {little: {url: /models/little.keras, format: keras}, ...}
    datasets: {...}
    edgeWorker: {model: little, node: edge-1, hardExampleMining: {name: IBT}}
    cloudWorker: {model: big, node: cloud-1}

Every mapping rejects keys it does not know, so a misspelt key is an error, not a silent no-op.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sedna_core.errors import JobFileError
from sedna_core.k8s._crds import json_path

__all__ = ["JOB_FILE_SCHEMA", "JOB_KINDS", "job_kind", "load_job_file", "validate_job"]

#: job-file ``kind`` -> the Sedna custom resource it becomes
JOB_KINDS = {
    "JointInferenceService": ("jointinferenceservice", "jointinference", "ji"),
    "FederatedLearningJob": ("federatedlearningjob", "federatedlearning", "fl"),
    "IncrementalLearningJob": ("incrementallearningjob", "incrementallearning", "il"),
    "LifelongLearningJob": ("lifelonglearningjob", "lifelonglearning", "ll"),
}

_NAME = {
    "type": "string",
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "maxLength": 63,
    "description": "a DNS-1123 label: lower-case letters, digits and '-'",
}
_SCALAR = {"type": ["string", "number", "boolean"]}
_ENV = {
    "type": "object",
    "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_.-]*$"},
    "additionalProperties": _SCALAR,
    "description": "environment variables of the container (values become strings)",
}
_QUANTITIES = {"type": "object", "additionalProperties": {"type": ["string", "number"]}}
_SECRET_KEY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "key"],
    "properties": {"name": _NAME, "key": {"type": "string", "minLength": 1}},
}
_ALGORITHM = {
    "description": "an algorithm name, or {name, parameters}",
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "parameters": {"type": "object", "additionalProperties": _SCALAR},
            },
        },
    ],
}
_CONDITION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["metric", "operator", "threshold"],
    "properties": {
        "metric": {"type": "string", "minLength": 1},
        "operator": {"enum": [">", "<", ">=", "<=", "="]},
        "threshold": {"type": "number"},
    },
}
_TRIGGER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["condition"],
    "properties": {
        "checkPeriodSeconds": {"type": "integer", "minimum": 1},
        "timer": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start", "end"],
            "properties": {
                "start": {"type": "string", "pattern": r"^\d{2}:\d{2}$"},
                "end": {"type": "string", "pattern": r"^\d{2}:\d{2}$"},
            },
        },
        "condition": _CONDITION,
    },
}
#: what every worker (one pod template) may say
_WORKER_PROPS: dict[str, Any] = {
    "image": {"type": "string", "minLength": 1},
    "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "command": {"type": "array", "items": {"type": "string"}},
    "args": {"type": "array", "items": {"type": "string"}},
    "workingDir": {"type": "string"},
    "node": {"type": "string", "minLength": 1, "description": "the node's name (nodeName)"},
    "env": _ENV,
    "backend": {"type": "string", "minLength": 1},
    "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
    "resources": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"limits": _QUANTITIES, "requests": _QUANTITIES},
    },
    "volumes": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["hostPath", "mountPath"],
            "properties": {
                "hostPath": {"type": "string", "pattern": "^/"},
                "mountPath": {"type": "string", "pattern": "^/"},
                "readOnly": {"type": "boolean"},
            },
        },
    },
}


def _worker(required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required or [],
        "properties": {**_WORKER_PROPS, **extra},
    }


_SERVER = {
    "bindAddress": {
        "type": "string",
        "minLength": 1,
        "description": "address the server listens on inside the pod (default 0.0.0.0)",
    }
}
_DATASET_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "trainProb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    },
}

_KIND_PROPS: dict[str, dict[str, Any]] = {
    "JointInferenceService": {
        "edgeWorker": _worker(
            ["model", "hardExampleMining"],
            model=_NAME,
            hardExampleMining=_ALGORITHM,
            miningMode={"enum": ["inference-then-mining", "mining-then-inference"]},
            cloudTimeout={"type": "number", "exclusiveMinimum": 0},
            wire={"enum": ["binary", "json"]},
            lcPeriod={"type": "number", "exclusiveMinimum": 0},
        ),
        "cloudWorker": _worker(
            ["model"], model=_NAME, workers={"type": "integer", "minimum": 1}, **_SERVER
        ),
    },
    "FederatedLearningJob": {
        "aggregationWorker": _worker(
            ["model"],
            model=_NAME,
            aggregation=_ALGORITHM,
            exitRound={"type": "integer", "minimum": 1},
            participantsCount={"type": "integer", "minimum": 1},
            roundDeadline={"type": "number", "exclusiveMinimum": 0},
            **_SERVER,
        ),
        "trainingWorkers": {
            "type": "array",
            "minItems": 1,
            "items": _worker(
                ["dataset"],
                dataset=_NAME,
                connectTimeout={"type": "number", "exclusiveMinimum": 0},
            ),
        },
        "pretrainedModel": _NAME,
    },
    "IncrementalLearningJob": {
        "dataset": _DATASET_REF,
        "initialModel": _NAME,
        "outputDir": {"type": "string", "minLength": 1},
        "credentialName": _NAME,
        "trainSpec": _worker(trigger=_TRIGGER),
        "evalSpec": _worker(initialEvalModel=_NAME),
        "deploySpec": _worker(
            ["model", "hardExampleMining"],
            model=_NAME,
            hardExampleMining=_ALGORITHM,
            hotUpdate={"type": "boolean"},
            pollPeriodSeconds={"type": "integer", "minimum": 1},
            trigger=_TRIGGER,
        ),
    },
    "LifelongLearningJob": {
        "dataset": _DATASET_REF,
        "outputDir": {"type": "string", "minLength": 1},
        "credentialName": _NAME,
        "knowledgeBase": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {"url": {"type": "string", "pattern": "^https?://"}},
        },
        "trainSpec": _worker(trigger=_TRIGGER),
        "evalSpec": _worker(),
        "deploySpec": _worker(),
    },
}
_KIND_REQUIRED = {
    "JointInferenceService": ["edgeWorker", "cloudWorker"],
    "FederatedLearningJob": ["aggregationWorker", "trainingWorkers"],
    "IncrementalLearningJob": ["dataset", "initialModel", "outputDir", "deploySpec"],
    "LifelongLearningJob": ["dataset", "outputDir"],
}
_COMMON_PROPS: dict[str, Any] = {
    "apiVersion": {"const": "sedna-core/v1"},
    "kind": {"type": "string"},
    "name": _NAME,
    "namespace": _NAME,
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "image": {"type": "string", "minLength": 1},
    "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "backend": {"type": "string", "minLength": 1},
    "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
    "env": _ENV,
    "security": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tokenSecret": _SECRET_KEY,
            "insecure": {"type": "boolean"},
        },
    },
    "models": {
        "type": "object",
        "propertyNames": _NAME,
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "format": {"type": "string", "minLength": 1},
                "credentialName": _NAME,
                "existing": {"type": "boolean"},
            },
        },
    },
    "datasets": {
        "type": "object",
        "propertyNames": _NAME,
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "format": {"type": "string", "minLength": 1},
                "node": {"type": "string", "minLength": 1},
                "credentialName": _NAME,
                "existing": {"type": "boolean"},
            },
        },
    },
}


def _kind_schema(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "name", *_KIND_REQUIRED[kind]],
        "properties": {**_COMMON_PROPS, **_KIND_PROPS[kind]},
    }


#: JSON schema of a job file (one branch per kind, chosen by ``kind``)
JOB_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "sedna-core job file (input of `sedna k8s export`)",
    "type": "object",
    "required": ["kind", "name"],
    "properties": {"kind": {"enum": sorted(JOB_KINDS)}},
    "allOf": [
        {"if": {"properties": {"kind": {"const": k}}}, "then": _kind_schema(k)}
        for k in sorted(JOB_KINDS)
    ],
}


def job_kind(value: object) -> str:
    """The canonical kind (``JointInferenceService``...) of a job file's ``kind`` value."""
    text = str(value).strip()
    folded = text.lower().replace("-", "").replace("_", "")
    for kind, aliases in JOB_KINDS.items():
        if text == kind or folded in aliases:
            return kind
    raise JobFileError(
        [f"kind: {value!r} is not a job kind; use one of {', '.join(sorted(JOB_KINDS))}"]
    )


def load_job_file(path: str | Path) -> dict[str, Any]:
    """Read and check a job file; returns it with ``kind`` made canonical.

    Raises
    ------
    JobFileError
        The file is missing, not YAML, or breaks the schema or a cross-reference; the error
        lists every problem with its path.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobFileError(
            [f"cannot read the job file: {exc.strerror}"], source=str(source)
        ) from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise JobFileError([f"not valid YAML: {exc}"], source=str(source)) from exc
    if len(docs) != 1:
        raise JobFileError(
            [f"expected exactly one YAML document, found {len(docs)}"], source=str(source)
        )
    try:
        return validate_job(docs[0])
    except JobFileError as exc:
        raise JobFileError(exc.errors, source=str(source)) from None


def validate_job(job: Any) -> dict[str, Any]:
    """Check a parsed job file (schema, then cross-references); returns a normalised copy."""
    if not isinstance(job, Mapping):
        raise JobFileError([f"<root>: a job file is a mapping, got {type(job).__name__}"])
    if "kind" not in job:
        raise JobFileError([f"kind: missing; use one of {', '.join(sorted(JOB_KINDS))}"])
    doc = copy.deepcopy(dict(job))
    doc["kind"] = job_kind(doc["kind"])
    errors = [f"{json_path(e.absolute_path)}: {_message(e)}" for e in _validator().iter_errors(doc)]
    if errors:
        raise JobFileError(sorted(set(errors)))
    if doc["kind"] in ("IncrementalLearningJob", "LifelongLearningJob"):
        for key in ("trainSpec", "evalSpec", "deploySpec"):  # each becomes a worker
            doc.setdefault(key, {})
    errors = _reference_errors(doc)
    if errors:
        raise JobFileError(errors)
    return doc


# -- internals -------------------------------------------------------------------------------


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(JOB_FILE_SCHEMA)


def _message(err: Any) -> str:
    if err.validator == "additionalProperties" and err.validator_value is False:
        declared = sorted(err.schema.get("properties", {}))
        hints = []
        for key in sorted(set(err.instance) - set(declared)):
            close = difflib.get_close_matches(str(key), declared, n=1)
            hints.append(
                f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        return f"{'; '.join(hints)}; known keys here: {', '.join(declared)}"
    if err.validator == "pattern" and err.schema.get("description"):
        return f"{err.instance!r} is not {err.schema['description']}"
    if err.validator == "oneOf" and "description" in err.schema:
        return f"{err.instance!r} is not {err.schema['description']}"
    return str(err.message)


def _workers(doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(path, worker)`` of every worker the job declares."""
    out = []
    roles = (
        "edgeWorker",
        "cloudWorker",
        "aggregationWorker",
        "trainSpec",
        "evalSpec",
        "deploySpec",
    )
    for key in roles:
        if isinstance(doc.get(key), Mapping):
            out.append((key, doc[key]))
    for i, worker in enumerate(doc.get("trainingWorkers") or ()):
        out.append((f"trainingWorkers[{i}]", worker))
    return out


def _reference_errors(doc: Mapping[str, Any]) -> list[str]:
    errors = []
    models = doc.get("models") or {}
    datasets = doc.get("datasets") or {}
    for section, table, what in (("models", models, "model"), ("datasets", datasets, "dataset")):
        for name, spec in table.items():
            if spec.get("existing"):
                continue
            needed = ["url", "format"] + (["node"] if what == "dataset" else [])
            for field in needed:
                if field not in spec:
                    errors.append(
                        f"{section}.{name}: '{field}' is required (or set existing: true to "
                        f"use a {what.title()} that is already in the cluster)"
                    )

    def ref(path: str, name: Any, table: Mapping[str, Any], section: str) -> None:
        if name is not None and name not in table:
            known = ", ".join(sorted(table)) or "none"
            errors.append(
                f"{path}: {section[:-1]} {name!r} is not declared under {section} "
                f"(declared: {known})"
            )

    for path, worker in _workers(doc):
        ref(f"{path}.model", worker.get("model"), models, "models")
        ref(f"{path}.dataset", worker.get("dataset"), datasets, "datasets")
        ref(f"{path}.initialEvalModel", worker.get("initialEvalModel"), models, "models")
        if not (worker.get("image") or doc.get("image")):
            errors.append(f"{path}.image: no image; set it here or a default `image` at the top")
    ref("pretrainedModel", doc.get("pretrainedModel"), models, "models")
    ref("initialModel", doc.get("initialModel"), models, "models")
    if isinstance(doc.get("dataset"), Mapping):
        ref("dataset.name", doc["dataset"]["name"], datasets, "datasets")
    kind = doc["kind"]
    if kind in ("JointInferenceService", "FederatedLearningJob"):
        security = doc.get("security") or {}
        if not security.get("tokenSecret") and not security.get("insecure"):
            server = "cloudWorker" if kind == "JointInferenceService" else "aggregationWorker"
            errors.append(
                f"security: the {server} listens on its pod's address, which sedna-core refuses "
                "without a token; set security.tokenSecret {name, key} (a Secret holding a "
                "shared bearer token) or, for a trusted network only, security.insecure: true"
            )
    return errors
