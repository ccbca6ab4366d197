"""Sedna knowledge base (``index.pkl`` + model files) -> sedna-core's task index and artifacts.

The output folder has the layout lifelong learning uses for a local knowledge base
(``OUTPUT_URL``): ``artifacts/`` (the content-addressed store) and ``index.json`` (plus
``index-1.json``), validated against the task-index schema. Point ``OUTPUT_URL`` at it, or
publish it to a knowledge-base service (``docs/knowledge-base.md``).

What is converted: task groups, their tasks (entry, attribute values), one model file per group
(copied byte for byte, never loaded), the create time, and, for attribute-defined tasks
(Sedna's ``TaskDefinitionByDataAttr``, whose extractor is a ``{entry: index}`` mapping), the
task allocation by attribute values. What is not: samples (Sedna pickled them, often as pandas
frames), fitted extractors of other kinds (an SVC...), unseen-task detectors; the report says
so, and ``LifelongLearning.update`` with new data refits what is missing.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sedna_core.artifacts import ArtifactStore
from sedna_core.errors import MigrationError
from sedna_core.knowledge_base import (
    INDEX_SCHEMA_NAME,
    INDEX_SCHEMA_VERSION,
    artifact_ref,
    validate_index,
)
from sedna_core.log import get_logger
from sedna_core.migration._standins import Opaque, Task, TaskGroup
from sedna_core.migration._unpickle import load_index

__all__ = ["UNPICKLE_WARNING", "ImportReport", "import_sedna_kb"]

log = get_logger(__name__)

UNPICKLE_WARNING = (
    "WARNING: importing a Sedna knowledge base UNPICKLES its index.pkl. Pickles can run code "
    "when loaded; this importer uses a restricted reader that builds only plain stand-ins and "
    "numpy arrays, but it still parses an untrusted format. Import only a knowledge base you "
    "trust, from local files (it never downloads anything)."
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ImportReport:
    """What :func:`import_sedna_kb` wrote and what it could not carry over."""

    index_file: Path
    groups: int
    tasks: int
    models: int
    warnings: list[str] = field(default_factory=list)
    #: classes named by the pickle that became opaque records (never imported)
    opaque: list[str] = field(default_factory=list)


def import_sedna_kb(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    attribute: Sequence[str] | None = None,
    model_format: str | None = None,
    backend: str | None = None,
    job: str | None = None,
) -> ImportReport:
    """Convert a trusted local Sedna knowledge base into sedna-core's format.

    Parameters
    ----------
    source
        Sedna's ``index.pkl``, or the folder holding it and the model files (the KB service's
        ``KnowledgeBasePath``, or a job's ``OUTPUT_URL``). Local paths only.
    dest
        Folder to write (``artifacts/`` and ``index.json``); must not hold an index already.
    attribute
        The attribute columns of attribute-defined tasks (``["Season", "City"]``): Sedna's
        index records only their values, and allocation needs the names.
    model_format
        Format recorded for every model (default: the model file's extension).
    backend
        Backend name recorded in the index (``"xgboost"``, ``"sklearn"``...).
    job
        Job name recorded in the index (default: the destination folder's name).

    Raises
    ------
    MigrationError
        ``source`` is remote or missing, the index cannot be read, a model file is missing,
        or the result does not validate.
    """
    index_path, root = _locate(source)
    out = Path(dest)
    if (out / "index.json").exists():
        raise MigrationError(f"{out} already holds a task index; choose an empty folder")
    log.warning(
        "unpickling a Sedna knowledge base", index=str(index_path), warning=UNPICKLE_WARNING
    )
    doc, opaque = load_index(index_path)
    sections = _sections(doc)
    warnings: list[str] = []
    groups = _dedupe(sections["seen"]["task_groups"], warnings)
    if not groups:
        raise MigrationError(f"{index_path} holds no seen task groups: nothing to import")
    if sections["unseen"]["task_groups"]:
        warnings.append(
            f"{len(sections['unseen']['task_groups'])} unseen-task group(s) not imported "
            "(Sedna's unseen-task training left them empty)"
        )
    attrs = [a.strip() for a in attribute or () if a.strip()]
    store = ArtifactStore(out / "artifacts")
    out_groups, table, task_id, models = [], [], 0, 0
    for g in groups:
        tasks = []
        for t in _as_list(getattr(g, "tasks", None)):
            if not isinstance(t, Task):
                warnings.append(f"group {getattr(g, 'entry', '?')}: a task record is not a Task")
                continue
            values = _meta_values(getattr(t, "meta_attr", None))
            meta: dict[str, Any] = {}
            if attrs and values is not None:
                if len(values) != len(attrs):
                    raise MigrationError(
                        f"task {t.entry!r} has {len(values)} attribute value(s) {values}, but "
                        f"--attribute names {len(attrs)}: {attrs}"
                    )
                meta = {a: _scalar(v) for a, v in zip(attrs, values, strict=True)}
                table.append({"key": [str(v) for v in values], "task_id": task_id})
            tasks.append(
                {
                    "entry": _entry(t.entry),
                    "task_id": task_id,
                    "meta_attr": meta,
                    "sample_num": _count(getattr(t, "samples", None)),
                    "samples": None,
                }
            )
            task_id += 1
        if not tasks:
            warnings.append(f"group {getattr(g, 'entry', '?')} has no tasks; skipped")
            continue
        model_ref = _model(g, root, store, model_format, backend)
        models += model_ref is not None
        out_groups.append(
            {
                "entry": _entry(getattr(g, "entry", None) or tasks[0]["entry"]),
                "deployed": True,
                "sample_num": _count(getattr(g, "samples", None))
                or sum(t["sample_num"] for t in tasks),
                "tasks": tasks,
                "model": model_ref,
            }
        )
    allocator, definition = _routing(sections["seen"].get("extractor"), attrs, table, warnings)
    index = {
        "schema": INDEX_SCHEMA_NAME,
        "schema_version": INDEX_SCHEMA_VERSION,
        "job": job or out.resolve().name,
        "create_time": _create_time(doc),
        "attribute_columns": attrs,
        "feature_columns": None,
        "backend": backend,
        "seen_task": {
            "task_groups": out_groups,
            "definition": definition,
            "allocator": allocator,
            "detectors": [],
        },
        "unseen_task": {"task_groups": []},
        "global_model": None,
        "metadata": {"imported_from": str(index_path), "importer": "sedna kb import-sedna"},
    }
    warnings.append(
        "samples are not imported (Sedna pickled them); unseen-task detectors are not fitted: "
        "LifelongLearning.update with new data refits them"
    )
    try:
        validate_index(index)
    except Exception as exc:
        raise MigrationError(f"the converted index does not validate: {exc}") from exc
    index["version"] = 1
    text = json.dumps(index, sort_keys=True, indent=1)
    # deploy/index.json: where Sedna's controller points inference pods (MODEL_URLS names
    # <OUTPUT_URL>/deploy/index.pkl; the lifelong job reads the JSON index beside it)
    for target in (out / "index-1.json", out / "index.json", out / "deploy" / "index.json"):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    for w in warnings:
        log.warning("sedna import", detail=w)
    tasks_total = sum(len(g["tasks"]) for g in out_groups)
    return ImportReport(out / "index.json", len(out_groups), tasks_total, models, warnings, opaque)


# -- helpers ----------------------------------------------------------------------------------


def _locate(source: str | os.PathLike[str]) -> tuple[Path, Path]:
    text = os.fspath(source)
    if _SCHEME.match(text) and not text.startswith("file://"):
        raise MigrationError(
            f"{text!r} is not a local path: the importer reads local files only (copy the "
            "knowledge base here first, from a source you trust)"
        )
    path = Path(text[len("file://") :] if text.startswith("file://") else text)
    if path.is_dir():
        path = path / "index.pkl"
    if not path.is_file():
        raise MigrationError(f"{path} does not exist: give Sedna's index.pkl or its folder")
    return path, path.parent


def _sections(doc: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(doc, Mapping):
        raise MigrationError(f"the index is a {type(doc).__name__}, not Sedna's index mapping")

    def section(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            return {"task_groups": [], "extractor": None}
        return {
            "task_groups": _as_list(value.get("task_groups")),
            "extractor": value.get("extractor"),
        }

    if "seen_task" in doc:
        return {"seen": section(doc["seen_task"]), "unseen": section(doc.get("unseen_task"))}
    if "task_groups" in doc:  # the older MulTaskLearning layout
        return {"seen": section(doc), "unseen": section(None)}
    raise MigrationError(
        f"the index has keys {sorted(map(str, doc))}, not Sedna's seen_task/unseen_task"
    )


def _dedupe(groups: list[Any], warnings: list[str]) -> list[Any]:
    """Sedna's KB appended unseen groups to the seen list in place: keep each entry once."""
    seen: set[str] = set()
    out = []
    for g in groups:
        if not isinstance(g, TaskGroup):
            warnings.append(f"a task-group record is a {type(g).__name__}; skipped")
            continue
        entry = str(getattr(g, "entry", ""))
        if entry in seen:
            warnings.append(f"task group {entry!r} appears twice; the first is kept")
            continue
        seen.add(entry)
        out.append(g)
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _entry(value: Any) -> str:
    text = str(value if value is not None else "task").strip() or "task"
    return text[:100]


def _meta_values(meta: Any) -> list[Any] | None:
    if meta is None:
        return None
    if isinstance(meta, Mapping):
        return list(meta.values())
    if isinstance(meta, list | tuple):
        return list(meta)
    if hasattr(meta, "tolist"):
        values = meta.tolist()
        return values if isinstance(values, list) else [values]
    return [meta]


def _scalar(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _count(samples: Any) -> int:
    x = getattr(samples, "x", None)
    try:
        return len(x) if x is not None else 0
    except TypeError:
        return 0


def _create_time(doc: Mapping[str, Any]) -> float:
    try:
        return float(doc.get("create_time"))
    except (TypeError, ValueError):
        return time.time()


def _model_file(ref: str, root: Path) -> Path | None:
    """The local file for a model path or KB download URL (looked up in ``root``)."""
    if _SCHEME.match(ref) and not ref.startswith("file://"):
        query = parse_qs(urlsplit(ref).query)
        names = query.get("files") or query.get("name") or [Path(urlsplit(ref).path).name]
        candidates = [root / Path(n).name for n in names]
    else:
        path = Path(ref[len("file://") :] if ref.startswith("file://") else ref)
        candidates = [path, root / path, root / path.name]
        candidates += [root / sub / path.name for sub in ("seen_task", "unseen_task")]
    return next((c for c in candidates if c.is_file()), None)


def _model(
    group: Any,
    root: Path,
    store: ArtifactStore,
    model_format: str | None,
    backend: str | None,
) -> dict[str, Any] | None:
    record = getattr(group, "model", None)
    ref = getattr(record, "model", record)
    if ref is None:
        return None
    if not isinstance(ref, str | os.PathLike):
        raise MigrationError(
            f"group {group.entry!r}: its model is an object inside the pickle, not a file; "
            "Sedna-core imports model files only (save the model to a file and retry)"
        )
    local = _model_file(os.fspath(ref), root)
    if local is None:
        raise MigrationError(
            f"group {group.entry!r}: model file {os.fspath(ref)!r} not found (looked beside "
            f"{root}); copy the knowledge base's model files next to index.pkl"
        )
    fmt = model_format or local.suffix.lstrip(".").lower() or "bin"
    name = _NAME_OK.sub("-", f"{group.entry}.model").strip("-.")[:120] or "model"
    info = store.put(name, local, format=fmt, metadata={"imported_from": str(local)})
    metrics = getattr(record, "result", None)
    return {
        **artifact_ref(info, url=str(info.path)),
        "metrics": metrics if isinstance(metrics, Mapping) and _jsonable(metrics) else {},
        "backend": backend,
    }


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _routing(
    extractor: Any, attrs: list[str], table: list[dict[str, Any]], warnings: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(allocator, definition)`` documents for the index."""
    if isinstance(extractor, Mapping) or (extractor is None and attrs):
        if not attrs:
            raise MigrationError(
                "the tasks are attribute-defined (Sedna's TaskDefinitionByDataAttr) but Sedna's "
                "index does not record the attribute column names: pass --attribute, e.g. "
                '--attribute "Season" --attribute "Cooling startegy_building level"'
            )
        allocator = {
            "method": "TaskAllocationByDataAttr",
            "param": {"attribute": attrs},
            "state": {"columns": attrs, "table": table},
        }
        definition = {
            "method": "TaskDefinitionByDataAttr",
            "param": {"attribute": attrs},
            "state": {"allocator": allocator, "attribute_columns": attrs},
        }
        return allocator, definition
    what = getattr(extractor, "pickled_as", None) or type(extractor).__name__
    if isinstance(extractor, str):
        what = f"a file reference ({extractor})"
    warnings.append(
        f"the task extractor ({what}) is not converted: every sample goes to the first task "
        "until the job is retrained or updated"
    )
    if isinstance(extractor, Opaque | str) or extractor is None:
        allocator = {"method": "TaskAllocationDefault", "param": {"task": 0}, "state": {}}
        return allocator, {"method": "TaskDefinitionByDataAttr", "param": {}}
    raise MigrationError(f"unexpected task extractor {what}")
