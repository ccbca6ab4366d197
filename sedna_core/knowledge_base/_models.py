"""SQLAlchemy 2 ORM models of the knowledge base (database schema version 3).

Table names and the original columns are Sedna's (schema version 1), so an existing Sedna
knowledge-base database upgrades in place (:mod:`._migrations`). Version 2 adds model versions
with sha256, format and metrics, sample artifacts, a deployment history, published task-index
versions and a record of uploaded files. Version 3 adds ``kb_task_attr``, the indexed
(attribute, value) pairs of every task that attribute queries look up.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "SCHEMA_VERSION",
    "Base",
    "Deployment",
    "FileRecord",
    "IndexVersion",
    "Sample",
    "SchemaInfo",
    "Task",
    "TaskAttr",
    "TaskGroup",
    "TaskModel",
    "TaskRelation",
    "TaskSample",
    "attr_keys",
    "parse_task_attr",
]

#: the database schema version these models describe
SCHEMA_VERSION = 3

#: ``ll_samples.data_type`` values (Sedna's meaning)
DATA_TYPES = {"train": 0, "eval": 1, "hard": 2}


class Base(DeclarativeBase):
    pass


class SchemaInfo(Base):
    """One row: the schema version of this database (absent in Sedna's version 1)."""

    __tablename__ = "kb_schema"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    upgraded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class TaskGroup(Base):
    """Task groups: each has one current model (Sedna's ``ll_task_grp``)."""

    __tablename__ = "ll_task_grp"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    deploy: Mapped[bool | None] = mapped_column(Boolean(create_constraint=False), default=False)
    sample_num: Mapped[int | None] = mapped_column(Integer, default=0)
    task_num: Mapped[int | None] = mapped_column(Integer, default=0)
    # version 2
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    models: Mapped[list[TaskModel]] = relationship(back_populates="group")


class Task(Base):
    """Tasks and their defining attributes as JSON (Sedna's ``ll_tasks``)."""

    __tablename__ = "ll_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    task_attr: Mapped[str | None] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class TaskModel(Base):
    """Model versions of a task group (Sedna's ``ll_task_models``, versioned since schema 2)."""

    __tablename__ = "ll_task_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ll_task_grp.id"), index=True, nullable=False)
    model_url: Mapped[str | None] = mapped_column(Text, default="")
    is_current: Mapped[bool | None] = mapped_column(Boolean(create_constraint=False), default=False)
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # version 2
    version: Mapped[int | None] = mapped_column(Integer, default=1)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    format: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None] = mapped_column(BigInteger)
    metrics: Mapped[str | None] = mapped_column(Text, default="{}")

    group: Mapped[TaskGroup] = relationship(back_populates="models")


class TaskRelation(Base):
    """Which tasks a group holds (Sedna's ``ll_task_relation``)."""

    __tablename__ = "ll_task_relation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grp_id: Mapped[int] = mapped_column(ForeignKey("ll_task_grp.id"), index=True, nullable=False)
    task_id: Mapped[int] = mapped_column(ForeignKey("ll_tasks.id"), index=True, nullable=False)
    transfer_radio: Mapped[float | None] = mapped_column(Float, default=0.0)


class Sample(Base):
    """Stored sample sets (Sedna's ``ll_samples``); version 2 adds the artifact digest."""

    __tablename__ = "ll_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    data_url: Mapped[str | None] = mapped_column(Text, default="")
    descr: Mapped[str | None] = mapped_column(Text, default="")
    data_type: Mapped[int | None] = mapped_column(SmallInteger, default=0, index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sample_num: Mapped[int | None] = mapped_column(Integer, default=0)
    # version 2
    sha256: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(32))


class TaskSample(Base):
    """Which samples belong to which task (Sedna's ``ll_task_sample``)."""

    __tablename__ = "ll_task_sample"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("ll_samples.id"), index=True, nullable=False)
    task_id: Mapped[int] = mapped_column(ForeignKey("ll_tasks.id"), index=True, nullable=False)


class Deployment(Base):
    """History of deployment-status changes of task groups (new in schema 2)."""

    __tablename__ = "kb_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grp_id: Mapped[int] = mapped_column(ForeignKey("ll_task_grp.id"), index=True, nullable=False)
    deploy: Mapped[bool] = mapped_column(Boolean(create_constraint=False), nullable=False)
    index_version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class IndexVersion(Base):
    """Every published task index, as validated JSON (new in schema 2)."""

    __tablename__ = "kb_index"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    job: Mapped[str | None] = mapped_column(String(253))
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class FileRecord(Base):
    """Every file uploaded to the artifact store (new in schema 2)."""

    __tablename__ = "kb_files"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    format: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


#: characters of an attribute value kept in ``kb_task_attr`` (an index key must stay short);
#: longer values match there by prefix and are compared in full against ``ll_tasks.task_attr``
ATTR_VALUE_CHARS = 200


class TaskAttr(Base):
    """Each task's attributes, one row per (name, value as text), indexed so that an attribute
    query looks up its tasks instead of parsing every task's JSON (new in schema 3)."""

    __tablename__ = "kb_task_attr"
    __table_args__ = (Index("ix_kb_task_attr_name_value", "name", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ll_tasks.id"), index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    value: Mapped[str] = mapped_column(String(ATTR_VALUE_CHARS), nullable=False)


def parse_task_attr(raw: str | None) -> dict[str, Any]:
    """``ll_tasks.task_attr`` as a mapping: sedna-core writes a JSON object; Sedna stored the
    values as a list (keys become "0", "1"...); anything else is one value named "value"."""
    try:
        attrs = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    if isinstance(attrs, list):
        return {str(i): v for i, v in enumerate(attrs)}
    if not isinstance(attrs, dict):
        return {"value": attrs}
    return attrs


def attr_keys(attrs: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``kb_task_attr`` keys of a task's attributes: (name, value as text), each cut to its
    column's length. Values are compared as text (``str(value)``), as queries always have."""
    return [(str(k)[:100], str(v)[:ATTR_VALUE_CHARS]) for k, v in attrs.items()]
