"""Database schema versions and upgrades.

=======  ==========================================================================
version  what it is
=======  ==========================================================================
1        KubeEdge Sedna's knowledge-base tables (``ll_task_grp``, ``ll_tasks``,
         ``ll_task_models``, ``ll_task_relation``, ``ll_samples``, ``ll_task_sample``);
         no version table: recognised by its tables
2        sedna-core's first release: the version table ``kb_schema``; model versions
         with sha256/format/size/metrics; sample digests; ``kb_deployments``,
         ``kb_index``, ``kb_files``
3        ``kb_task_attr``: every task's (attribute, value) pairs, indexed for queries
=======  ==========================================================================

:func:`upgrade` brings a database to :data:`SCHEMA_VERSION` in one transaction, step by step;
an empty database is created at the latest version. A database newer than this code is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text, update

from sedna_core.errors import KnowledgeBaseError
from sedna_core.knowledge_base._models import (
    DATA_TYPES,
    SCHEMA_VERSION,
    Base,
    SchemaInfo,
    Task,
    TaskAttr,
    TaskModel,
    TaskRelation,
    attr_keys,
    parse_task_attr,
)
from sedna_core.log import get_logger

__all__ = ["detect_version", "upgrade"]

log = get_logger(__name__)

_NEW_IN_2 = ("kb_schema", "kb_deployments", "kb_index", "kb_files")


def detect_version(conn: Connection) -> int | None:
    """The schema version of the database behind ``conn``; None when it has no KB tables."""
    tables = set(inspect(conn).get_table_names())
    if "kb_schema" in tables:
        version = conn.execute(select(SchemaInfo.version).where(SchemaInfo.id == 1)).scalar()
        if version is None:
            raise KnowledgeBaseError(
                "the kb_schema table is empty: the database is damaged; restore it from a backup"
            )
        return int(version)
    if "ll_task_grp" in tables:
        return 1
    return None


def upgrade(engine: Engine, now: dt.datetime) -> tuple[int | None, int]:
    """Create or upgrade the schema; returns ``(version before, version after)``."""
    with engine.begin() as conn:
        before = detect_version(conn)
        if before is None:
            Base.metadata.create_all(conn)
            _stamp(conn, SCHEMA_VERSION, now, insert=True)
            log.info("knowledge-base schema created", version=SCHEMA_VERSION)
            return None, SCHEMA_VERSION
        if before > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"the database has schema version {before}, newer than this sedna-core knows "
                f"({SCHEMA_VERSION}); upgrade sedna-core"
            )
        version = before
        while version < SCHEMA_VERSION:
            _STEPS[version](conn, now)
            version += 1
            _stamp(conn, version, now, insert=version == 2)
            log.info("knowledge-base schema upgraded", to_version=version)
        return before, version


def _stamp(conn: Connection, version: int, now: dt.datetime, *, insert: bool) -> None:
    if insert:
        conn.execute(SchemaInfo.__table__.insert().values(id=1, version=version, upgraded_at=now))
    else:
        conn.execute(
            update(SchemaInfo).where(SchemaInfo.id == 1).values(version=version, upgraded_at=now)
        )


def _add_missing_columns(conn: Connection, table_name: str) -> None:
    table = Base.metadata.tables[table_name]
    have = {c["name"] for c in inspect(conn).get_columns(table_name)}
    for column in table.columns:
        if column.name in have:
            continue
        ddl = column.type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {column.name} {ddl}"))


def _v1_to_v2(conn: Connection, now: dt.datetime) -> None:
    for name in ("ll_task_grp", "ll_tasks", "ll_task_models", "ll_samples"):
        _add_missing_columns(conn, name)
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[n] for n in _NEW_IN_2])
    if conn.dialect.name == "sqlite":
        # Sedna stored the string "train" in this SMALLINT column (SQLite let it)
        for word, code in DATA_TYPES.items():
            conn.execute(
                text("UPDATE ll_samples SET data_type = :c WHERE data_type = :w"),
                {
                    "c": code,
                    "w": word,
                },
            )
    # Sedna added to task_num on every update: recount from the relations
    counts = conn.execute(
        select(TaskRelation.grp_id, text("count(*)")).group_by(TaskRelation.grp_id)
    ).all()
    for grp_id, count in counts:
        conn.execute(
            text("UPDATE ll_task_grp SET task_num = :n WHERE id = :g"),
            {
                "n": count,
                "g": grp_id,
            },
        )
    # number each group's models by age; the newest is current; format from the file name
    rows = conn.execute(
        select(TaskModel.id, TaskModel.task_id, TaskModel.model_url).order_by(TaskModel.id)
    ).all()
    seen: dict[int, int] = {}
    latest: dict[int, int] = {}
    for model_id, grp_id, url in rows:
        seen[grp_id] = seen.get(grp_id, 0) + 1
        latest[grp_id] = model_id
        conn.execute(
            update(TaskModel)
            .where(TaskModel.id == model_id)
            .values(version=seen[grp_id], format=_format_of(url or ""), metrics=json.dumps({}))
        )
    for model_id in latest.values():
        conn.execute(update(TaskModel).where(TaskModel.id == model_id).values(is_current=True))


def _format_of(url: str) -> str:
    name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if "name=" in url:  # Sedna's download URLs: ...download?files=x.model&name=x.model
        name = url.rsplit("name=", 1)[-1].split("&")[0]
    return name.rsplit(".", 1)[-1][:32] if "." in name else "bin"


def _v2_to_v3(conn: Connection, now: dt.datetime) -> None:
    TaskAttr.__table__.create(conn, checkfirst=True)
    rows = conn.execute(select(Task.id, Task.task_attr)).all()
    values = [
        {"task_id": task_id, "name": name, "value": value}
        for task_id, raw in rows
        for name, value in attr_keys(parse_task_attr(raw))
    ]
    if values:
        conn.execute(TaskAttr.__table__.insert(), values)


_STEPS: dict[int, Callable[[Connection, dt.datetime], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
