"""The knowledge base's database: SQLAlchemy 2 sessions over any SQLAlchemy URL.

Every write happens in one transaction that is committed before the call returns (Sedna never
committed its status updates). The server calls these methods from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import ConfigError, KnowledgeBaseError
from sedna_core.knowledge_base._index import iter_artifacts, validate_index
from sedna_core.knowledge_base._migrations import detect_version, upgrade
from sedna_core.knowledge_base._models import (
    SCHEMA_VERSION,
    Deployment,
    FileRecord,
    IndexVersion,
    Sample,
    Task,
    TaskGroup,
    TaskModel,
    TaskRelation,
    TaskSample,
)
from sedna_core.log import get_logger

__all__ = ["KnowledgeBaseDB", "normalise_db_url"]

log = get_logger(__name__)


def normalise_db_url(url: str) -> str:
    """``url`` with a driver SQLAlchemy can load here (``postgresql://`` -> psycopg 3 when
    psycopg2 is absent)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError("KB_URL", url, "an SQLAlchemy database URL") from exc
    if parsed.drivername in ("postgresql", "postgres") and (
        importlib.util.find_spec("psycopg2") is None
        and importlib.util.find_spec("psycopg") is not None
    ):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class KnowledgeBaseDB:
    """Tasks, groups, models, samples, relations, deployments and published indexes.

    Parameters
    ----------
    url
        Any SQLAlchemy URL (``sqlite:///kb.sqlite3``, ``postgresql://user@host/db``...).
    clock
        Source of the timestamps written to the rows.
    """

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = normalise_db_url(url)
        self.clock = clock or SystemClock()
        self.engine = self._engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @staticmethod
    def _engine(url: str) -> Engine:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.time(), tz=dt.UTC).replace(tzinfo=None)

    # -- schema ------------------------------------------------------------------------------

    def schema_version(self) -> int | None:
        """The database's schema version (None when it has no knowledge-base tables)."""
        with self.engine.connect() as conn:
            return detect_version(conn)

    def upgrade(self) -> tuple[int | None, int]:
        """Create or upgrade the schema to the current version; ``(before, after)``."""
        return upgrade(self.engine, self._now())

    def ensure_current(self) -> None:
        """Raise unless the schema is the current one (the server upgrades on start)."""
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"database schema version is {version}, expected {SCHEMA_VERSION}: run "
                "`sedna kb upgrade` (or start `sedna serve kb`, which upgrades)"
            )

    def close(self) -> None:
        self.engine.dispose()

    # -- files -------------------------------------------------------------------------------

    def record_file(self, *, name: str, version: str, sha256: str, size: int, fmt: str) -> None:
        with self._sessions.begin() as s:
            s.add(
                FileRecord(
                    name=name,
                    version=version,
                    sha256=sha256,
                    size=size,
                    format=fmt,
                    created_at=self._now(),
                )
            )

    def files(self) -> list[dict[str, Any]]:
        with self._sessions() as s:
            rows = s.scalars(select(FileRecord).order_by(FileRecord.id)).all()
            return [
                {
                    "name": r.name,
                    "version": r.version,
                    "sha256": r.sha256,
                    "size": r.size,
                    "format": r.format,
                }
                for r in rows
            ]

    # -- indexes -----------------------------------------------------------------------------

    def latest_version(self) -> int | None:
        with self._sessions() as s:
            return s.scalar(select(func.max(IndexVersion.version)))

    def get_index(self, version: int | None = None) -> dict[str, Any] | None:
        """A published index (the latest when ``version`` is None), or None."""
        with self._sessions() as s:
            if version is None:
                version = s.scalar(select(func.max(IndexVersion.version)))
                if version is None:
                    return None
            row = s.get(IndexVersion, int(version))
            return None if row is None else json.loads(row.body)

    def publish(self, doc: Mapping[str, Any], *, job: str | None = None) -> dict[str, Any]:
        """Validate ``doc``, record its tasks, groups, models and samples, and store it as the
        next index version (returned with ``version`` set), all in one transaction."""
        doc = validate_index(doc)
        for attempt in range(3):
            try:
                with self._sessions.begin() as s:
                    return self._publish(s, dict(doc), job)
            except SQLIntegrityError:  # another server process took the version: retry
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _publish(self, s: Session, doc: dict[str, Any], job: str | None) -> dict[str, Any]:
        now = self._now()
        version = (s.scalar(select(func.max(IndexVersion.version))) or 0) + 1
        doc["version"] = version
        for section in ("seen_task", "unseen_task"):
            for group in doc[section]["task_groups"]:
                self._upsert_group(s, section, group, now)
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        s.add(
            IndexVersion(
                version=version,
                body=body,
                sha256=hashlib.sha256(body.encode()).hexdigest(),
                job=job or doc.get("job"),
                created_at=now,
            )
        )
        s.flush()
        return doc

    @staticmethod
    def _group_name(section: str, entry: str) -> str:
        return entry if section == "seen_task" else f"unseen-{entry}"[:100]

    def _upsert_group(
        self, s: Session, section: str, group: Mapping[str, Any], now: dt.datetime
    ) -> None:
        name = self._group_name(section, group["entry"])
        grp = s.scalar(select(TaskGroup).where(TaskGroup.name == name))
        if grp is None:
            grp = TaskGroup(name=name, created_at=now)
            s.add(grp)
        tasks = group["tasks"]
        grp.deploy = bool(group.get("deployed", True))
        grp.task_num = len(tasks)  # absolute counts (Sedna added on every update)
        grp.sample_num = int(group.get("sample_num", sum(t.get("sample_num", 0) for t in tasks)))
        grp.updated_at = now
        s.flush()
        for task in tasks:
            row = s.scalar(select(Task).where(Task.name == task["entry"]))
            if row is None:
                row = Task(name=task["entry"], created_at=now)
                s.add(row)
            row.task_attr = json.dumps(task.get("meta_attr", {}), sort_keys=True)
            row.updated_at = now
            s.flush()
            relation = s.scalar(
                select(TaskRelation).where(
                    TaskRelation.grp_id == grp.id, TaskRelation.task_id == row.id
                )
            )
            if relation is None:
                relation = TaskRelation(grp_id=grp.id, task_id=row.id)
                s.add(relation)
            relation.transfer_radio = 1.0 / len(tasks)
            if task.get("samples"):
                self._add_samples(s, row, task, now)
        if group.get("model"):
            self._add_model(s, grp, group["model"], now)

    @staticmethod
    def _add_model(s: Session, grp: TaskGroup, ref: Mapping[str, Any], now: dt.datetime) -> None:
        models = s.scalars(select(TaskModel).where(TaskModel.task_id == grp.id)).all()
        current = next((m for m in models if m.sha256 == ref["sha256"]), None)
        if current is None:
            current = TaskModel(
                task_id=grp.id,
                version=max((m.version or 0 for m in models), default=0) + 1,
                model_url=ref.get("url", ""),
                sha256=ref["sha256"],
                format=ref["format"],
                size=ref.get("size"),
                metrics=json.dumps(ref.get("metrics", {}), sort_keys=True, default=str),
                created_at=now,
            )
            s.add(current)
        for m in models:
            m.is_current = m is current
        current.is_current = True

    @staticmethod
    def _add_samples(s: Session, task: Task, ref: Mapping[str, Any], now: dt.datetime) -> None:
        samples = ref["samples"]
        existing = s.scalar(
            select(Sample)
            .join(TaskSample, TaskSample.sample_id == Sample.id)
            .where(TaskSample.task_id == task.id, Sample.sha256 == samples["sha256"])
        )
        if existing is not None:
            return
        row = Sample(
            data_url=samples.get("url", ""),
            descr=f"training samples of task {task.name}",
            data_type=0,
            sample_num=int(ref.get("sample_num", 0)),
            sha256=samples["sha256"],
            format=samples["format"],
            updated_at=now,
        )
        s.add(row)
        s.flush()
        s.add(TaskSample(sample_id=row.id, task_id=task.id))

    def referenced_digests(self, doc: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(path, sha256)`` of every artifact ``doc`` refers to (for existence checks)."""
        return [(path, ref["sha256"]) for path, ref in iter_artifacts(doc)]

    # -- deployment status -------------------------------------------------------------------

    def set_deploy(
        self, groups: Sequence[str], deploy: bool, *, reason: str = ""
    ) -> dict[str, Any]:
        """Mark task groups (by entry) deployed or not, publish the index version that says so,
        and record the change; committed before returning."""
        with self._sessions.begin() as s:
            latest = s.scalar(select(func.max(IndexVersion.version)))
            if latest is None:
                raise KnowledgeBaseError("no task index is published yet; train a job first")
            doc = json.loads(s.get(IndexVersion, latest).body)  # type: ignore[union-attr]
            wanted = {g.strip() for g in groups if g.strip()}
            known = {g["entry"] for g in doc["seen_task"]["task_groups"]}
            changed = sorted(wanted & known)
            for group in doc["seen_task"]["task_groups"]:
                if group["entry"] in wanted:
                    group["deployed"] = bool(deploy)
            published = self._publish(s, doc, None) if changed else doc
            now = self._now()
            for name in changed:
                grp = s.scalar(select(TaskGroup).where(TaskGroup.name == name))
                if grp is not None:
                    s.add(
                        Deployment(
                            grp_id=grp.id,
                            deploy=bool(deploy),
                            index_version=published["version"],
                            reason=reason,
                            created_at=now,
                        )
                    )
            return {
                "version": published["version"],
                "updated": changed,
                "unknown": sorted(wanted - known),
            }

    def deployments(self, group: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as s:
            stmt = select(Deployment, TaskGroup.name).join(
                TaskGroup, TaskGroup.id == Deployment.grp_id
            )
            if group is not None:
                stmt = stmt.where(TaskGroup.name == group)
            rows = s.execute(stmt.order_by(Deployment.id)).all()
            return [
                {
                    "group": name,
                    "deploy": d.deploy,
                    "index_version": d.index_version,
                    "reason": d.reason,
                }
                for d, name in rows
            ]

    # -- queries -----------------------------------------------------------------------------

    def query(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        task: str | None = None,
        group: str | None = None,
        deployed: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks whose attributes include ``attributes`` (values compared as text), with their
        group, deployment status and current model."""
        wanted = {str(k): str(v) for k, v in (attributes or {}).items()}
        with self._sessions() as s:
            stmt = (
                select(Task, TaskGroup)
                .join(TaskRelation, TaskRelation.task_id == Task.id)
                .join(TaskGroup, TaskGroup.id == TaskRelation.grp_id)
                .order_by(Task.name, TaskGroup.name)
            )
            if task is not None:
                stmt = stmt.where(Task.name == task)
            if group is not None:
                stmt = stmt.where(TaskGroup.name == group)
            out = []
            for t, g in s.execute(stmt).all():
                try:
                    attrs = json.loads(t.task_attr or "{}")
                except json.JSONDecodeError:
                    attrs = {}
                if isinstance(attrs, list):  # Sedna stored the attribute values as a list
                    attrs = {str(i): v for i, v in enumerate(attrs)}
                elif not isinstance(attrs, dict):
                    attrs = {"value": attrs}
                if any(str(attrs.get(k)) != v or k not in attrs for k, v in wanted.items()):
                    continue
                if deployed is not None and bool(g.deploy) != deployed:
                    continue
                out.append(self._describe(s, t, g, attrs))
            return out

    @staticmethod
    def _describe(s: Session, t: Task, g: TaskGroup, attrs: dict[str, Any]) -> dict[str, Any]:
        models = s.scalars(
            select(TaskModel).where(TaskModel.task_id == g.id).order_by(TaskModel.id)
        ).all()
        current = next((m for m in reversed(models) if m.is_current), None)
        return {
            "task": t.name,
            "task_attr": attrs,
            "group": g.name,
            "deployed": bool(g.deploy),
            "sample_num": g.sample_num or 0,
            "model_versions": len(models),
            "model": None
            if current is None
            else {
                "version": current.version,
                "sha256": current.sha256,
                "format": current.format,
                "url": current.model_url,
                "metrics": json.loads(current.metrics or "{}"),
            },
        }

    def counts(self) -> dict[str, int]:
        """Rows per table (for status output and tests)."""
        tables: Iterable[Any] = (
            TaskGroup,
            Task,
            TaskModel,
            TaskRelation,
            Sample,
            TaskSample,
            Deployment,
            IndexVersion,
            FileRecord,
        )
        with self._sessions() as s:
            return {
                t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0)
                for t in tables
            }
