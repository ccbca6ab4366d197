"""The task index: a JSON document with a published JSON Schema (never a pickle).

:func:`validate_index` checks a document against ``task_index.schema.json`` and the rules a
schema cannot express (unique task ids and entries); errors name the offending path.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from sedna_core.errors import IndexValidationError

if TYPE_CHECKING:
    from sedna_core.artifacts import ArtifactInfo

__all__ = [
    "INDEX_SCHEMA_NAME",
    "INDEX_SCHEMA_VERSION",
    "artifact_ref",
    "index_schema",
    "iter_artifacts",
    "validate_index",
]

INDEX_SCHEMA_NAME = "sedna.lifelong.task_index"
INDEX_SCHEMA_VERSION = 1


@functools.cache
def index_schema() -> dict[str, Any]:
    """The task index's JSON Schema (draft 2020-12)."""
    text = resources.files("sedna_core.knowledge_base").joinpath("task_index.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = index_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@functools.cache
def _fast_validator() -> Any:
    """The same schema compiled to Python code by fastjsonschema: it accepts a valid 10k-task
    index in a fraction of jsonschema's time (which took tens of seconds). It only says yes or
    no here; a document it refuses is checked again by jsonschema for the precise message. The
    schema uses only keywords whose meaning draft 7 shares with draft 2020-12 ($defs is reached
    by JSON pointer), so it is compiled as draft 7, the newest fastjsonschema knows."""
    import fastjsonschema

    schema = index_schema()
    return fastjsonschema.compile(
        {
            **_optional_first(schema, schema["$defs"]),
            "$schema": "http://json-schema.org/draft-07/schema#",
        }
    )


def _optional_first(node: Any, defs: Mapping[str, Any]) -> Any:
    """``node`` with every ``oneOf: [null, {$ref: object}]`` as ``anyOf: [{$ref}, null]``.

    The two accept the same documents (null is never an object), but fastjsonschema checks
    every branch of a ``oneOf`` (raising and catching an exception for the null branch of each
    present model or sample set: 10k of them in a 10k-task index), and stops at the first
    branch of an ``anyOf`` that accepts."""
    if isinstance(node, list):
        return [_optional_first(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _optional_first(value, defs) for key, value in node.items()}
    branches = node.get("oneOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = next(b for b in branches if b != {"type": "null"})
        ref = other.get("$ref", "") if isinstance(other, dict) else ""
        target = defs.get(ref.removeprefix("#/$defs/")) if ref.startswith("#/$defs/") else None
        if isinstance(target, dict) and target.get("type") == "object":
            del out["oneOf"]
            out["anyOf"] = [other, {"type": "null"}]
    return out


def _fast_accepts(doc: Any) -> bool:
    import fastjsonschema

    try:
        _fast_validator()(doc)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def validate_index(doc: Any) -> dict[str, Any]:
    """``doc`` if it is a valid task index, else :class:`IndexValidationError`."""
    if not isinstance(doc, Mapping):
        raise IndexValidationError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema_version") not in (None, INDEX_SCHEMA_VERSION) and isinstance(
        doc.get("schema_version"), int
    ):
        raise IndexValidationError(
            f"schema_version {doc['schema_version']} is not supported (this sedna-core reads "
            f"{INDEX_SCHEMA_VERSION}); upgrade sedna-core",
            "schema_version",
        )
    errors = [] if _fast_accepts(doc) else list(_validator().iter_errors(doc))
    if errors:
        from jsonschema.exceptions import best_match

        first = best_match(errors)
        while first.context:  # "not valid under any of the given schemas": say which part
            first = best_match(first.context)
        path = "/".join(str(p) for p in first.absolute_path)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise IndexValidationError(first.message + more, path)
    for section in ("seen_task", "unseen_task"):
        ids, entries = set(), set()
        for g, group in enumerate(doc[section]["task_groups"]):
            for t, task in enumerate(group["tasks"]):
                where = f"{section}/task_groups/{g}/tasks/{t}"
                if task["task_id"] in ids:
                    raise IndexValidationError(f"task_id {task['task_id']} used twice", where)
                if task["entry"] in entries:
                    raise IndexValidationError(f"task entry {task['entry']!r} used twice", where)
                ids.add(task["task_id"])
                entries.add(task["entry"])
    return dict(doc)


def artifact_ref(info: ArtifactInfo, *, url: str) -> dict[str, Any]:
    """The index's reference to a stored file (``$defs/artifact``), read from ``url``."""
    return {
        "name": info.name,
        "version": info.version,
        "sha256": info.sha256,
        "format": info.format,
        "size": info.size,
        "filename": info.filename,
        "url": url,
    }


def iter_artifacts(doc: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path, artifact reference)`` for every artifact a valid index refers to."""
    if doc.get("global_model"):
        yield "global_model", doc["global_model"]
    for section in ("seen_task", "unseen_task"):
        for g, group in enumerate(doc[section]["task_groups"]):
            if group.get("model"):
                yield f"{section}/task_groups/{g}/model", group["model"]
            for t, task in enumerate(group["tasks"]):
                if task.get("samples"):
                    yield f"{section}/task_groups/{g}/tasks/{t}/samples", task["samples"]
